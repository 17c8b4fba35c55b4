package env

// LabelService is the compose service a container runs (containers only).
// The run and owner labels every resource carries are runs.Label*.
const LabelService = "rehearse.service"

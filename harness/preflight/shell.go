package preflight

// ShellEnv is what the shell rules know of the target environment.
type ShellEnv struct {
	// Units is the target host's systemd unit inventory (names such as
	// "billing-api.service"); nil when it is not known (unknown-unit is
	// then not judged).
	Units map[string]bool
	// Hosts are the environment's own host names (compose services,
	// localhost): calls to them are not external.
	Hosts []string
	// Allow is the allow-list of external hosts or domains (".example.com"
	// matches subdomains).
	Allow []string
}

// CheckScript checks one shell script. line is the line in file where src
// starts (1 for a whole file; a manifest step's command starts on its
// YAML line). (Scaffolding: the shell rules helper replaces this file.)
func CheckScript(file string, line int, src []byte, env ShellEnv) []Finding { return nil }

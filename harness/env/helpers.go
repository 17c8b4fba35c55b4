package env

import (
	"crypto/rand"
	"encoding/hex"
)

// Live reports whether the service's container has its namespaces and
// mounts: it runs or is paused. Only then can a helper join its network
// namespace (RunInNetns) or see its disk (RunOnDisk); a service that is
// no longer live lost both, and whatever a fault put there with them.
func (st State) Live() bool { return st.Status == "running" || st.Status == "paused" }

// helperID is a random suffix for a helper container's name: 8 hex digits.
func helperID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

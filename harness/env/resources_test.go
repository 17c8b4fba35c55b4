package env

import (
	"errors"
	"strings"
	"testing"

	"github.com/rehearse/rehearse/harness/sandbox"
)

// A squeeze sets a CPU quota with NanoCPUs, which the engine refuses next
// to a CPU period or quota of the container's own ("Conflicting options"),
// and restores memory and swap limits it read at the start. Both hold
// because the sandbox passes no resource key of the compose file on to
// the container: were one honoured, fault.Squeeze would need to refuse or
// restore it.
func TestComposeResourceLimitsNotHonoured(t *testing.T) {
	for _, key := range []string{"cpu_quota: 50000", "cpu_period: 100000", "cpus: 0.5", "cpu_shares: 512",
		"cpuset: \"0\"", "mem_limit: 64m", "memswap_limit: 128m", "mem_reservation: 32m"} {
		_, _, err := planText(t, "services:\n  app:\n    image: debian:bookworm-slim\n    "+key+"\n")
		name, _, _ := strings.Cut(key, ":")
		if err == nil || !errors.Is(err, sandbox.ErrNotHonoured) || !strings.Contains(err.Error(), "services.app."+name) {
			t.Errorf("%s: %v, want it not honoured", key, err)
		}
	}
}

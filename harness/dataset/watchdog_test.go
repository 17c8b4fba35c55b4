package dataset

import (
	"os"
	"testing"

	"github.com/rehearse/rehearse/harness/runs"
)

// TestMain opts this test binary in to run watchdogs: its tests start
// environments, and a test killed mid-run must not leave one behind.
func TestMain(m *testing.M) {
	runs.WatchdogMain()
	os.Exit(m.Run())
}

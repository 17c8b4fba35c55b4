package snapshot

import (
	"testing"

	"github.com/rehearse/rehearse/internal/envtest"
)

// TestMain opts this test binary in to run watchdogs: its tests start
// environments.
func TestMain(m *testing.M) { envtest.Main(m) }

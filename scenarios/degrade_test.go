package scenarios

import (
	"strings"
	"testing"

	"github.com/rehearse/rehearse/internal/enginetest"
)

// Latency and bandwidth slow only the named client (a third service reaches
// the same server at full speed), restoring the network mends them, and a
// full disk fails the service's writes until it has room again; nothing of
// any of it outlives the scenario.
func TestDegradeSteps(t *testing.T) {
	enginetest.Connect(t)
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{"testdata/faults/degrade.feature"}, OutDir: out})
	if !sum.Passed() || !strings.Contains(text, "1 scenarios (1 passed)") {
		t.Errorf("the degrade scenario failed:\n%s", text)
	}
	for _, want := range []string{"fault: latency 1.5s a -> b", "healed: latency 1.5s a -> b", "fault: bandwidth 2KB/s a -> b",
		"fault: disk full b", "healed: disk full b"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	assertRunsGone(t, timelineRuns(t, out))
}

// Degrading what the scenario cannot degrade is one clear error each.
func TestDegradeStepErrors(t *testing.T) {
	enginetest.Connect(t)
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{"testdata/faults/degrade-errors.feature"}, OutDir: out})
	if sum.Passed() {
		t.Fatalf("scenarios that cannot degrade anything passed:\n%s", text)
	}
	for _, want := range []string{"service a declares no disk in", `the network between "a" and "c" is neither cut nor degraded`} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	assertRunsGone(t, timelineRuns(t, out))
}

// Package envtest starts environments for tests of the packages built on
// harness/env, and tears them down when the test ends.
package envtest

import (
	"context"
	"testing"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/internal/enginetest"
)

// Start brings a compose file up (failing under CI without an engine,
// skipping elsewhere) and registers its teardown. A test binary that calls
// it should call runs.WatchdogMain first thing in its TestMain, so that a
// test killed mid-run leaves nothing behind.
func Start(t testing.TB, file string) *env.Environment {
	t.Helper()
	cli := enginetest.Connect(t)
	plan, err := env.LoadPlan(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	e, err := env.Start(context.Background(), plan, env.WithClient(cli))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	return e
}

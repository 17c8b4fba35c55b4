// Package envtest starts environments for tests of the packages built on
// harness/env, and tears them down when the test ends.
package envtest

import (
	"context"
	"os"
	"testing"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
)

// Main opts a test binary in to run watchdogs (runs.WatchdogMain), then runs
// its tests: a test killed mid-run must not leave its environment behind.
// Call it as the whole TestMain of a package whose tests start environments.
func Main(m *testing.M) {
	runs.WatchdogMain()
	os.Exit(m.Run())
}

// Start brings a compose file up (failing under CI without an engine,
// skipping elsewhere) and registers its teardown; opts load the file (its
// variables: env.WithEnv). A test binary that calls it should have Main as
// its TestMain.
func Start(t testing.TB, file string, opts ...env.LoadOption) *env.Environment {
	t.Helper()
	cli := enginetest.Connect(t)
	plan, err := env.LoadPlan(context.Background(), file, opts...)
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

// EnsureImages makes the images of the named services of another compose
// file exist (built when missing or stale), for a test compose file that
// names those images without building them.
func EnsureImages(t testing.TB, file string, services ...string) {
	t.Helper()
	ctx := context.Background()
	plan, err := env.LoadPlan(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	var specs []image.Spec
	for _, s := range services {
		sp := plan.Service(s)
		if sp == nil {
			t.Fatalf("%s: no service %q", file, s)
		}
		specs = append(specs, sp.Image)
	}
	b, err := image.NewBuilder(enginetest.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ensure(ctx, specs...); err != nil {
		t.Fatal(err)
	}
}

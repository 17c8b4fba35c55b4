// Package features holds the bundled rehearsals; `go test ./features/...`
// runs them the way `rehearse run` does.
package features

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cucumber/godog"

	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/scenarios"
)

// ensurePackages builds the bundled upgrade packages (make packages) when
// they are missing, so go test ./... works from a fresh clone.
func ensurePackages(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join("..", "out", "packages", "billing-3.0-rehearsed.zip.p7s")); err == nil {
		return
	}
	cmd := exec.Command("go", "run", "./fixtures/billing/packages/build", "-out", "out")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the upgrade packages: %v\n%s", err, out)
	}
}

func TestFeatures(t *testing.T) {
	enginetest.Connect(t) // fails under CI without an engine, skips elsewhere
	ensurePackages(t)
	cfg := &scenarios.Config{}
	if testing.Verbose() {
		cfg.Live = os.Stderr
	}
	suite := godog.TestSuite{
		Name:                "rehearse",
		ScenarioInitializer: scenarios.Initializer(cfg),
		Options: &godog.Options{
			Format:   "pretty," + cfg.Format(), // cfg.Format: failures located at their step
			Paths:    []string{"."},
			TestingT: t,
			Strict:   true, // an undefined or pending step fails
		},
	}
	if status := suite.Run(); status != 0 {
		for _, f := range cfg.Failures() {
			t.Log(f)
		}
		t.Fatalf("godog exited %d", status)
	}
}

// Package features holds the bundled rehearsals; `go test ./features/...`
// runs them the way `rehearse run` does.
package features

import (
	"os"
	"testing"

	"github.com/cucumber/godog"

	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/scenarios"
)

func TestFeatures(t *testing.T) {
	enginetest.Connect(t) // fails under CI without an engine, skips elsewhere
	cfg := &scenarios.Config{}
	if testing.Verbose() {
		cfg.Live = os.Stderr
	}
	suite := godog.TestSuite{
		Name:                "rehearse",
		ScenarioInitializer: scenarios.Initializer(cfg),
		Options: &godog.Options{
			Format:   "pretty",
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

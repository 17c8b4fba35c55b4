package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/cucumber/godog"
)

// Failures are located through godog's pickle AST node ids: a step's line,
// a step inherited from a rule's background, and for a Scenario Outline the
// row of the example that failed (not the outline's step, which every
// example shares).
func TestFailuresAreLocatedByASTNodeIDs(t *testing.T) {
	const file = "testdata/locations/locations.feature"
	cfg := &Config{}
	var out bytes.Buffer
	suite := godog.TestSuite{
		Name: "locations",
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			Initializer(cfg)(sc)
			sc.Step(`^the number (\d+) is even$`, func(_ context.Context, n string) error {
				if v, _ := strconv.Atoi(n); v%2 != 0 {
					return fmt.Errorf("%s is odd", n)
				}
				return nil
			})
		},
		Options: &godog.Options{Format: "progress," + cfg.Format(), Paths: []string{file}, Output: &out, Strict: true, NoColors: true},
	}
	if status := suite.Run(); status == 0 {
		t.Fatalf("a suite with failing scenarios passed:\n%s", out.String())
	}
	want := []string{
		file + `:8: scenario "A plain scenario fails at its step": 5 is odd`,
		file + `:16: scenario "The second example fails": 7 is odd`,
		file + `:22: scenario "A rule's background fails": 9 is odd`,
	}
	got := cfg.Failures()
	if len(got) != len(want) {
		t.Fatalf("%d failures, want %d: %v\n%s", len(got), len(want), got, out.String())
	}
	for i, f := range got {
		if f.String() != want[i] {
			t.Errorf("failure %d:\n got %s\nwant %s", i, f, want[i])
		}
	}
}

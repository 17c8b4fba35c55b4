// Package features holds the bundled rehearsals; `go test ./features/...`
// runs them the way `rehearse run` does.
package features

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"testing"

	"github.com/rehearse/rehearse/harness/report"
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

// TestFeatures runs the bundled features as three shards, one after
// another, the way a nightly spread over three CI workers runs them, and
// checks that the shards are disjoint, together run every scenario once,
// all pass, and merge into one report that counts them all.
func TestFeatures(t *testing.T) {
	enginetest.Connect(t) // fails under CI without an engine, skips elsewhere
	ensurePackages(t)
	// From the repository root, so that the records and reproduce commands
	// name features/<file>.feature, as a run from there does.
	t.Chdir("..")
	all, err := scenarios.Select([]string{"features"}, scenarios.Shard{}, "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	var dirs []string
	for i := 1; i <= n; i++ {
		shard := scenarios.Shard{Index: i, Count: n}
		dir := filepath.Join(t.TempDir(), "shard")
		dirs = append(dirs, dir)
		var console bytes.Buffer
		o := scenarios.RunOptions{Paths: []string{"features"}, Shard: shard, OutDir: dir,
			Command: "go run ./cmd/rehearse", Stdout: &console, Stderr: io.Discard}
		if testing.Verbose() {
			o.Stdout, o.Stderr = os.Stdout, os.Stderr
		}
		sum, err := scenarios.Run(t.Context(), o)
		if err != nil {
			t.Fatalf("shard %s: %v", shard, err)
		}
		if !sum.Passed() {
			var s bytes.Buffer
			sum.WriteSummary(&s)
			t.Errorf("shard %s failed (godog exited %d):\n%s\n%s", shard, sum.GodogStatus, s.String(), console.String())
		}
	}

	ran := map[string]string{} // FEATURE:LINE -> its shard
	for _, dir := range dirs {
		r, err := report.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.Scenarios {
			if prev, dup := ran[s.Location()]; dup {
				t.Errorf("%s ran in shard %s and shard %s", s.Location(), prev, s.Shard)
			}
			ran[s.Location()] = s.Shard
		}
	}
	var want, got []string
	for _, p := range all.All {
		want = append(want, p.Key())
	}
	for loc := range ran {
		got = append(got, loc)
	}
	sort.Strings(want)
	sort.Strings(got)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("the shards ran\n%q\nwant every scenario of the features once:\n%q", got, want)
	}

	merged, err := report.Load(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range merged.Scenarios {
		if s.Status != report.StatusPassed {
			t.Errorf("%s %q: %s: %s", s.Location(), s.Name, s.Status, s.Error)
		}
	}
	out := filepath.Join(t.TempDir(), "merged")
	if err := report.Write(out, merged); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, report.JUnitFile))
	if err != nil {
		t.Fatal(err)
	}
	var junit struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Suites   []struct {
			Cases []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &junit); err != nil {
		t.Fatalf("merged JUnit: %v", err)
	}
	cases := 0
	for _, s := range junit.Suites {
		cases += len(s.Cases)
	}
	if junit.Tests != len(want) || cases != len(want) || junit.Failures != 0 || junit.Errors != 0 {
		t.Errorf("merged JUnit: %d tests, %d cases, %d failures, %d errors; want %d passing", junit.Tests, cases, junit.Failures, junit.Errors, len(want))
	}

	// The merged HTML report lists the same scenarios, each passed: one
	// index row per scenario, with its status.
	page, err := os.ReadFile(filepath.Join(out, report.HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile(`<tr class="row [^"]*" data-id="[^"]*" data-status="([a-z]+)"`).FindAllSubmatch(page, -1)
	passed := 0
	for _, m := range rows {
		if string(m[1]) == report.StatusPassed {
			passed++
		}
	}
	if len(rows) != len(want) || passed != len(want) {
		t.Errorf("merged HTML report: %d scenario rows, %d passed; want %d passing", len(rows), passed, len(want))
	}
}

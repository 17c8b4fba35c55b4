package report

import (
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/NAME, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, got)
	}
}

func loadTest(t *testing.T, dirs ...string) *Report {
	t.Helper()
	for i, d := range dirs {
		dirs[i] = filepath.Join("testdata", "runs", d)
	}
	r, err := Load(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func junitOf(t *testing.T, r *Report) (JUnitSuites, []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := JUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	var out JUnitSuites
	if err := xml.Unmarshal(b.Bytes(), &out); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, b.Bytes())
	}
	return out, b.Bytes()
}

func TestJUnit(t *testing.T) {
	got, raw := junitOf(t, loadTest(t, "single"))
	golden(t, "single.junit.xml", raw)

	// The undefined scenario is an error, as godog's own JUnit counts it.
	if got.Tests != 4 || got.Failures != 1 || got.Skipped != 0 || got.Errors != 1 || got.Time != "174.754" {
		t.Errorf("testsuites counts: tests %d failures %d skipped %d errors %d time %s", got.Tests, got.Failures, got.Skipped, got.Errors, got.Time)
	}
	if len(got.Suites) != 2 {
		t.Fatalf("%d suites, want one per feature (2)", len(got.Suites))
	}
	rollback, upgrade := got.Suites[0], got.Suites[1]
	if rollback.Name != "Roll back billing 3.0" || rollback.File != "features/rollback.feature" || rollback.Tests != 2 ||
		rollback.Skipped != 0 || rollback.Errors != 1 || rollback.Failures != 0 {
		t.Errorf("rollback suite: %+v", rollback)
	}
	if upgrade.Name != "Upgrade billing 2.3 -> 3.0" || upgrade.Tests != 2 || upgrade.Failures != 1 || upgrade.Time != "123.500" || upgrade.Timestamp != "2025-06-03T02:00:00Z" {
		t.Errorf("upgrade suite: name %q tests %d failures %d time %s timestamp %s", upgrade.Name, upgrade.Tests, upgrade.Failures, upgrade.Time, upgrade.Timestamp)
	}

	undefined := rollback.Cases[1]
	if undefined.Error == nil || undefined.Error.Message != "undefined step: When the moon is full" || undefined.Error.Type != StatusUndefined ||
		undefined.Skipped != nil || undefined.Failure != nil {
		t.Errorf("undefined scenario: error %+v skipped %+v failure %+v", undefined.Error, undefined.Skipped, undefined.Failure)
	} else if want := "step When the moon is full (features/rollback.feature:17)"; !strings.Contains(undefined.Error.Text, want) {
		t.Errorf("undefined scenario's error text lacks %q:\n%s", want, undefined.Error.Text)
	}
	if passed := rollback.Cases[0]; passed.Skipped != nil || passed.Failure != nil || passed.Name != "Rollback restores data | config" || passed.Line != 8 {
		t.Errorf("passed scenario: %+v", passed)
	}

	failed := upgrade.Cases[1]
	if failed.Name != "The package as shipped breaks invoicing" || failed.Classname != "Upgrade billing 2.3 -> 3.0" ||
		failed.File != "features/upgrade.feature" || failed.Line != 19 || failed.Time != "65.500" {
		t.Errorf("failed case attributes: %+v", failed)
	}
	if failed.Failure == nil {
		t.Fatal("failed scenario has no <failure>")
	}
	if failed.Failure.Message != `upgrade step "restart" failed: exit 1` {
		t.Errorf("failure message %q, want the error's first line", failed.Failure.Message)
	}
	body := failed.Failure.Text
	for _, want := range []string{
		`step When the upgrade package is applied to "billing" as "deploy" (features/upgrade.feature:21)`,
		"sudo: a password is required\nthe upgrade was expected to succeed",
		"--- log of billing (last lines) ---\nJun 03 02:01:52 billing systemd[1]: Stopping billing-api.service\nERROR billing.service not found | exit 5\n",
		"--- log of invoicing (last lines) ---\nGET /health 503 (query blocked 18.3s) <invoices>",
		"--- output (last lines) ---\napplying billing-3.0",
		"reproduce: rehearse run features/upgrade.feature:19 --keep-on-failure",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("failure body lacks %q:\n%s", want, body)
		}
	}
	if strings.ContainsAny(body, "\x1b\x07") {
		t.Errorf("failure body keeps terminal escapes or control characters: %q", body)
	}
	for _, want := range []string{
		"# features/upgrade.feature:19 The package as shipped breaks invoicing (failed, run r7f3a2c)",
		"tags: @nightly @invoicing",
		`  failed    When the upgrade package is applied to "billing" as "deploy" (line 21)`,
		"  25.000s  15.000s  fault       db           latency db 500ms  targets=db",
		"  26.000s  18.500s  probe       invoicing    outage  failed_samples=37",
		"  52.000s   1.100s  upgrade-step billing      restart  exit=1 user=deploy  error: exit 1",
	} {
		if !strings.Contains(failed.SystemOut.Text, want) {
			t.Errorf("system-out lacks %q:\n%s", want, failed.SystemOut.Text)
		}
	}
}

func TestJUnitMergedCountsTheSame(t *testing.T) {
	single, _ := junitOf(t, loadTest(t, "single"))
	merged, _ := junitOf(t, loadTest(t, "shard-1", "shard-2"))
	if merged.Tests != single.Tests || merged.Failures != single.Failures || merged.Skipped != single.Skipped || len(merged.Suites) != len(single.Suites) {
		t.Errorf("merged %+v, single %+v", merged, single)
	}
	for i := range single.Suites {
		if len(merged.Suites[i].Cases) != len(single.Suites[i].Cases) {
			t.Fatalf("suite %d: %d cases merged, %d in one run", i, len(merged.Suites[i].Cases), len(single.Suites[i].Cases))
		}
		for j, c := range single.Suites[i].Cases {
			m := merged.Suites[i].Cases[j]
			if m.Name != c.Name || (m.Failure == nil) != (c.Failure == nil) || (m.Skipped == nil) != (c.Skipped == nil) {
				t.Errorf("case %s: merged %+v", c.Name, m)
			}
		}
	}
}

// TestJUnitUndefinedPendingSkipped: undefined and pending scenarios are
// <error>s with the failure text (reproduce command included); skipped
// ones stay <skipped>.
func TestJUnitUndefinedPendingSkipped(t *testing.T) {
	t0 := time.Date(2025, 6, 3, 2, 0, 0, 0, time.UTC)
	sc := func(line int, status string, steps []Step, err string) Scenario {
		return Scenario{Schema: Schema, Feature: "features/x.feature", Line: line, Name: status, Status: status, Start: t0, End: t0.Add(time.Second),
			Steps: steps, Error: err, Reproduce: fmt.Sprintf("rehearse run features/x.feature:%d --keep-on-failure", line)}
	}
	r := &Report{Scenarios: []Scenario{
		sc(3, StatusUndefined, []Step{{Keyword: "Given ", Text: "nothing", Line: 4, Status: StatusUndefined}}, ""),
		sc(6, StatusPending, []Step{{Keyword: "When ", Text: "later", Line: 7, Status: StatusPending}}, ""),
		sc(9, StatusUndefined, nil, "the scenario has no steps"),
		sc(12, StatusSkipped, []Step{{Keyword: "Then ", Text: "skipped", Line: 13, Status: StatusSkipped}}, ""),
	}}
	got, _ := junitOf(t, r)
	if got.Errors != 3 || got.Skipped != 1 || got.Failures != 0 || got.Suites[0].Errors != 3 || got.Suites[0].Skipped != 1 {
		t.Errorf("counts: errors %d skipped %d failures %d; suite %+v", got.Errors, got.Skipped, got.Failures, got.Suites[0])
	}
	cases := got.Suites[0].Cases
	for i, want := range []string{"undefined step: Given nothing", "pending step: When later", "undefined: the scenario has no steps"} {
		c := cases[i]
		if c.Error == nil || c.Skipped != nil || c.Failure != nil {
			t.Errorf("case %s: error %+v skipped %+v failure %+v", c.Name, c.Error, c.Skipped, c.Failure)
			continue
		}
		if c.Error.Message != want {
			t.Errorf("case %s: message %q, want %q", c.Name, c.Error.Message, want)
		}
		if !strings.Contains(c.Error.Text, "reproduce: rehearse run features/x.feature:") {
			t.Errorf("case %s: error text lacks the reproduce command:\n%s", c.Name, c.Error.Text)
		}
	}
	if c := cases[3]; c.Skipped == nil || c.Error != nil {
		t.Errorf("skipped case: %+v", c)
	}
}

// TestJUnitFeatureFileErrors: a feature file the run could not parse is a
// testcase with an error, in a testsuite of its own.
func TestJUnitFeatureFileErrors(t *testing.T) {
	r := loadTest(t, "single")
	r.Runs[0].Errors = []string{"features/broken.feature:3: expected a step, got \x1b[31m\"Whn\"\x1b[0m", "features/gone.feature: permission denied"}
	got, _ := junitOf(t, r)
	if got.Tests != 6 || got.Errors != 3 {
		t.Errorf("tests %d errors %d, want 6 and 3 (two files, one undefined scenario)", got.Tests, got.Errors)
	}
	files := got.Suites[0]
	if files.Name != "feature files" || files.Tests != 2 || files.Errors != 2 || len(files.Cases) != 2 {
		t.Fatalf("first suite: %+v", files)
	}
	c := files.Cases[0]
	if c.Error == nil || c.Error.Message != `features/broken.feature:3: expected a step, got "Whn"` || !strings.Contains(c.Error.Text, "features/broken.feature:3") {
		t.Errorf("case %+v error %+v", c, c.Error)
	}
	// Named and placed by the file (and line), the message in the error.
	if c.Name != "features/broken.feature:3" || c.Classname != "feature files" || c.File != "features/broken.feature" || c.Line != 3 {
		t.Errorf("case name %q classname %q file %q line %d", c.Name, c.Classname, c.File, c.Line)
	}
	if c := files.Cases[1]; c.Name != "features/gone.feature" || c.File != "features/gone.feature" || c.Line != 0 || c.Error.Message != "features/gone.feature: permission denied" {
		t.Errorf("second case %+v error %+v", c, c.Error)
	}
	// No empty file or zero line in the XML: two files, so no suite file.
	_, raw := junitOf(t, r)
	suite := raw[bytes.Index(raw, []byte(`<testsuite name="feature files"`)):]
	suite = suite[:bytes.Index(suite, []byte("</testsuite>"))]
	if bytes.Contains(suite, []byte(`file=""`)) || bytes.Contains(suite, []byte(`line="0"`)) {
		t.Errorf("the feature files suite has an empty file or line 0:\n%s", suite)
	}

	// One file: the suite names it; a message that names no file is its
	// own name.
	for _, tt := range []struct{ in, file, name string }{
		{"features/a.feature:12: gherkin syntax error: expected a step", "features/a.feature", "features/a.feature:12"},
		{"features/b.feature: larger than 8 MiB, not a feature file", "features/b.feature", "features/b.feature"},
		{"dir/x:y.feature:7: bad", "dir/x:y.feature", "dir/x:y.feature:7"},
		{"no file here", "", "no file here"},
	} {
		r.Runs[0].Errors = []string{tt.in}
		got, _ := junitOf(t, r)
		s := got.Suites[0]
		if s.File != tt.file || s.Cases[0].File != tt.file || s.Cases[0].Name != tt.name || s.Cases[0].Error.Text != tt.in+"\n" {
			t.Errorf("%q: suite file %q, case %+v, want file %q name %q", tt.in, s.File, s.Cases[0], tt.file, tt.name)
		}
	}
}

// TestJUnitOutlineRows: an outline's rows share a name; each testcase
// still has its own.
func TestJUnitOutlineRows(t *testing.T) {
	r := &Report{}
	for _, line := range []int{20, 21, 22} {
		r.Scenarios = append(r.Scenarios, Scenario{Schema: Schema, Feature: "features/o.feature", Line: line, Name: "rows", Status: StatusPassed})
	}
	r.Scenarios = append(r.Scenarios, Scenario{Schema: Schema, Feature: "features/o.feature", Line: 30, Name: "alone", Status: StatusPassed})
	got, _ := junitOf(t, r)
	var names []string
	for _, c := range got.Suites[0].Cases {
		names = append(names, c.Name)
	}
	if want := []string{"rows (line 20)", "rows (line 21)", "rows (line 22)", "alone"}; strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("names %q, want %q", names, want)
	}
}

// TestJUnitInvalidCharacters: what XML 1.0 cannot hold is dropped, and the
// file still parses.
func TestJUnitInvalidCharacters(t *testing.T) {
	t0 := time.Date(2025, 6, 3, 2, 0, 0, 0, time.UTC)
	r := &Report{Scenarios: []Scenario{{
		Schema: Schema, Feature: "features/x.feature", FeatureName: "X\x00", Line: 3, Name: "nul\x00 bell\x07 esc\x1b[1mbold\x1b[0m \ufffe",
		Status: StatusFailed, Start: t0, End: t0.Add(time.Second),
		Error: "boom\x01\nsecond line ]]> </failure>",
		Logs:  []LogTail{{Service: "db", Text: "bad utf-8 \xff\xfe here\x0b"}},
	}}}
	got, raw := junitOf(t, r)
	c := got.Suites[0].Cases[0]
	if c.Name != "nul bell escbold " {
		t.Errorf("name %q", c.Name)
	}
	if got.Suites[0].Name != "X" {
		t.Errorf("suite name %q", got.Suites[0].Name)
	}
	if c.Failure.Message != "boom" || !strings.Contains(c.Failure.Text, "second line ]]> </failure>") || !strings.Contains(c.Failure.Text, "bad utf-8 \ufffd here\n") {
		t.Errorf("failure %+v", c.Failure)
	}
	if bytes.ContainsAny(raw, "\x00\x01\x07\x0b\x1b") {
		t.Errorf("raw XML holds control characters:\n%q", raw)
	}
}

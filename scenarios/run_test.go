package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rehearse/rehearse/harness/report"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/internal/enginetest"
)

func run(t *testing.T, o RunOptions) (Summary, string) {
	t.Helper()
	var out, errs bytes.Buffer
	o.Stdout, o.Stderr = &out, &errs
	sum, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var s bytes.Buffer
	sum.WriteSummary(&s)
	return sum, out.String() + errs.String() + s.String()
}

// assertRunsGone fails unless the scenarios' runs left nothing behind; it
// needs at least one run to check.
func assertRunsGone(t *testing.T, runIDs []string) {
	t.Helper()
	if len(runIDs) == 0 {
		t.Fatal("no run ids found in the timelines: nothing to check")
	}
	cli := enginetest.Connect(t)
	for _, id := range runIDs {
		enginetest.AssertGone(t, cli, id, 0)
	}
}

var runIDRE = regexp.MustCompile(`\(run (r[0-9a-f]+)\)`)

func timelineRuns(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "timelines", "*.txt"))
	var ids []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := runIDRE.FindStringSubmatch(string(data)); m != nil {
			ids = append(ids, m[1])
		}
	}
	return ids
}

func TestRunBrokenFeatures(t *testing.T) {
	enginetest.Connect(t)
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{"testdata/bad", "testdata/good"}, OutDir: out})
	if sum.Passed() {
		t.Fatalf("a run with broken features passed:\n%s", text)
	}
	if len(sum.FeatureErrors) != 1 || !strings.Contains(sum.FeatureErrors[0].Err.Error(), "testdata/bad/syntax.feature:5:") {
		t.Errorf("syntax error not located at testdata/bad/syntax.feature:5: %v", sum.FeatureErrors)
	}
	want := map[string]string{ // scenario -> file:line and words of the message
		"An undefined step":                  "testdata/bad/steps.feature:5: scenario \"An undefined step\": undefined step",
		"A compose file that does not exist": "testdata/bad/steps.feature:8: scenario \"A compose file that does not exist\": compose file \"no-such/compose.yaml\" not found",
		"A dataset that does not exist":      "testdata/bad/steps.feature:12: scenario \"A dataset that does not exist\": dataset not found: \"no-such-dataset\"",
	}
	if len(sum.Failures) != len(want) {
		t.Errorf("failures: %v", sum.Failures)
	}
	for _, f := range sum.Failures {
		if w, ok := want[f.Scenario]; !ok || !strings.HasPrefix(f.String(), w) {
			t.Errorf("failure %q\nwant prefix %q", f.String(), w)
		}
	}
	if !strings.Contains(text, "5 scenarios (2 passed, 2 failed, 1 undefined)") {
		t.Errorf("want the two good scenarios passed and the three broken ones not:\n%s", text)
	}
	for _, s := range []string{"A scenario after the broken ones still runs", "Commands run in the sandbox"} {
		for _, f := range sum.Failures {
			if f.Scenario == s {
				t.Errorf("%q failed: %s", s, f.Err)
			}
		}
	}
	assertRunsGone(t, timelineRuns(t, out))
}

func TestRunTags(t *testing.T) {
	sum, text := run(t, RunOptions{Paths: []string{"testdata/bad/steps.feature", "testdata/good"}, Tags: "@smoke"})
	if !sum.Passed() {
		t.Fatalf("the @smoke scenarios should pass, the broken ones should not run:\n%s", text)
	}
	if !strings.Contains(text, "2 scenarios (2 passed)") {
		t.Errorf("want exactly the two @smoke scenarios:\n%s", text)
	}
}

func TestRunJUnit(t *testing.T) {
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{"testdata/good"}, Format: "junit", OutDir: out})
	if !sum.Passed() {
		t.Fatalf("run failed:\n%s", text)
	}
	data, err := os.ReadFile(filepath.Join(out, "rehearse.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name      string    `xml:"name,attr"`
				Failure   *struct{} `xml:"failure"`
				SystemOut string    `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatalf("junit report is not XML: %v\n%s", err, data)
	}
	if suites.Tests != 1 || suites.Failures != 0 || len(suites.Suites) != 1 || len(suites.Suites[0].Cases) != 1 ||
		suites.Suites[0].Cases[0].Failure != nil || !strings.Contains(suites.Suites[0].Cases[0].SystemOut, "passing.feature:4") {
		t.Errorf("junit report: %+v\n%s", suites, data)
	}
}

// One passing and one failing scenario in the billing world: the records
// say how each ended, the failure's carries each service's log tail and
// the command that reproduces it, and the pretty output's failure block is
// the error, each log tail under its own separator, then that command.
func TestRunRecordsAFailureInTheBillingWorld(t *testing.T) {
	enginetest.Connect(t)
	t.Setenv("CI", "true") // cleans up even with --keep-on-failure
	const file = "testdata/report/billing.feature"
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{file}, OutDir: out})
	if sum.Passed() || len(sum.Failures) != 1 {
		t.Fatalf("want one failure: %v\n%s", sum.Failures, text)
	}
	recs := readRecords(t, out)
	pass, fail := recs[file+":3"], recs[file+":9"]
	if len(recs) != 2 || pass.Status != report.StatusPassed || fail.Status != report.StatusFailed {
		t.Fatalf("records: %v", recs)
	}
	if want := []string{"passed", "passed", "failed", "skipped"}; !reflect.DeepEqual(stepStatuses(fail), want) {
		t.Errorf("steps of the failure: %v, want %v", stepStatuses(fail), want)
	}
	reproduce := "rehearse run " + file + ":9 --keep-on-failure"
	if fail.FailedLine != 12 || fail.Reproduce != reproduce || !strings.Contains(fail.Error, "command failed") ||
		!strings.Contains(fail.Error, "the check failed") || fail.Steps[2].Error != fail.Error {
		t.Errorf("failure: line %d, reproduce %q, error %q, step error %q", fail.FailedLine, fail.Reproduce, fail.Error, fail.Steps[2].Error)
	}
	var services []string
	for _, l := range fail.Logs {
		services = append(services, l.Service)
	}
	if want := []string{"billing", "db", "invoicing", "payments"}; !reflect.DeepEqual(services, want) {
		t.Errorf("log tails of %v, want %v", services, want)
	}
	for _, r := range []report.Scenario{pass, fail} {
		n := len(r.Events)
		if n == 0 || r.Events[n-1].Kind != timeline.KindEnvironment || r.Events[n-1].Name != "down" || r.Events[n-1].End.IsZero() {
			t.Errorf("%s: the timeline should end with the environment going down: %+v", r.Location(), r.Events)
		}
	}
	if pass.Reproduce != "" || len(pass.Logs) != 0 {
		t.Errorf("the passing scenario has reproduce %q, logs %v", pass.Reproduce, pass.Logs)
	}

	block := blockOf(t, text, reproduce)
	if first, _, _ := strings.Cut(fail.Error, "\n"); block[0] != first {
		t.Errorf("the failure block should start with the error %q:\n%s", first, strings.Join(block, "\n"))
	}
	at := 0
	for _, s := range services {
		sep := "--- " + s + ": last 15 log lines ---"
		i := slices.Index(block, sep)
		if i <= at {
			t.Errorf("separator %q missing or out of order in the failure block:\n%s", sep, strings.Join(block, "\n"))
		}
		at = i
	}
	assertRunsGone(t, timelineRuns(t, out))
}

func TestRunConcurrentScenariosGetTheirOwnEnvironments(t *testing.T) {
	enginetest.Connect(t)
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{"testdata/pair"}, Concurrency: 2, OutDir: out})
	if !sum.Passed() {
		t.Fatalf("concurrent run failed:\n%s", text)
	}
	ids := timelineRuns(t, out)
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Errorf("run ids %v: want two different environments", ids)
	}
	// Output stays grouped by scenario: each scenario's steps are contiguous.
	first, second := strings.Index(text, "Scenario: First"), strings.Index(text, "Scenario: Second")
	if first < 0 || second < 0 {
		t.Fatalf("scenarios missing from output:\n%s", text)
	}
	a, b := min(first, second), max(first, second)
	if strings.Count(text[a:b], "When I run") != 1 {
		t.Errorf("scenario output interleaved:\n%s", text)
	}
	assertRunsGone(t, ids)
}

func TestRunKeepOnFailure(t *testing.T) {
	cli := enginetest.Connect(t)
	t.Setenv("CI", "")
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{"testdata/keep"}, KeepOnFailure: true, OutDir: out})
	if sum.Passed() {
		t.Fatal("failing scenario passed")
	}
	ids := timelineRuns(t, out)
	if len(ids) != 1 {
		t.Fatalf("run ids %v", ids)
	}
	t.Cleanup(func() {
		runs.Remove(context.Background(), cli, ids[0])
		enginetest.AssertGone(t, cli, ids[0], 0)
	})
	for _, want := range []string{"environment kept: run " + ids[0], "docker exec -it rehearse-" + ids[0] + "-box bash",
		"rehearse down --run-id " + ids[0], "--- box: last 15 log lines ---", "boom"} {
		if !strings.Contains(text, want) {
			t.Errorf("output does not contain %q:\n%s", want, text)
		}
	}
	if c, _, _ := enginetest.Resources(t, cli, ids[0]); c != 1 {
		t.Errorf("kept environment has %d containers, want 1", c)
	}

	// Under CI the same failure is cleaned up.
	t.Setenv("CI", "true")
	out2 := t.TempDir()
	if sum, text := run(t, RunOptions{Paths: []string{"testdata/keep"}, KeepOnFailure: true, OutDir: out2}); sum.Passed() || strings.Contains(text, "environment kept") {
		t.Errorf("under CI: passed=%v\n%s", sum.Passed(), text)
	}
	assertRunsGone(t, timelineRuns(t, out2))
}

func readRun(t *testing.T, dir string) report.Run {
	t.Helper()
	var r report.Run
	data, err := os.ReadFile(filepath.Join(dir, report.RunFile))
	if err == nil {
		err = json.Unmarshal(data, &r)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A second run into the same --out directory replaces the records of the
// first: its reports are of the second run alone. Links and other files
// there are left alone.
func TestRunReplacesAnEarlierRunsRecords(t *testing.T) {
	out := t.TempDir()
	if sum, text := run(t, RunOptions{Paths: []string{"testdata/report/cheap.feature"}, Format: "progress", OutDir: out}); sum.Passed() {
		t.Fatalf("the first run should fail:\n%s", text)
	}
	target := filepath.Join(t.TempDir(), "elsewhere.txt")
	if err := os.WriteFile(target, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(out, "timelines", "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "timelines", "notes.md"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}

	const second = "testdata/report/more.feature:3"
	sum, text := run(t, RunOptions{Paths: []string{second}, Format: "progress", OutDir: out})
	if !sum.Passed() {
		t.Fatalf("the second run should pass:\n%s", text)
	}
	r, err := report.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Scenarios) != 1 || r.Scenarios[0].Location() != second || !r.OK() {
		t.Errorf("the report of the second run has %d scenarios (ok %v): %v", len(r.Scenarios), r.OK(), r.Scenarios)
	}
	if got := readRun(t, out).Selected; !reflect.DeepEqual(got, []string{second}) {
		t.Errorf("run.json selected %v", got)
	}
	txt, _ := filepath.Glob(filepath.Join(out, "timelines", "*.txt"))
	if len(txt) != 2 { // the second run's timeline and the link
		t.Errorf("text timelines %v, want the second run's and the link", txt)
	}
	if data, err := os.ReadFile(target); err != nil || string(data) != "keep me" {
		t.Errorf("the link's target: %q, %v", data, err)
	}
	if _, err := os.Lstat(filepath.Join(out, "timelines", "link.txt")); err != nil {
		t.Errorf("the link was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "timelines", "notes.md")); err != nil {
		t.Errorf("another file was removed: %v", err)
	}
	junit, err := os.ReadFile(filepath.Join(out, report.JUnitFile))
	if err != nil || !strings.Contains(string(junit), `tests="1"`) {
		t.Errorf("rehearse.xml should count the second run's one scenario: %v\n%s", err, junit)
	}
}

// A scenario without steps runs no godog hook: it still gets its record,
// undefined, with its reproduce command, and fails the run.
func TestRunRecordsAScenarioWithoutSteps(t *testing.T) {
	const file = "testdata/report/stepless.feature"
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{file}, OutDir: out, Format: "progress"})
	if sum.Passed() {
		t.Fatalf("a run with a scenario without steps passed:\n%s", text)
	}
	want := Failure{File: file, Line: 4, Scenario: "Nothing written yet", Err: "the scenario has no steps"}
	if !reflect.DeepEqual(sum.Failures, []Failure{want}) {
		t.Errorf("failures %v, want %v", sum.Failures, want)
	}
	recs := readRecords(t, out)
	rec, ok := recs[file+":4"]
	if len(recs) != 2 || !ok {
		t.Fatalf("records %v, want two, one at line 4", recs)
	}
	runRec := readRun(t, out)
	if rec.Status != report.StatusUndefined || rec.Error != "the scenario has no steps" || rec.Name != "Nothing written yet" ||
		rec.FeatureName != "A scenario without steps" || !reflect.DeepEqual(rec.Tags, []string{"@todo"}) ||
		rec.Reproduce != "rehearse run "+file+":4 --keep-on-failure" || !rec.Start.Equal(runRec.Start) || !rec.End.Equal(runRec.Start) {
		t.Errorf("the record of the scenario without steps: %+v", rec)
	}
	r, err := report.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Counts(); c.Undefined != 1 || c.Passed != 1 {
		t.Errorf("the report counts %+v, want 1 passed, 1 undefined", c)
	}
}

// Two features with the same file name in different directories keep a
// record each.
func TestRunRecordsOfFeaturesWithTheSameName(t *testing.T) {
	out := t.TempDir()
	files := []string{"testdata/report/more.feature:3", "testdata/report/twin/more.feature:3"}
	if sum, text := run(t, RunOptions{Paths: files, OutDir: out, Format: "progress"}); !sum.Passed() {
		t.Fatalf("run failed:\n%s", text)
	}
	recs := readRecords(t, out)
	if len(recs) != 2 || recs[files[0]].Name != recs[files[1]].Name {
		t.Errorf("records %v, want one of each feature", recs)
	}
}

// Feature files that do not parse are in run.json's errors, so reports
// say the run was not whole.
func TestRunJSONNamesFeatureErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "broken.feature")
	if err := os.WriteFile(bad, []byte("Feature: broken\n  Scenario: s\n    Given the package may be applied unsigned\n  not gherkin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{bad, "testdata/report/more.feature:3"}, OutDir: out, Format: "progress"})
	if sum.Passed() || len(sum.FeatureErrors) != 1 {
		t.Fatalf("want one feature error:\n%s", text)
	}
	errs := readRun(t, out).Errors
	prefix := filepath.ToSlash(bad) + ":4: gherkin syntax error: expected:"
	if len(errs) != 1 || !strings.HasPrefix(errs[0], prefix) {
		t.Errorf("run.json errors %q, want one starting %q", errs, prefix)
	}
}

// An empty shard says so, and still leaves its run.json and reports, for
// the merge to count.
func TestRunEmptyShard(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr strings.Builder
	sum, err := Run(t.Context(), RunOptions{Paths: []string{"testdata/report/more.feature:3:6"}, Shard: Shard{Index: 5, Count: 5},
		OutDir: out, Format: "progress", Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Passed() {
		t.Errorf("an empty shard failed: %+v", sum)
	}
	if want := "shard 5/5 has no scenarios (2 scenarios over 5 shards)"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
	}
	if r := readRun(t, out); r.Shard != "5/5" || r.Total != 2 || len(r.Selected) != 0 {
		t.Errorf("run.json: %+v", r)
	}
	for _, name := range []string{report.HTMLFile, report.JUnitFile, report.MarkdownFile} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("report: %v", err)
		}
	}
}

// The Markdown summary goes to RunOptions.StepSummary, with or without an
// output directory; the library never reads $GITHUB_STEP_SUMMARY itself.
func TestRunStepSummary(t *testing.T) {
	env := filepath.Join(t.TempDir(), "env-summary.md")
	t.Setenv("GITHUB_STEP_SUMMARY", env)
	for _, out := range []string{"", t.TempDir()} {
		summary := filepath.Join(t.TempDir(), "summary.md")
		if sum, text := run(t, RunOptions{Paths: []string{"testdata/report/more.feature:3"}, OutDir: out, Format: "progress", StepSummary: summary}); !sum.Passed() {
			t.Fatalf("run failed:\n%s", text)
		}
		data, err := os.ReadFile(summary)
		if err != nil || !strings.HasPrefix(string(data), "## ") || !strings.Contains(string(data), "1 passed") {
			t.Errorf("out %q: step summary %v:\n%s", out, err, data)
		}
	}
	if _, err := os.Stat(env); err == nil {
		t.Errorf("Run wrote $GITHUB_STEP_SUMMARY")
	}
}

// WriteSummary names the report file only when it was written.
func TestWriteSummaryReportError(t *testing.T) {
	var b strings.Builder
	Summary{Report: "out/report.html", ReportErr: errors.New("disk full")}.WriteSummary(&b)
	if b.String() != "report: disk full\n" {
		t.Errorf("summary %q", b.String())
	}
}

// At --concurrency 4 godog runs scenarios on several goroutines, and the
// blocks owed for undefined steps are shared: go test -race -run Race.
// Every undefined scenario's block is printed once.
func TestRunConcurrentUndefinedStepsRace(t *testing.T) {
	const file = "testdata/report/undefined.feature"
	sum, text := run(t, RunOptions{Paths: []string{file}, Concurrency: 4})
	if sum.Passed() || len(sum.Failures) != 8 {
		t.Fatalf("want 8 undefined scenarios, got failures %v:\n%s", sum.Failures, text)
	}
	for _, line := range []int{3, 7, 10, 14, 17, 21, 24, 27} {
		want := fmt.Sprintf("    reproduce: rehearse run %s:%d --keep-on-failure\n", file, line)
		if n := strings.Count(text, want); n != 1 {
			t.Errorf("the block of %s:%d is printed %d times, want once:\n%s", file, line, n, text)
		}
	}
}

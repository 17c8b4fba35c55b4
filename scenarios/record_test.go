package scenarios

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	shfields "mvdan.cc/sh/v3/shell"

	"github.com/rehearse/rehearse/harness/report"
)

func TestScenarioStatusRanksSteps(t *testing.T) {
	const (
		P = report.StatusPassed
		F = report.StatusFailed
		S = report.StatusSkipped
		U = report.StatusUndefined
		D = report.StatusPending
	)
	tests := []struct {
		steps []string
		want  string
	}{
		{[]string{P, P}, P},
		{[]string{P, F, S}, F},
		{[]string{F, U}, F}, // the worst, as cucumber ranks them, not the last
		{[]string{U, F}, F},
		{[]string{P, U, D}, U},
		{[]string{D, U}, U},
		{[]string{S, D}, D},
		{[]string{P, S}, S},
		{[]string{P, D, S}, D},
		{[]string{S, S}, S},
		{nil, U},
	}
	for _, tt := range tests {
		var steps []report.Step
		for _, s := range tt.steps {
			steps = append(steps, report.Step{Status: s})
		}
		if got := scenarioStatus(steps); got != tt.want {
			t.Errorf("steps %v: status %q, want %q", tt.steps, got, tt.want)
		}
	}
}

func TestReproduceCommand(t *testing.T) {
	tests := []struct {
		cfg     *Config
		feature string
		want    string
	}{
		{&Config{}, "features/upgrade.feature", "rehearse run features/upgrade.feature:19 --keep-on-failure"},
		{&Config{Command: "bin/rehearse", Fresh: true}, "features/upgrade.feature", "bin/rehearse run features/upgrade.feature:19 --keep-on-failure --fresh"},
		{&Config{Command: "go run ./cmd/rehearse"}, "my features/it's.feature", `go run ./cmd/rehearse run "my features/it's.feature:19" --keep-on-failure`},
		{&Config{}, "a $HOME `x` *.feature", `rehearse run 'a $HOME ` + "`x`" + ` *.feature:19' --keep-on-failure`},
	}
	for _, tt := range tests {
		got := tt.cfg.reproduce(tt.feature, 19)
		if got != tt.want {
			t.Errorf("reproduce:\n got %s\nwant %s", got, tt.want)
		}
		// A shell splits it back into the feature:line as one argument.
		args, err := shfields.Fields(got, func(string) string { return "EXPANDED" })
		if err != nil || !slices.Contains(args, tt.feature+":19") {
			t.Errorf("%s: a shell splits it into %q (%v), want %q as one argument", got, args, err, tt.feature+":19")
		}
	}
}

// blockOf returns the failure block printed under a scenario: the lines
// from the blank line before it to its reproduce line, unindented.
func blockOf(t *testing.T, out, reproduce string) []string {
	t.Helper()
	lines := strings.Split(out, "\n")
	end := -1
	for i, l := range lines {
		if l == "    reproduce: "+reproduce {
			end = i
		}
	}
	if end < 0 {
		t.Fatalf("no line %q in the output:\n%s", "    reproduce: "+reproduce, out)
	}
	start := end
	for start > 0 && lines[start-1] != "" {
		start--
	}
	var block []string
	for _, l := range lines[start : end+1] {
		block = append(block, strings.TrimPrefix(l, "    "))
	}
	return block
}

func readRecords(t *testing.T, dir string) map[string]report.Scenario {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "timelines", "*.json"))
	recs := map[string]report.Scenario{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s report.Scenario
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if s.Schema != report.Schema {
			t.Errorf("%s: schema %q", f, s.Schema)
		}
		if want := report.RecordName(s.Feature, s.Line, s.Name) + ".json"; filepath.Base(f) != want {
			t.Errorf("%s: not named after its scenario: want %s", f, want)
		}
		if _, err := os.Stat(strings.TrimSuffix(f, ".json") + ".txt"); err != nil {
			t.Errorf("no text timeline beside %s: %v", f, err)
		}
		recs[s.Location()] = s
	}
	return recs
}

func stepStatuses(s report.Scenario) []string {
	var st []string
	for _, x := range s.Steps {
		st = append(st, x.Status)
	}
	return st
}

// A run without Docker: every scenario leaves its record, a failure's
// steps after the failing one are skipped, and the pretty output's failure
// block says the error first and the reproduce command last.
func TestRecordsAndFailureBlockWithoutEnvironment(t *testing.T) {
	const file = "testdata/report/cheap.feature"
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{file}, OutDir: out, Command: "bin/rehearse", Fresh: true, Args: []string{"rehearse", "run"}})
	if sum.Passed() || len(sum.Failures) != 1 || sum.Failures[0].Line != 9 {
		t.Fatalf("want one failure at line 9: %v\n%s", sum.Failures, text)
	}
	recs := readRecords(t, out)
	want := map[string]struct {
		status string
		steps  []string
	}{
		file + ":3":  {report.StatusPassed, []string{"passed"}},
		file + ":7":  {report.StatusFailed, []string{"passed", "failed", "skipped"}},
		file + ":18": {report.StatusPassed, []string{"passed", "passed"}},
		file + ":19": {report.StatusPassed, []string{"passed", "passed"}},
		file + ":20": {report.StatusPassed, []string{"passed", "passed"}},
	}
	if len(recs) != len(want) {
		t.Errorf("%d records, want %d: %v", len(recs), len(want), recs)
	}
	for loc, w := range want {
		r, ok := recs[loc]
		if !ok {
			t.Errorf("no record of %s", loc)
			continue
		}
		if r.Status != w.status || !reflect.DeepEqual(stepStatuses(r), w.steps) {
			t.Errorf("%s: status %s, steps %v; want %s, %v", loc, r.Status, stepStatuses(r), w.status, w.steps)
		}
		if r.FeatureName != "Steps that need no environment" || r.RunID == "" || r.Start.IsZero() || r.End.Before(r.Start) {
			t.Errorf("%s: feature name %q, run id %q, start %v, end %v", loc, r.FeatureName, r.RunID, r.Start, r.End)
		}
		if w.status == report.StatusPassed && (r.Reproduce != "" || r.Error != "") {
			t.Errorf("%s passed but has reproduce %q, error %q", loc, r.Reproduce, r.Error)
		}
	}
	failed := recs[file+":7"]
	const errText = `no environment: start one first with Given the environment "PATH"`
	reproduce := "bin/rehearse run " + file + ":7 --keep-on-failure --fresh"
	if failed.Error != errText || failed.FailedLine != 9 || failed.Reproduce != reproduce ||
		!reflect.DeepEqual(failed.Tags, []string{"@fails"}) || failed.Steps[1].Error != errText {
		t.Errorf("the failed record: %+v", failed)
	}
	var lines []int
	var keywords []string
	for _, s := range failed.Steps {
		lines, keywords = append(lines, s.Line), append(keywords, s.Keyword)
	}
	if !reflect.DeepEqual(lines, []int{8, 9, 10}) || !reflect.DeepEqual(keywords, []string{"Given ", "When ", "Then "}) {
		t.Errorf("step lines %v, keywords %q", lines, keywords)
	}
	if row := recs[file+":19"]; row.Steps[0].Text != `the upgrade entry script "two.sh"` {
		t.Errorf("the outline row's step: %q", row.Steps[0].Text)
	}

	if block := blockOf(t, text, reproduce); !reflect.DeepEqual(block, []string{errText, "reproduce: " + reproduce}) {
		t.Errorf("failure block:\n%s", strings.Join(block, "\n"))
	}

	var runRec report.Run
	data, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err == nil {
		err = json.Unmarshal(data, &runRec)
	}
	if err != nil {
		t.Fatal(err)
	}
	if runRec.Schema != report.RunSchema || runRec.Total != 5 || len(runRec.Selected) != 5 || runRec.Digest == "" || runRec.Shard != "" ||
		!reflect.DeepEqual(runRec.Args, []string{"rehearse", "run"}) || runRec.End.Before(runRec.Start) {
		t.Errorf("run.json: %+v", runRec)
	}
	for _, name := range []string{report.JUnitFile, report.MarkdownFile} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("report: %v", err)
		}
	}
}

// The progress format prints every failure block after godog's summary;
// the junit format on stdout is the JUnit of the records, with the
// reproduce command, and the console goes to stderr.
func TestFailureBlocksByFormat(t *testing.T) {
	const reproduce = "rehearse run testdata/report/cheap.feature:7 --keep-on-failure"
	_, text := run(t, RunOptions{Paths: []string{"testdata/report/cheap.feature"}, Format: "progress"})
	summary := strings.Index(text, "5 scenarios (4 passed, 1 failed)")
	block := strings.Index(text, "    reproduce: "+reproduce)
	if summary < 0 || block < summary {
		t.Errorf("progress: want the failure block after the summary:\n%s", text)
	}
	var out, errs strings.Builder
	o := RunOptions{Paths: []string{"testdata/report/cheap.feature"}, Format: "junit", Stdout: &out, Stderr: &errs}
	if _, err := Run(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal([]byte(out.String()), &suites); err != nil || suites.Tests != 5 || suites.Failures != 1 {
		t.Errorf("junit on stdout: %+v, %v; want 5 tests, 1 failure:\n%s", suites, err, out.String())
	}
	if !strings.Contains(out.String(), "reproduce: "+reproduce) {
		t.Errorf("junit on stdout: want the failure's reproduce command:\n%s", out.String())
	}
	if !strings.Contains(errs.String(), "5 scenarios (4 passed, 1 failed)") || !strings.Contains(errs.String(), "    reproduce: "+reproduce) {
		t.Errorf("junit: the console (progress, with the failure block) should go to stderr:\n%s", errs.String())
	}
}

// --format markdown prints the summary of the run on stdout, with the
// reproduce command of the failure; the console goes to stderr.
func TestRunMarkdown(t *testing.T) {
	var stdout, stderr strings.Builder
	o := RunOptions{Paths: []string{"testdata/report/cheap.feature"}, Format: "markdown", Stdout: &stdout, Stderr: &stderr}
	if _, err := Run(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	md := stdout.String()
	if !strings.HasPrefix(md, "## ") || !strings.Contains(md, "4 passed, 1 failed of 5 scenarios") ||
		!strings.Contains(md, "rehearse run testdata/report/cheap.feature:7 --keep-on-failure") {
		t.Errorf("markdown:\n%s", md)
	}
	if !strings.Contains(stderr.String(), "5 scenarios (4 passed, 1 failed)") {
		t.Errorf("the console (progress) should go to stderr:\n%s", stderr.String())
	}
}

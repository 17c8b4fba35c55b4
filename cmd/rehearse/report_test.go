package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// reportRun copies harness/report's testdata run NAME where the test may
// write.
func reportRun(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("..", "..", "harness", "report", "testdata", "runs", name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestReportMergesShards(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	d1, d2 := reportRun(t, "shard-1"), reportRun(t, "shard-2")
	out := filepath.Join(t.TempDir(), "merged")
	r := rehearse(t, "report", d1, d2, "--out", out)
	// A scenario failed: exit 1 once the reports are written.
	if r.code != exitFailure {
		t.Errorf("exit %d, want %d: %s", r.code, exitFailure, r.stderr)
	}
	if !strings.Contains(r.stderr, "4 scenarios: 2 passed, 1 failed, 1 undefined (2 shards)") || !strings.Contains(r.stderr, "html: "+filepath.Join(out, "report.html")) {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	data, err := os.ReadFile(filepath.Join(out, "rehearse.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var junit struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
	}
	if err := xml.Unmarshal(data, &junit); err != nil || junit.Tests != 4 || junit.Failures != 1 || junit.Errors != 1 {
		t.Errorf("merged JUnit: %+v %v", junit, err)
	}
	for _, f := range []string{"report.html", "summary.md", "run.json", "rehearse.json", "timelines/features-upgrade.feature-19-The-package-as-shipped-breaks-invoicing.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}

	// The merged directory renders again in place.
	if r := rehearse(t, "report", out, "--format", "junit"); r.code != exitFailure || !strings.Contains(r.stderr, "4 scenarios") {
		t.Errorf("report of the merged directory: exit %d\n%s", r.code, r.stderr)
	}
}

// TestReportRemovesStaleCucumber: merged again into the same directory
// from shards without cucumber JSON, the earlier merge's rehearse.json is
// removed, and the command says so.
func TestReportRemovesStaleCucumber(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	d1, d2 := reportRun(t, "shard-1"), reportRun(t, "shard-2")
	out := filepath.Join(t.TempDir(), "merged")
	if r := rehearse(t, "report", d1, d2, "--out", out); r.code != exitFailure {
		t.Fatalf("first merge: exit %d\n%s", r.code, r.stderr)
	}
	stale := filepath.Join(out, "rehearse.json")
	if _, err := os.Stat(stale); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(d2, "rehearse.json")); err != nil {
		t.Fatal(err)
	}
	r := rehearse(t, "report", d1, d2, "--out", out)
	if r.code != exitFailure {
		t.Errorf("second merge: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("the first merge's rehearse.json is still in the merged directory")
	}
	if !strings.Contains(r.stderr, "removed "+stale+", left by an earlier report") {
		t.Errorf("stderr does not say the stale file was removed:\n%s", r.stderr)
	}
}

func TestReportPassedExits0(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	dir := reportRun(t, "shard-1") // both of its scenarios passed
	r := rehearse(t, "report", dir)
	if r.code != exitOK {
		t.Errorf("exit %d, want 0: %s", r.code, r.stderr)
	}
	for _, f := range []string{"report.html", "rehearse.xml", "summary.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the default --out is the one DIR given: %v", err)
		}
	}
}

func TestReportMarkdownToStdout(t *testing.T) {
	summary := filepath.Join(t.TempDir(), "step-summary.md")
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	d1, d2 := reportRun(t, "shard-1"), reportRun(t, "shard-2")
	before := listDir(t, d1)
	r := rehearse(t, "report", "--format", "markdown", d1, d2)
	if r.code != exitFailure {
		t.Errorf("exit %d, want %d: %s", r.code, exitFailure, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "## ❌ rehearse: 2 passed, 1 failed, 1 undefined of 4 scenarios\n") ||
		!strings.Contains(r.stdout, "`rehearse run features/upgrade.feature:19 --keep-on-failure`") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if after := listDir(t, d1); !slices.Equal(after, before) {
		t.Errorf("markdown to stdout wrote files: %q", after)
	}
	got, err := os.ReadFile(summary)
	if err != nil || string(got) != r.stdout {
		t.Errorf("$GITHUB_STEP_SUMMARY holds %q (%v), want the Markdown printed", got, err)
	}
}

func TestReportErrors(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	d1, d2 := reportRun(t, "shard-1"), reportRun(t, "shard-2")
	if err := os.Remove(filepath.Join(d2, "timelines", "upgrade-19-The-package-as-shipped-breaks-invoicing.json")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "merged")
	r := rehearse(t, "report", d1, d2, "--out", out)
	if r.code != exitFailure || !strings.Contains(r.stderr, "shard 2/2 ("+d2+") ran features/upgrade.feature:19 but left no record of it") {
		t.Errorf("crashed shard: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused merge left an output directory")
	}

	for _, args := range [][]string{
		{"report"},
		{"report", d1, d2},
		{"report", d1, "--format", "pdf"},
		{"report", d1, "--format", ""},
	} {
		if r := rehearse(t, args...); r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d: %s", args, r.code, exitUsage, r.stderr)
		}
	}
}

// TestReportOutInsideInput: the merged report may not be written inside
// an input directory (nor hold one); nothing is written.
func TestReportOutInsideInput(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	d1, d2 := reportRun(t, "shard-1"), reportRun(t, "shard-2")
	before := listDir(t, filepath.Join(d1, "timelines"))
	for _, out := range []string{filepath.Join(d1, "timelines"), filepath.Join(d2, "merged"), filepath.Dir(d1)} {
		r := rehearse(t, "report", d1, d2, "--out", out)
		if r.code != exitFailure || !strings.Contains(r.stderr, "a directory being read") {
			t.Errorf("--out %s: exit %d\n%s", out, r.code, r.stderr)
		}
	}
	if after := listDir(t, filepath.Join(d1, "timelines")); !slices.Equal(after, before) {
		t.Errorf("files written into an input: %q", after)
	}
	if _, err := os.Stat(filepath.Join(d2, "merged")); err == nil {
		t.Error("a refused report left a directory inside an input")
	}
	// One input, in place, is fine.
	if r := rehearse(t, "report", d1, "--out", d1); r.code != exitOK {
		t.Errorf("in place: exit %d\n%s", r.code, r.stderr)
	}
}

// TestReportFeatureFileErrors: a run that could not parse a feature file
// is not green, even when every scenario passed.
func TestReportFeatureFileErrors(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	dir := reportRun(t, "shard-1") // both of its scenarios passed
	data, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), `"schema"`, `"errors": ["features/broken.feature:3: expected a step"], "schema"`, 1))
	if err := os.WriteFile(filepath.Join(dir, "run.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := rehearse(t, "report", dir)
	if r.code != exitFailure || !strings.Contains(r.stderr, "1 feature file could not be read: features/broken.feature:3: expected a step") {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
}

// TestReportInterrupted: a run.json that says the run was interrupted
// makes the report red even when every scenario it has passed or was
// skipped, and the merged run.json keeps saying so.
func TestReportInterrupted(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	d1, d2 := reportRun(t, "shard-1"), reportRun(t, "shard-2") // shard 1 passed
	data, err := os.ReadFile(filepath.Join(d1, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), `"schema"`, `"interrupted": true, "schema"`, 1))
	if err := os.WriteFile(filepath.Join(d1, "run.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := rehearse(t, "report", d1, "--format", "markdown")
	if r.code != exitFailure || !strings.Contains(r.stderr, "the run was interrupted") || !strings.HasPrefix(r.stdout, "## ❌ rehearse: 2 passed of 2 scenarios; interrupted\n") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "merged")
	if r := rehearse(t, "report", d1, d2, "--out", out); r.code != exitFailure {
		t.Errorf("merge: exit %d\n%s", r.code, r.stderr)
	}
	merged, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil || !strings.Contains(string(merged), `"interrupted": true`) {
		t.Errorf("merged run.json (%v):\n%s", err, merged)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"mvdan.cc/sh/v3/shell"

	"github.com/rehearse/rehearse/harness/report"
)

// The cheap features need no environment: their failure is a step that
// asks for one.
var (
	cheap = filepath.Join("..", "..", "scenarios", "testdata", "report", "cheap.feature")
	more  = filepath.Join("..", "..", "scenarios", "testdata", "report", "more.feature")
)

func records(t *testing.T, dir string) []report.Scenario {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "timelines", "*.json"))
	var recs []report.Scenario
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s report.Scenario
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		recs = append(recs, s)
	}
	return recs
}

// rehearse run FILE:LINE runs exactly the scenario, or outline example
// row, at that line.
func TestRunFileLine(t *testing.T) {
	tests := []struct {
		arg, want, name string
	}{
		{cheap + ":3", cheap + ":3", "An entry script is named"},
		{cheap + ":4", cheap + ":3", "An entry script is named"}, // a line inside the scenario
		{cheap + ":19", cheap + ":19", "Entry scripts by row"},   // the outline's second row
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.arg), func(t *testing.T) {
			out := t.TempDir()
			r := rehearse(t, "run", tt.arg, "--out", out)
			if r.code != exitOK {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			recs := records(t, out)
			if len(recs) != 1 || recs[0].Location() != filepath.ToSlash(tt.want) || recs[0].Name != tt.name {
				t.Errorf("records %+v, want only %s", recs, tt.want)
			}
			if !strings.Contains(r.stdout, "1 scenarios (1 passed)") {
				t.Errorf("want one scenario run:\n%s", r.stdout)
			}
			if tt.want == cheap+":19" && (!strings.Contains(r.stdout, "two.sh") || strings.Contains(r.stdout, "one.sh") || strings.Contains(r.stdout, "three.sh")) {
				t.Errorf("want the second row alone:\n%s", r.stdout)
			}
		})
	}
	if r := rehearse(t, "run", cheap+":1"); r.code == exitOK || !strings.Contains(r.stderr, "cheap.feature:1:") {
		t.Errorf("a line with no scenario: exit %d\n%s", r.code, r.stderr)
	}
	if r := rehearse(t, "run", "--shard", "4/3", cheap); r.code != exitUsage {
		t.Errorf("--shard 4/3: exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
}

var reproduceRE = regexp.MustCompile(`(?m)^\s*reproduce: (.+)$`)

// The reproduce command printed for a failure runs that scenario alone and
// fails the same way, at the same line: for a plain scenario, for an
// outline's example row, and for a feature whose path has a space and a
// quote, split as a shell splits it.
func TestReproduceCommandReproduces(t *testing.T) {
	spaced := filepath.Join(t.TempDir(), "my feature's dir", "cheap.feature")
	data, err := os.ReadFile(cheap)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(spaced), 0o755)
	}
	if err == nil {
		err = os.WriteFile(spaced, data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	r := rehearse(t, "run", cheap, more, spaced)
	if r.code != exitFailure {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitFailure, r.stdout, r.stderr)
	}
	want := map[string]string{ // reproduce command -> the failure line it must give again
		bin + " run " + filepath.ToSlash(cheap) + ":7 --keep-on-failure":    filepath.ToSlash(cheap) + `:9: scenario "A command without an environment": no environment`,
		bin + " run " + filepath.ToSlash(more) + ":16 --keep-on-failure":    filepath.ToSlash(more) + `:16: scenario "An outline row fails without an environment": no environment`,
		bin + ` run "` + filepath.ToSlash(spaced) + `:7" --keep-on-failure`: filepath.ToSlash(spaced) + `:9: scenario "A command without an environment": no environment`,
	}
	var got []string
	for _, m := range reproduceRE.FindAllStringSubmatch(r.stdout, -1) {
		got = append(got, m[1])
	}
	sort.Strings(got)
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(got, keys) {
		t.Fatalf("reproduce commands %q, want %q\n%s", got, keys, r.stdout)
	}
	for _, cmd := range got {
		if !strings.Contains(r.stderr, want[cmd]) {
			t.Errorf("the run did not fail with %q:\n%s", want[cmd], r.stderr)
		}
		args, err := shell.Fields(cmd, func(string) string { return "" })
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if args[0] != bin {
			t.Fatalf("reproduce calls %q, want the program as run, %q", args[0], bin)
		}
		again := rehearse(t, args[1:]...)
		if again.code != exitFailure || !strings.Contains(again.stderr, want[cmd]) || !strings.Contains(again.stdout, "1 scenarios (1 failed)") {
			t.Errorf("%s: exit %d, want one scenario failing with %q\n%s%s", cmd, again.code, want[cmd], again.stdout, again.stderr)
		}
		if !strings.Contains(again.stdout, "reproduce: "+cmd) {
			t.Errorf("%s: the rerun should print the same command:\n%s", cmd, again.stdout)
		}
	}
}

// Three shards of the cheap features are disjoint, and together are the
// unsharded run: the same scenarios with the same statuses.
func TestShardsMergeIntoTheUnshardedRun(t *testing.T) {
	statuses := func(r *report.Report) map[string]string {
		m := map[string]string{}
		for _, s := range r.Scenarios {
			m[s.Location()] = s.Status
		}
		return m
	}
	whole := t.TempDir()
	if r := rehearse(t, "run", "--format", "progress", "--out", whole, cheap, more); r.code != exitFailure {
		t.Fatalf("unsharded: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	all, err := report.Load(whole)
	if err != nil {
		t.Fatal(err)
	}
	want := statuses(all)
	if len(want) != 9 {
		t.Fatalf("the unsharded run has %d scenarios, want 9: %v", len(want), want)
	}
	var dirs []string
	seen := map[string]string{}
	for i := 1; i <= 3; i++ {
		dir := filepath.Join(t.TempDir(), "shard")
		dirs = append(dirs, dir)
		shard := []string{"1/3", "2/3", "3/3"}[i-1]
		r := rehearse(t, "run", "--shard", shard, "--format", "progress", "--out", dir, cheap, more)
		if r.code != exitOK && r.code != exitFailure {
			t.Fatalf("shard %s: exit %d\n%s%s", shard, r.code, r.stdout, r.stderr)
		}
		one, err := report.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(one.Runs) != 1 || one.Runs[0].Shard != shard || one.Runs[0].Digest != all.Runs[0].Digest || one.Runs[0].Total != 9 {
			t.Errorf("shard %s: run %+v", shard, one.Runs)
		}
		for _, s := range one.Scenarios {
			if prev, dup := seen[s.Location()]; dup {
				t.Errorf("%s ran in shards %s and %s", s.Location(), prev, shard)
			}
			seen[s.Location()] = shard
			if s.Shard != shard {
				t.Errorf("%s: record says shard %q, want %q", s.Location(), s.Shard, shard)
			}
		}
	}
	merged, err := report.Load(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(merged); !reflect.DeepEqual(got, want) {
		t.Errorf("merged shards:\n%v\nwant the unsharded run:\n%v", got, want)
	}
}

// Reproduce commands call rehearse as it was run when that was a path
// that outlives the run; go run's binary is deleted when it exits.
func TestInvokedAs(t *testing.T) {
	noEnv := func(string) string { return "" }
	goRun := filepath.Join(os.TempDir(), "go-build1234", "b001", "exe", "rehearse")
	for _, tt := range []struct{ arg0, want string }{
		{"rehearse", "rehearse"},
		{"bin/rehearse", "bin/rehearse"},
		{"./rehearse", "./rehearse"},
		{"/usr/local/bin/rehearse", "/usr/local/bin/rehearse"},
		{"/opt/my tools/rehearse", "'/opt/my tools/rehearse'"},
		{goRun, "rehearse"},
		{filepath.Join(os.TempDir(), "rehearse-ci", "rehearse"), filepath.Join(os.TempDir(), "rehearse-ci", "rehearse")},
		// Go 1.24 and later: go run keeps its executable in the build cache.
		{"/root/.cache/go-build/23/230f3c9a6e1d54b3a7f0e2c1d9b8a7f6e5d4c3b2a1908f7e6d5c4b3a2918f7e6-d/rehearse", "rehearse"},
		{"/home/me/Library/Caches/go-build/ab/abcd-d/rehearse", "rehearse"},
		{"/srv/gocache/23/230f-d/rehearse", "/srv/gocache/23/230f-d/rehearse"}, // not the cache without $GOCACHE
	} {
		if got := invokedAs(tt.arg0, noEnv); got != tt.want {
			t.Errorf("invokedAs(%q) = %q, want %q", tt.arg0, got, tt.want)
		}
	}
	goCache := func(k string) string {
		if k == "GOCACHE" {
			return "/srv/gocache"
		}
		return ""
	}
	for _, tt := range []struct{ arg0, want string }{
		{"/srv/gocache/23/230f-d/rehearse", "rehearse"},
		{"/srv/gocache-old/rehearse", "/srv/gocache-old/rehearse"},
		{"/srv/rehearse", "/srv/rehearse"},
	} {
		if got := invokedAs(tt.arg0, goCache); got != tt.want {
			t.Errorf("GOCACHE=/srv/gocache: invokedAs(%q) = %q, want %q", tt.arg0, got, tt.want)
		}
	}
	env := func(k string) string {
		if k == "REHEARSE_COMMAND" {
			return "go run ./cmd/rehearse"
		}
		return ""
	}
	if got := invokedAs(goRun, env); got != "go run ./cmd/rehearse" {
		t.Errorf("with REHEARSE_COMMAND: %q", got)
	}
}

// Without --out, --format junit prints the JUnit of the run's records:
// the failure with its reproduce command; the console goes to stderr.
func TestRunJUnitOnStdout(t *testing.T) {
	r := rehearse(t, "run", "--format", "junit", cheap)
	if r.code != exitFailure {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	reproduce := "reproduce: " + bin + " run " + filepath.ToSlash(cheap) + ":7 --keep-on-failure"
	if !strings.HasPrefix(r.stdout, "<?xml") || !strings.Contains(r.stdout, reproduce) || !strings.Contains(r.stdout, `tests="5"`) {
		t.Errorf("stdout: want JUnit of 5 scenarios with %q:\n%s", reproduce, r.stdout)
	}
	if !strings.Contains(r.stderr, "5 scenarios (4 passed, 1 failed)") {
		t.Errorf("stderr: want the console:\n%s", r.stderr)
	}
}

// A tag expression with an empty term is a usage error, said before
// anything runs.
func TestRunTagsUsageError(t *testing.T) {
	for _, tags := range []string{"@a,", "@a && ", "&&"} {
		r := rehearse(t, "run", "--tags", tags, cheap)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--tags: tags "+strconv.Quote(tags)+": an empty tag") || r.stdout != "" {
			t.Errorf("--tags %q: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tags, r.code, exitUsage, r.stdout, r.stderr)
		}
	}
}

// With --out, stdout shows the console for every format and the reports
// are files; without it, junit and markdown go to stdout, the console to
// stderr.
func TestRunFormatsWithAndWithoutOut(t *testing.T) {
	const console = "5 scenarios (4 passed, 1 failed)"
	for _, format := range []string{"junit", "markdown", "cucumber"} {
		out := t.TempDir()
		r := rehearse(t, "run", "--format", format, "--out", out, cheap)
		if r.code != exitFailure || !strings.Contains(r.stdout, console) || strings.Contains(r.stdout, "<?xml") || strings.Contains(r.stdout, "## ") {
			t.Errorf("--format %s --out: exit %d, stdout should be the console alone:\n%s", format, r.code, r.stdout)
		}
		for _, name := range []string{report.HTMLFile, report.JUnitFile, report.MarkdownFile} {
			if _, err := os.Stat(filepath.Join(out, name)); err != nil {
				t.Errorf("--format %s --out: %v", format, err)
			}
		}
	}
	for format, prefix := range map[string]string{"junit": "<?xml", "markdown": "## "} {
		r := rehearse(t, "run", "--format", format, cheap)
		if r.code != exitFailure || !strings.HasPrefix(r.stdout, prefix) || !strings.Contains(r.stderr, console) {
			t.Errorf("--format %s: exit %d, want the report on stdout, the console on stderr\nstdout:\n%.300s\nstderr:\n%s", format, r.code, r.stdout, r.stderr)
		}
	}
}

// rehearse run appends its Markdown summary to $GITHUB_STEP_SUMMARY, with
// or without --out.
func TestRunAppendsTheStepSummary(t *testing.T) {
	summary := filepath.Join(t.TempDir(), "step-summary.md")
	cmd := exec.Command(bin, "run", "--format", "progress", more+":3")
	cmd.Env = append(os.Environ(), "GITHUB_STEP_SUMMARY="+summary)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	data, err := os.ReadFile(summary)
	if err != nil || !strings.HasPrefix(string(data), "## ") || !strings.Contains(string(data), "1 passed") {
		t.Errorf("step summary %v:\n%s", err, data)
	}
}

package scenarios

import (
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rehearse/rehearse/harness/report"
)

// writeFiles writes name -> content under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// listFiles is every file and link under dir, slash-separated.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

const (
	cheapScenario = "testdata/report/more.feature:3"
	recordJSON    = `{"schema": "rehearse.timeline/1", "feature": "old.feature", "feature_name": "Old", "line": 4, "name": "Old one", "events": []}`
	runJSON       = `{"schema": "rehearse.run/1", "digest": "x", "selected": []}`
)

// A run into a directory whose run.json or timelines are not rehearse's
// refuses, before running anything, with one error naming the file, and
// removes nothing.
func TestClearRefusesWhatIsNotRehearses(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		link  string // this name is a link to a directory
		want  string
	}{
		{"run.json of another tool", map[string]string{"run.json": `{"name": "my build"}`, "timelines/a.json": recordJSON},
			"", "run.json is not a rehearse run record (no schema, want \"rehearse.run/1\"): choose another --out"},
		{"run.json not JSON", map[string]string{"run.json": "hello"}, "", "run.json is not a rehearse run record (not a JSON object)"},
		{"run.json of another schema", map[string]string{"run.json": `{"schema": "rehearse.timeline/1"}`}, "",
			`run.json is not a rehearse run record (schema "rehearse.timeline/1", want "rehearse.run/1")`},
		{"a timeline of another tool", map[string]string{"run.json": runJSON, "timelines/a.json": recordJSON, "timelines/b.json": `{"schema": "mine"}`},
			"", "b.json is not a rehearse timeline record (schema \"mine\", want \"rehearse.timeline/1\"): choose another --out"},
		{"timelines a link", map[string]string{"run.json": runJSON}, "timelines",
			"timelines is a symbolic link: rehearse writes its records into a directory of its own; choose another --out"},
		{"timelines a file", map[string]string{"run.json": runJSON, "timelines": "a file"}, "", "timelines is not a directory: choose another --out"},
		{"a user's reports without a run record", map[string]string{"timelines/a.json": recordJSON}, "",
			"report.html is not rehearse's (no rehearse run record, run.json, beside it): rehearse would overwrite it; choose another --out"},
		{"the cucumber file a link", map[string]string{"run.json": runJSON}, "rehearse.json",
			"rehearse.json is not a regular file (a link?): rehearse would write through it; choose another --out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			writeFiles(t, out, tt.files)
			writeFiles(t, out, map[string]string{"report.html": "mine", "summary.md": "mine"})
			if tt.link != "" {
				target := t.TempDir()
				writeFiles(t, target, map[string]string{"a.json": recordJSON, "a.txt": "# old.feature:4 Old one (run r1)\n"})
				if err := os.Symlink(target, filepath.Join(out, tt.link)); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if got := listFiles(t, target); len(got) != 2 {
						t.Errorf("the link's target changed: %v", got)
					}
				})
			}
			before := listFiles(t, out)
			var stdout, stderr strings.Builder
			_, err := Run(t.Context(), RunOptions{Paths: []string{cheapScenario}, OutDir: out, Stdout: &stdout, Stderr: &stderr})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), out) {
				t.Errorf("error %v, want one naming %s/... %q", err, out, tt.want)
			}
			if after := listFiles(t, out); strings.Join(after, " ") != strings.Join(before, " ") {
				t.Errorf("files before %v, after %v", before, after)
			}
			if stdout.Len()+stderr.Len() != 0 {
				t.Errorf("something ran:\n%s%s", stdout.String(), stderr.String())
			}
		})
	}
}

// A run replaces an earlier run's records and reports, and nothing else:
// a text file in timelines goes only when its first line names the
// scenario of the record beside it; the reports go only when run.json is
// a run record.
func TestClearRemovesOnlyRehearsesFiles(t *testing.T) {
	out := t.TempDir()
	writeFiles(t, out, map[string]string{
		"run.json":                runJSON,
		"rehearse.json":           "[]",
		"report.html":             "old",
		"rehearse.xml":            "old",
		"summary.md":              "old",
		"notes.md":                "mine",
		"timelines/old.json":      recordJSON,
		"timelines/old.txt":       "# old.feature:4 Old one (run r1)\n   0.000s ...\n",
		"timelines/mine.txt":      "# old.feature:4 Old one (run r1)\n", // no record beside it
		"timelines/other.json.gz": "x",
	})
	writeFiles(t, out, map[string]string{"timelines/x.json": recordJSON, "timelines/x.txt": "my notes on the run\n"}) // a header of its own
	sum, text := run(t, RunOptions{Paths: []string{cheapScenario}, OutDir: out, Format: "progress"})
	if !sum.Passed() {
		t.Fatalf("run failed:\n%s", text)
	}
	want := []string{"notes.md", "rehearse.xml", "report.html", "run.json", "summary.md",
		"timelines/mine.txt", "timelines/other.json.gz", "timelines/testdata-report-more.feature-3-The-package-may-go-unsigned.json", "timelines/testdata-report-more.feature-3-The-package-may-go-unsigned.txt",
		"timelines/x.txt"}
	if got := listFiles(t, out); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("files\n%v\nwant\n%v", got, want)
	}
	if data, _ := os.ReadFile(filepath.Join(out, "report.html")); string(data) == "old" {
		t.Errorf("report.html is the earlier run's")
	}

	// Without a run record, the reports beside the records are not known
	// to be rehearse's: the run refuses the directory rather than write
	// over them, and removes nothing.
	out = t.TempDir()
	writeFiles(t, out, map[string]string{"rehearse.json": "mine", "timelines/old.json": recordJSON})
	_, err := Run(t.Context(), RunOptions{Paths: []string{cheapScenario}, OutDir: out, Format: "progress", Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "rehearse.json is not rehearse's") {
		t.Errorf("a cucumber file beside no run record: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(out, "rehearse.json")); string(data) != "mine" {
		t.Errorf("rehearse.json beside no run record was changed")
	}
	if _, err := os.Stat(filepath.Join(out, "timelines", "old.json")); err != nil {
		t.Errorf("the earlier record was removed from a refused directory: %v", err)
	}
}

// The check reads no more than it needs, follows no link, and reads only
// regular files.
func TestClearReadsRecordsSafely(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"elsewhere.json": recordJSON})
	tl := filepath.Join(dir, "out", report.TimelinesDir)
	if err := os.MkdirAll(tl, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere.json"), filepath.Join(tl, "link.json")); err != nil {
		t.Fatal(err)
	}
	_, err := checkOutDir(filepath.Join(dir, "out"))
	if err == nil || !strings.Contains(err.Error(), "link.json is not a rehearse timeline record (not a regular file)") {
		t.Errorf("a link to a record: %v", err)
	}
}

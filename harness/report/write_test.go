package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// listFiles lists every file under dir, slash-separated.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

var mergedFiles = []string{
	"rehearse.json", "rehearse.xml", "report.html", "run.json", "summary.md",
	"timelines/features-rollback.feature-15-Rollback-with-an-undefined-step.json",
	"timelines/features-rollback.feature-8-Rollback-restores-data-config.json",
	"timelines/features-upgrade.feature-12-The-rehearsed-package-upgrades-with-invoicing-up.json",
	"timelines/features-upgrade.feature-19-The-package-as-shipped-breaks-invoicing.json",
}

func TestWriteMerged(t *testing.T) {
	r := loadTest(t, "shard-1", "shard-2")
	out := filepath.Join(t.TempDir(), "merged")
	if err := Write(out, r); err != nil {
		t.Fatal(err)
	}
	if got := listFiles(t, out); !slices.Equal(got, mergedFiles) {
		t.Errorf("files:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(mergedFiles, "\n"))
	}

	// The merged directory is itself input, and reads back the same.
	again, err := Load(out)
	if err != nil {
		t.Fatalf("the merged directory does not load: %v", err)
	}
	if !reflect.DeepEqual(again.Scenarios, r.Scenarios) {
		t.Error("scenarios read back differ from those written")
	}
	if len(again.Runs) != 1 {
		t.Fatalf("%d runs in the merged run.json", len(again.Runs))
	}
	run := again.Runs[0]
	wantSelected := []string{"features/rollback.feature:8", "features/upgrade.feature:12", "features/rollback.feature:15", "features/upgrade.feature:19"}
	if run.Shard != "" || run.Schema != RunSchema || run.Digest != r.Runs[0].Digest || run.Total != 4 || !slices.Equal(run.Selected, wantSelected) ||
		!run.Start.Equal(r.Runs[0].Start) || !run.End.Equal(r.Runs[1].End) {
		t.Errorf("merged run: %+v", run)
	}

	// The report files are what the renderers make of the merged report.
	for name, render := range map[string]func(*bytes.Buffer) error{
		JUnitFile:    func(b *bytes.Buffer) error { return JUnit(b, r) },
		MarkdownFile: func(b *bytes.Buffer) error { return Markdown(b, r) },
		HTMLFile:     func(b *bytes.Buffer) error { return HTML(b, r.Scenarios, HTMLOptions{Runs: r.Runs}) },
	} {
		var want bytes.Buffer
		if err := render(&want); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s is not the rendered report (%v)", name, err)
		}
	}

	// Cucumber JSON: each feature once, its scenarios from both shards in
	// line order, everything else as godog wrote it.
	data, err := os.ReadFile(filepath.Join(out, CucumberFile))
	if err != nil {
		t.Fatal(err)
	}
	var features []struct {
		URI      string `json:"uri"`
		Keyword  string `json:"keyword"`
		Elements []struct {
			Line int    `json:"line"`
			Type string `json:"type"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(data, &features); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range features {
		var lines []string
		for _, e := range f.Elements {
			lines = append(lines, e.Type+":"+strconv.Itoa(e.Line))
		}
		got = append(got, f.URI+" "+f.Keyword+" "+strings.Join(lines, ","))
	}
	want := []string{"features/rollback.feature Feature scenario:8,scenario:15", "features/upgrade.feature Feature scenario:12,scenario:19"}
	if !slices.Equal(got, want) {
		t.Errorf("cucumber features %q, want %q", got, want)
	}

	// Written again: the same merge into the same directory is fine.
	if err := Write(out, r); err != nil {
		t.Errorf("writing the same merge again: %v", err)
	}
	if got := listFiles(t, out); !slices.Equal(got, mergedFiles) {
		t.Errorf("files after writing again (temporary files left?):\n%s", strings.Join(got, "\n"))
	}
}

// TestWriteInPlace: rendering a run's own directory again rewrites the
// report files only; its records stay as they were.
func TestWriteInPlace(t *testing.T) {
	dir := copyRun(t, "single")
	before := map[string][]byte{}
	for _, f := range listFiles(t, dir) {
		before[f], _ = os.ReadFile(filepath.Join(dir, f))
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	for f, data := range before {
		if got, _ := os.ReadFile(filepath.Join(dir, f)); !bytes.Equal(got, data) {
			t.Errorf("%s was rewritten", f)
		}
	}
	var added []string
	for _, f := range listFiles(t, dir) {
		if _, ok := before[f]; !ok {
			added = append(added, f)
		}
	}
	if want := []string{"rehearse.xml", "report.html", "summary.md"}; !slices.Equal(added, want) {
		t.Errorf("added %q, want %q", added, want)
	}
}

func TestWriteFormats(t *testing.T) {
	r := loadTest(t, "single")
	out := t.TempDir()
	if err := Write(out, r, WithFormats(FormatJUnit)); err != nil {
		t.Fatal(err)
	}
	got := listFiles(t, out)
	if slices.Contains(got, HTMLFile) || slices.Contains(got, MarkdownFile) || !slices.Contains(got, JUnitFile) || !slices.Contains(got, RunFile) {
		t.Errorf("with junit only: %q", got)
	}
	if err := Write(out, r, WithFormats("pdf")); err == nil || !strings.Contains(err.Error(), `format "pdf"`) {
		t.Errorf("unknown format: %v", err)
	}
}

// TestWriteRefuses: each refusal leaves the output directory as it was.
func TestWriteRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) (out string, r *Report)
		want  []string
	}{
		{
			name: "merging into an input directory",
			setup: func(t *testing.T) (string, *Report) {
				d1, d2 := copyRun(t, "shard-1"), copyRun(t, "shard-2")
				r, err := Load(d1, d2)
				if err != nil {
					t.Fatal(err)
				}
				return d2, r
			},
			want: []string{"shard-2 is one of the directories being merged"},
		},
		{
			name: "merging into a directory inside an input",
			setup: func(t *testing.T) (string, *Report) {
				d1, d2 := copyRun(t, "shard-1"), copyRun(t, "shard-2")
				r, err := Load(d1, d2)
				if err != nil {
					t.Fatal(err)
				}
				return filepath.Join(d1, "timelines"), r
			},
			want: []string{filepath.Join("shard-1", "timelines") + " is inside ", "shard-1, a directory being read"},
		},
		{
			name: "a new directory inside the one input",
			setup: func(t *testing.T) (string, *Report) {
				d := copyRun(t, "single")
				r, err := Load(d)
				if err != nil {
					t.Fatal(err)
				}
				return filepath.Join(d, "report", "new"), r
			},
			want: []string{filepath.Join("single", "report", "new") + " is inside "},
		},
		{
			name: "inside an input through a link",
			setup: func(t *testing.T) (string, *Report) {
				d1, d2 := copyRun(t, "shard-1"), copyRun(t, "shard-2")
				link := filepath.Join(t.TempDir(), "link")
				if err := os.Symlink(d1, link); err != nil {
					t.Fatal(err)
				}
				r, err := Load(d1, d2)
				if err != nil {
					t.Fatal(err)
				}
				return filepath.Join(link, "merged"), r
			},
			want: []string{filepath.Join("link", "merged") + " is inside "},
		},
		{
			name: "holding an input",
			setup: func(t *testing.T) (string, *Report) {
				d1, d2 := copyRun(t, "shard-1"), copyRun(t, "shard-2")
				r, err := Load(d1, d2)
				if err != nil {
					t.Fatal(err)
				}
				return filepath.Dir(d1), r
			},
			want: []string{"holds ", "shard-1, a directory being read"},
		},
		{
			name: "stale timelines in the output",
			setup: func(t *testing.T) (string, *Report) {
				out := copyRun(t, "single")
				return out, loadTest(t, "shard-1")
			},
			want: []string{"timelines holds rollback-15-Rollback-with-an-undefined-step.json, which is not in this report"},
		},
		{
			name: "cucumber JSON not an array",
			setup: func(t *testing.T) (string, *Report) {
				d1, d2 := copyRun(t, "shard-1"), copyRun(t, "shard-2")
				if err := os.WriteFile(filepath.Join(d2, CucumberFile), []byte(`{"uri": "x"}`), 0o644); err != nil {
					t.Fatal(err)
				}
				r, err := Load(d1, d2)
				if err != nil {
					t.Fatal(err)
				}
				return filepath.Join(t.TempDir(), "out"), r
			},
			want: []string{filepath.Join("shard-2", CucumberFile), "not cucumber JSON (an array of features)"},
		},
		{
			name: "symlinked cucumber JSON",
			setup: func(t *testing.T) (string, *Report) {
				d1 := copyRun(t, "shard-1")
				p := filepath.Join(d1, CucumberFile)
				outside := filepath.Join(t.TempDir(), "elsewhere.json")
				os.Rename(p, outside)
				if err := os.Symlink(outside, p); err != nil {
					t.Fatal(err)
				}
				r, err := Load(d1, copyRun(t, "shard-2"))
				if err != nil {
					t.Fatal(err)
				}
				return filepath.Join(t.TempDir(), "out"), r
			},
			want: []string{filepath.Join("shard-1", CucumberFile), "symbolic link: refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, r := tt.setup(t)
			var before []string
			if _, err := os.Stat(out); err == nil {
				before = listFiles(t, out)
			}
			err := Write(out, r)
			if err == nil {
				t.Fatal("written, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if _, statErr := os.Stat(out); statErr == nil {
				if after := listFiles(t, out); !slices.Equal(after, before) {
					t.Errorf("files changed: %q, were %q", after, before)
				}
			} else if before != nil {
				t.Errorf("output gone: %v", statErr)
			}
		})
	}
}

// TestWriteMergedErrors: the merged run.json keeps every shard's errors,
// once each, so the merged report is as red as its shards.
func TestWriteMergedErrors(t *testing.T) {
	d1, d2 := copyRun(t, "shard-1"), copyRun(t, "shard-2")
	editJSON(t, filepath.Join(d1, RunFile), func(m map[string]any) {
		m["errors"] = []string{"features/a.feature: bad", "features/b.feature:2: worse"}
	})
	editJSON(t, filepath.Join(d2, RunFile), func(m map[string]any) { m["errors"] = []string{"features/b.feature:2: worse"} })
	r, err := Load(d1, d2)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "merged")
	if err := Write(out, r, WithFormats(FormatJUnit)); err != nil {
		t.Fatal(err)
	}
	back, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"features/a.feature: bad", "features/b.feature:2: worse"}; !slices.Equal(back.Errors(), want) || len(back.Runs) != 1 || !slices.Equal(back.Runs[0].Errors, want) {
		t.Errorf("merged errors %q (runs %+v), want %q", back.Errors(), back.Runs, want)
	}
	if back.OK() || back.Counts().Errors != 2 {
		t.Errorf("merged report OK %v, counts %+v", back.OK(), back.Counts())
	}
}

// TestWriteWithoutCucumber: when one directory has no cucumber JSON the
// merge has none, rather than a part of one.
func TestWriteWithoutCucumber(t *testing.T) {
	d1, d2 := copyRun(t, "shard-1"), copyRun(t, "shard-2")
	if err := os.Remove(filepath.Join(d1, CucumberFile)); err != nil {
		t.Fatal(err)
	}
	r, err := Load(d1, d2)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := Write(out, r); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(listFiles(t, out), CucumberFile) {
		t.Error("a partial cucumber JSON was written")
	}

	// An earlier merge's rehearse.json in the output directory is removed,
	// and said so: it would pass for this report's.
	stale := filepath.Join(out, CucumberFile)
	if err := os.WriteFile(stale, []byte("[]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var notes strings.Builder
	if err := Write(out, r, WithNotes(&notes)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stale %s is still there: %v", stale, err)
	}
	if want := "removed " + stale + ", left by an earlier report"; !strings.Contains(notes.String(), want) {
		t.Errorf("notes %q, want %q", notes.String(), want)
	}

	// Anything but a regular file there is refused, and left alone.
	target := filepath.Join(t.TempDir(), "elsewhere.json")
	if err := os.WriteFile(target, []byte("[]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, stale); err != nil {
		t.Fatal(err)
	}
	if err := Write(out, r); err == nil || !strings.Contains(err.Error(), stale+" is not a regular file") {
		t.Errorf("a link for rehearse.json: %v", err)
	}
	if _, err := os.Lstat(stale); err != nil {
		t.Errorf("the link was removed: %v", err)
	}

	// An input directory's own rehearse.json is never touched.
	r1, err := Load(d2)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(d2, r1, WithFormats(FormatJUnit)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d2, CucumberFile)); err != nil {
		t.Errorf("the input's own rehearse.json: %v", err)
	}
}

// TestWriteNamesCollide: two features with the same file name in two
// directories keep a timeline each.
func TestWriteNamesCollide(t *testing.T) {
	r := loadTest(t, "single")
	twin := r.Scenarios[0]
	twin.Feature = "features/more/" + filepath.Base(twin.Feature)
	r2 := &Report{Scenarios: []Scenario{r.Scenarios[0], twin}}
	out := t.TempDir()
	if err := Write(out, r2, WithFormats(FormatJUnit)); err != nil {
		t.Fatal(err)
	}
	back, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Scenarios) != 2 {
		t.Errorf("%d scenarios read back, want 2: %q", len(back.Scenarios), listFiles(t, out))
	}
}

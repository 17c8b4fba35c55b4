package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
)

// copyRun copies testdata/runs/NAME into a fresh directory named NAME, so
// a test may change it.
func copyRun(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("testdata", "runs", name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

// editJSON changes one JSON object file in place.
func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func locations(r *Report) []string {
	var out []string
	for _, s := range r.Scenarios {
		out = append(out, s.Location()+" "+s.Status)
	}
	return out
}

var wantScenarios = []string{
	"features/rollback.feature:8 passed",
	"features/rollback.feature:15 undefined",
	"features/upgrade.feature:12 passed",
	"features/upgrade.feature:19 failed",
}

func TestLoadSingle(t *testing.T) {
	r, err := Load(filepath.Join("testdata", "runs", "single"))
	if err != nil {
		t.Fatal(err)
	}
	if got := locations(r); !slices.Equal(got, wantScenarios) {
		t.Errorf("scenarios (sorted by feature, then line):\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantScenarios, "\n"))
	}
	if want := (Counts{Total: 4, Passed: 2, Failed: 1, Undefined: 1}); r.Counts() != want {
		t.Errorf("counts %+v, want %+v", r.Counts(), want)
	}
	if r.OK() {
		t.Error("OK with a failed scenario")
	}
	if len(r.Runs) != 1 || r.Runs[0].Total != 4 || r.Shards() != 0 {
		t.Errorf("runs %+v, shards %d", r.Runs, r.Shards())
	}
	if want := 3*time.Minute + 15*time.Second; r.Wall() != want {
		t.Errorf("wall %v, want %v (run.json's start to end)", r.Wall(), want)
	}
	// 58s + 65.5s + 51.25s + 4ms.
	if want := 174*time.Second + 754*time.Millisecond; r.Duration() != want {
		t.Errorf("duration %v, want %v", r.Duration(), want)
	}
	failed := r.Scenarios[3]
	if len(failed.Logs) != 2 || failed.Reproduce == "" || len(failed.Events) != 14 {
		t.Errorf("failed scenario not read whole: %+v", failed)
	}
}

func TestLoadWithoutRunJSON(t *testing.T) {
	dir := copyRun(t, "single")
	if err := os.Remove(filepath.Join(dir, RunFile)); err != nil {
		t.Fatal(err)
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatalf("one directory without run.json (older output) must load: %v", err)
	}
	if len(r.Runs) != 0 || len(r.Scenarios) != 4 || r.Wall() != 3*time.Minute+2*time.Second+4*time.Millisecond {
		t.Errorf("runs %d, scenarios %d, wall %v", len(r.Runs), len(r.Scenarios), r.Wall())
	}
}

func TestLoadMergesShards(t *testing.T) {
	r, err := Load(filepath.Join("testdata", "runs", "shard-2"), filepath.Join("testdata", "runs", "shard-1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := locations(r); !slices.Equal(got, wantScenarios) {
		t.Errorf("merged scenarios:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantScenarios, "\n"))
	}
	if r.Shards() != 2 || len(r.Runs) != 2 || r.Runs[0].Shard != "1/2" || r.Runs[1].Shard != "2/2" {
		t.Errorf("shards %d, runs %+v", r.Shards(), r.Runs)
	}
	// Side by side: from the first start (shard 1) to the last end (shard 2).
	if want := 3*time.Minute + 6*time.Second; r.Wall() != want {
		t.Errorf("wall %v, want %v", r.Wall(), want)
	}
}

// TestLoadRefuses: each case breaks a copy of two shards (or one run) and
// checks the one error names what is wrong and where.
func TestLoadRefuses(t *testing.T) {
	run := func(dir string) string { return filepath.Join(dir, RunFile) }
	timeline := func(dir, prefix string) string {
		m, err := filepath.Glob(filepath.Join(dir, TimelinesDir, prefix+"*.json"))
		if err != nil || len(m) != 1 {
			t.Fatalf("timeline %s in %s: %v %v", prefix, dir, m, err)
		}
		return m[0]
	}
	setRun := func(key string, v any) func(string) {
		return func(dir string) { editJSON(t, run(dir), func(m map[string]any) { m[key] = v }) }
	}
	tests := []struct {
		name   string
		single bool             // one run, not two shards
		break1 func(dir string) // changes shard 1 (or the single run)
		break2 func(dir string) // changes shard 2
		want   func(d1, d2 string) []string
	}{
		{
			name: "scenario in two directories",
			break2: func(d2 string) {
				data, _ := os.ReadFile(filepath.Join("testdata", "runs", "shard-1", TimelinesDir, "upgrade-12-The-rehearsed-package-upgrades-with-invoicing-up.json"))
				os.WriteFile(filepath.Join(d2, TimelinesDir, "upgrade-12-again.json"), data, 0o644)
			},
			want: func(d1, d2 string) []string {
				return []string{"features/upgrade.feature:12 is in both",
					filepath.Join(d1, TimelinesDir, "upgrade-12-The-rehearsed-package-upgrades-with-invoicing-up.json"),
					filepath.Join(d2, TimelinesDir, "upgrade-12-again.json")}
			},
		},
		{
			name:   "shard missing",
			break1: setRun("shard", "1/3"),
			break2: setRun("shard", "3/3"),
			want: func(d1, d2 string) []string {
				return []string{"shard 2/3 missing", d1 + " is 1/3", d2 + " is 3/3"}
			},
		},
		{
			name:   "shard twice",
			break2: setRun("shard", "1/2"),
			want: func(d1, d2 string) []string {
				return []string{d1 + " and " + d2 + " are both shard 1/2"}
			},
		},
		{
			name:   "different shard counts",
			break2: setRun("shard", "2/3"),
			want: func(d1, d2 string) []string {
				return []string{d1 + " is shard 1/2 but " + d2 + " is shard 2/3"}
			},
		},
		{
			name:   "digest mismatch",
			break2: setRun("digest", "0000000000000000000000000000000000000000000000000000000000000000"),
			want: func(d1, d2 string) []string {
				return []string{d1, d2, "different sets of scenarios", "14f78539df90", "000000000000"}
			},
		},
		{
			name:   "tags differ",
			break2: setRun("tags", "@smoke"),
			want: func(d1, d2 string) []string {
				return []string{d2 + ` ran --tags "@smoke"`}
			},
		},
		{
			name:   "sharded and unsharded",
			break2: setRun("shard", ""),
			want: func(d1, d2 string) []string {
				return []string{d1 + " is shard 1/2 but " + d2 + " is not a shard"}
			},
		},
		{
			name:   "crashed shard",
			break2: func(d2 string) { os.Remove(timeline(d2, "upgrade-19-")) },
			want: func(d1, d2 string) []string {
				return []string{"shard 2/2 (" + d2 + ") ran features/upgrade.feature:19 but left no record of it: it was interrupted, or its record was removed"}
			},
		},
		{
			name: "crashed tagged shard",
			break1: func(d1 string) {
				setRun("tags", "@nightly")(d1)
			},
			break2: func(d2 string) {
				setRun("tags", "@nightly")(d2)
				os.Remove(timeline(d2, "upgrade-19-"))
			},
			want: func(d1, d2 string) []string {
				return []string{"shard 2/2 (" + d2 + ") ran features/upgrade.feature:19 but left no record of it"}
			},
		},
		{
			name:   "record not selected",
			single: true,
			break1: func(d string) {
				p := filepath.Join(d, TimelinesDir, "stale.json")
				data, _ := os.ReadFile(timeline(d, "rollback-8-"))
				os.WriteFile(p, data, 0o644)
				editJSON(t, p, func(m map[string]any) { m["line"] = 99 })
			},
			want: func(d, _ string) []string {
				return []string{filepath.Join(d, TimelinesDir, "stale.json") + ": features/rollback.feature:99 is not among the scenarios run.json says this run selected: a record from an earlier run?"}
			},
		},
		{
			name: "record not selected, tagged shard",
			break1: func(d1 string) {
				setRun("tags", "@nightly")(d1)
				setRun("selected", []string{"features/upgrade.feature:12"})(d1)
			},
			break2: setRun("tags", "@nightly"),
			want: func(d1, d2 string) []string {
				return []string{filepath.Join(d1, TimelinesDir), "features/rollback.feature:8 is not among the scenarios run.json says this run selected"}
			},
		},
		{
			name:   "ends before it starts",
			single: true,
			break1: func(d string) {
				editJSON(t, timeline(d, "rollback-8-"), func(m map[string]any) { m["end"] = "2025-06-03T01:00:00Z" })
			},
			want: func(d, _ string) []string {
				return []string{timeline(d, "rollback-8-"), "features/rollback.feature:8: ends (2025-06-03T01:00:00Z) before it starts (2025-06-03T02:02:10Z)"}
			},
		},
		{
			name:   "spans the calendar",
			single: true,
			break1: func(d string) {
				editJSON(t, timeline(d, "rollback-8-"), func(m map[string]any) {
					m["start"], m["end"] = "0001-01-01T00:00:01Z", "9999-12-31T23:59:59Z"
				})
			},
			want: func(d, _ string) []string {
				return []string{timeline(d, "rollback-8-"), "runs from 0001-01-01T00:00:01Z to 9999-12-31T23:59:59Z, longer than the 7 days a scenario may take"}
			},
		},
		{
			name:   "run ends before it starts",
			break2: setRun("end", "2025-06-03T01:00:00Z"),
			want: func(_, d2 string) []string {
				return []string{run(d2), "the run ends (2025-06-03T01:00:00Z) before it starts (2025-06-03T01:59:59Z)"}
			},
		},
		{
			name:   "run spans the calendar",
			single: true,
			break1: func(d string) {
				setRun("start", "0001-01-01T00:00:01Z")(d)
				setRun("end", "9999-12-31T23:59:59Z")(d)
			},
			want: func(d, _ string) []string {
				return []string{run(d), "the run goes from 0001-01-01T00:00:01Z to 9999-12-31T23:59:59Z, longer than the 7 days a run may take"}
			},
		},
		{
			name:   "run start without end",
			single: true,
			break1: func(d string) { editJSON(t, run(d), func(m map[string]any) { delete(m, "end") }) },
			want: func(d, _ string) []string {
				return []string{run(d), "end none: one without the other"}
			},
		},
		{
			// Each shard within bounds, but years apart: the wall time
			// would read 2562047h47m.
			name: "shards years apart",
			break2: func(d2 string) {
				setRun("start", "2035-06-03T02:00:01Z")(d2)
				setRun("end", "2035-06-03T02:04:00Z")(d2)
			},
			want: func(d1, d2 string) []string {
				return []string{run(d2) + " ends at 2035-06-03T02:04:00Z", "starts at 2025-06-03", "more than the 7 days the runs and scenarios of one report may span"}
			},
		},
		{
			name:   "event far from its scenario",
			single: true,
			break1: func(d string) {
				editJSON(t, timeline(d, "rollback-8-"), func(m map[string]any) {
					ev := m["events"].([]any)[0].(map[string]any)
					ev["start"], ev["end"] = "0001-01-01T00:00:00.5Z", "0001-01-01T00:00:01Z"
				})
			},
			want: func(d, _ string) []string {
				return []string{timeline(d, "rollback-8-"), "features/rollback.feature:8: event 1 (", "from 0001-01-01T00:00:00.5Z to 0001-01-01T00:00:01Z: more than the 7 days from the scenario's start (2025-06-03T02:02:10Z) an event may lie"}
			},
		},
		{
			name:   "start without end",
			single: true,
			break1: func(d string) {
				editJSON(t, timeline(d, "rollback-8-"), func(m map[string]any) { delete(m, "end") })
			},
			want: func(d, _ string) []string {
				return []string{timeline(d, "rollback-8-"), "start 2025-06-03T02:02:10Z, end none: one without the other"}
			},
		},
		{
			name:   "crashed single run",
			single: true,
			break1: func(d string) {
				os.Remove(timeline(d, "upgrade-19-"))
				os.Remove(timeline(d, "rollback-8-"))
			},
			want: func(d, _ string) []string {
				return []string{d + " ran features/rollback.feature:8 and features/upgrade.feature:19 but left no record of them: it was interrupted, or their records were removed"}
			},
		},
		{
			name:   "no run.json to merge",
			break2: func(d2 string) { os.Remove(run(d2)) },
			want: func(d1, d2 string) []string {
				return []string{d2 + " has no run.json"}
			},
		},
		{
			name: "timeline schema",
			break2: func(d2 string) {
				editJSON(t, timeline(d2, "upgrade-19-"), func(m map[string]any) { m["schema"] = "rehearse.timeline/2" })
			},
			want: func(d1, d2 string) []string {
				return []string{timeline(d2, "upgrade-19-"), `schema "rehearse.timeline/2", want "rehearse.timeline/1"`}
			},
		},
		{
			name:   "timeline without schema",
			single: true,
			break1: func(d string) {
				editJSON(t, timeline(d, "rollback-8-"), func(m map[string]any) { delete(m, "schema") })
			},
			want: func(d, _ string) []string {
				return []string{timeline(d, "rollback-8-"), `no schema, want "rehearse.timeline/1"`}
			},
		},
		{
			name:   "run schema",
			break1: setRun("schema", "rehearse.timeline/1"),
			want: func(d1, d2 string) []string {
				return []string{run(d1), `schema "rehearse.timeline/1", want "rehearse.run/1"`}
			},
		},
		{
			name:   "bad shard",
			break1: setRun("shard", "0/2"),
			want: func(d1, d2 string) []string {
				return []string{run(d1), `shard "0/2": want I/N with 1 <= I <= N`}
			},
		},
		{
			name:   "unknown status",
			single: true,
			break1: func(d string) {
				editJSON(t, timeline(d, "rollback-8-"), func(m map[string]any) { m["status"] = "flaky" })
			},
			want: func(d, _ string) []string {
				return []string{timeline(d, "rollback-8-"), `unknown status "flaky"`}
			},
		},
		{
			name:   "not JSON",
			single: true,
			break1: func(d string) {
				os.WriteFile(timeline(d, "rollback-8-"), []byte(`{"schema": "rehearse.timeline/1"} trailing`), 0o644)
			},
			want: func(d, _ string) []string {
				return []string{timeline(d, "rollback-8-"), "invalid character"}
			},
		},
		{
			name:   "symlinked timeline",
			single: true,
			break1: func(d string) {
				p := timeline(d, "rollback-8-")
				outside := filepath.Join(filepath.Dir(d), "outside.json")
				os.Rename(p, outside)
				if err := os.Symlink(outside, p); err != nil {
					t.Fatal(err)
				}
			},
			want: func(d, _ string) []string {
				return []string{filepath.Join(d, TimelinesDir, "rollback-8-Rollback-restores-data-config.json"), "symbolic link: refused"}
			},
		},
		{
			name:   "symlinked timelines directory",
			single: true,
			break1: func(d string) {
				outside := filepath.Join(filepath.Dir(d), "elsewhere")
				os.Rename(filepath.Join(d, TimelinesDir), outside)
				if err := os.Symlink(outside, filepath.Join(d, TimelinesDir)); err != nil {
					t.Fatal(err)
				}
			},
			want: func(d, _ string) []string {
				return []string{filepath.Join(d, TimelinesDir) + " is a symbolic link: refused"}
			},
		},
		{
			name:   "symlinked run.json",
			single: true,
			break1: func(d string) {
				outside := filepath.Join(filepath.Dir(d), "run.json")
				os.Rename(run(d), outside)
				if err := os.Symlink(outside, run(d)); err != nil {
					t.Fatal(err)
				}
			},
			want: func(d, _ string) []string { return []string{run(d), "symbolic link: refused"} },
		},
		{
			name:   "fifo",
			single: true,
			break1: func(d string) {
				if err := syscall.Mkfifo(filepath.Join(d, TimelinesDir, "fifo.json"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: func(d, _ string) []string {
				return []string{filepath.Join(d, TimelinesDir, "fifo.json"), "not a regular file"}
			},
		},
		{
			name:   "too large",
			single: true,
			break1: func(d string) {
				// Sparse: the size is checked before a byte is read.
				if err := os.Truncate(timeline(d, "rollback-8-"), MaxRecordSize+1); err != nil {
					t.Fatal(err)
				}
			},
			want: func(d, _ string) []string {
				return []string{timeline(d, "rollback-8-"), "more than the 64 MiB a record may have"}
			},
		},
		{
			name:   "not an output directory",
			single: true,
			break1: func(d string) {
				os.RemoveAll(filepath.Join(d, TimelinesDir))
				os.Remove(run(d))
			},
			want: func(d, _ string) []string {
				return []string{d + " has neither run.json nor timelines/"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dirs []string
			if tt.single {
				dirs = []string{copyRun(t, "single")}
			} else {
				dirs = []string{copyRun(t, "shard-1"), copyRun(t, "shard-2")}
			}
			if tt.break1 != nil {
				tt.break1(dirs[0])
			}
			if tt.break2 != nil {
				tt.break2(dirs[1])
			}
			var want []string
			if tt.single {
				want = tt.want(dirs[0], "")
			} else {
				want = tt.want(dirs[0], dirs[1])
			}
			r, err := Load(dirs...)
			if err == nil {
				t.Fatalf("loaded %d scenarios, want an error", len(r.Scenarios))
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is more than one line: %q", err)
			}
		})
	}
}

// TestLoadTagFilteredShard: a run's selection is what it ran, tags
// applied, so tagged shards whose records match it load.
func TestLoadTagFilteredShard(t *testing.T) {
	d1, d2 := copyRun(t, "shard-1"), copyRun(t, "shard-2")
	for _, d := range []string{d1, d2} {
		editJSON(t, filepath.Join(d, RunFile), func(m map[string]any) { m["tags"] = "@nightly" })
	}
	if err := os.Remove(filepath.Join(d2, TimelinesDir, "rollback-15-Rollback-with-an-undefined-step.json")); err != nil {
		t.Fatal(err)
	}
	editJSON(t, filepath.Join(d2, RunFile), func(m map[string]any) {
		var keep []any
		for _, loc := range m["selected"].([]any) {
			if loc != "features/rollback.feature:15" {
				keep = append(keep, loc)
			}
		}
		m["selected"] = keep
	})
	r, err := Load(d1, d2)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Scenarios) != 3 {
		t.Errorf("%d scenarios, want 3", len(r.Scenarios))
	}
}

// TestLoadHostileTimesNoHang: a record from year 1 to 9999 is refused
// quickly, and the HTML of such a scenario (built without Load) is
// written: neither loops forever. The timeout only guards the test run.
func TestLoadHostileTimesNoHang(t *testing.T) {
	d := copyRun(t, "single")
	p := filepath.Join(d, TimelinesDir, "rollback-8-Rollback-restores-data-config.json")
	editJSON(t, p, func(m map[string]any) { m["start"], m["end"] = "0001-01-01T00:00:01Z", "9999-12-31T23:59:59Z" })
	var s Scenario
	data, _ := os.ReadFile(p)
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() {
		_, err := Load(d)
		done <- err
	}()
	go func() {
		var b strings.Builder
		done <- HTML(&b, []Scenario{s}, HTMLOptions{})
	}()
	for i := 0; i < 2; i++ {
		select {
		case err := <-done:
			if err != nil && !strings.Contains(err.Error(), "longer than the 7 days") {
				t.Errorf("unexpected error: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("Load or HTML of a record spanning years did not return")
		}
	}
	if _, err := Load(d); err == nil {
		t.Error("Load accepted a record spanning 10,000 years")
	}
}

func TestTicksBounded(t *testing.T) {
	for _, total := range []time.Duration{time.Millisecond, 90 * time.Second, MaxSpan, 1<<63 - 1} {
		got := ticks(total)
		if len(got) < 1 || len(got) > maxTicks+1 {
			t.Errorf("ticks(%v): %d ticks", total, len(got))
		}
		if got[0].X != "0.0000%" {
			t.Errorf("ticks(%v) start at %s", total, got[0].X)
		}
	}
	if got := ticks(90 * time.Second); len(got) != 10 || got[9].Label != "1m30s" {
		t.Errorf("ticks(90s): %+v", got)
	}
}

func TestCheckScenarioEvents(t *testing.T) {
	s := Scenario{Schema: Schema, Feature: "f.feature", Line: 1, Status: StatusPassed, Events: make([]timeline.Event, MaxEvents+1)}
	if err := checkScenario(s); err == nil || !strings.Contains(err.Error(), "200001 events, more than the 200000 a record may have") {
		t.Errorf("too many events: %v", err)
	}
	s.Events = s.Events[:MaxEvents]
	if err := checkScenario(s); err != nil {
		t.Errorf("%d events: %v", MaxEvents, err)
	}
}

func TestLoadBounds(t *testing.T) {
	d := copyRun(t, "single")
	l := &loader{ctx: context.Background(), limit: 1 << 10}
	if _, err := l.load([]string{d}); err == nil || !strings.Contains(err.Error(), "the records add up to more than the 1024 bytes a report may read") {
		t.Errorf("past the byte budget: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LoadContext(ctx, d); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

func TestParseShard(t *testing.T) {
	for _, tt := range []struct {
		in   string
		i, n int
		ok   bool
	}{
		{"1/1", 1, 1, true}, {"3/12", 3, 12, true}, {"999999999/999999999", 999999999, 999999999, true},
		{"", 0, 0, false}, {"0/2", 0, 0, false}, {"3/2", 0, 0, false}, {"1/2x", 0, 0, false}, {"01/2", 0, 0, false},
		{"1/02", 0, 0, false}, {"1", 0, 0, false}, {"-1/2", 0, 0, false}, {"+1/2", 0, 0, false}, {" 1/2", 0, 0, false},
		{"1/ 2", 0, 0, false}, {"1/2/3", 0, 0, false}, {"/2", 0, 0, false}, {"1/", 0, 0, false}, {"1/0", 0, 0, false},
		{"1/9999999999", 0, 0, false}, {"１/2", 0, 0, false}, {"1/1000000000", 0, 0, false}, {"1000000000/1", 0, 0, false},
		{"1/0000000001", 0, 0, false},
	} {
		i, n, err := ParseShard(tt.in)
		if (err == nil) != tt.ok || i != tt.i || n != tt.n {
			t.Errorf("ParseShard(%q) = %d, %d, %v", tt.in, i, n, err)
		}
		want := fmt.Sprintf("shard %q: want I/N with 1 <= I <= N", tt.in)
		// Too many digits is said as it is, not as I out of range.
		switch tt.in {
		case "1/9999999999", "1/1000000000":
			want = fmt.Sprintf("shard %q: N has 10 digits, more than the 9 a shard number may have", tt.in)
		case "1000000000/1":
			want = fmt.Sprintf("shard %q: I has 10 digits, more than the 9 a shard number may have", tt.in)
		}
		if err != nil && err.Error() != want {
			t.Errorf("ParseShard(%q): %v, want %q", tt.in, err, want)
		}
	}
}

func TestDigest(t *testing.T) {
	keys := []string{"b.feature:3", "a.feature:12", "a.feature:2"}
	sum := sha256.Sum256([]byte("a.feature:12\na.feature:2\nb.feature:3"))
	if got, want := Digest(keys), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Digest = %s, want %s", got, want)
	}
	if keys[0] != "b.feature:3" {
		t.Errorf("Digest sorted its argument: %q", keys)
	}
	if Digest([]string{"a:1", "b:2"}) == Digest([]string{"a:1"}) {
		t.Error("different sets, same digest")
	}
}

package scenarios

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/fault"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/internal/envtest"
)

const faultWorld = "testdata/faults/compose.yaml"

// runCapturing runs features like Run, with a test-only step that panics,
// and returns the world of every scenario as finish left it.
func runCapturing(t *testing.T, cfg *Config, paths ...string) (status int, worlds []*World, output string) {
	t.Helper()
	var mu sync.Mutex
	var out bytes.Buffer
	log := &syncWriter{w: &out}
	cfg.Live = log
	suite := godog.TestSuite{
		Name: "rehearse-test",
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			Initializer(cfg)(sc)
			sc.Step(`^the test step panics$`, func(context.Context) error { panic("the test step panics") })
			sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
				mu.Lock()
				defer mu.Unlock()
				if w := WorldFrom(ctx); w != nil {
					worlds = append(worlds, w)
				}
				return ctx, nil
			})
		},
		Options: &godog.Options{Format: "pretty," + cfg.Format(), Paths: paths, Strict: true, Output: log, NoColors: true, Concurrency: 1},
	}
	status = suite.Run()
	return status, worlds, out.String()
}

// A scenario that fails, or panics, while a service is paused and a network
// cut leaves neither behind: finish heals every fault before the
// environment is kept (so that what is kept can be looked at), and the
// pause armed for 5 minutes does not hold finish up.
func TestFaultsHealedWhateverEndsTheScenario(t *testing.T) {
	cli := enginetest.Connect(t)
	t.Setenv("CI", "")
	cfg := &Config{KeepOnFailure: true, OutDir: t.TempDir()}
	status, worlds, out := runCapturing(t, cfg, "testdata/faults/cleanup.feature")
	for _, w := range worlds {
		if w.Env != nil {
			t.Cleanup(func() {
				runs.Remove(context.Background(), cli, w.RunID)
				enginetest.AssertGone(t, cli, w.RunID, 0)
			})
		}
	}
	if status == 0 {
		t.Fatalf("the failing scenarios passed:\n%s", out)
	}
	if len(worlds) != 2 {
		t.Fatalf("%d worlds, want 2:\n%s", len(worlds), out)
	}
	fails := map[string]string{}
	for _, f := range cfg.Failures() {
		fails[f.Scenario] = f.Err
	}
	// The failed assertion names the outage and the faults in force.
	if !strings.Contains(fails["A step fails mid-fault"], `"a" did not stay available: the probe of "a" (GET http://127.0.0.1:`) {
		t.Errorf("failure %q, want a did not stay available:\n%s", fails["A step fails mid-fault"], out)
	}
	if !regexp.MustCompile(`\n\s+at \+\d+\.\d\ds, still down at the last sample after .*first error: .*; during cut a -> c, pause b, kill a(, upgrade step "\w+")*\n`).MatchString(out) {
		t.Errorf("the failure does not describe the outage of a during the faults:\n%s", out)
	}
	if !strings.Contains(fails["A step panics mid-fault"], "the test step panics") {
		t.Errorf("failure %q, want the panic:\n%s", fails["A step panics mid-fault"], out)
	}
	ctx := context.Background()
	for _, w := range worlds {
		if w.Env == nil {
			t.Fatalf("scenario %q has no environment:\n%s", w.Scenario.Name, out)
		}
		// The faults were in force when the scenario ended.
		var names []string
		for _, s := range w.faultSpans() {
			names = append(names, s.f.Name())
		}
		want := "cut a -> c, pause b"
		if w.Scenario.Name == "A step fails mid-fault" {
			want += ", kill a"
		}
		if got := strings.Join(names, ", "); got != want {
			t.Errorf("%s: faults %q, want %q", w.Scenario.Name, got, want)
		}
		for _, svc := range []string{"a", "b", "c"} {
			st, err := w.Env.Service(svc).State(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Status != "running" {
				t.Errorf("%s: %s is %s after the scenario", w.Scenario.Name, svc, st.Status)
			}
			rules, err := fault.Rules(ctx, w.Env, svc)
			if err != nil {
				t.Fatal(err)
			}
			if len(rules) > 0 {
				t.Errorf("%s: filter rules left in %s: %q", w.Scenario.Name, svc, rules)
			}
		}
		helpers, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: client.Filters{}.Add("label", runs.LabelRun+"="+w.RunID).Add("label", env.LabelHelper)})
		if err != nil {
			t.Fatal(err)
		}
		if len(helpers.Items) > 0 {
			t.Errorf("%s: %d helper containers left", w.Scenario.Name, len(helpers.Items))
		}
		if w.probes.runs != nil {
			t.Errorf("%s: probes still running: %v", w.Scenario.Name, w.probes.runs)
		}
		// The kill armed after the upgrade never fired: the scenario's end
		// fails for it, and the timeline says so.
		data, err := os.ReadFile(timelineFile(t, cfg.OutDir, w.RunID))
		if err != nil {
			t.Fatal(err)
		}
		const unfired = `fault kill c armed for step "migrate" did not fire: no upgrade was applied after it was armed`
		if !strings.Contains(string(data), strings.ReplaceAll(unfired, `"`, `\"`)) && !strings.Contains(string(data), unfired) {
			t.Errorf("%s: no warning about the armed kill that never fired:\n%s", w.Scenario.Name, data)
		}
		if !strings.Contains(out, unfired) {
			t.Errorf("%s: the scenario's end does not fail for the armed kill that never fired:\n%s", w.Scenario.Name, out)
		}
	}
}

func timelineFile(t *testing.T, dir, runID string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "timelines", "*.txt"))
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil && strings.Contains(string(data), "(run "+runID+")") {
			return f
		}
	}
	t.Fatalf("no timeline for run %s in %s", runID, dir)
	return ""
}

// Kill, pause, stop, start, restart and a cut, seen by an HTTP, an exec and
// a TCP probe, each outage assertion passing where it should (their
// failures are TestAssertionsOnFakeSamples' and, for a real kill,
// TestFaultsHealedWhateverEndsTheScenario's); a kill armed for an upgrade
// step fires in that step, makes it fail, and is the one outage of the
// service's fresh probe.
func TestFaultStepsAndAvailability(t *testing.T) {
	enginetest.Connect(t)
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{"testdata/faults/probes.feature"}, OutDir: out})
	if !sum.Passed() || !strings.Contains(text, "3 scenarios (3 passed)") {
		t.Errorf("the probe scenario failed:\n%s", text)
	}
	for _, want := range []string{"probe: a: GET http://127.0.0.1:", "probe: b: exec /usr/local/bin/node -check every 500ms",
		"probe: c: tcp c:8080 every 200ms", "fault: kill b (step migrate started)", "fault: kill b (1s into step wait)"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	assertRunsGone(t, timelineRuns(t, out))
}

// Started heals the kills and stops of that service only; restored the
// cuts and degraded links between those two services, in either order;
// restored says when there is nothing to heal. The real matchers, on the
// real fault types (nothing is injected).
func TestHealMatching(t *testing.T) {
	e := envtest.Start(t, faultWorld)
	mk := func(f fault.Fault, err error) fault.Fault {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	killA := mk(fault.NewKill(e, "a"))
	stopA := mk(fault.NewStop(e, "a"))
	killB := mk(fault.NewKill(e, "b"))
	pauseA := mk(fault.NewPause(e, "a"))
	restartA := mk(fault.NewRestart(e, "a"))
	cutAB := mk(fault.NewCut(e, "a", "b"))
	cutAC := mk(fault.NewCut(e, "a", "c"))
	slowBA := mk(fault.NewLatency(e, "b", "a", 10*time.Millisecond, 0))
	all := []fault.Fault{killA, stopA, killB, pauseA, restartA, cutAB, cutAC, slowBA}
	for _, tc := range []struct {
		name  string
		match func(fault.Fault) bool
		want  []fault.Fault
	}{
		{"started a", killOrStopOf("a"), []fault.Fault{killA, stopA}},
		{"started b", killOrStopOf("b"), []fault.Fault{killB}},
		{"started c", killOrStopOf("c"), nil},
		{"restored a b", betweenPair("a", "b"), []fault.Fault{cutAB, slowBA}},
		{"restored b a", betweenPair("b", "a"), []fault.Fault{cutAB, slowBA}},
		{"restored c a", betweenPair("c", "a"), []fault.Fault{cutAC}},
		{"restored b c", betweenPair("b", "c"), nil},
	} {
		var got []fault.Fault
		for _, f := range all {
			if tc.match(f) {
				got = append(got, f)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s heals %v, want %v", tc.name, names(got), names(tc.want))
		}
	}

	// Through the step: nothing injected, nothing to restore.
	w := newFaultWorld()
	w.Env = e
	ctx := context.WithValue(context.Background(), worldKey{}, w)
	mustFail(t, networkRestored(ctx, "b", "c"), `the network between "b" and "c" is neither cut nor degraded: nothing to restore`)
	if n, err := w.healMatching(ctx, betweenPair("a", "b")); n != 0 || err != nil {
		t.Errorf("nothing injected: healMatching = %d, %v", n, err)
	}
}

func names(fs []fault.Fault) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name())
	}
	return out
}

package scenarios

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/probe"
	"github.com/rehearse/rehearse/harness/timeline"
)

// fakeView is a probe of "db" every 100ms that saw pattern: one sample a
// character, '.' ok and 'x' failed, each answered in 5ms; the scenario
// started 1s before the first sample.
func fakeView(pattern string, ws ...window) probeView {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var samples []probe.Sample
	for i, c := range pattern {
		s := probe.Sample{At: t0.Add(time.Duration(i) * 100 * time.Millisecond), Latency: 5 * time.Millisecond}
		if c == 'x' {
			s.Err = errors.New("connect: connection refused")
		}
		samples = append(samples, s)
	}
	return probeView{svc: "db", desc: "GET http://127.0.0.1:1/ every 100ms", interval: 100 * time.Millisecond,
		samples: samples, sum: probe.Summarize(samples, 100*time.Millisecond), origin: t0.Add(-time.Second), windows: ws}
}

func at(ms int) time.Time {
	return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
}

func mustFail(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("passed, want a failure containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message lacks %q:\n%v", w, err)
		}
	}
}

func TestAssertionsOnFakeSamples(t *testing.T) {
	up := fakeView(strings.Repeat(".", 50))
	// 10 failed samples from 2.0s to 2.9s: an outage of about 1s.
	kill := window{what: "kill db", start: at(1950), end: at(2950)}
	step := window{what: `upgrade step "migrate"`, start: at(1000), end: at(2500)}
	later := window{what: "pause billing", start: at(4000), end: at(4500)}
	down := fakeView(strings.Repeat(".", 20)+strings.Repeat("x", 10)+strings.Repeat(".", 20), kill, step, later)

	if err := up.staysAvailable(); err != nil {
		t.Errorf("all ok: %v", err)
	}
	mustFail(t, down.staysAvailable(), `"db" did not stay available`, "saw 1 outage in 50 samples over 4.91s: availability 80.00%",
		"at +2.95s for 1.00s (±0.10s, 10 failed samples), first error: connect: connection refused",
		`during kill db, upgrade step "migrate"`)
	if err := down.staysAvailable(); err != nil && strings.Contains(err.Error(), "pause billing") {
		t.Errorf("names a fault that did not overlap: %v", err)
	}
	if err := down.hadOutage(); err != nil {
		t.Errorf("had an outage: %v", err)
	}
	mustFail(t, up.hadOutage(), `"db" had no outage`, "saw 0 outages in 50 samples")

	if err := down.availabilityAtLeast(80); err != nil {
		t.Errorf("80%% of 80%%: %v", err)
	}
	mustFail(t, down.availabilityAtLeast(99.9), `the availability of "db" is 80.00%, want at least 99.9%`, "at +2.95s")

	if err := down.noOutageLongerThan(2 * time.Second); err != nil {
		t.Errorf("1s outage within 2s: %v", err)
	}
	mustFail(t, down.noOutageLongerThan(500*time.Millisecond), `1 outage(s) of "db" lasted longer than 500ms`, "for 1.00s")

	if err := down.downtimeWithin(2*time.Second, "2s"); err != nil {
		t.Errorf("downtime 1s within 2s: %v", err)
	}
	mustFail(t, down.downtimeWithin(300*time.Millisecond, "the promised 300ms"), `the downtime of "db" is 1.00s, more than the promised 300ms`)

	if err := down.errorBudget(80); err != nil {
		t.Errorf("budget 20%%, spent 20%%: %v", err)
	}
	mustFail(t, down.errorBudget(99.9), `the error budget of "db" (SLO 99.9%) is spent: 10 of 50 samples failed, 20.00% of the probed time (about 0.98s of 4.91s); the budget is 0.10% (about 0.00s)`)
	// 99.9% of 1000 samples allows exactly one failure.
	one := fakeView(strings.Repeat(".", 500) + "x" + strings.Repeat(".", 499))
	if err := one.errorBudget(99.9); err != nil {
		t.Errorf("one failure in 1000 at 99.9%%: %v", err)
	}
	if err := one.availabilityAtLeast(99.9); err != nil {
		t.Errorf("one failure in 1000 at 99.9%%: %v", err)
	}
	two := fakeView(strings.Repeat(".", 500) + "xx" + strings.Repeat(".", 498))
	mustFail(t, two.errorBudget(99.9), "2 of 1000 samples failed")
	mustFail(t, two.availabilityAtLeast(99.9), "99.80%")
}

func TestOpenOutageAndBusySampler(t *testing.T) {
	v := fakeView(strings.Repeat(".", 10) + strings.Repeat("x", 5))
	mustFail(t, v.staysAvailable(), "at +1.95s, still down at the last sample after")
	// A sampler held up for 600ms: a gap of 6 intervals.
	v.samples[5].At = v.samples[4].At.Add(600 * time.Millisecond)
	for i := 6; i < len(v.samples); i++ {
		v.samples[i].At = v.samples[i-1].At.Add(100 * time.Millisecond)
	}
	v.sum = probe.Summarize(v.samples, v.interval)
	mustFail(t, v.staysAvailable(), "largest gap between samples was 6.0x its interval (0.60s): the machine was busy")
}

func TestParsing(t *testing.T) {
	for _, s := range []string{"50ms", "2s", "1m30s"} {
		if _, err := parseDuration(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"2", "2 s", "-1s", "0s", "two seconds"} {
		if _, err := parseDuration(s); err == nil || !strings.Contains(err.Error(), "500ms, 2s or 1m30s") {
			t.Errorf("%q: %v", s, err)
		}
	}
	for s, want := range map[string]float64{"99.9": 99.9, "100": 100, "50": 50} {
		if got, err := parsePercent(s); err != nil || got != want {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	for _, s := range []string{"0", "100.1", "1e3"} {
		if _, err := parsePercent(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	// The phrases as QA writes them reach the step functions.
	lines := map[string][]string{
		`"db" is paused for 2s during step "migrate"`:                 {"db", "2s", "migrate"},
		`"db" is paused for 500ms`:                                    {"db", "500ms"},
		`the availability of "invoicing" is at least 99.9%`:           {"invoicing", "99.9"},
		`the error budget of "invoicing" (SLO 99.95%) is intact`:      {"invoicing", "99.95"},
		`"db" is probed with SQL "SELECT \"x\" FROM t" every 200ms`:   {"db", `SELECT \"x\" FROM t`, "200ms"},
		`the network between "a" and "b" is cut for 1m`:               {"a", "b", "1m"},
		`the network between "a" and "b" is cut during step "switch"`: {"a", "b", "switch"},
	}
	for line, want := range lines {
		n := 0
		for _, st := range Steps {
			if m := regexp.MustCompile(st.Pattern).FindStringSubmatch(line); m != nil {
				n++
				if strings.Join(m[1:], "|") != strings.Join(want, "|") {
					t.Errorf("%s: %q, want %q", line, m[1:], want)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s matches %d steps", line, n)
		}
	}
}

// Steps that need what the scenario has not set up say what to add.
func TestProbeAndFaultStepsWithoutSetup(t *testing.T) {
	w := &World{Timeline: timeline.New(), log: io.Discard}
	ctx := context.WithValue(context.Background(), worldKey{}, w)
	mustFail(t, staysAvailable(ctx, "db"), `"db" is not probed: add Given "db" is probed every DURATION`)
	mustFail(t, probedDeclared(ctx, "db", "100ms"), "no environment")
	mustFail(t, probedDeclared(ctx, "db", "10ms"), "at least 20ms")
	mustFail(t, killed(ctx, "db"), "no environment")
	mustFail(t, downtimeWithinPromise(ctx, "db"), "no upgrade package")
	mustFail(t, availabilityAtLeast(ctx, "db", "101"), "at most 100")
	// A scenario that broke nothing ends without a fault set.
	if err := w.endProbesAndFaults(ctx); err != nil {
		t.Error(err)
	}
}

// A fault armed for a step the open package lacks is refused at once,
// naming the steps there are; so is a package opened after the arming,
// before anything is applied.
func TestArmedStepMustExist(t *testing.T) {
	w := &World{Timeline: timeline.New(), log: io.Discard}
	ctx := context.WithValue(context.Background(), worldKey{}, w)
	t.Cleanup(func() {
		if w.up.pkg != nil {
			w.up.pkg.Close()
		}
	})
	// No package yet: the step name cannot be checked, the environment can.
	mustFail(t, killedDuring(ctx, "b", "migarte"), "no environment")
	w.faults.armed = []*armedFault{{step: "migarte"}}
	if err := theUpgradePackage(ctx, "testdata/faults/pkg"); err != nil {
		t.Fatal(err)
	}
	want := `no step "migarte" in the upgrade package testdata/faults/pkg (steps: prepare, migrate)`
	mustFail(t, w.checkArmed(), "a fault is armed for a step the package does not have: "+want)
	mustFail(t, applyPackage(ctx, "a", "root"), want) // refused before the signature and the environment
	for name, step := range map[string]func() error{
		"kill":  func() error { return killedDuring(ctx, "b", "migarte") },
		"pause": func() error { return pausedDuring(ctx, "b", "1s", "migarte") },
		"cut":   func() error { return networkCutDuring(ctx, "a", "b", "migarte") },
	} {
		if err := step(); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", name, err, want)
		}
	}
	// A known step gets as far as the environment.
	mustFail(t, killedDuring(ctx, "b", "migrate"), "no environment")
}

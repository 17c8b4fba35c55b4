package scenarios

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/fault"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/harness/upgrade"
)

// fakeFault records what was done to it.
type fakeFault struct {
	name      string
	injectErr error
	mu        sync.Mutex
	injected  int
	healed    int
}

func (f *fakeFault) Name() string { return f.name }
func (f *fakeFault) Inject(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.injected++
	return f.injectErr
}
func (f *fakeFault) Heal(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.healed++
	return nil
}
func (f *fakeFault) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected, f.healed
}

func newFaultWorld() *World {
	return &World{Timeline: timeline.New(), log: io.Discard}
}

// A fault "for DURATION" is healed when the step's context ends early,
// and the step says it was cut short.
func TestInjectForADurationHonoursCancel(t *testing.T) {
	w := newFaultWorld()
	f := &fakeFault{name: "pause x"}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	err := w.inject(ctx, f, time.Hour)
	if err == nil || !strings.Contains(err.Error(), "pause x for 1h0m0s: cut short: context canceled") {
		t.Errorf("err = %v", err)
	}
	if i, h := f.counts(); i != 1 || h != 1 {
		t.Errorf("injected %d, healed %d; want 1, 1", i, h)
	}
	if len(w.faultSet().Active()) != 0 {
		t.Error("the fault is still active")
	}
	spans := w.faultSpans()
	if len(spans) != 1 || spans[0].end.IsZero() {
		t.Errorf("spans %+v", spans)
	}
}

// Armed faults fire once, when their step starts; one "for DURATION" heals
// in the background, cut short by the end of the scenario; a failed
// injection is reported by the apply step; one that never fired fails the
// apply step (or, armed after the last apply, the scenario's end); the rest
// is healed at the end.
func TestArmedFaults(t *testing.T) {
	w := newFaultWorld()
	ctx := context.Background()
	kill := &fakeFault{name: "kill db"}
	pause := &fakeFault{name: "pause db"}
	broken := &fakeFault{name: "cut a -> b", injectErr: errors.New("no helper")}
	never := &fakeFault{name: "kill c"}
	for _, a := range []struct {
		step string
		dur  time.Duration
		f    fault.Fault
	}{{"migrate", 0, kill}, {"migrate", time.Hour, pause}, {"prepare", 0, broken}, {"never", 0, never}} {
		if err := w.arm(a.step, a.dur, a.f); err != nil {
			t.Fatal(err)
		}
	}
	w.fireArmed(ctx, "prepare")
	if err := w.takePending(); err == nil || !strings.Contains(err.Error(), `fault armed for step "prepare": inject cut a -> b: no helper`) {
		t.Errorf("pending = %v", err)
	}
	w.fireArmed(ctx, "migrate")
	w.fireArmed(ctx, "migrate") // a step of that name again: nothing more
	for _, f := range []*fakeFault{kill, pause} {
		if i, h := f.counts(); i != 1 || h != 0 {
			t.Errorf("%s: injected %d, healed %d; want 1, 0", f.name, i, h)
		}
	}
	// The apply that ran neither fires the fault armed for "never": the
	// apply step fails, naming the steps it ran.
	mustFail(t, w.unfiredAfter(&upgrade.Outcome{Steps: []upgrade.StepResult{{Name: "prepare"}, {Name: "migrate"}}}),
		`fault kill c armed for step "never" did not fire: the upgrade ran steps prepare, migrate`)
	if err := w.unfiredAfter(&upgrade.Outcome{}); err != nil {
		t.Errorf("reported twice: %v", err)
	}
	// A fault armed after the last apply fails the scenario at its end.
	late := &fakeFault{name: "kill d"}
	if err := w.arm("migrate", 0, late); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := w.healFaults(ctx)
	mustFail(t, err, `fault kill d armed for step "migrate" did not fire: no upgrade was applied after it was armed`)
	if strings.Contains(err.Error(), "kill c") {
		t.Errorf("kill c reported again at the end: %v", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("finish waited %v for the hour-long pause", d)
	}
	for _, f := range []*fakeFault{kill, pause, broken} {
		if _, h := f.counts(); h != 1 {
			t.Errorf("%s healed %d times, want 1", f.name, h)
		}
	}
	if i, _ := never.counts(); i != 0 {
		t.Error("the fault armed for a step that never ran was injected")
	}
	if warnings := w.Timeline.Filter(timeline.KindWarning); len(warnings) != 2 {
		t.Errorf("warnings %+v, want the two faults that did not fire", warnings)
	}
	// Every fault is on the timeline as an interval.
	if evs := w.Timeline.Filter(fault.KindFault); len(evs) != 5+3 { // 5 armed marks, 3 intervals
		t.Errorf("%d fault events: %+v", len(evs), evs)
	}
}

// An inject the Set refuses (the fault is in force already) leaves no
// interval behind.
func TestRefusedInjectLeavesNoSpan(t *testing.T) {
	w := newFaultWorld()
	ctx := context.Background()
	f := &fakeFault{name: "kill db"}
	if err := w.inject(ctx, f, 0); err != nil {
		t.Fatal(err)
	}
	mustFail(t, w.inject(ctx, f, 0), "kill db: already injected")
	if spans := w.faultSpans(); len(spans) != 1 {
		t.Errorf("%d intervals, want 1: %+v", len(spans), spans)
	}
	if i, _ := f.counts(); i != 1 {
		t.Errorf("injected %d times", i)
	}
}

// A fault healed by someone else (the background heal of an armed fault)
// between healMatching's look and its heal is healed, not an error.
func TestHealMatchingRacingAnotherHeal(t *testing.T) {
	w := newFaultWorld()
	ctx := context.Background()
	one, two := &fakeFault{name: "one"}, &fakeFault{name: "two"}
	for _, f := range []fault.Fault{one, two} {
		if err := w.inject(ctx, f, 0); err != nil {
			t.Fatal(err)
		}
	}
	n, err := w.healMatching(ctx, func(f fault.Fault) bool {
		if f == two {
			// Meanwhile, a background heal mends one.
			if err := w.heal(ctx, one); err != nil {
				t.Fatal(err)
			}
		}
		return true
	})
	if n != 2 || err != nil {
		t.Errorf("healMatching = %d, %v; want 2, nil", n, err)
	}
	for _, f := range []*fakeFault{one, two} {
		if _, h := f.counts(); h != 1 {
			t.Errorf("%s healed %d times, want 1", f.name, h)
		}
	}
}

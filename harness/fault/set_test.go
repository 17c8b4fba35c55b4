package fault

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
)

// fake is a fault that records what was done to it.
type fake struct {
	name      string
	log       *[]string
	injectErr error
	healErr   error
	panics    bool
}

func (f *fake) Name() string      { return f.name }
func (f *fake) Targets() []string { return []string{"svc-" + f.name} }
func (f *fake) Inject(context.Context) error {
	*f.log = append(*f.log, "inject "+f.name)
	return f.injectErr
}

func (f *fake) Heal(ctx context.Context) error {
	*f.log = append(*f.log, "heal "+f.name)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if f.panics {
		panic("boom")
	}
	return f.healErr
}

func TestSetHealAll(t *testing.T) {
	var log []string
	tl := timeline.New()
	s := NewSet(tl)
	one := &fake{name: "one", log: &log}
	two := &fake{name: "two", log: &log, healErr: errors.New("two would not heal")}
	three := &fake{name: "three", log: &log, panics: true}
	four := &fake{name: "four", log: &log, injectErr: errors.New("half-way")}
	for _, f := range []*fake{one, two, three} {
		if err := s.Inject(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Inject(context.Background(), four); err == nil || !strings.Contains(err.Error(), "inject four: half-way") {
		t.Errorf("failed inject: %v", err)
	}
	if err := s.Inject(context.Background(), one); err == nil {
		t.Error("injected a fault the set still holds")
	}
	if got := len(s.Active()); got != 4 {
		t.Errorf("active faults = %d, want 4 (a failed inject stays to be healed)", got)
	}

	// A cancelled context (an interrupted scenario) still heals.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.HealAll(ctx)
	want := []string{"inject one", "inject two", "inject three", "inject four", "heal four", "heal three", "heal two", "heal one"}
	if !slices.Equal(log, want) {
		t.Errorf("calls:\n got %q\nwant %q", log, want)
	}
	if err == nil || !strings.Contains(err.Error(), "heal two: two would not heal") || !strings.Contains(err.Error(), "heal three: panic: boom") {
		t.Errorf("HealAll error = %v, want both heal failures", err)
	}

	events := tl.Filter(KindFault)
	if len(events) != 4 {
		t.Fatalf("timeline has %d fault events, want 4: %+v", len(events), events)
	}
	byName := map[string]timeline.Event{}
	for _, e := range events {
		byName[e.Name] = e
		if e.End.Before(e.Start) || e.Actor != "svc-"+e.Name || e.Fields["targets"] != "svc-"+e.Name {
			t.Errorf("event %+v: want an interval acted by svc-%s", e, e.Name)
		}
	}
	if byName["one"].Err != "" || !strings.Contains(byName["two"].Err, "would not heal") ||
		!strings.Contains(byName["four"].Err, "half-way") || byName["four"].Fields["inject_error"] == "" {
		t.Errorf("event errors: %+v", byName)
	}

	// Idempotent: nothing is healed twice, nothing more is recorded.
	log = nil
	if err := s.HealAll(context.Background()); err != nil || len(log) != 0 || len(tl.Filter(KindFault)) != 4 {
		t.Errorf("second HealAll: err %v, calls %q, events %d", err, log, len(tl.Filter(KindFault)))
	}
}

func TestSetHealOne(t *testing.T) {
	var log []string
	tl := timeline.New()
	s := NewSet(tl)
	one, two := &fake{name: "one", log: &log}, &fake{name: "two", log: &log}
	for _, f := range []*fake{one, two} {
		if err := s.Inject(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Heal(context.Background(), one); err != nil {
		t.Fatal(err)
	}
	if err := s.Heal(context.Background(), one); !errors.Is(err, ErrNotInjected) {
		t.Errorf("healing a healed fault through the set: %v, want ErrNotInjected", err)
	}
	if err := s.Heal(context.Background(), &fake{name: "stranger", log: &log}); !errors.Is(err, ErrNotInjected) {
		t.Errorf("healing a stranger: %v", err)
	}
	if act := s.Active(); len(act) != 1 || act[0] != two {
		t.Errorf("active after healing one: %v", act)
	}
	// Healed, it may be injected again: a second interval.
	if err := s.Inject(context.Background(), one); err != nil {
		t.Fatal(err)
	}
	if err := s.HealAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"inject one", "inject two", "heal one", "inject one", "heal one", "heal two"}
	if !slices.Equal(log, want) {
		t.Errorf("calls:\n got %q\nwant %q", log, want)
	}
	if n := len(tl.Filter(KindFault)); n != 3 {
		t.Errorf("%d fault intervals, want 3", n)
	}
}

func TestOptionsThatDoNotApply(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		takes []string
		opts  []Option
		want  string
	}{
		{"pause x", nil, []Option{WithSignal("SIGTERM")}, `pause x: the option "signal" does not apply to it`},
		{"kill x", []string{"signal"}, []Option{WithBothWays(true)}, `the option "both ways" does not apply`},
		{"kill x", []string{"signal"}, []Option{WithSignal("")}, "kill x: signal: empty"},
		{"stop x", []string{"stop timeout"}, []Option{WithStopTimeout(-1)}, "negative"},
		{"stop x", []string{"stop timeout"}, []Option{WithStopTimeout(0)}, ""},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := apply(tc.kind, tc.opts, tc.takes...)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if o := defaults(); o.signal != "SIGKILL" || o.timeout.Seconds() != 10 || o.both {
		t.Errorf("defaults = %+v", o)
	}
}

// flaky fails its first heals, then heals.
type flaky struct {
	fails int // heals left to fail
	heals int
}

func (f *flaky) Name() string                 { return "flaky" }
func (f *flaky) Inject(context.Context) error { return nil }
func (f *flaky) Heal(context.Context) error {
	f.heals++
	if f.fails > 0 {
		f.fails--
		return errors.New("transient")
	}
	return nil
}

// A fault whose heal failed is still broken: it stays in the Set, its
// interval stays open, and HealAll heals it again.
func TestSetKeepsAFaultWhoseHealFailed(t *testing.T) {
	tl := timeline.New()
	s := NewSet(tl)
	f := &flaky{fails: 1}
	if err := s.Inject(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if err := s.Heal(context.Background(), f); err == nil || !strings.Contains(err.Error(), "heal flaky: transient") {
		t.Fatalf("first heal: %v, want the transient failure", err)
	}
	if act := s.Active(); len(act) != 1 || act[0] != f {
		t.Errorf("active after a failed heal: %v, want the fault still there", act)
	}
	if n := len(tl.Filter(KindFault)); n != 0 {
		t.Errorf("%d fault intervals closed by a failed heal, want 0", n)
	}
	if err := s.HealAll(context.Background()); err != nil {
		t.Errorf("HealAll: %v", err)
	}
	if f.heals != 2 {
		t.Errorf("heals %d, want 2 (HealAll retries)", f.heals)
	}
	evs := tl.Filter(KindFault)
	if len(evs) != 1 || evs[0].Err != "" || !strings.Contains(evs[0].Fields["heal_error"], "transient") {
		t.Errorf("intervals %+v, want one, healed, that recorded the failed heal", evs)
	}
	if len(s.Active()) != 0 {
		t.Error("still active after HealAll")
	}

	// A fault HealAll cannot heal either is closed with the error.
	g := &flaky{fails: 5}
	if err := s.Inject(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	_ = s.Heal(context.Background(), g)
	if err := s.HealAll(context.Background()); err == nil || !strings.Contains(err.Error(), "transient") {
		t.Errorf("HealAll of a fault that will not heal: %v", err)
	}
	if evs := tl.Filter(KindFault); len(evs) != 2 || !strings.Contains(evs[1].Err, "transient") || len(s.Active()) != 0 {
		t.Errorf("intervals %+v, active %v", evs, s.Active())
	}
}

// slowInject blocks its Inject until released, and records the order of
// what is done to it.
type slowInject struct {
	started, release chan struct{}
	mu               sync.Mutex
	log              []string
}

func (f *slowInject) Name() string { return "slow" }
func (f *slowInject) Inject(context.Context) error {
	close(f.started)
	<-f.release
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "injected")
	return nil
}
func (f *slowInject) Heal(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "healed")
	return nil
}

// HealAll waits for an Inject still running before healing it, so that
// what the Inject sets up is not left behind.
func TestSetHealAllWaitsForAnInjectInFlight(t *testing.T) {
	s := NewSet(timeline.New())
	f := &slowInject{started: make(chan struct{}), release: make(chan struct{})}
	injected := make(chan error, 1)
	go func() { injected <- s.Inject(context.Background(), f) }()
	<-f.started
	healed := make(chan error, 1)
	go func() { healed <- s.HealAll(context.Background()) }()
	var healErr error
	early := false
	select {
	case healErr = <-healed:
		early = true
		t.Errorf("HealAll returned (%v) while the Inject was still running", healErr)
	case <-time.After(200 * time.Millisecond):
	}
	close(f.release)
	if err := <-injected; err != nil {
		t.Fatal(err)
	}
	if !early {
		healErr = <-healed
	}
	if healErr != nil {
		t.Fatal(healErr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.log, []string{"injected", "healed"}) {
		t.Errorf("calls %q, want injected then healed", f.log)
	}
	if len(s.Active()) != 0 {
		t.Error("still active")
	}
}

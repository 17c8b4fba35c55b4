package scenarios

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rehearse/rehearse/harness/fault"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/harness/upgrade"
)

// faultState is the part of a World about faults: the Set that heals every
// fault at the end of the scenario, the faults armed for upgrade steps, the
// heals pending in the background, and when each fault was in force (for
// the outages an assertion reports).
type faultState struct {
	mu      sync.Mutex
	set     *fault.Set
	armed   []*armedFault
	spans   []*faultSpan
	pending []error        // armed faults that failed; taken by the apply step, or by finish
	bg      sync.WaitGroup // heals of armed faults "for DURATION"
	done    chan struct{}  // closed by finish: background waits end at once
	closed  bool
}

// armedFault is injected when the upgrade step of its name starts.
type armedFault struct {
	step     string
	delay    time.Duration // how long after the step starts it fires
	dur      time.Duration // 0: until healed by a step or the end of the scenario
	f        fault.Fault
	fired    bool
	reported bool // it did not fire, and a step failed for it
}

// faultSpan is when a fault was in force; end is zero while it still is.
type faultSpan struct {
	f          fault.Fault
	start, end time.Time
}

var faultSteps = []Step{
	{`When "SVC" is killed`, `^"([^"]*)" is killed$`, `When "db" is killed`,
		"SIGKILL the service's main process; it stays down until a step starts it (or the scenario ends)", killed},
	{`When "SVC" is paused for DURATION`, `^"([^"]*)" is paused for (\S+)$`, `When "db" is paused for 2s`,
		"freeze every process of the service for DURATION (Go's form: 500ms, 2s, 1m30s), then thaw it", pausedFor},
	{`When "SVC" is stopped`, `^"([^"]*)" is stopped$`, `When "billing" is stopped`,
		"stop the service as docker stop does (its stop signal, then a kill after 10s); it stays down until started", stopped},
	{`When "SVC" is started`, `^"([^"]*)" is started$`, `When "billing" is started`,
		"start a service that a step killed or stopped (or that exited on its own), and wait until it is healthy again", started},
	{`When "SVC" is restarted`, `^"([^"]*)" is restarted$`, `When "billing" is restarted`,
		"stop the service, start it again at once, and wait until it is healthy again", restarted},
	{`When "SVC" is killed during step "STEP"`, `^"([^"]*)" is killed during step "([^"]*)"$`, `When "db" is killed during step "migrate"`,
		"kill the service when the upgrade step starts (before its command runs); it stays down", killedDuring},
	{`When "SVC" is paused for DURATION during step "STEP"`, `^"([^"]*)" is paused for (\S+) during step "([^"]*)"$`, `When "db" is paused for 5s during step "migrate"`,
		"pause the service when the upgrade step starts, and thaw it DURATION later", pausedDuring},
	{`When the network between "A" and "B" is cut`, `^the network between "([^"]*)" and "([^"]*)" is cut$`, `When the network between "invoicing" and "db" is cut`,
		"drop every packet between the two services (both ways; a third service still reaches both) until restored", networkCut},
	{`When the network between "A" and "B" is cut for DURATION`, `^the network between "([^"]*)" and "([^"]*)" is cut for (\S+)$`, `When the network between "invoicing" and "db" is cut for 3s`,
		"cut the network between the two services for DURATION, then restore it", networkCutFor},
	{`When the network between "A" and "B" is cut during step "STEP"`, `^the network between "([^"]*)" and "([^"]*)" is cut during step "([^"]*)"$`, `When the network between "billing" and "db" is cut during step "migrate"`,
		"cut the network when the upgrade step starts; it stays cut until restored", networkCutDuring},
	{`When "SVC" is killed DURATION into step "STEP"`, `^"([^"]*)" is killed (\S+) into step "([^"]*)"$`, `When "db" is killed 2s into step "migrate"`,
		"kill the service DURATION after the upgrade step starts (the step runs on meanwhile); it stays down", killedInto},
	{`When "SVC" is paused for DURATION starting DURATION into step "STEP"`, `^"([^"]*)" is paused for (\S+) starting (\S+) into step "([^"]*)"$`, `When "db" is paused for 3s starting 1s into step "migrate"`,
		"pause the service the second DURATION after the upgrade step starts, and thaw it the first DURATION later", pausedInto},
	{`When the network between "A" and "B" is cut DURATION into step "STEP"`, `^the network between "([^"]*)" and "([^"]*)" is cut (\S+) into step "([^"]*)"$`, `When the network between "billing" and "db" is cut 2s into step "migrate"`,
		"cut the network DURATION after the upgrade step starts; it stays cut until restored", networkCutInto},
	{`When the network between "A" and "B" is restored`, `^the network between "([^"]*)" and "([^"]*)" is restored$`, `When the network between "invoicing" and "db" is restored`,
		"undo a cut, added latency or a bandwidth limit between the two services", networkRestored},
}

// parseDuration reads a step's DURATION in Go's form.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("duration %q: write it as Go does, such as 500ms, 2s or 1m30s", s)
	}
	return d, nil
}

// faultSet returns the scenario's Set, made on first use.
func (w *World) faultSet() *fault.Set {
	w.faults.mu.Lock()
	defer w.faults.mu.Unlock()
	if w.faults.set == nil {
		w.faults.set = fault.NewSet(w.Timeline)
		w.faults.done = make(chan struct{})
	}
	return w.faults.set
}

// inject breaks f now. With dur > 0 it waits dur (less when ctx ends) and
// heals f again; otherwise f stays until a step heals it or the scenario
// ends. A fault that failed to inject stays in the Set, which mends it at
// the end.
func (w *World) inject(ctx context.Context, f fault.Fault, dur time.Duration) error {
	set := w.faultSet()
	span := w.began(f)
	if err := set.Inject(ctx, f); err != nil {
		if errors.Is(err, fault.ErrAlreadyInjected) {
			w.unbegan(span) // refused: nothing was done
		}
		return err
	}
	fmt.Fprintf(w.log, "fault: %s\n", f.Name())
	if dur <= 0 {
		return nil
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	var waitErr error
	select {
	case <-t.C:
	case <-ctx.Done():
		waitErr = fmt.Errorf("%s for %v: cut short: %w", f.Name(), dur, context.Cause(ctx))
	}
	return errors.Join(waitErr, w.heal(ctx, f))
}

// heal mends one injected fault now. A fault whose heal failed is still in
// force: its interval stays open, and the Set heals it again at the end.
func (w *World) heal(ctx context.Context, f fault.Fault) error {
	err := w.faultSet().Heal(ctx, f)
	if err != nil {
		return err
	}
	w.faults.mu.Lock()
	for _, s := range w.faults.spans {
		if s.f == f && s.end.IsZero() {
			s.end = time.Now()
		}
	}
	w.faults.mu.Unlock()
	fmt.Fprintf(w.log, "healed: %s\n", f.Name())
	return nil
}

// healMatching heals every fault still injected that match accepts, the
// last injected first, and reports how many there were. One healed
// meanwhile by someone else (the background heal of a fault armed "for
// DURATION") counts as healed.
func (w *World) healMatching(ctx context.Context, match func(fault.Fault) bool) (int, error) {
	active := w.faultSet().Active()
	var errs []error
	n := 0
	for i := len(active) - 1; i >= 0; i-- {
		if match(active[i]) {
			n++
			if err := w.heal(ctx, active[i]); err != nil && !errors.Is(err, fault.ErrNotInjected) {
				errs = append(errs, err)
			}
		}
	}
	return n, errors.Join(errs...)
}

// killOrStopOf matches the kills and stops of svc: what "SVC is started"
// heals.
func killOrStopOf(svc string) func(fault.Fault) bool {
	return func(f fault.Fault) bool {
		switch f.(type) {
		case *fault.Kill, *fault.Stop:
			t := targets(f)
			return len(t) > 0 && t[0] == svc
		}
		return false
	}
}

// betweenPair matches the cuts and degraded links (latency, bandwidth)
// between a and b, in either order: what "the network ... is restored"
// heals.
func betweenPair(a, b string) func(fault.Fault) bool {
	return func(f fault.Fault) bool {
		switch f.(type) {
		case *fault.Cut, *fault.Toxic:
			t := targets(f)
			return len(t) == 2 && (t[0] == a && t[1] == b || t[0] == b && t[1] == a)
		}
		return false
	}
}

// began opens the interval of a fault about to be injected.
func (w *World) began(f fault.Fault) *faultSpan {
	w.faults.mu.Lock()
	defer w.faults.mu.Unlock()
	s := &faultSpan{f: f, start: time.Now()}
	w.faults.spans = append(w.faults.spans, s)
	return s
}

// unbegan forgets the interval of an inject that was refused.
func (w *World) unbegan(s *faultSpan) {
	w.faults.mu.Lock()
	defer w.faults.mu.Unlock()
	w.faults.spans = slices.DeleteFunc(w.faults.spans, func(x *faultSpan) bool { return x == s })
}

// faultSpans lists when each fault was in force, in the order injected.
func (w *World) faultSpans() []faultSpan {
	w.faults.mu.Lock()
	defer w.faults.mu.Unlock()
	out := make([]faultSpan, len(w.faults.spans))
	for i, s := range w.faults.spans {
		out[i] = *s
	}
	return out
}

// arm injects f when the upgrade step named step starts (called from the
// apply step's hooks, before the step's command runs); with dur > 0 it is
// healed dur later in the background. The step must be one of the open
// package's manifest steps, when it has a manifest.
func (w *World) arm(step string, dur time.Duration, f fault.Fault) error {
	return w.armAfter(step, 0, dur, f)
}

// armAfter arms f to fire delay after the upgrade step starts (in the
// background: the step runs on meanwhile), for dur (0: until healed).
func (w *World) armAfter(step string, delay, dur time.Duration, f fault.Fault) error {
	if err := w.checkStepName(step); err != nil {
		return err
	}
	w.faultSet()
	w.faults.mu.Lock()
	w.faults.armed = append(w.faults.armed, &armedFault{step: step, delay: delay, dur: dur, f: f})
	w.faults.mu.Unlock()
	fields := map[string]string{"step": step}
	if dur > 0 {
		fields["for"] = dur.String()
	}
	when := "when step " + step + " starts"
	if delay > 0 {
		fields["after"] = delay.String()
		when = delay.String() + " into step " + step
	}
	w.Timeline.Mark(fault.KindFault, "armed", f.Name(), fields)
	fmt.Fprintf(w.log, "fault armed: %s %s\n", f.Name(), when)
	return nil
}

// stepNames lists the steps of the open package's manifest, and false when
// they are not known before it runs (no package, or an entry script).
func (w *World) stepNames() ([]string, bool) {
	if w.up.pkg == nil {
		return nil, false
	}
	m := w.up.pkg.Manifest()
	if m == nil {
		return nil, false
	}
	var names []string
	for _, s := range append(m.Steps, m.Cleanup...) {
		names = append(names, s.Name)
	}
	return names, true
}

func (w *World) checkStepName(step string) error {
	names, known := w.stepNames()
	if !known || slices.Contains(names, step) {
		return nil
	}
	return fmt.Errorf("no step %q in the upgrade package %s (steps: %s)", step, w.up.pkgPath, strings.Join(names, ", "))
}

// checkArmed validates the armed faults against the package about to be
// applied (it may have been opened after they were armed).
func (w *World) checkArmed() error {
	w.faults.mu.Lock()
	var steps []string
	for _, a := range w.faults.armed {
		if !a.fired {
			steps = append(steps, a.step)
		}
	}
	w.faults.mu.Unlock()
	for _, s := range steps {
		if err := w.checkStepName(s); err != nil {
			return fmt.Errorf("a fault is armed for a step the package does not have: %w", err)
		}
	}
	return nil
}

// fireArmed injects the faults armed for an upgrade step that starts. It
// runs in the upgrade's StepStart hook, before the step's command: a
// service killed here is down when the step begins. Failures are kept for
// the apply step to report (a hook cannot fail the upgrade).
func (w *World) fireArmed(ctx context.Context, step string) {
	w.faults.mu.Lock()
	var due []*armedFault
	for _, a := range w.faults.armed {
		if a.step == step && !a.fired {
			a.fired = true
			due = append(due, a)
		}
	}
	done := w.faults.done
	w.faults.mu.Unlock()
	set := w.faultSet()
	for _, a := range due {
		if a.delay > 0 {
			w.faults.bg.Add(1)
			go func(a *armedFault) {
				defer w.faults.bg.Done()
				t := time.NewTimer(a.delay)
				defer t.Stop()
				select {
				case <-t.C:
					select {
					case <-done: // the scenario is ending: do not break anything now
						w.pend(fmt.Errorf("fault %s armed %v into step %q did not fire: the scenario ended first", a.f.Name(), a.delay, step))
					default:
						w.fireOne(context.WithoutCancel(ctx), set, a, done)
					}
				case <-done: // the scenario ends first: it never fired
					w.pend(fmt.Errorf("fault %s armed %v into step %q did not fire: the scenario ended first", a.f.Name(), a.delay, step))
				}
			}(a)
			continue
		}
		w.fireOne(ctx, set, a, done)
	}
}

// fireOne injects an armed fault whose moment came and, when it holds for
// a duration, heals it in the background.
func (w *World) fireOne(ctx context.Context, set *fault.Set, a *armedFault, done <-chan struct{}) {
	step := a.step
	span := w.began(a.f)
	if err := set.Inject(ctx, a.f); err != nil {
		if errors.Is(err, fault.ErrAlreadyInjected) {
			w.unbegan(span)
		}
		w.pend(fmt.Errorf("fault armed for step %q: %w", step, err))
		return
	}
	if a.delay > 0 {
		fmt.Fprintf(w.log, "fault: %s (%v into step %s)\n", a.f.Name(), a.delay, step)
	} else {
		fmt.Fprintf(w.log, "fault: %s (step %s started)\n", a.f.Name(), step)
	}
	if a.dur <= 0 {
		return
	}
	w.faults.bg.Add(1)
	go func(a *armedFault) {
		defer w.faults.bg.Done()
		defer func() {
			if r := recover(); r != nil {
				w.pend(fmt.Errorf("heal %s: panic: %v", a.f.Name(), r))
			}
		}()
		t := time.NewTimer(a.dur)
		defer t.Stop()
		select {
		case <-t.C:
		case <-done: // the scenario ends: heal now
		}
		if err := w.heal(context.WithoutCancel(ctx), a.f); err != nil {
			w.pend(err)
		}
	}(a)
}

func (w *World) pend(err error) {
	w.faults.mu.Lock()
	defer w.faults.mu.Unlock()
	w.faults.pending = append(w.faults.pending, err)
}

// takePending returns and forgets the failures of armed faults so far.
func (w *World) takePending() error {
	w.faults.mu.Lock()
	defer w.faults.mu.Unlock()
	err := errors.Join(w.faults.pending...)
	w.faults.pending = nil
	return err
}

// unfiredAfter fails for the armed faults that an apply did not fire (a
// misspelt step, a step the upgrade skipped or never reached, a step an
// entry script does not mark), naming the steps it ran: a rehearsal must
// not report that a service survived a fault that never happened. Each is
// reported once.
func (w *World) unfiredAfter(o *upgrade.Outcome) error {
	ran := "the upgrade ran no step"
	if o != nil && len(o.Steps) > 0 {
		var names []string
		for _, s := range o.Steps {
			names = append(names, s.Name)
		}
		ran = "the upgrade ran steps " + strings.Join(names, ", ")
	}
	return w.unfired(ran)
}

// unfired fails for the armed faults that have not fired, and marks them
// reported; why says what ran instead. Each is also a timeline warning.
func (w *World) unfired(why string) error {
	w.faults.mu.Lock()
	var errs []error
	for _, a := range w.faults.armed {
		if !a.fired && !a.reported {
			a.reported = true
			errs = append(errs, fmt.Errorf("fault %s armed for step %q did not fire: %s", a.f.Name(), a.step, why))
		}
	}
	w.faults.mu.Unlock()
	for _, err := range errs {
		w.Timeline.Mark(timeline.KindWarning, "fault", err.Error(), nil)
		fmt.Fprintf(w.log, "error: %v\n", err)
	}
	return errors.Join(errs...)
}

// healFaults ends every fault of the scenario: background heals are cut
// short, then the Set heals whatever is still injected. An armed fault
// that never fired (no upgrade was applied after it was armed) is a
// failure too. It returns every failure.
func (w *World) healFaults(ctx context.Context) error {
	w.faults.mu.Lock()
	set := w.faults.set
	if set != nil && !w.faults.closed {
		w.faults.closed = true
		close(w.faults.done)
	}
	w.faults.mu.Unlock()
	if set == nil {
		return nil
	}
	unfired := w.unfired("no upgrade was applied after it was armed")
	w.faults.bg.Wait()
	err := errors.Join(unfired, w.takePending(), set.HealAll(ctx))
	w.faults.mu.Lock()
	for _, s := range w.faults.spans {
		if s.end.IsZero() {
			s.end = time.Now()
		}
	}
	w.faults.mu.Unlock()
	return err
}

// targets are the services a fault touches.
func targets(f fault.Fault) []string {
	if t, ok := f.(fault.Targets); ok {
		return t.Targets()
	}
	return nil
}

func killed(ctx context.Context, svc string) error {
	w := WorldFrom(ctx)
	e, err := w.target(svc)
	if err != nil {
		return err
	}
	f, err := fault.NewKill(e, svc)
	if err != nil {
		return err
	}
	return w.inject(ctx, f, 0)
}

func pausedFor(ctx context.Context, svc, dur string) error {
	w := WorldFrom(ctx)
	d, err := parseDuration(dur)
	if err != nil {
		return err
	}
	f, err := w.newPause(svc)
	if err != nil {
		return err
	}
	return w.inject(ctx, f, d)
}

func (w *World) newPause(svc string) (*fault.Pause, error) {
	e, err := w.target(svc)
	if err != nil {
		return nil, err
	}
	return fault.NewPause(e, svc)
}

func stopped(ctx context.Context, svc string) error {
	w := WorldFrom(ctx)
	e, err := w.target(svc)
	if err != nil {
		return err
	}
	f, err := fault.NewStop(e, svc)
	if err != nil {
		return err
	}
	return w.inject(ctx, f, 0)
}

// started heals the kills and stops of the service; a service that went
// down some other way (it exited, an upgrade step stopped its container)
// is started directly.
func started(ctx context.Context, svc string) error {
	w := WorldFrom(ctx)
	s, err := w.service(svc)
	if err != nil {
		return err
	}
	n, err := w.healMatching(ctx, killOrStopOf(svc))
	if err != nil {
		return err
	}
	if n == 0 {
		span := w.Timeline.Begin(timeline.KindEnvironment, svc, "start")
		err = s.Container().Start(ctx)
		span.End(err)
		if err != nil {
			return err
		}
	}
	return w.waitReady(ctx, svc)
}

// waitReady waits until a service that a step started answers its
// healthcheck again (or runs, without one), so the next step meets it up.
func (w *World) waitReady(ctx context.Context, svc string) error {
	s, err := w.service(svc)
	if err != nil {
		return err
	}
	span := w.Timeline.Begin(timeline.KindEnvironment, svc, "ready")
	err = s.WaitReady(ctx)
	span.End(err)
	return err
}

func restarted(ctx context.Context, svc string) error {
	w := WorldFrom(ctx)
	e, err := w.target(svc)
	if err != nil {
		return err
	}
	f, err := fault.NewRestart(e, svc)
	if err != nil {
		return err
	}
	if err := w.inject(ctx, f, 0); err != nil {
		return err
	}
	if err := w.heal(ctx, f); err != nil { // closes the interval: the restart is over
		return err
	}
	return w.waitReady(ctx, svc)
}

func killedDuring(ctx context.Context, svc, step string) error {
	w := WorldFrom(ctx)
	if err := w.checkStepName(step); err != nil {
		return err
	}
	e, err := w.target(svc)
	if err != nil {
		return err
	}
	f, err := fault.NewKill(e, svc)
	if err != nil {
		return err
	}
	return w.arm(step, 0, f)
}

func pausedDuring(ctx context.Context, svc, dur, step string) error {
	w := WorldFrom(ctx)
	if err := w.checkStepName(step); err != nil {
		return err
	}
	d, err := parseDuration(dur)
	if err != nil {
		return err
	}
	f, err := w.newPause(svc)
	if err != nil {
		return err
	}
	return w.arm(step, d, f)
}

// newCut prepares a cut between two services and builds the packet filter
// helper now, so that injecting it later (in an upgrade step's hook) is
// quick.
func (w *World) newCut(ctx context.Context, a, b string) (*fault.Cut, error) {
	e, err := w.pair(a, b)
	if err != nil {
		return nil, err
	}
	c, err := fault.NewCut(e, a, b)
	if err != nil {
		return nil, err
	}
	if _, err := fault.EnsureImage(ctx, e); err != nil {
		return nil, fmt.Errorf("cut %s and %s: %w", a, b, err)
	}
	return c, nil
}

func networkCut(ctx context.Context, a, b string) error {
	w := WorldFrom(ctx)
	c, err := w.newCut(ctx, a, b)
	if err != nil {
		return err
	}
	return w.inject(ctx, c, 0)
}

func networkCutFor(ctx context.Context, a, b, dur string) error {
	w := WorldFrom(ctx)
	d, err := parseDuration(dur)
	if err != nil {
		return err
	}
	c, err := w.newCut(ctx, a, b)
	if err != nil {
		return err
	}
	return w.inject(ctx, c, d)
}

func networkCutDuring(ctx context.Context, a, b, step string) error {
	w := WorldFrom(ctx)
	if err := w.checkStepName(step); err != nil {
		return err
	}
	c, err := w.newCut(ctx, a, b)
	if err != nil {
		return err
	}
	return w.arm(step, 0, c)
}

func networkRestored(ctx context.Context, a, b string) error {
	w := WorldFrom(ctx)
	if _, err := w.environment(); err != nil {
		return err
	}
	n, err := w.healMatching(ctx, betweenPair(a, b))
	if n == 0 && err == nil {
		return fmt.Errorf("the network between %q and %q is neither cut nor degraded: nothing to restore", a, b)
	}
	return err
}

func killedInto(ctx context.Context, svc, delay, step string) error {
	w := WorldFrom(ctx)
	d, err := parseDuration(delay)
	if err != nil {
		return err
	}
	e, err := w.target(svc)
	if err != nil {
		return err
	}
	f, err := fault.NewKill(e, svc)
	if err != nil {
		return err
	}
	return w.armAfter(step, d, 0, f)
}

func pausedInto(ctx context.Context, svc, dur, delay, step string) error {
	w := WorldFrom(ctx)
	d, err := parseDuration(dur)
	if err != nil {
		return err
	}
	after, err := parseDuration(delay)
	if err != nil {
		return err
	}
	f, err := w.newPause(svc)
	if err != nil {
		return err
	}
	return w.armAfter(step, after, d, f)
}

func networkCutInto(ctx context.Context, a, b, delay, step string) error {
	w := WorldFrom(ctx)
	d, err := parseDuration(delay)
	if err != nil {
		return err
	}
	c, err := w.newCut(ctx, a, b)
	if err != nil {
		return err
	}
	return w.armAfter(step, d, 0, c)
}

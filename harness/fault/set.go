package fault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
)

// healTimeout bounds each Heal that a Set runs: HealAll runs at the end of
// a scenario, often with its context already cancelled, and must neither
// give up at once nor hang. It also bounds how long HealAll waits for an
// Inject or a Heal still running on the same fault.
const healTimeout = 2 * time.Minute

// ErrNotInjected is returned by Set.Heal for a fault the Set does not hold:
// one it never injected, or one it healed already.
var ErrNotInjected = errors.New("fault not injected by this set")

// ErrAlreadyInjected is returned by Set.Inject for a fault the Set still
// holds; nothing was done to it.
var ErrAlreadyInjected = errors.New("already injected and not healed")

// Set injects faults, records each as an interval on a timeline (kind
// "fault", from just before Inject to just after the Heal that mends it)
// and heals what is still broken at the end of a scenario. Defer HealAll
// right after creating it. A Set is safe for concurrent use; it belongs to
// one scenario.
type Set struct {
	tl *timeline.Timeline

	mu     sync.Mutex
	active []*injected // in the order injected
}

type injected struct {
	f         Fault
	span      *timeline.Span
	injectErr error
	healErr   error         // the last failed Heal, while the fault is kept
	busy      chan struct{} // non-nil while its Inject or a Heal runs; closed when that ends
	ended     bool          // the span is closed
}

// NewSet returns a Set that records on tl.
func NewSet(tl *timeline.Timeline) *Set {
	if tl == nil {
		tl = timeline.New()
	}
	return &Set{tl: tl}
}

// Inject injects f and opens its interval. A fault that failed to inject
// stays in the Set all the same: it may have broken something half-way,
// and Heal and HealAll mend that too. Injecting a fault the Set still holds
// is ErrAlreadyInjected, and does nothing.
func (s *Set) Inject(ctx context.Context, f Fault) error {
	s.mu.Lock()
	if s.find(f) != nil {
		s.mu.Unlock()
		return fmt.Errorf("inject %s: %w", f.Name(), ErrAlreadyInjected)
	}
	actor := KindFault
	var targets []string
	if t, ok := f.(Targets); ok {
		targets = t.Targets()
	}
	if len(targets) > 0 {
		actor = targets[0]
	}
	span := s.tl.Begin(KindFault, actor, f.Name())
	if len(targets) > 0 {
		span.Set("targets", strings.Join(targets, ","))
	}
	// Busy until f.Inject returns: a HealAll meanwhile waits for it rather
	// than heal before anything is broken and leave what Inject then sets up.
	in := &injected{f: f, span: span, busy: make(chan struct{})}
	s.active = append(s.active, in)
	s.mu.Unlock()
	err := safely(func() error { return f.Inject(ctx) })
	if err != nil {
		err = fmt.Errorf("inject %s: %w", f.Name(), err)
	}
	s.mu.Lock()
	in.injectErr = err
	if err != nil {
		span.Set("inject_error", err)
	}
	s.release(in)
	s.mu.Unlock()
	return err
}

// Heal heals one fault now (a fault for a duration, a cut restored by a
// step) and closes its interval. A fault whose Heal fails stays in the Set,
// still broken, its interval open: Heal may be called again, and HealAll
// retries it. A fault the Set does not hold (never injected, or healed
// already) is ErrNotInjected. A Heal of a fault whose Inject, or another
// Heal, is still running waits for it first.
func (s *Set) Heal(ctx context.Context, f Fault) error {
	s.mu.Lock()
	in := s.find(f)
	for in != nil && in.busy != nil {
		busy := in.busy
		s.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return fmt.Errorf("heal %s: %w", f.Name(), context.Cause(ctx))
		}
		s.mu.Lock()
		in = s.find(f)
	}
	if in == nil {
		s.mu.Unlock()
		return fmt.Errorf("heal %s: %w", f.Name(), ErrNotInjected)
	}
	in.busy = make(chan struct{})
	s.mu.Unlock()
	err := s.heal(ctx, in)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		in.healErr = err
		in.span.Set("heal_error", err)
	} else {
		s.end(in, nil)
	}
	s.release(in)
	return err
}

// HealAll heals every fault still in the Set, the last injected first
// (a fault whose earlier Heal failed among them), and closes their
// intervals. It heals each one whatever happened to the others (an error, a
// panic) and returns every error; a fault it cannot heal either leaves the
// Set, its interval closed with the error. Each heal has its own time limit
// and ignores the cancellation of ctx, which at the end of an interrupted
// scenario is already cancelled. A fault whose Inject (or Heal) is still
// running is waited for, up to the same limit, and healed after it.
// Calling it again heals only what was injected since.
func (s *Set) HealAll(ctx context.Context) error {
	var errs []error
	s.mu.Lock()
	for len(s.active) > 0 {
		in := s.active[len(s.active)-1]
		if busy := in.busy; busy != nil {
			s.mu.Unlock()
			t := time.NewTimer(healTimeout)
			select {
			case <-busy:
				t.Stop()
				s.mu.Lock()
				continue // it may be healed, or others injected, meanwhile
			case <-t.C:
				// Stuck: heal it all the same, concurrently with whatever holds it.
				errs = append(errs, fmt.Errorf("heal %s: still being injected or healed after %v: healing it anyway", in.f.Name(), healTimeout))
			}
			s.mu.Lock()
			if s.find(in.f) != in {
				continue
			}
		}
		s.remove(in)
		s.mu.Unlock()
		err := s.heal(ctx, in)
		if err != nil {
			errs = append(errs, err)
		}
		s.mu.Lock()
		s.end(in, err)
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Active lists the faults injected and not healed yet, in the order
// injected.
func (s *Set) Active() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, len(s.active))
	for i, in := range s.active {
		out[i] = in.f
	}
	return out
}

// find returns f's entry, nil when the Set does not hold it (s.mu held).
func (s *Set) find(f Fault) *injected {
	for _, in := range s.active {
		if in.f == f {
			return in
		}
	}
	return nil
}

// remove takes in out of the Set (s.mu held).
func (s *Set) remove(in *injected) {
	for i, a := range s.active {
		if a == in {
			s.active = append(s.active[:i:i], s.active[i+1:]...)
			return
		}
	}
}

// end removes a healed (or given up) fault and closes its interval (s.mu
// held).
func (s *Set) end(in *injected, err error) {
	s.remove(in)
	if in.ended {
		return
	}
	in.ended = true
	in.span.End(errors.Join(in.injectErr, err))
}

// release marks in as no longer busy and wakes whoever waits for it (s.mu
// held).
func (s *Set) release(in *injected) {
	if in.busy != nil {
		close(in.busy)
		in.busy = nil
	}
}

func (s *Set) heal(ctx context.Context, in *injected) error {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healTimeout)
	defer cancel()
	err := safely(func() error { return in.f.Heal(hctx) })
	if err != nil {
		err = fmt.Errorf("heal %s: %w", in.f.Name(), err)
	}
	return err
}

// safely runs fn, turning a panic into an error, so that one fault's panic
// does not stop the others from being healed.
func safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn()
}

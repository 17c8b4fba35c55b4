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
// give up at once nor hang.
const healTimeout = 2 * time.Minute

// ErrNotInjected is returned by Set.Heal for a fault the Set did not inject.
var ErrNotInjected = errors.New("fault not injected by this set")

// Set injects faults, records each as an interval on a timeline (kind
// "fault", from just before Inject to just after Heal) and heals what is
// still broken at the end of a scenario. Defer HealAll right after creating
// it. A Set is safe for concurrent use; it belongs to one scenario.
type Set struct {
	tl *timeline.Timeline

	mu     sync.Mutex
	active []*injected // in the order injected
}

type injected struct {
	f         Fault
	span      *timeline.Span
	injectErr error
	ended     bool // the span is closed (guarded by Set.mu)
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
// is an error.
func (s *Set) Inject(ctx context.Context, f Fault) error {
	s.mu.Lock()
	for _, in := range s.active {
		if in.f == f {
			s.mu.Unlock()
			return fmt.Errorf("inject %s: already injected and not healed", f.Name())
		}
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
	in := &injected{f: f, span: span}
	s.active = append(s.active, in)
	s.mu.Unlock()
	err := safely(func() error { return f.Inject(ctx) })
	if err != nil {
		err = fmt.Errorf("inject %s: %w", f.Name(), err)
		s.mu.Lock() // a concurrent HealAll may be closing the span
		in.injectErr = err
		if !in.ended {
			span.Set("inject_error", err)
		}
		s.mu.Unlock()
	}
	return err
}

// Heal heals one fault now (a fault for a duration, a cut restored by a
// step) and closes its interval. Healing a fault the Set already healed
// does nothing; one it never injected is ErrNotInjected.
func (s *Set) Heal(ctx context.Context, f Fault) error {
	s.mu.Lock()
	var in *injected
	for i, a := range s.active {
		if a.f == f {
			in = a
			s.active = append(s.active[:i:i], s.active[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if in == nil {
		return fmt.Errorf("heal %s: %w", f.Name(), ErrNotInjected)
	}
	return s.heal(ctx, in)
}

// HealAll heals every fault still injected, the last injected first, and
// closes their intervals. It heals each one whatever happened to the
// others (an error, a panic) and returns every error; each heal has its
// own time limit and ignores the cancellation of ctx, which at the end of
// an interrupted scenario is already cancelled. Calling it again heals
// only what was injected since.
func (s *Set) HealAll(ctx context.Context) error {
	s.mu.Lock()
	todo := s.active
	s.active = nil
	s.mu.Unlock()
	var errs []error
	for i := len(todo) - 1; i >= 0; i-- {
		if err := s.heal(ctx, todo[i]); err != nil {
			errs = append(errs, err)
		}
	}
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

func (s *Set) heal(ctx context.Context, in *injected) error {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healTimeout)
	defer cancel()
	err := safely(func() error { return in.f.Heal(hctx) })
	if err != nil {
		err = fmt.Errorf("heal %s: %w", in.f.Name(), err)
	}
	s.mu.Lock()
	in.ended = true
	in.span.End(errors.Join(in.injectErr, err))
	s.mu.Unlock()
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

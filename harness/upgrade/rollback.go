package upgrade

import (
	"context"
	"errors"
	"fmt"

	"github.com/rehearse/rehearse/harness/env"
)

// ErrNoRollback is wrapped by Rollback's refusal of a package that declares
// no rollback steps: a manifest without rollback:, or a package without a
// manifest (an entry script has no rollback).
var ErrNoRollback = errors.New("package has no rollback steps")

// Rollback runs the package's rollback: steps in order, exactly as Apply
// runs its steps: as their users, in their services (the options' service
// and user for steps that name none), each bounded by its timeout, its
// output streamed to the timeline, the hooks called at each start and end;
// the package is copied into a service that does not hold it yet. It stops
// at the first failing step (Outcome.FailedStep), and runs no cleanup
// steps. Rollback steps are StepResult.Rollback, and their KindStep spans
// and KindStepOutput lines carry the field phase=PhaseRollback.
//
// The signature gate is Apply's: a package Package.Verify did not find
// trusted is refused (ErrUntrusted) unless AllowUnsigned. A package without
// rollback steps is refused with ErrNoRollback. Either refusal comes before
// anything reaches the environment. A step that fails is an Outcome, not an
// error.
func Rollback(ctx context.Context, e *env.Environment, p *Package, opts ...ApplyOption) (*Outcome, error) {
	m := p.manifest
	switch {
	case m == nil:
		return nil, fmt.Errorf("rollback %s: %w: it has no %s, and an entry script declares none", p.Source, ErrNoRollback, ManifestFile)
	case len(m.Rollback) == 0:
		return nil, fmt.Errorf("rollback %s: %w: its %s has no rollback: list", p.Source, ErrNoRollback, ManifestFile)
	}
	o, err := prepare(rollingBack, p, opts)
	if err != nil {
		return nil, err
	}
	out := &Outcome{}
	r := &runner{ctx: ctx, e: e, p: p, o: o, out: out, copied: map[string]bool{}}
	return out, r.run(m.Rollback, phaseRollback)
}

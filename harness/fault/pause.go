package fault

import (
	"context"

	"github.com/rehearse/rehearse/harness/env"
)

// Pause freezes every process of a service (the cgroup freezer): it keeps
// its connections and memory but answers nothing. Heal thaws it.
type Pause struct {
	svc *env.Service
}

// NewPause prepares pausing a service of e. It takes no options.
func NewPause(e *env.Environment, service string, opts ...Option) (*Pause, error) {
	if _, err := apply("pause "+service, opts); err != nil {
		return nil, err
	}
	s, err := lookup(e, "pause", service)
	if err != nil {
		return nil, err
	}
	return &Pause{svc: s}, nil
}

// Name is "pause SVC".
func (p *Pause) Name() string { return "pause " + p.svc.Name }

// Targets is the service paused.
func (p *Pause) Targets() []string { return []string{p.svc.Name} }

// Inject pauses the service.
func (p *Pause) Inject(ctx context.Context) error {
	return p.svc.Container().Pause(ctx)
}

// Heal unpauses the service when it is paused; otherwise (never paused, or
// healed already) it does nothing.
func (p *Pause) Heal(ctx context.Context) error {
	st, err := p.svc.State(ctx)
	if err != nil {
		return err
	}
	if st.Status != "paused" {
		return nil
	}
	return p.svc.Container().Unpause(ctx)
}

package fault

import (
	"context"
	"time"

	"github.com/rehearse/rehearse/harness/env"
)

// Restart stops a service as Stop does and starts it again at once: the
// outage lasts as long as the service takes to go down and come back.
type Restart struct {
	svc     *env.Service
	timeout time.Duration
}

// NewRestart prepares restarting a service of e. It takes WithStopTimeout.
func NewRestart(e *env.Environment, service string, opts ...Option) (*Restart, error) {
	o, err := apply("restart "+service, opts, "stop timeout")
	if err != nil {
		return nil, err
	}
	s, err := lookup(e, "restart", service)
	if err != nil {
		return nil, err
	}
	return &Restart{svc: s, timeout: o.timeout}, nil
}

// Name is "restart SVC".
func (r *Restart) Name() string { return "restart " + r.svc.Name }

// Targets is the service restarted.
func (r *Restart) Targets() []string { return []string{r.svc.Name} }

// Inject restarts the service and returns once it runs again (not
// necessarily healthy yet).
func (r *Restart) Inject(ctx context.Context) error {
	return r.svc.Container().Restart(ctx, r.timeout)
}

// Heal has nothing to mend after a restart that completed; after one that
// stopped the service and failed to start it, it starts it.
func (r *Restart) Heal(ctx context.Context) error {
	return r.svc.Container().Start(ctx)
}

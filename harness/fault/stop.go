package fault

import (
	"context"
	"time"

	"github.com/rehearse/rehearse/harness/env"
)

// Stop stops a service the way `docker stop` does: its stop signal, then a
// kill after the stop timeout. Heal starts it again.
type Stop struct {
	svc     *env.Service
	timeout time.Duration
}

// NewStop prepares stopping a service of e. It takes WithStopTimeout.
func NewStop(e *env.Environment, service string, opts ...Option) (*Stop, error) {
	o, err := apply("stop "+service, opts, "stop timeout")
	if err != nil {
		return nil, err
	}
	s, err := lookup(e, "stop", service)
	if err != nil {
		return nil, err
	}
	return &Stop{svc: s, timeout: o.timeout}, nil
}

// Name is "stop SVC".
func (s *Stop) Name() string { return "stop " + s.svc.Name }

// Targets is the service stopped.
func (s *Stop) Targets() []string { return []string{s.svc.Name} }

// Inject stops the service and returns once it has exited.
func (s *Stop) Inject(ctx context.Context) error {
	return s.svc.Container().Stop(ctx, s.timeout)
}

// Heal starts the service again; starting one that runs does nothing.
func (s *Stop) Heal(ctx context.Context) error {
	return s.svc.Container().Start(ctx)
}

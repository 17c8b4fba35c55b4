package fault

import (
	"context"

	"github.com/rehearse/rehearse/harness/env"
)

// Kill sends a signal to a service's main process. With SIGKILL, the
// default, the container dies; the engine answers the kill once it has
// exited. Heal starts the service again unless it still runs (a signal it
// survived, or a restart policy that brought it back).
type Kill struct {
	svc    *env.Service
	signal string
}

// NewKill prepares killing a service of e. It takes WithSignal.
func NewKill(e *env.Environment, service string, opts ...Option) (*Kill, error) {
	o, err := apply("kill "+service, opts, "signal")
	if err != nil {
		return nil, err
	}
	s, err := lookup(e, "kill", service)
	if err != nil {
		return nil, err
	}
	return &Kill{svc: s, signal: o.signal}, nil
}

// Name is "kill SVC", with the signal when it is not SIGKILL.
func (k *Kill) Name() string {
	if k.signal == "SIGKILL" {
		return "kill " + k.svc.Name
	}
	return "kill " + k.svc.Name + " with " + k.signal
}

// Targets is the service killed.
func (k *Kill) Targets() []string { return []string{k.svc.Name} }

// Inject sends the signal.
func (k *Kill) Inject(ctx context.Context) error {
	return k.svc.Container().Signal(ctx, k.signal)
}

// Heal starts the service again; starting one that runs does nothing.
func (k *Kill) Heal(ctx context.Context) error {
	return k.svc.Container().Start(ctx)
}

// Package fault breaks a rehearsal's services on purpose and mends them
// again: each kind of fault is one small type with Inject and Heal (kill,
// stop, restart, pause, a network cut between two services). A Set records
// every fault it injects as an interval on the timeline and heals them all
// at the end of a scenario, whatever happened.
//
// Faults reach containers only through harness/env (env.Container); network
// faults change the packet filter of a service's own network namespace from
// a short-lived helper container that shares it, so the service itself is
// never given NET_ADMIN.
package fault

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rehearse/rehearse/harness/env"
)

// KindFault is the timeline kind of a fault's interval.
const KindFault = "fault"

// Fault is one thing broken on purpose. Inject breaks it; Heal mends it and
// is safe to call more than once, and after an Inject that failed half-way.
type Fault interface {
	Name() string // for people and the timeline: "kill db", "cut invoicing <-> db"
	Inject(ctx context.Context) error
	Heal(ctx context.Context) error
}

// Targets is implemented by faults that can say which services they touch
// (the first is the one acted on); a Set records them on the timeline.
type Targets interface {
	Targets() []string
}

// Option configures a fault.
type Option func(*options) error

type options struct {
	signal  string
	timeout time.Duration
	both    bool
	cpus    float64  // Squeeze: CPUs left; 0: unchanged (options_resources.go)
	memory  int64    // Squeeze: memory limit in bytes; 0: unchanged
	set     []string // the options given, for refusing ones that do not apply
}

// defaults are every fault's options before any Option.
func defaults() options {
	return options{signal: "SIGKILL", timeout: 10 * time.Second}
}

// WithSignal is the signal Kill sends ("SIGTERM", "HUP", "9"). Default:
// SIGKILL. Kill only.
func WithSignal(signal string) Option {
	return func(o *options) error {
		if signal == "" {
			return fmt.Errorf("signal: empty")
		}
		o.signal = signal
		o.set = append(o.set, "signal")
		return nil
	}
}

// WithStopTimeout is how long Stop and Restart wait for the service to exit
// after its stop signal before killing it. Default: 10s. Stop and Restart
// only.
func WithStopTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("stop timeout %v: negative", d)
		}
		o.timeout = d
		o.set = append(o.set, "stop timeout")
		return nil
	}
}

// WithBothWays filters in both services' namespaces instead of only the
// first's. Default: false. Cut only.
func WithBothWays(both bool) Option {
	return func(o *options) error {
		o.both = both
		o.set = append(o.set, "both ways")
		return nil
	}
}

// apply runs opts over the defaults and refuses an option that the fault
// kind does not take.
func apply(kind string, opts []Option, takes ...string) (options, error) {
	o := defaults()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, fmt.Errorf("%s: %w", kind, err)
		}
	}
	for _, s := range o.set {
		if !slices.Contains(takes, s) {
			return o, fmt.Errorf("%s: the option %q does not apply to it", kind, s)
		}
	}
	return o, nil
}

// lookup finds a running service of the environment.
func lookup(e *env.Environment, kind, name string) (*env.Service, error) {
	if e == nil {
		return nil, fmt.Errorf("%s %s: no environment", kind, name)
	}
	s := e.Service(name)
	if s == nil {
		return nil, fmt.Errorf("%s %s: no service %q in %s", kind, name, name, e.Plan.File)
	}
	return s, nil
}

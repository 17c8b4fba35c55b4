package fault

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/docker/go-units"

	"github.com/rehearse/rehearse/harness/env"
)

// Squeeze lowers a running service's CPU and memory limits in place (the
// engine's resource update: no restart), so it runs slow or short of
// memory, and Heal puts the limits back.
//
// WithCPUs sets a CPU quota: a CPU-bound service gets that share of one
// CPU's time and slows down accordingly. WithMemory sets a hard memory
// limit with no swap. A limit below what the service uses now cannot be
// met by reclaiming alone (anonymous memory, tmpfs files such as a disk's,
// without swap): with cgroup v1, as on Docker 20.10 hosts that have not
// moved to v2, the runtime refuses the update and Inject fails with the
// engine's "unable to set memory limit" error, changing nothing; with
// cgroup v2 the kernel takes the limit and OOM-kills processes of the
// service until it fits (the service may die, and restart if its policy
// says so). Once squeezed, an allocation past the limit gets the
// allocating process OOM-killed (exit 137), in either version.
//
// Heal restores the limits the squeeze changed (memory and swap for
// WithMemory, the CPU quota for WithCPUs; never the others) as Inject read
// them first, through env.Container.Restore: exactly for a limit that was
// set, and for one that was unset (no limit, the usual case) the widest
// the engine takes, which the engine cannot unset again: no memory limit
// for the kernel, a CPU quota of every host CPU.
type Squeeze struct {
	svc    *env.Service
	cpus   float64
	memory int64

	mu    sync.Mutex
	saved *env.Resources // the limits before the first Inject, until healed
}

// NewSqueeze prepares squeezing a service of e. It takes WithCPUs and
// WithMemory, and needs at least one of them.
func NewSqueeze(e *env.Environment, service string, opts ...Option) (*Squeeze, error) {
	o, err := apply("squeeze "+service, opts, "cpus", "memory")
	if err != nil {
		return nil, err
	}
	if o.cpus == 0 && o.memory == 0 {
		return nil, fmt.Errorf("squeeze %s: nothing to squeeze (give WithCPUs, WithMemory or both)", service)
	}
	s, err := lookup(e, "squeeze", service)
	if err != nil {
		return nil, err
	}
	return &Squeeze{svc: s, cpus: o.cpus, memory: o.memory}, nil
}

// Name is "squeeze SVC to 0.1 CPUs, 64MiB" (either part alone when only
// one is squeezed).
func (q *Squeeze) Name() string {
	var to []string
	if q.cpus > 0 {
		to = append(to, strconv.FormatFloat(q.cpus, 'f', -1, 64)+" CPUs")
	}
	if q.memory > 0 {
		to = append(to, units.BytesSize(float64(q.memory)))
	}
	return "squeeze " + q.svc.Name + " to " + strings.Join(to, ", ")
}

// Targets is the service squeezed.
func (q *Squeeze) Targets() []string { return []string{q.svc.Name} }

// Inject reads the service's limits (the first time only, so a second
// Inject still heals to the original) and sets the squeezed ones. A
// failed update changes nothing.
func (q *Squeeze) Inject(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.svc.Container()
	if q.saved == nil {
		r, err := c.Resources(ctx)
		if err != nil {
			return err
		}
		q.saved = &r
	}
	var r env.Resources
	if q.cpus > 0 {
		r.NanoCPUs = int64(math.Round(q.cpus * 1e9))
	}
	if q.memory > 0 {
		r.Memory, r.MemorySwap = q.memory, q.memory
	}
	if err := c.Update(ctx, r); err != nil {
		if q.memory > 0 && strings.Contains(err.Error(), "unable to set memory limit") {
			return fmt.Errorf("%s uses more than %s that the kernel cannot reclaim: %w", q.svc.Name, units.BytesSize(float64(q.memory)), err)
		}
		return err
	}
	return nil
}

// limits are the limits the squeeze changes, and so the only ones Heal
// restores.
func (q *Squeeze) limits() env.Limits {
	var l env.Limits
	if q.cpus > 0 {
		l |= env.CPULimit
	}
	if q.memory > 0 {
		l |= env.MemoryLimits
	}
	return l
}

// Heal puts back the limits read by the first Inject (only those the
// squeeze changes). Healing twice, a
// squeeze never injected, or one whose update failed, changes nothing.
func (q *Squeeze) Heal(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.saved == nil {
		return nil
	}
	c := q.svc.Container()
	same, err := c.Unrestricted(ctx, *q.saved, q.limits())
	if err != nil {
		return err
	}
	if !same {
		if err := c.Restore(ctx, *q.saved, q.limits()); err != nil {
			return err
		}
	}
	q.saved = nil
	return nil
}

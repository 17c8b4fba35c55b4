package fault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/rehearse/rehearse/harness/env"
)

// helper is the filter script in Image.
const helper = "/usr/local/bin/rehearse-netfilter"

// helperCaps are the only capabilities the helper gets.
var helperCaps = []string{"NET_ADMIN"}

// Cut cuts the network between two services A and B and nothing else: a
// third service still reaches both, and A and B still reach everyone
// else. A helper container sharing A's network namespace inserts packet
// filter rules there that drop every packet from A to B and from B to A, so
// connections either way time out (they are dropped, not refused, as in a
// real partition), established ones included. WithBothWays adds the same
// rules in B's namespace, for a cut that holds on both ends.
//
// Every rule carries the comment rehearse-<run>-cut-<id>, so Heal deletes
// exactly the rules of this cut, and Sweep those of the run. Addresses are
// read when the cut is injected; a service that restarts while cut comes
// back with a fresh namespace and so without the rules.
type Cut struct {
	e    *env.Environment
	a, b *env.Service
	both bool
	tag  string

	mu      sync.Mutex
	touched []*env.Service // namespaces where a helper may have added rules
}

// NewCut prepares cutting the network between services a and b of e. It
// takes WithBothWays.
func NewCut(e *env.Environment, a, b string, opts ...Option) (*Cut, error) {
	kind := "cut " + a + " and " + b
	o, err := apply(kind, opts, "both ways")
	if err != nil {
		return nil, err
	}
	if a == b {
		return nil, fmt.Errorf("%s: a service cannot be cut from itself", kind)
	}
	sa, err := lookup(e, "cut", a)
	if err != nil {
		return nil, err
	}
	sb, err := lookup(e, "cut", b)
	if err != nil {
		return nil, err
	}
	return &Cut{e: e, a: sa, b: sb, both: o.both, tag: runTag(e) + "cut-" + newID()}, nil
}

// runTag is the comment prefix of every rule of e's run.
func runTag(e *env.Environment) string { return "rehearse-" + e.RunID + "-" }

// Name is "cut A -> B" (filtered in A) or "cut A <-> B" (in both).
func (c *Cut) Name() string {
	if c.both {
		return "cut " + c.a.Name + " <-> " + c.b.Name
	}
	return "cut " + c.a.Name + " -> " + c.b.Name
}

// Targets are A and B.
func (c *Cut) Targets() []string { return []string{c.a.Name, c.b.Name} }

// Tag is the comment on the cut's filter rules.
func (c *Cut) Tag() string { return c.tag }

// Inject adds the rules, in A's namespace and then (both ways) in B's. The
// helper image is built first if it is missing.
func (c *Cut) Inject(ctx context.Context) error {
	if _, err := EnsureImage(ctx, c.e); err != nil {
		return fmt.Errorf("%s: %w", c.Name(), err)
	}
	if err := c.filter(ctx, c.a, c.b); err != nil {
		return err
	}
	if c.both {
		return c.filter(ctx, c.b, c.a)
	}
	return nil
}

// filter drops, in the namespace of in, every packet to and from peer.
func (c *Cut) filter(ctx context.Context, in, peer *env.Service) error {
	what := fmt.Sprintf("%s: filter in %s", c.Name(), in.Name)
	addrs, err := peer.Addresses(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%s: %s has no address on the run's networks", what, peer.Name)
	}
	cmd := []string{helper, "cut", c.tag}
	for _, a := range addrs {
		cmd = append(cmd, a.IP.String())
	}
	c.mu.Lock()
	c.touched = append(c.touched, in)
	c.mu.Unlock()
	return runHelper(ctx, in, what, cmd)
}

// Heal deletes the cut's rules from every namespace a helper changed. A
// service that is no longer running lost its namespace, and the rules with
// it. Healing twice, or a cut never injected, does nothing.
func (c *Cut) Heal(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	var left []*env.Service
	for _, s := range c.touched {
		if err := unfilter(ctx, s, c.Name(), "heal", c.tag); err != nil {
			errs = append(errs, err)
			left = append(left, s)
		}
	}
	c.touched = left
	return errors.Join(errs...)
}

// unfilter deletes tagged rules (mode heal: exactly tag; sweep: every tag
// that starts with it) from a service's namespace, if it still has one.
func unfilter(ctx context.Context, s *env.Service, name, mode, tag string) error {
	what := fmt.Sprintf("%s: remove filter in %s", name, s.Name)
	st, err := s.State(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !st.Live() {
		return nil
	}
	return runHelper(ctx, s, what, []string{helper, mode, tag})
}

// runHelper runs the filter script in a service's namespace.
func runHelper(ctx context.Context, s *env.Service, what string, cmd []string) error {
	res, err := s.Container().RunInNetns(ctx, Image, cmd, helperCaps)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("%s: %s exited %d: %s", what, cmd[1], res.ExitCode, strings.TrimSpace(res.Stderr+res.Stdout))
	}
	return nil
}

// Rules lists the packet filter rules that network faults of e's run have
// in a service's namespace, as iptables -S prints them: none once every
// fault is healed. It builds the helper image if it is missing.
func Rules(ctx context.Context, e *env.Environment, service string) ([]string, error) {
	s, err := lookup(e, "list rules of", service)
	if err != nil {
		return nil, err
	}
	if _, err := EnsureImage(ctx, e); err != nil {
		return nil, err
	}
	res, err := s.Container().RunInNetns(ctx, Image, []string{helper, "list", runTag(e)}, helperCaps)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("list exited %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	if err != nil {
		return nil, fmt.Errorf("list the fault rules in %s: %w", service, err)
	}
	var rules []string
	for _, line := range strings.Split(res.Stdout, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			rules = append(rules, line)
		}
	}
	return rules, nil
}

// Sweep mends what faults of e's run may have left, without their Set: it
// deletes every filter rule of the run from every running service's
// namespace, unpauses every paused service, deletes every proxy of the
// run's toxiproxy server and every fill file from the services' disks. For
// a teardown that lost track of its faults; a Set's HealAll is the
// ordinary way.
func Sweep(ctx context.Context, e *env.Environment) error {
	if _, err := EnsureImage(ctx, e); err != nil {
		return fmt.Errorf("sweep faults: %w", err)
	}
	var errs []error
	for _, s := range e.Services() {
		st, err := s.State(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.Status == "paused" {
			if err := s.Container().Unpause(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := unfilter(ctx, s, "sweep faults", "sweep", runTag(e)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := sweepProxies(ctx, e); err != nil {
		errs = append(errs, fmt.Errorf("sweep faults: %w", err))
	}
	if err := sweepDisks(ctx, e); err != nil {
		errs = append(errs, fmt.Errorf("sweep faults: %w", err))
	}
	return errors.Join(errs...)
}

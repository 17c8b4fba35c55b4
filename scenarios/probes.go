package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/probe"
)

// The checkers of the probe steps. They live here rather than in
// harness/probe because they are the vocabulary's policy for a compose
// service (which endpoint, which default), and need harness/dataset for a
// PostgreSQL DSN; probe itself stays a package of checkers and analysis
// that knows nothing of compose declarations. Nothing stops a cycle
// (probe imports only env and timeline), so they can move there if library
// users need them.

// probeKind says how a checker reaches its service; an exec probe is slow
// (every sample goes through the engine), the others are not.
type probeKind int

const (
	viaNetwork probeKind = iota
	viaExec
)

// declaredChecker is the service's declared probe (x-rehearse: probe:),
// else its healthcheck command run in the service.
func declaredChecker(e *env.Environment, s *env.Service) (probe.Checker, probeKind, error) {
	sp := e.Plan.Service(s.Name)
	if sp == nil {
		return nil, 0, fmt.Errorf("service %q is not in the plan of %s", s.Name, e.Plan.File)
	}
	if p := sp.Ext.Probe; p != nil {
		switch {
		case p.HTTP != "":
			c, err := httpChecker(e, s, p.HTTP)
			return c, viaNetwork, err
		case p.TCP != 0:
			c, err := tcpChecker(s, s.Name, p.TCP)
			return c, viaNetwork, err
		case p.SQL != "":
			c, err := sqlChecker(e, s, p.SQL)
			return c, viaNetwork, err
		}
	}
	cmd := healthCommand(sp)
	if cmd == nil {
		return nil, 0, fmt.Errorf("service %q declares no probe (x-rehearse: probe: in %s) and has no healthcheck command: "+
			`use Given %q is probed with HTTP "PATH" every DURATION, or with SQL "QUERY"`, s.Name, e.Plan.File, s.Name)
	}
	c, err := probe.Exec(s, cmd...)
	return c, viaExec, err
}

// healthCommand is the command of a service's compose healthcheck, as the
// engine runs it (env.HealthArgv); nil when it has none.
func healthCommand(sp *env.ServicePlan) []string {
	if sp.Health == nil || sp.NoHealth {
		return nil
	}
	return env.HealthArgv(sp.Health.Test, nil)
}

// httpChecker GETs path on the service's first published TCP port, through
// its 127.0.0.1 endpoint.
func httpChecker(e *env.Environment, s *env.Service, path string) (probe.Checker, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("HTTP probe of %q: %q is not a path (it starts with /)", s.Name, path)
	}
	var port string
	if sp := e.Plan.Service(s.Name); sp != nil {
		for _, p := range sp.Ports {
			if p.Protocol == "tcp" || p.Protocol == "" {
				port = p.Key()
				break
			}
		}
	}
	if port == "" {
		return nil, fmt.Errorf("HTTP probe of %q: the service publishes no TCP port (ports: in %s)", s.Name, e.Plan.File)
	}
	ep, err := s.Endpoint(port)
	if err != nil {
		return nil, fmt.Errorf("HTTP probe of %q: %w", s.Name, err)
	}
	return probe.HTTP("http://" + ep + path)
}

func sqlChecker(e *env.Environment, s *env.Service, query string) (probe.Checker, error) {
	if strings.TrimSpace(query) == "" {
		return nil, fmt.Errorf("SQL probe of %q: empty query", s.Name)
	}
	dsn, err := dataset.DSN(e, s.Name, "")
	if err != nil {
		return nil, fmt.Errorf("SQL probe of %q: %w", s.Name, err)
	}
	return probe.SQL(dsn, query)
}

// tcpChecker connects to a container port at the service's address on one
// of the run's networks, from this host, through probe.TCPFunc (the address
// is asked of the engine again after a failed connect: a restarted
// container may get another one).
//
// Why not through the service's 127.0.0.1 endpoint, as every other probe
// goes: that is the port gateway, which accepts a connection even while the
// service is down, so a connect through it would never see an outage (and
// a service probed by TCP often publishes no port at all). Running each
// connect from a helper inside the run's network would cost an engine exec
// per sample, too slow for a probe. So the probe dials the container's
// address directly, which the sandbox rules allow for the run's own
// bridges, but only where it is sure to reach that bridge: the engine must
// be local (DOCKER_HOST unset or a unix socket), and the address must lie
// in the subnet of one of this machine's interfaces, which for a local
// engine is the run's bridge. Otherwise (a remote engine; rehearse in a
// container with the engine's socket mounted, whose bridges are not its
// own) the private address would be routed to whatever this machine's
// network has there, maybe a real host that answers, and the probe would
// report "up": the step, or the sample, fails saying why instead.
func tcpChecker(s addresser, name string, port int) (probe.Checker, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("TCP probe of %q: %d is not a port", name, port)
	}
	if err := engineIsLocal(os.Getenv("DOCKER_HOST")); err != nil {
		return nil, fmt.Errorf("TCP probe of %q: %w", name, err)
	}
	return probe.TCPFunc(fmt.Sprintf("%s:%d", name, port), func(ctx context.Context) (string, error) {
		as, err := s.Addresses(ctx)
		if err != nil {
			return "", err
		}
		var ip netip.Addr
		for _, a := range as {
			if a.IP.Is4() {
				ip = a.IP
				break
			}
		}
		if !ip.IsValid() {
			return "", errors.New("no address on the run's networks (not running)")
		}
		local, err := interfaceAddrs()
		if err != nil {
			return "", fmt.Errorf("the addresses of this machine: %w", err)
		}
		if !onLocalSubnet(ip, local) {
			return "", fmt.Errorf("its address %s is on none of this machine's networks, so it is not the run's bridge (is rehearse running in a container, away from the engine's host?): declare an http or sql probe, which go through 127.0.0.1", ip)
		}
		return net.JoinHostPort(ip.String(), strconv.Itoa(port)), nil
	})
}

// interfaceAddrs lists this machine's interface addresses (a test swaps it).
var interfaceAddrs = net.InterfaceAddrs

// engineIsLocal refuses an engine that is not on this machine: its
// containers' addresses are not on this machine's bridges.
func engineIsLocal(dockerHost string) error {
	if dockerHost == "" || strings.HasPrefix(dockerHost, "unix://") {
		return nil
	}
	return fmt.Errorf("the engine is not local (DOCKER_HOST=%s): a TCP probe dials the container's address on the run's bridge, which is on the engine's machine; declare an http or sql probe, which go through 127.0.0.1", dockerHost)
}

// onLocalSubnet reports whether ip lies in the subnet of one of addrs (this
// machine's interface addresses).
func onLocalSubnet(ip netip.Addr, addrs []net.Addr) bool {
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		p, err := netip.ParsePrefix(n.String())
		if err == nil && p.Masked().Contains(ip) {
			return true
		}
	}
	return false
}

// addresser is what tcpChecker needs of a service.
type addresser interface {
	Addresses(ctx context.Context) ([]env.Address, error)
}

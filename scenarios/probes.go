package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

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
			c, err := tcpChecker(s, p.TCP)
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

// healthCommand is the command of a service's compose healthcheck, nil
// when it has none.
func healthCommand(sp *env.ServicePlan) []string {
	if sp.Health == nil || sp.NoHealth || len(sp.Health.Test) == 0 {
		return nil
	}
	t := sp.Health.Test
	switch t[0] {
	case "CMD":
		if len(t) > 1 {
			return t[1:]
		}
	case "CMD-SHELL":
		if len(t) > 1 {
			return []string{"/bin/sh", "-c", strings.Join(t[1:], " ")}
		}
	}
	return nil // NONE, or a test that only inherits the image's
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
// of the run's networks, from this host (which sits on every run bridge).
// Not through the 127.0.0.1 endpoint: that is the port gateway, which
// accepts a connection even while the service is down (probe.TCPChecker),
// so a probe through it would never see an outage.
func tcpChecker(s *env.Service, port int) (probe.Checker, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("TCP probe of %q: %d is not a port", s.Name, port)
	}
	return &serviceTCP{svc: s, name: s.Name, port: port}, nil
}

// addresser is what serviceTCP needs of a service.
type addresser interface {
	Addresses(ctx context.Context) ([]env.Address, error)
}

// serviceTCP connects to a service's address, asked of the engine on the
// first check and again after a failed one (a restarted container may get
// another address).
type serviceTCP struct {
	svc  addresser
	name string
	port int

	mu   sync.Mutex
	addr string
}

func (c *serviceTCP) String() string { return fmt.Sprintf("tcp %s:%d", c.name, c.port) }

func (c *serviceTCP) Check(ctx context.Context) error {
	c.mu.Lock()
	addr := c.addr
	c.mu.Unlock()
	if addr == "" {
		as, err := c.svc.Addresses(ctx)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.IP.Is4() {
				addr = net.JoinHostPort(a.IP.String(), strconv.Itoa(c.port))
				break
			}
		}
		if addr == "" {
			return errors.New("no address on the run's networks (not running)")
		}
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	c.mu.Lock()
	if err != nil {
		c.addr = "" // ask again next time
	} else {
		c.addr = addr
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("connect %s (%s): %w", addr, c.String(), err)
	}
	return conn.Close()
}

package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// TCPChecker connects to an address and hangs up.
//
// A connect proves that something accepts on the address. Through a run's
// port gateway (a service's 127.0.0.1 endpoint) that something is the
// gateway, which accepts even while the service is down: probe a service's
// listener from inside the run, or use HTTP or SQL, to see the service.
type TCPChecker struct {
	desc    string
	resolve func(context.Context) (string, error) // nil: addr is fixed

	mu   sync.Mutex
	addr string // the address connected to; "" until resolved
}

// TCP returns a checker that connects to addr ("127.0.0.1:5432").
func TCP(addr string) (*TCPChecker, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("tcp probe %q: %w", addr, err)
	}
	return &TCPChecker{desc: "tcp " + addr, addr: addr}, nil
}

// TCPFunc returns a checker that connects to the address resolve returns
// ("172.18.0.3:8080"), for a target whose address can change, such as a
// container that gets a new one when it starts again. resolve is asked on
// the first check and again after every failed one (a failed resolve is a
// failed sample, with its error); an address that answered is reused. desc
// names the target in String ("tcp " + desc).
func TCPFunc(desc string, resolve func(ctx context.Context) (string, error)) (*TCPChecker, error) {
	if resolve == nil {
		return nil, errors.New("tcp probe " + desc + ": no resolver")
	}
	return &TCPChecker{desc: "tcp " + desc, resolve: resolve}, nil
}

// String describes the check.
func (c *TCPChecker) String() string { return c.desc }

// Check connects once.
func (c *TCPChecker) Check(ctx context.Context) error {
	c.mu.Lock()
	addr := c.addr
	c.mu.Unlock()
	if addr == "" {
		a, err := c.resolve(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", c.desc, err)
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%s: resolved %q: %w", c.desc, a, err)
		}
		addr = a
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if c.resolve != nil {
		c.mu.Lock()
		if err != nil {
			c.addr = "" // ask again next time
		} else {
			c.addr = addr
		}
		c.mu.Unlock()
	}
	if err != nil {
		if c.resolve != nil {
			return fmt.Errorf("connect %s (%s): %w", addr, c.desc, err)
		}
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	return conn.Close()
}

package probe

import (
	"context"
	"fmt"
	"net"
)

// TCPChecker connects to an address and hangs up.
//
// A connect proves that something accepts on the address. Through a run's
// port gateway (a service's 127.0.0.1 endpoint) that something is the
// gateway, which accepts even while the service is down: probe a service's
// listener from inside the run, or use HTTP or SQL, to see the service.
type TCPChecker struct {
	addr string
}

// TCP returns a checker that connects to addr ("127.0.0.1:5432").
func TCP(addr string) (*TCPChecker, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("tcp probe %q: %w", addr, err)
	}
	return &TCPChecker{addr: addr}, nil
}

// String describes the check.
func (c *TCPChecker) String() string { return "tcp " + c.addr }

// Check connects once.
func (c *TCPChecker) Check(ctx context.Context) error {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("connect %s: %w", c.addr, err)
	}
	return conn.Close()
}

package probe

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// A TCPFunc checker asks its resolver on the first check and after a failed
// one, and reuses an address that answered.
func TestTCPFunc(t *testing.T) {
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		return ln
	}
	ln := listen()
	addr, asked := ln.Addr().String(), 0
	var resolveErr error
	c, err := TCPFunc("db:5432", func(context.Context) (string, error) {
		asked++
		return addr, resolveErr
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != "tcp db:5432" {
		t.Errorf("String() = %q", c.String())
	}
	ctx := context.Background()
	for range 3 {
		if err := c.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if asked != 1 {
		t.Errorf("resolved %d times for three good checks, want 1", asked)
	}
	// The service goes away: the check fails and the next one asks again.
	ln.Close()
	if err := c.Check(ctx); err == nil || !strings.Contains(err.Error(), "connect "+addr+" (tcp db:5432)") {
		t.Errorf("connect to a closed port: %v", err)
	}
	// It comes back elsewhere.
	ln = listen()
	defer ln.Close()
	addr = ln.Addr().String()
	if err := c.Check(ctx); err != nil {
		t.Errorf("after a move: %v", err)
	}
	if asked != 2 {
		t.Errorf("resolved %d times, want 2", asked)
	}
	// A resolver that fails is a failed sample saying why.
	c2, _ := TCPFunc("db:5432", func(context.Context) (string, error) { return "", errors.New("not running") })
	if err := c2.Check(ctx); err == nil || err.Error() != "tcp db:5432: not running" {
		t.Errorf("failed resolve: %v", err)
	}
	c3, _ := TCPFunc("db", func(context.Context) (string, error) { return "10.0.0.1", nil })
	if err := c3.Check(ctx); err == nil || !strings.Contains(err.Error(), `resolved "10.0.0.1"`) {
		t.Errorf("an address without a port: %v", err)
	}
	if _, err := TCPFunc("db", nil); err == nil {
		t.Error("no resolver accepted")
	}
}

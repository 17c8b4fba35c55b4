package env

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// A health check through the engine's exec API is not free: on the 2-core
// CI machine one pg_isready took 136 ms of wall time and about 140 ms of
// the engine's CPU (dockerd, containerd, shims), and 0.9 s of wall time
// under heavy load (BenchmarkHealthCheckExec): CPU a starting database
// needs itself. A service that declares a probe the harness can
// run from this host (x-rehearse probe: http or sql) is polled that way
// instead, through its 127.0.0.1 endpoint at the gateway, and its
// healthcheck runs only once the probe passes (to confirm: both must
// pass). That also keeps a check that passes against a database's
// temporary init server (a plain pg_isready on the Unix socket, while TCP
// is still refused) from counting. A probe that never passes while the
// healthcheck would leaves readiness to the engine's own health status, at
// its interval. A probe the gateway cannot carry yet (it is still
// starting) leaves the exec schedule as it is.
const presignalMax = time.Second // the longest one pre-signal may take

// presignal is a cheap host-side sign that a service is up.
type presignal func(ctx context.Context) error

// presignal returns the service's declared probe as a host-side check, or
// nil when it declares none that runs from this host (tcp: the gateway
// accepts a connection even while the service is down) or its endpoint is
// not published yet.
func (e *Environment) presignal(sp *ServicePlan) presignal {
	p := sp.Ext.Probe
	if p == nil || (p.HTTP == "" && p.SQL == "") {
		return nil
	}
	ep := e.firstEndpoint(sp)
	if ep == "" {
		return nil
	}
	if p.HTTP != "" {
		url := "http://" + ep + p.HTTP
		hc := &http.Client{
			Timeout: presignalMax,
			// Its own transport, never http.DefaultTransport's pool: no
			// proxy from the environment, and no idle connection kept
			// through the gateway into the rehearsal, where it would
			// disturb what faults measure.
			Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		return func(ctx context.Context) error { return httpUp(ctx, hc, url) }
	}
	// The official image's defaults: the user postgres, and a database
	// named for the user. Asking for a database that exists keeps the
	// server's log free of "database does not exist".
	user := sp.Env["POSTGRES_USER"]
	if user == "" {
		user = "postgres"
	}
	db := sp.Env["POSTGRES_DB"]
	if db == "" {
		db = user
	}
	return func(ctx context.Context) error { return pgUp(ctx, ep, user, db) }
}

// firstEndpoint is the 127.0.0.1 endpoint of the service's first published
// TCP port, "" before the gateway publishes it.
func (e *Environment) firstEndpoint(sp *ServicePlan) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range sp.Ports {
		if p.Protocol == "tcp" {
			return e.endpoints[sp.Name][p.Key()]
		}
	}
	return ""
}

// httpUp GETs url: any 2xx or 3xx answer is up.
func httpUp(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// cannotConnectNow is PostgreSQL's SQLSTATE for a server that is starting
// up, shutting down or in recovery.
const cannotConnectNow = "57P03"

// pgUp asks PostgreSQL at addr whether it accepts connections, as
// pg_isready does (libpq's PQping): it sends a startup message and reads
// the first answer. An authentication request, or any error but
// cannotConnectNow, is a server that accepts connections; the connection
// is closed before any authentication, which the server does not log.
// user and database are the startup message's.
func pgUp(ctx context.Context, addr, user, database string) error {
	ctx, cancel := context.WithTimeout(ctx, presignalMax)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": user, "database": database}})
	if err := fe.Flush(); err != nil {
		return err
	}
	msg, err := fe.Receive()
	if err != nil {
		return err
	}
	switch m := msg.(type) {
	case *pgproto3.ErrorResponse:
		if m.Code == cannotConnectNow {
			return errors.New("postgresql: " + strings.TrimSpace(m.Message))
		}
		return nil
	case *pgproto3.AuthenticationOk, *pgproto3.AuthenticationCleartextPassword, *pgproto3.AuthenticationMD5Password,
		*pgproto3.AuthenticationSASL, *pgproto3.AuthenticationGSS:
		return nil
	}
	return fmt.Errorf("postgresql: unexpected first message %T", msg)
}

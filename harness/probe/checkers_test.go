package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/env"
)

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"status":"ok"}`))
		case "/moved":
			http.Redirect(w, r, "/missing", http.StatusFound) // followed, it would be a 404
		case "/slow":
			time.Sleep(80 * ms)
			w.Write([]byte("ok"))
		case "/broken":
			http.Error(w, "db down", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		path string
		opts []HTTPOption
		want error // nil: ok
	}{
		{"2xx", "/ok", nil, nil},
		{"3xx is an answer, not followed", "/moved", nil, nil},
		{"5xx", "/broken", nil, ErrStatus},
		{"404", "/missing", nil, ErrStatus},
		{"expected status", "/broken", []HTTPOption{WithStatus(503)}, nil},
		{"expected status missed", "/ok", []HTTPOption{WithStatus(204)}, ErrStatus},
		{"body matches", "/ok", []HTTPOption{WithBody(`"ok"`)}, nil},
		{"body does not match", "/ok", []HTTPOption{WithBody("healthy")}, ErrBody},
		{"within the latency bound", "/slow", []HTTPOption{WithMaxLatency(time.Second)}, nil},
		{"slower than the bound", "/slow", []HTTPOption{WithMaxLatency(20 * ms)}, ErrSlow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := HTTP(srv.URL+tc.path, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Check(context.Background())
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("check: %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), srv.URL+tc.path) {
				t.Errorf("error %q does not name the URL", err)
			}
		})
	}
	t.Run("a failing status carries the body's reason", func(t *testing.T) {
		c, _ := HTTP(srv.URL + "/broken")
		defer c.Close()
		if err := c.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "503: db down") {
			t.Errorf("check: %v, want the status and the body's reason", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		c, _ := HTTP(srv.URL + "/slow")
		ctx, cancel := context.WithTimeout(context.Background(), 10*ms)
		defer cancel()
		if err := c.Check(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("check: %v, want a deadline error", err)
		}
	})
	for _, tc := range []struct {
		url  string
		opts []HTTPOption
		err  string
	}{
		{"127.0.0.1:80/health", nil, "first path segment"},
		{"localhost/health", nil, "want an http:// or https:// URL"},
		{"ftp://127.0.0.1/", nil, "want an http:// or https:// URL"},
		{"http://", nil, "with a host"},
		{"http://127.0.0.1/%zz", nil, "invalid URL escape"},
		{"http://127.0.0.1/", []HTTPOption{WithStatus(42)}, "http status 42: not a status"},
		{"http://127.0.0.1/", []HTTPOption{WithBody("")}, "body match: empty"},
		{"http://127.0.0.1/", []HTTPOption{WithMaxLatency(0)}, "latency bound 0s"},
	} {
		if _, err := HTTP(tc.url, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("HTTP(%q): %v, want an error saying %q", tc.url, err, tc.err)
		}
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c, err := TCP(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(context.Background()); err != nil {
		t.Errorf("connect to a listener: %v", err)
	}
	ln.Close()
	if err := c.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "connect "+addr) {
		t.Errorf("connect to a closed port: %v", err)
	}
	if _, err := TCP("127.0.0.1"); err == nil {
		t.Error("an address without a port")
	}
}

// execer answers Exec as a service would.
type execer struct {
	res env.ExecResult
	err error
	got []string
}

func (e *execer) Exec(_ context.Context, cmd []string, _ ...env.ExecOption) (env.ExecResult, error) {
	e.got = cmd
	return e.res, e.err
}

var _ Execer = (*env.Service)(nil)

func TestExec(t *testing.T) {
	engineDown := errors.New("engine down")
	for _, tc := range []struct {
		name string
		svc  *execer
		want error
		text string
	}{
		{"exit 0", &execer{}, nil, ""},
		{"exit 1", &execer{res: env.ExecResult{ExitCode: 1, Stderr: "pg_isready: no response\n"}}, ErrExit, "exit 1: pg_isready: no response"},
		{"exit 2, output on stdout", &execer{res: env.ExecResult{ExitCode: 2, Stdout: "unhealthy"}}, ErrExit, "exit 2: unhealthy"},
		{"exec fails", &execer{err: engineDown}, engineDown, `run "pg_isready -q"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Exec(tc.svc, "pg_isready", "-q")
			if err != nil {
				t.Fatal(err)
			}
			err = c.Check(context.Background())
			if tc.want == nil && err != nil || tc.want != nil && (!errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text)) {
				t.Errorf("check: %v, want %v saying %q", err, tc.want, tc.text)
			}
			if strings.Join(tc.svc.got, " ") != "pg_isready -q" {
				t.Errorf("ran %q", tc.svc.got)
			}
		})
	}
	if _, err := Exec(&execer{}); err == nil {
		t.Error("an exec probe without a command")
	}
	if _, err := Exec(nil, "true"); err == nil {
		t.Error("an exec probe without a service")
	}
}

func TestSQLErrors(t *testing.T) {
	if _, err := SQL("postgres://127.0.0.1:5432/db", ""); err == nil {
		t.Error("an SQL probe without a query")
	}
	if _, err := SQL("postgres://u:p@127.0.0.1:notaport/db", "SELECT 1"); err == nil {
		t.Error("an SQL probe with a malformed DSN")
	}
	// a port nothing listens on: the check fails, naming the query
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := SQL("postgres://u:p@"+addr+"/db?sslmode=disable", "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Check(ctx); err == nil || !strings.Contains(err.Error(), `sql "SELECT 1"`) {
		t.Errorf("check against a closed port: %v", err)
	}
}

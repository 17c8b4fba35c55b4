package env

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// fakePostgres answers every connection's startup message with answer.
func fakePostgres(t *testing.T, answer pgproto3.BackendMessage) string {
	t.Helper()
	return fakePostgresSeen(t, answer, nil)
}

// fakePostgresSeen is fakePostgres sending each startup message's
// parameters to seen (when not nil).
func fakePostgresSeen(t *testing.T, answer pgproto3.BackendMessage, seen chan<- map[string]string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				be := pgproto3.NewBackend(c, c)
				msg, err := be.ReceiveStartupMessage()
				if err != nil {
					return
				}
				if sm, ok := msg.(*pgproto3.StartupMessage); ok && seen != nil {
					seen <- sm.Parameters
				}
				be.Send(answer)
				be.Flush()
			}()
		}
	}()
	return l.Addr().String()
}

func TestPgUp(t *testing.T) {
	tests := []struct {
		name   string
		answer pgproto3.BackendMessage
		up     bool
	}{
		{"asks for a password", &pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}}, true},
		{"trusts", &pgproto3.AuthenticationOk{}, true},
		{"starting up", &pgproto3.ErrorResponse{Severity: "FATAL", Code: "57P03", Message: "the database system is starting up"}, false},
		{"no such role", &pgproto3.ErrorResponse{Severity: "FATAL", Code: "28000", Message: "role does not exist"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pgUp(context.Background(), fakePostgres(t, tt.answer), "postgres", "postgres")
			if (err == nil) != tt.up {
				t.Errorf("pgUp = %v, want up %v", err, tt.up)
			}
		})
	}
	// Nothing listening: down.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if err := pgUp(context.Background(), addr, "postgres", "postgres"); err == nil {
		t.Error("pgUp with nothing listening = nil")
	}
}

func TestHTTPUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/moved":
			http.Redirect(w, r, "/down", http.StatusFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, up := range map[string]bool{"/ok": true, "/moved": true, "/down": false} {
		if err := httpUp(context.Background(), hc, srv.URL+path); (err == nil) != up {
			t.Errorf("httpUp(%s) = %v, want up %v", path, err, up)
		}
	}
}

func TestPresignalChoice(t *testing.T) {
	e := &Environment{endpoints: map[string]map[string]string{"db": {"5432/tcp": "127.0.0.1:1"}, "web": {"80/tcp": "127.0.0.1:2"}}}
	tests := []struct {
		name string
		sp   *ServicePlan
		want bool
	}{
		{"sql", &ServicePlan{Name: "db", Ports: []Port{{5432, "tcp"}}, Ext: Extension{Probe: &ProbeSpec{SQL: "SELECT 1"}}}, true},
		{"http", &ServicePlan{Name: "web", Ports: []Port{{80, "tcp"}}, Ext: Extension{Probe: &ProbeSpec{HTTP: "/health"}}}, true},
		{"tcp: the gateway always accepts", &ServicePlan{Name: "web", Ports: []Port{{80, "tcp"}}, Ext: Extension{Probe: &ProbeSpec{TCP: 80}}}, false},
		{"no probe", &ServicePlan{Name: "web", Ports: []Port{{80, "tcp"}}}, false},
		{"not published yet", &ServicePlan{Name: "api", Ports: []Port{{80, "tcp"}}, Ext: Extension{Probe: &ProbeSpec{HTTP: "/"}}}, false},
		{"udp only", &ServicePlan{Name: "web", Ports: []Port{{80, "udp"}}, Ext: Extension{Probe: &ProbeSpec{HTTP: "/"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.presignal(tt.sp) != nil; got != tt.want {
				t.Errorf("presignal = %v, want %v", got, tt.want)
			}
		})
	}
}

// The sql pre-signal asks for a database that exists: POSTGRES_DB, or the
// one the official image names for the user.
func TestPresignalPgDatabase(t *testing.T) {
	tests := []struct {
		env        map[string]string
		user, want string
	}{
		{map[string]string{"POSTGRES_USER": "app", "POSTGRES_DB": "ledger"}, "app", "ledger"},
		{map[string]string{"POSTGRES_USER": "app"}, "app", "app"},
		{nil, "postgres", "postgres"},
	}
	for _, tt := range tests {
		seen := make(chan map[string]string, 1)
		addr := fakePostgresSeen(t, &pgproto3.AuthenticationOk{}, seen)
		e := &Environment{endpoints: map[string]map[string]string{"db": {"5432/tcp": addr}}}
		pre := e.presignal(&ServicePlan{Name: "db", Env: tt.env, Ports: []Port{{5432, "tcp"}}, Ext: Extension{Probe: &ProbeSpec{SQL: "SELECT 1"}}})
		if err := pre(context.Background()); err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		if p := <-seen; p["user"] != tt.user || p["database"] != tt.want {
			t.Errorf("env %v: startup parameters %v, want user %s database %s", tt.env, p, tt.user, tt.want)
		}
	}
}

// The http pre-signal keeps no connection open through the gateway: each
// probe's connection is closed once it answered.
func TestPresignalHTTPKeepsNoConnection(t *testing.T) {
	var mu sync.Mutex
	open, opened := 0, 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open++
			opened++
		case http.StateClosed, http.StateHijacked:
			open--
		}
	}
	srv.Start()
	defer srv.Close()
	e := &Environment{endpoints: map[string]map[string]string{"web": {"80/tcp": srv.Listener.Addr().String()}}}
	pre := e.presignal(&ServicePlan{Name: "web", Ports: []Port{{80, "tcp"}}, Ext: Extension{Probe: &ProbeSpec{HTTP: "/health"}}})
	for range 2 {
		if err := pre(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// The server sees the close a moment after the client made it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		o, n := open, opened
		mu.Unlock()
		if o == 0 && n == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections opened, %d still open; want 2, each closed", n, o)
		}
	}
}

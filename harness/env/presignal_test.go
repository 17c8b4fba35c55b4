package env

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// fakePostgres answers every connection's startup message with answer.
func fakePostgres(t *testing.T, answer pgproto3.BackendMessage) string {
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
				if _, err := be.ReceiveStartupMessage(); err != nil {
					return
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
			err := pgUp(context.Background(), fakePostgres(t, tt.answer), "postgres")
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
	if err := pgUp(context.Background(), addr, "postgres"); err == nil {
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

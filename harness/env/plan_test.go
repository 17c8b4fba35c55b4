package env

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func loadPlan(t testing.TB, file string) (*Plan, error) {
	t.Helper()
	return LoadPlan(context.Background(), file)
}

func TestPlanRejects(t *testing.T) {
	tests := []struct {
		file    string
		sandbox bool     // errors.Is(err, ErrSandbox)
		want    []string // substrings of the message
	}{
		{"privileged.yaml", true, []string{"testdata/privileged.yaml:4", "services.app.privileged", `"app"`}},
		{"socket.yaml", true, []string{"testdata/socket.yaml:4", "services.app.volumes", "Docker socket", `"app"`}},
		{"hostnet.yaml", true, []string{"testdata/hostnet.yaml:4", "services.app.network_mode", `"app"`}},
		{"bind-outside.yaml", true, []string{"testdata/bind-outside.yaml:4", "services.app.volumes", `"/etc"`, "outside the project", `"app"`}},
		{"pid-host.yaml", true, []string{"testdata/pid-host.yaml:4", "services.app.pid"}},
		{"malformed.yaml", false, []string{"testdata/malformed.yaml:4:", "did not find expected"}},
		{"unknown-dep.yaml", false, []string{"testdata/unknown-dep.yaml:4", "services.app.depends_on", `"ghost"`}},
		{"missing-context.yaml", false, []string{"testdata/missing-context.yaml:3", "services.app.build", "no-such-dir"}},
		{"bad-extension.yaml", false, []string{"testdata/bad-extension.yaml:4", "services.app.x-rehearse", "egres"}},
		{"healthy-without-check.yaml", false, []string{"testdata/healthy-without-check.yaml:5", "services.app.depends_on.base", "no healthcheck"}},
		{"cycle.yaml", false, []string{"testdata/cycle.yaml", "dependency cycle"}},
		{"no-such-file.yaml", false, []string{"testdata/no-such-file.yaml", "does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := loadPlan(t, filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatal("planned without error")
			}
			if got := errors.Is(err, ErrSandbox); got != tt.sandbox {
				t.Errorf("errors.Is(err, ErrSandbox) = %v, want %v (%v)", got, tt.sandbox, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n"); n > 0 {
				t.Errorf("error spans %d lines, want one: %q", n+1, err)
			}
		})
	}
}

func TestPlanSandboxDefaults(t *testing.T) {
	p, err := loadPlan(t, filepath.Join("testdata", "bind-inside.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	app := p.Service("app")
	if len(app.Ports) != 1 || app.Ports[0].Key() != "80/tcp" {
		t.Errorf("ports = %+v, want 80/tcp (the host address and port are the sandbox's to choose)", app.Ports)
	}
	if !app.Ext.Egress || app.Ext.Init != "systemd" {
		t.Errorf("extension = %+v", app.Ext)
	}
	if _, ok := app.Tmpfs["/run"]; !ok {
		t.Errorf("systemd host without tmpfs /run: %v", app.Tmpfs)
	}
	if _, ok := app.Tmpfs["/run/lock"]; !ok {
		t.Errorf("systemd host without tmpfs /run/lock: %v", app.Tmpfs)
	}
	if app.StopSignal != "SIGRTMIN+3" {
		t.Errorf("stop signal = %q", app.StopSignal)
	}
	if len(app.Mounts) != 1 || app.Mounts[0].Type != "bind" || !app.Mounts[0].ReadOnly {
		t.Errorf("mounts = %+v", app.Mounts)
	}
}

func TestPlanBillingWorld(t *testing.T) {
	p, err := loadPlan(t, filepath.Join("..", "..", "fixtures", "billing", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	db, billing := p.Service("db"), p.Service("billing")
	if db == nil || billing == nil {
		t.Fatalf("services = %v", p.Services)
	}
	if billing.DependsOn["db"] != ConditionHealthy {
		t.Errorf("billing depends on db with %q", billing.DependsOn["db"])
	}
	if db.Image.Build == nil || billing.Image.Build == nil || len(billing.Image.Go) != 1 {
		t.Errorf("images: db %+v billing %+v", db.Image, billing.Image)
	}
	if got := p.Volumes; len(got) != 1 || got[0] != "dbdata" {
		t.Errorf("volumes = %v", got)
	}
}

func TestRunID(t *testing.T) {
	for _, id := range []string{"r1", "nightly-2026.11.28_a"} {
		if err := ValidRunID(id); err != nil {
			t.Errorf("ValidRunID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "Upper", "-lead", "has space", strings.Repeat("x", 41)} {
		if err := ValidRunID(id); err == nil {
			t.Errorf("ValidRunID(%q) accepted", id)
		}
	}
	if a, b := NewRunID(), NewRunID(); a == b || ValidRunID(a) != nil {
		t.Errorf("NewRunID gave %q and %q", a, b)
	}
}

package env

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/rehearse/rehearse/harness/runs"
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
		{"socket.yaml", true, []string{"testdata/socket.yaml:5", "services.app.volumes[0]", "Docker socket", `"app"`}},
		{"hostnet.yaml", true, []string{"testdata/hostnet.yaml:4", "services.app.network_mode", `"app"`}},
		{"bind-outside.yaml", true, []string{"testdata/bind-outside.yaml:5", "services.app.volumes[0]", `"/etc"`, "outside the project", `"app"`}},
		{"pid-host.yaml", true, []string{"testdata/pid-host.yaml:4", "services.app.pid"}},
		{"malformed.yaml", false, []string{"testdata/malformed.yaml:4:", "did not find expected"}},
		{"unknown-dep.yaml", false, []string{"testdata/unknown-dep.yaml:4", "services.app.depends_on", `"ghost"`}},
		{"missing-context.yaml", false, []string{"testdata/missing-context.yaml:3", "services.app.build", "no-such-dir"}},
		{"bad-extension.yaml", false, []string{"testdata/bad-extension.yaml:4", "services.app.x-rehearse", "egres"}},
		{"healthy-without-check.yaml", false, []string{"testdata/healthy-without-check.yaml:5", "services.app.depends_on.base", "no healthcheck"}},
		{"cycle.yaml", false, []string{"testdata/cycle.yaml:4: services.a.depends_on:", "dependency cycle: a -> b -> a"}},
		{"rehearse-label.yaml", true, []string{"testdata/rehearse-label.yaml:4: services.app.labels:", "rehearse.run", `"app"`}},
		{"context-outside.yaml", true, []string{"testdata/context-outside.yaml:4: services.app.build.context:", "outside the project directory"}},
		{"go-main-outside.yaml", true, []string{"testdata/go-main-outside.yaml:6: services.app.x-rehearse.go[0].main:", `go main "/etc" is outside`, `"app"`}},
		{"go-main-symlink.yaml", true, []string{"testdata/go-main-symlink.yaml:6: services.app.x-rehearse.go[0].main:", "escape", "outside the project directory"}},
		{"none-egress.yaml", false, []string{"testdata/none-egress.yaml:6: services.app.x-rehearse.egress:", "network_mode: none"}},
		{"unhonoured-key.yaml", false, []string{"testdata/unhonoured-key.yaml:4: services.app.mem_limit:", "mem_limit is not honoured by rehearse", `"app"`}},
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

func TestPlanHonoured(t *testing.T) {
	p, err := loadPlan(t, filepath.Join("testdata", "honoured.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	app, offline := p.Service("app"), p.Service("offline")
	checks := []struct {
		what string
		ok   bool
	}{
		{"restart", app.Restart == "on-failure:3"},
		{"init", app.Init},
		{"read_only", app.ReadOnly},
		{"shm_size", app.ShmSize == 64<<20},
		{"stdin_open and tty", app.StdinOpen && app.Tty},
		{"expose", fmt.Sprint(app.Expose) == "[{3000 tcp} {5000 udp} {5001 udp}]"},
		{"cap_add", fmt.Sprint(app.CapAdd) == "[NET_ADMIN]"},
		{"security_opt", fmt.Sprint(app.SecurityOpt) == "[no-new-privileges:true]"},
		{"sysctls", app.Sysctls["net.core.somaxconn"] == "1024"},
		{"container_name as alias", slices.Contains(app.Networks["default"], "frontend")},
		{"healthcheck disable", app.NoHealth && app.Health == nil},
		{"tmpfs volume options", app.Tmpfs["/scratch"] == "size=1048576,mode=1777"},
		{"network_mode none", offline.NoNetwork && len(offline.Networks) == 0},
		{"plan networks", fmt.Sprint(p.Networks) == "[default]"},
		{"plan volumes", fmt.Sprint(p.Volumes) == "[app.anon0 data]"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s not planned: %+v", c.what, app)
		}
	}
	dir, _ := filepath.Abs("testdata")
	want := []Mount{
		{Type: "volume", Source: "app.anon0", Target: "/app/node_modules", Anonymous: true},
		{Type: "volume", Source: "data", Target: "/data", NoCopy: true},
		{Type: "bind", Source: filepath.Join(dir, "honoured", "password.txt"), Target: "/run/secrets/pw", ReadOnly: true},
		{Type: "bind", Source: filepath.Join(dir, "honoured", "app.conf"), Target: "/etc/app.conf", ReadOnly: true},
	}
	if !reflect.DeepEqual(app.Mounts, want) {
		t.Errorf("mounts =\n%+v\nwant\n%+v", app.Mounts, want)
	}
}

func TestPlanAnonymousVolumes(t *testing.T) {
	p, err := loadPlan(t, filepath.Join("testdata", "anonymous.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(p.Volumes); got != "[app.anon0 app.anon1]" {
		t.Errorf("volumes = %s, want one per anonymous volume", got)
	}
	for _, m := range p.Service("app").Mounts {
		if !m.Anonymous || m.Type != "volume" {
			t.Errorf("mount %+v is not an anonymous volume", m)
		}
	}
}

// A project built in memory has not been through the loader's cycle check;
// NewPlan asks compose-go's graph.
func TestPlanCycleInMemory(t *testing.T) {
	dep := func(on string) types.DependsOnConfig {
		return types.DependsOnConfig{on: {Condition: ConditionStarted, Required: true}}
	}
	p := &types.Project{Name: "p", WorkingDir: t.TempDir(), Services: types.Services{}}
	for name, on := range map[string]string{"a": "b", "b": "c", "c": "a"} {
		s := types.ServiceConfig{Name: name}
		s.Image, s.DependsOn = "debian:bookworm-slim", dep(on)
		p.Services[name] = s
	}
	_, err := NewPlan("compose.yaml", p)
	if err == nil || !strings.Contains(err.Error(), "services.a.depends_on: dependency cycle: a -> b -> c -> a") {
		t.Fatalf("NewPlan = %v, want the cycle named at services.a.depends_on", err)
	}
}

// The sandbox's labels win over anything in the plan, even a plan that did
// not come through the sandbox's checks.
func TestContainerLabelsSandboxLast(t *testing.T) {
	e := &Environment{RunID: "r1", owner: runs.Owner{Host: "h", PID: 7}, Plan: &Plan{Project: "p"}}
	sp := &ServicePlan{Name: "app", Labels: map[string]string{
		runs.LabelRun: "other", runs.LabelOwner: "x/1", LabelService: "db",
		"com.docker.compose.project": "q", "team": "billing",
	}}
	got := e.containerLabels(sp)
	want := map[string]string{runs.LabelRun: "r1", runs.LabelOwner: "h/7", LabelService: "app",
		"com.docker.compose.project": "p", "com.docker.compose.service": "app", "team": "billing"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q", k, got[k], v)
		}
	}
}

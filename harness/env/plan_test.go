package env

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

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
		{"healthy-on-none.yaml", false, []string{"testdata/healthy-on-none.yaml:5", "services.app.depends_on.base", `service "base" has no healthcheck (it is disabled)`}},
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

// test: ["NONE"] is no healthcheck (waitReady must not wait for one), and
// settings without a test keep them, for the engine to merge with the
// image's HEALTHCHECK.
func TestPlanHealthcheckForms(t *testing.T) {
	p, err := loadPlan(t, filepath.Join("testdata", "healthcheck-forms.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if none := p.Service("none"); none.Health != nil || !none.NoHealth {
		t.Errorf("NONE: Health %+v, NoHealth %v; want nil, true", none.Health, none.NoHealth)
	}
	if in := p.Service("inherits"); in.NoHealth || in.Health == nil || len(in.Health.Test) != 0 || in.Health.Interval != 7*time.Second || in.Health.Timeout != 3*time.Second {
		t.Errorf("no test: Health %+v, NoHealth %v; want the interval and timeout, no test", in.Health, in.NoHealth)
	}
	if own := p.Service("own"); own.NoHealth || own.Health == nil || !slices.Equal(own.Health.Test, []string{"CMD", "true"}) {
		t.Errorf("own test: Health %+v, NoHealth %v", own.Health, own.NoHealth)
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

// layout writes files under a temporary root: name -> content, or
// "-> target" for a symbolic link, or "/" at the end of a name for a
// directory. It returns the root.
func layout(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "-> "):
			err = os.Symlink(strings.TrimPrefix(content, "-> "), p)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// compose-go reads env files, label files, included and extended files while
// it loads, and quotes them in its errors: a compose file naming one outside
// its project is refused before the loader runs, and nothing of the outside
// file reaches the error.
func TestLoadReadsNothingOutsideTheProject(t *testing.T) {
	const secret = "SECRETPW-7f3a9c"
	outside := map[string]string{
		"outside/envc":     "A=1\nB=\"" + secret + "\n", // an unterminated quote: the loader's error would quote it
		"outside/labels":   "team=" + secret + "\n",
		"outside/inc.yaml": "services:\n  leaked:\n    image: " + secret + "\n",
		"outside/ext.yaml": "services:\n  base:\n    image: x\n    environment: [K=" + secret + "]\n    command: [" + secret + "\n",
	}
	tests := []struct {
		name    string
		compose string
		files   map[string]string // inside proj/
		opts    []LoadOption
		want    []string // after "proj/compose.yaml"
	}{
		{"env_file", "services:\n  app:\n    image: x\n    env_file: ../outside/envc\n", nil, nil,
			[]string{":4: services.app.env_file[0]:", `env file "../outside/envc" is outside the project directory`, `(service "app")`}},
		{"env_file path", "services:\n  app:\n    image: x\n    env_file:\n      - path: ../outside/envc\n        required: false\n", nil, nil,
			[]string{":5: services.app.env_file[0].path:"}},
		{"label_file", "services:\n  app:\n    image: x\n    label_file: [../outside/labels]\n", nil, nil,
			[]string{":4: services.app.label_file[0]:", "label file"}},
		{"pre_start env_file", "services:\n  app:\n    image: x\n    pre_start:\n      - command: [true]\n        env_file: ../outside/envc\n", nil, nil,
			[]string{":6: services.app.pre_start[0].env_file[0]:"}},
		{"include", "include:\n  - ../outside/inc.yaml\nservices:\n  app:\n    image: x\n", nil, nil,
			[]string{":2: include[0]:", `included file "../outside/inc.yaml"`}},
		{"include path list", "include:\n  - path:\n      - inc.yaml\n      - ../outside/inc.yaml\n", map[string]string{"inc.yaml": "services:\n  a:\n    image: x\n"}, nil,
			[]string{":4: include[0].path[1]:"}},
		{"include env_file", "include:\n  - path: inc.yaml\n    env_file: ../outside/envc\n", map[string]string{"inc.yaml": "services:\n  a:\n    image: x\n"}, nil,
			[]string{":3: include[0].env_file:", "env file"}},
		{"include project_directory", "include:\n  - path: inc.yaml\n    project_directory: ../outside\n", map[string]string{"inc.yaml": "services:\n  a:\n    image: x\n"}, nil,
			[]string{":3: include[0].project_directory:"}},
		{"extends file", "services:\n  app:\n    extends:\n      file: ../outside/ext.yaml\n      service: base\n", nil, nil,
			[]string{":4: services.app.extends.file:", "extended file"}},
		{"anchor merged into a service", "x-common: &common\n  env_file: ../outside/envc\nservices:\n  app:\n    <<: *common\n    image: x\n", nil, nil,
			[]string{":2: services.app.env_file[0]:"}},
		{"interpolated path", "services:\n  app:\n    image: x\n    env_file: ${DIR}/envc\n", nil, []LoadOption{WithEnv("DIR=../outside")},
			[]string{":4: services.app.env_file[0]:", "${DIR}/envc"}},
		{"home directory", "services:\n  app:\n    image: x\n    env_file: ~/envc\n", nil, nil,
			[]string{":4: services.app.env_file[0]:", "~/envc"}},
		{"link inside pointing out", "services:\n  app:\n    image: x\n    env_file: app.env\n", map[string]string{"app.env": "-> ../outside/envc"}, nil,
			[]string{":4: services.app.env_file[0]:", `"app.env"`}},
		{"the project's .env links out", "services:\n  app:\n    image: x\n", map[string]string{".env": "-> ../outside/envc"}, nil,
			[]string{": the project's .env file", "outside the project directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := maps.Clone(outside)
			files["proj/compose.yaml"] = tt.compose
			for k, v := range tt.files {
				files["proj/"+k] = v
			}
			root := layout(t, files)
			t.Setenv("HOME", filepath.Join(root, "outside"))
			file := filepath.Join(root, "proj", "compose.yaml")
			_, err := LoadPlan(context.Background(), file, tt.opts...)
			if err == nil {
				t.Fatal("planned")
			}
			if !errors.Is(err, ErrSandbox) {
				t.Errorf("error %q is not a sandbox refusal", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q quotes the outside file", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), file+w) && !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), file+tt.want[0]) {
				t.Errorf("error %q does not start with %q", err, file+tt.want[0])
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// Files inside the project that the loader follows are checked the same way,
// and an error is placed in the file it is about.
func TestLoadFollowsIncludesAndExtendsInside(t *testing.T) {
	const secret = "SECRETPW-b81d"
	tests := []struct {
		name  string
		files map[string]string // compose.yaml is proj/compose.yaml
		want  string            // the error's start, after root/proj/
	}{
		{"included file names an outside env file", map[string]string{
			"proj/compose.yaml": "include: [sub/inc.yaml]\n",
			"proj/sub/inc.yaml": "services:\n  s:\n    image: x\n    env_file: ../../outside/envc\n",
			"outside/envc":      "B=\"" + secret + "\n",
		}, "sub/inc.yaml:4: services.s.env_file[0]:"},
		{"included project's .env links out", map[string]string{
			"proj/compose.yaml": "include: [sub/inc.yaml]\n",
			"proj/sub/inc.yaml": "services:\n  s:\n    image: x\n",
			"proj/sub/.env":     "-> ../../outside/envc",
			"outside/envc":      "B=\"" + secret + "\n",
		}, "compose.yaml:1: include[0]:"},
		{"extended file names an outside env file", map[string]string{
			"proj/compose.yaml": "services:\n  app:\n    extends: {file: sub/ext.yaml, service: base}\n",
			"proj/sub/ext.yaml": "services:\n  base:\n    image: x\n    env_file: [../../outside/envc]\n",
			"outside/envc":      "B=\"" + secret + "\n",
		}, "sub/ext.yaml:4: services.base.env_file[0]:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := layout(t, tt.files)
			_, err := LoadPlan(context.Background(), filepath.Join(root, "proj", "compose.yaml"))
			if !errors.Is(err, ErrSandbox) {
				t.Fatalf("LoadPlan = %v, want a sandbox refusal", err)
			}
			if want := filepath.Join(root, "proj", tt.want); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q quotes the outside file", err)
			}
		})
	}
}

// An error in another file (an env file) names that file and its line, not
// the compose file's line of the same number.
func TestLoadErrorLineBelongsToItsFile(t *testing.T) {
	root := layout(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    image: x\n    env_file: app.env\n",
		"app.env":      "A=1\nB=2\nC=\"unterminated\n",
	})
	file := filepath.Join(root, "compose.yaml")
	_, err := LoadPlan(context.Background(), file)
	if err == nil {
		t.Fatal("planned")
	}
	if strings.HasPrefix(err.Error(), file+":3") {
		t.Errorf("error %q puts the env file's line on the compose file", err)
	}
	// The env file parser counts the line where it ran out of input.
	if want := filepath.Join(root, "app.env") + ":4: unterminated quoted value"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
}

// Interpolation sees the project's .env and WithEnv, never the process
// environment, where a CI job keeps its secrets.
func TestLoadIgnoresProcessEnvironment(t *testing.T) {
	t.Setenv("REHEARSE_TEST_HOST_SECRET", "host-secret-1b2c")
	t.Setenv("FROM_DOTENV", "host-value")
	root := layout(t, map[string]string{
		"compose.yaml": `services:
  app:
    image: x
    environment:
      - REHEARSE_TEST_HOST_SECRET
      - STOLEN=${REHEARSE_TEST_HOST_SECRET:-unset}
      - DOTENV=${FROM_DOTENV}
      - BOTH=${IN_BOTH}
      - OPT=${FROM_OPTION}
`,
		".env": "FROM_DOTENV=dotenv-value\nIN_BOTH=dotenv\n",
	})
	p, err := LoadPlan(context.Background(), filepath.Join(root, "compose.yaml"), WithEnv("IN_BOTH=option", "FROM_OPTION=option-value"))
	if err != nil {
		t.Fatal(err)
	}
	env := p.Service("app").Env
	if v, ok := env["REHEARSE_TEST_HOST_SECRET"]; ok {
		t.Errorf("the host's variable reached the container: %q", v)
	}
	want := map[string]string{"STOLEN": "unset", "DOTENV": "dotenv-value", "BOTH": "option", "OPT": "option-value"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
}

// A service may use the images the harness makes, not build into them: that
// would retag an image every run shares. The bundled world's own
// rehearse/... images are the project's to build (TestPlanBillingWorld).
func TestPlanRefusesBuildingHarnessImages(t *testing.T) {
	tests := []struct{ name, service, want string }{
		{"build into the Debian base", "    image: debian:bookworm-slim\n    build: ctx\n", ":3: services.app.image:"},
		{"Go programs packed into it, spelled in full", "    image: docker.io/library/debian:bookworm-slim\n    x-rehearse:\n      go: [{main: ./cmd, path: /app}]\n", ":3: services.app.image:"},
		{"build into the gateway's image", "    image: rehearse/gateway:1\n    build: ctx\n", ":3: services.app.image:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := layout(t, map[string]string{
				"compose.yaml":   "services:\n  app:\n" + tt.service,
				"ctx/Dockerfile": "FROM scratch\n",
				"cmd/main.go":    "package main\n\nfunc main() {}\n",
			})
			file := filepath.Join(root, "compose.yaml")
			_, err := LoadPlan(context.Background(), file)
			if !errors.Is(err, ErrSandbox) {
				t.Fatalf("LoadPlan = %v, want a sandbox refusal", err)
			}
			if !strings.HasPrefix(err.Error(), file+tt.want) || !strings.Contains(err.Error(), `(service "app")`) {
				t.Errorf("error %q does not start with %q or name the service", err, file+tt.want)
			}
		})
	}
	root := layout(t, map[string]string{
		"compose.yaml":   "services:\n  app:\n    image: debian:bookworm-slim\n  gw:\n    image: rehearse/gateway:1\n  own:\n    image: rehearse/billing-db:15\n    build: ctx\n",
		"ctx/Dockerfile": "FROM scratch\n",
	})
	if _, err := LoadPlan(context.Background(), filepath.Join(root, "compose.yaml")); err != nil {
		t.Errorf("using the harness's images, or building a project image: %v", err)
	}
}

// A Go main is read by go build after other services have started: one below
// a writable bind mount could be swapped for a link out of the project.
func TestPlanRefusesGoMainBelowWritableBind(t *testing.T) {
	root := layout(t, map[string]string{
		"compose.yaml":    "services:\n  dev:\n    image: x\n    volumes: [\"./src:/src\"]\n  app:\n    image: debian:bookworm-slim-app\n    x-rehearse:\n      go:\n        - main: ./src/cmd\n          path: /app\n",
		"src/cmd/main.go": "package main\n\nfunc main() {}\n",
	})
	file := filepath.Join(root, "compose.yaml")
	_, err := LoadPlan(context.Background(), file)
	if !errors.Is(err, ErrSandbox) {
		t.Fatalf("LoadPlan = %v, want a sandbox refusal", err)
	}
	for _, w := range []string{file + ":9: services.app.x-rehearse.go[0].main:", "services.dev.volumes[0]", `service "dev"`, ":ro"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

// What the pre-load check cannot judge as compose-go will is refused before
// compose-go runs, and nothing of a file outside the project (here, in the
// directory the process runs in, where compose-go v2.16.2 resolves an
// included file's own include settings) reaches the plan or the error.
func TestLoadRefusesWhatTheCheckCannotJudge(t *testing.T) {
	const secret = "SECRETPW-c41e"
	tests := []struct {
		name  string
		files map[string]string // proj/compose.yaml is the compose file; cwd/ is the process's directory
		want  []string          // the error's start after root/proj/, then substrings
	}{
		{"nested include env_file", map[string]string{
			"proj/compose.yaml":      "include: [.aws/compose.yaml]\nservices:\n  main:\n    image: x\n",
			"proj/.aws/compose.yaml": "include:\n  - path: inner.yaml\n    env_file: credentials\n",
			"proj/.aws/credentials":  "OTHER=decoy\n",
			"proj/.aws/inner.yaml":   "services:\n  leak:\n    image: x\n    environment:\n      LEAK: ${SECRET:-none}\n",
		}, []string{".aws/compose.yaml:3: include[0].env_file:", "relative env_file", "not the project"}},
		{"nested include project_directory", map[string]string{
			"proj/compose.yaml":     "include: [sub/compose.yaml]\n",
			"proj/sub/compose.yaml": "include:\n  - path: inner.yaml\n    project_directory: ..\n",
			"proj/sub/inner.yaml":   "services:\n  leak:\n    image: x\n    environment:\n      LEAK: ${SECRET:-none}\n",
		}, []string{"sub/compose.yaml:3: include[0].project_directory:", "project_directory in an include of an included file"}},
		{"project_directory that is not a directory", map[string]string{
			"proj/compose.yaml":       "include:\n  - path: a/deep/er/inc.yaml\n    project_directory: b/c/none\n",
			"proj/a/deep/er/inc.yaml": "services:\n  leak:\n    image: x\n    env_file: ../../../outside/envc\n",
			"proj/b/c/":               "",
		}, []string{"compose.yaml:3: include[0].project_directory:", `"b/c/none" is not a directory`}},
		{"include entry without a path", map[string]string{
			"proj/compose.yaml": "include:\n  - env_file: ../outside/envc\nservices:\n  main:\n    image: x\n",
		}, []string{"compose.yaml:2: include[0]:", "no path"}},
		{"variable the loader sets after the check", map[string]string{
			"proj/compose.yaml": "name: q\nservices:\n  a:\n    image: x\n    env_file: ${COMPOSE_PROJECT_NAME:-a/b}/../../envx\n",
			"proj/a/b/":         "", "proj/envx": "DECOY=1\n",
		}, []string{"compose.yaml:5: services.a.env_file[0]:", "uses a variable", "paths may not use variables in a rehearsal: they are checked before loading", `(service "a")`}},
		{"variable in an include env_file", map[string]string{
			"proj/compose.yaml": "name: q\ninclude:\n  - path: inner.yaml\n    env_file: ${COMPOSE_PROJECT_NAME:-a/b}/../../envx\n",
			"proj/inner.yaml":   "services:\n  leak:\n    image: x\n    environment:\n      LEAK: ${SECRET:-none}\n",
			"proj/a/b/":         "", "proj/envx": "DECOY=1\n",
		}, []string{"compose.yaml:4: include[0].env_file:", "uses a variable"}},
		{"jobs extends a file outside", map[string]string{
			"proj/compose.yaml": "services:\n  main:\n    image: x\njobs:\n  j:\n    extends: {file: ../outside/ext.yaml, service: base}\n",
		}, []string{"compose.yaml:4: jobs:", `top-level key "jobs" is not honoured`}},
		{"jobs merged into the top level", map[string]string{
			"proj/compose.yaml": "x-j: &j\n  jobs:\n    j:\n      env_file: ../outside/envc\nservices:\n  main:\n    image: x\n<<: *j\n",
		}, []string{"compose.yaml:2: jobs:", `top-level key "jobs"`}},
		{"models", map[string]string{
			"proj/compose.yaml": "services:\n  main:\n    image: x\nmodels:\n  m:\n    model: x\n",
		}, []string{"compose.yaml:4: models:", `top-level key "models"`}},
		// Keys the scan reads as text but the loader decodes: a !!binary key
		// that decodes to env_file, path or file; an alias key whose text is
		// the anchor's name (x-...) but whose value is the anchored key.
		{"binary env_file key in an include", map[string]string{
			"proj/compose.yaml": "include:\n  - path: sub.yaml\n    ? !!binary ZW52X2ZpbGU=\n    : ../outside/envc\n",
			"proj/sub.yaml":     "services:\n  leak:\n    image: x\n    environment:\n      GOT: ${SECRET:-none}\n",
		}, []string{"compose.yaml:3:", `mapping key "ZW52X2ZpbGU=" is tagged !!binary`, "keys must be plain strings"}},
		{"alias key naming include", map[string]string{
			"proj/compose.yaml": "x-names: [&x-inc include]\n*x-inc : [../outside/ext.yaml]\n",
		}, []string{"compose.yaml:2:", `mapping key "x-inc" is an alias`}},
		{"binary path key beside path", map[string]string{
			"proj/compose.yaml": "include:\n  - {path: sub.yaml, !!binary cGF0aA==: ../outside/ext.yaml}\n",
			"proj/sub.yaml":     "services:\n  main:\n    image: x\n",
		}, []string{"compose.yaml:2:", "is tagged !!binary"}},
		{"alias key naming extends file", map[string]string{
			"proj/compose.yaml": "x-f: &x-f file\nservices:\n  main:\n    extends: {service: base, *x-f : ../outside/ext.yaml}\n",
		}, []string{"compose.yaml:4:", "is an alias"}},
		{"aliases that expand without bound", map[string]string{
			"proj/compose.yaml": laughs(40),
		}, []string{"compose.yaml:", "expands past"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{
				"outside/envc":         "SECRET=" + secret + "\nBAD=\"" + secret + "\n", // an unterminated quote: the loader's error would quote it
				"envx":                 "SECRET=" + secret + "\nLEAK=" + secret + "\n",
				"outside/ext.yaml":     "services:\n  base:\n    image: x\n    environment: [LEAK=" + secret + "]\n",
				"cwd/.env":             "SECRET=" + secret + "\n",
				"cwd/.aws/credentials": "SECRET=" + secret + "\n",
			}
			maps.Copy(files, tt.files)
			root := layout(t, files)
			t.Chdir(filepath.Join(root, "cwd"))
			p, err := LoadPlan(context.Background(), filepath.Join(root, "proj", "compose.yaml"))
			if err == nil {
				var dump strings.Builder
				for _, sp := range p.Services {
					fmt.Fprintf(&dump, "%+v\n", *sp)
				}
				if strings.Contains(dump.String(), secret) {
					t.Fatalf("the outside file reached the plan: %s", dump.String())
				}
				t.Fatal("planned")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q quotes the outside file", err)
			}
			if want := filepath.Join(root, "proj", tt.want[0]); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
			for _, w := range tt.want[1:] {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// laughs is a compose file whose merges of aliases double at each of n
// levels: a billion laughs in compose's clothes.
func laughs(n int) string {
	var b strings.Builder
	b.WriteString("x-0: &a0 {image: x}\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "x-%d: &a%d {<<: [*a%d, *a%d]}\n", i, i, i-1, i-1)
	}
	fmt.Fprintf(&b, "services:\n  s: {<<: *a%d}\n", n)
	return b.String()
}

// A service nobody waits for, with no dependencies of its own, starts
// after the first links of the dependency chains; services in a chain, and
// every service of a plan without chains, wait for nothing more.
func TestPlanCriticalFirst(t *testing.T) {
	svc := func(name string, deps ...string) *ServicePlan {
		sp := &ServicePlan{Name: name, DependsOn: map[string]string{}}
		for _, d := range deps {
			sp.DependsOn[d] = ConditionHealthy
		}
		return sp
	}
	p := &Plan{Services: []*ServicePlan{svc("db"), svc("cache"), svc("api", "db", "cache"), svc("web", "api"), svc("mail"), svc("cron")}}
	got := p.criticalFirst()
	want := map[string][]string{"mail": {"db", "cache"}, "cron": {"db", "cache"}}
	if len(got) != len(want) {
		t.Errorf("criticalFirst = %v, want %v", got, want)
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("%s starts after %v, want %v", name, got[name], w)
		}
	}
	flat := &Plan{Services: []*ServicePlan{svc("a"), svc("b")}}
	if got := flat.criticalFirst(); len(got) != 0 {
		t.Errorf("without chains: %v, want nothing", got)
	}
	billing, err := loadPlan(t, billingCompose)
	if err != nil {
		t.Fatal(err)
	}
	if got := billing.criticalFirst(); len(got) != 1 || !slices.Equal(got["payments"], []string{"db"}) {
		t.Errorf("the bundled world: %v, want payments after db", got)
	}
}

package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func load(t *testing.T, file string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	po, err := cli.NewProjectOptions([]string{abs}, cli.WithWorkingDirectory(filepath.Dir(abs)), cli.WithName("p"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := po.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return p
}

func TestCheckRefuses(t *testing.T) {
	notAllowed, notHonoured := ErrNotAllowed, ErrNotHonoured
	tests := []struct {
		file string
		want error    // the reason the error unwraps to
		msg  []string // substrings of the message; the first is file:line: key
	}{
		// The sandbox's own labels, wherever a compose file could set them.
		{"label-run.yaml", notAllowed, []string{"label-run.yaml:4: services.app.labels:", "rehearse.run", `"app"`}},
		{"label-owner-list.yaml", notAllowed, []string{"label-owner-list.yaml:4: services.app.labels:", "Rehearse.Owner"}},
		{"label-build.yaml", notAllowed, []string{"label-build.yaml:5: services.app.build.labels:", "rehearse.inputs"}},
		{"label-network.yaml", notAllowed, []string{"label-network.yaml:6: networks.default.labels:", "rehearse.run"}},
		// Capabilities: an allow-list, both spellings, any case.
		{"cap-sys-module.yaml", notAllowed, []string{"cap-sys-module.yaml:6: services.app.cap_add[1]:", "SYS_MODULE", "kernel modules", `"app"`}},
		{"cap-ptrace.yaml", notAllowed, []string{"cap-ptrace.yaml:4: services.app.cap_add[0]:", "cap_sys_ptrace"}},
		{"cap-dac-read-search.yaml", notAllowed, []string{"services.app.cap_add[0]", "CAP_DAC_READ_SEARCH"}},
		{"cap-rawio.yaml", notAllowed, []string{"services.app.cap_add[0]", "sys_rawio"}},
		{"cap-unlisted.yaml", notAllowed, []string{"services.app.cap_add[0]", "WAKE_ALARM", "only Docker's default"}},
		{"cap-all.yaml", notAllowed, []string{"services.app.cap_add[0]", "all"}},
		// Paths the harness reads or mounts stay inside the project, links resolved.
		{"context-etc.yaml", notAllowed, []string{"context-etc.yaml:4: services.app.build.context:", `build context "/etc" is outside the project`}},
		{"context-parent.yaml", notAllowed, []string{"context-parent.yaml:4: services.app.build.context:", "outside the project"}},
		{"context-symlink.yaml", notAllowed, []string{"context-symlink.yaml:4: services.app.build.context:", "escape", "outside the project"}},
		{"dockerfile-outside.yaml", notAllowed, []string{"dockerfile-outside.yaml:5: services.app.build.dockerfile:", "Dockerfile", "outside the project"}},
		{"env-file-outside.yaml", notAllowed, []string{"env-file-outside.yaml:4: services.app.env_file[0]:", "env file", "outside the project"}},
		{"secret-outside.yaml", notAllowed, []string{"secret-outside.yaml:7: secrets.pw.file:", "outside the project"}},
		{"secret-external.yaml", notAllowed, []string{"secret-external.yaml:7: secrets.pw.external:", "external secrets"}},
		{"secret-environment.yaml", notHonoured, []string{"secret-environment.yaml:7: secrets.pw.environment:", "not honoured", "file:"}},
		{"bind-propagation.yaml", notAllowed, []string{"bind-propagation.yaml:9: services.app.volumes[0].bind.propagation:", "rshared"}},
		{"volume-driver-opts.yaml", notAllowed, []string{"volume-driver-opts.yaml:7: volumes.data.driver_opts:", "host path"}},
		// Confinement and host kernel settings.
		{"seccomp-unconfined.yaml", notAllowed, []string{"seccomp-unconfined.yaml:6: services.app.security_opt[1]:", "seccomp:unconfined", "unconfine"}},
		{"apparmor-unconfined.yaml", notAllowed, []string{"services.app.security_opt[0]", "apparmor=unconfined"}},
		{"label-disable.yaml", notAllowed, []string{"services.app.security_opt[0]", "label:disable"}},
		{"systempaths.yaml", notAllowed, []string{"services.app.security_opt[0]", "systempaths=unconfined"}},
		{"seccomp-profile.yaml", notHonoured, []string{"services.app.security_opt[0]", "seccomp=profile.json"}},
		{"sysctl-host.yaml", notAllowed, []string{"sysctl-host.yaml:6: services.app.sysctls.vm.swappiness:", "vm.swappiness"}},
		// More confinement: only values that confine further are allowed.
		{"selinux-spc.yaml", notAllowed, []string{"selinux-spc.yaml:5: services.app.security_opt[0]:", "label=type:spc_t", "unconfine"}},
		{"selinux-unconfined.yaml", notAllowed, []string{"selinux-unconfined.yaml:4: services.app.security_opt[0]:", "label:type:unconfined_t"}},
		{"selinux-role.yaml", notAllowed, []string{"services.app.security_opt[0]", "label=role:sysadm_r"}},
		{"apparmor-profile.yaml", notAllowed, []string{"apparmor-profile.yaml:4: services.app.security_opt[0]:", "apparmor=my-loaded-profile", "apparmor=docker-default"}},
		{"nnp-false.yaml", notAllowed, []string{"services.app.security_opt[0]", "no-new-privileges=false"}},
		// Names the harness gives its own containers and networks.
		{"name-gateway.yaml", notAllowed, []string{"name-gateway.yaml:4: services.rehearse-gateway:", `service name "rehearse-gateway"`}},
		{"name-service-prefix.yaml", notAllowed, []string{"name-service-prefix.yaml:2: services.Rehearse-Helper:", `"rehearse"`}},
		{"name-egress.yaml", notAllowed, []string{"name-egress.yaml:6: networks.egress:", `network name "egress"`, "x-rehearse egress"}},
		{"name-ports.yaml", notAllowed, []string{"name-ports.yaml:7: networks.ports:", `network name "ports"`, "port gateway"}},
		{"name-network-prefix.yaml", notAllowed, []string{"name-network-prefix.yaml:6: networks.rehearse-net:", `"rehearse"`}},
		{"name-volume-prefix.yaml", notAllowed, []string{"name-volume-prefix.yaml:6: volumes.rehearse-data:", `volume name "rehearse-data"`}},
		// Networks that are not the run's, and mounts over the kernel's.
		{"network-mode-bridge.yaml", notAllowed, []string{"network-mode-bridge.yaml:4: services.app.network_mode:", "default bridge"}},
		{"none-expose.yaml", notHonoured, []string{"none-expose.yaml:5: services.app.expose:", "network_mode: none"}},
		{"tmpfs-proc.yaml", notAllowed, []string{"tmpfs-proc.yaml:6: services.app.tmpfs[1]:", "/proc/sys"}},
		{"tmpfs-sys.yaml", notAllowed, []string{"tmpfs-sys.yaml:5: services.app.volumes[0]:", "tmpfs mount on /sys"}},
		{"volume-proc.yaml", notAllowed, []string{"volume-proc.yaml:5: services.app.volumes[0]:", "/proc/sysrq-trigger"}},
		// Keys the harness does not honour are refused by name.
		{"ulimits.yaml", notHonoured, []string{"ulimits.yaml:4: services.app.ulimits:", "ulimits is not honoured", `"app"`}},
		{"extra-hosts.yaml", notHonoured, []string{"extra-hosts.yaml:4: services.app.extra_hosts:", "extra_hosts"}},
		{"deploy.yaml", notHonoured, []string{"deploy.yaml:4: services.app.deploy:", "deploy is not honoured"}},
		{"build-ssh.yaml", notHonoured, []string{"build-ssh.yaml:5: services.app.build.ssh:", "ssh is not honoured"}},
		{"ipam.yaml", notHonoured, []string{"ipam.yaml:6: networks.default.ipam:", "ipam is not honoured"}},
		{"ipv4-address.yaml", notHonoured, []string{"ipv4-address.yaml:6: services.app.networks.default.ipv4_address:"}},
		{"none-ports.yaml", notHonoured, []string{"none-ports.yaml:5: services.app.ports:", "network_mode: none"}},
		{"depends-restart.yaml", notHonoured, []string{"depends-restart.yaml:7: services.app.depends_on.db.restart:"}},
		{"pull-always.yaml", notHonoured, []string{"pull-always.yaml:4: services.app.pull_policy:", "nothing is pulled"}},
		// A missing bind source is an error of its own: neither forbidden nor unhonoured.
		{"bind-missing.yaml", nil, []string{"bind-missing.yaml:5: services.app.volumes[0]:", "no-such-dir", "does not exist", "create it first"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			file := filepath.Join("testdata", "project", tt.file)
			err := Check(file, load(t, file))
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %q is not %v", err, tt.want)
			}
			if tt.want == nil && (errors.Is(err, notAllowed) || errors.Is(err, notHonoured)) {
				t.Errorf("error %q is a sandbox refusal", err)
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Errorf("error %T is not a *FileError", err)
			}
			for _, w := range tt.msg {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestCheckAccepts(t *testing.T) {
	file := filepath.Join("testdata", "project", "accepted.yaml")
	if err := Check(file, load(t, file)); err != nil {
		t.Fatal(err)
	}
}

// Every field of a service that is not honoured is refused by name, so a
// field a later compose-go adds is refused until someone decides otherwise.
func TestCheckRefusesEveryUnhonouredServiceField(t *testing.T) {
	keys := honoured[reflect.TypeFor[types.ServiceConfig]()]
	n := 0
	for _, f := range yamlFields(reflect.TypeFor[types.ServiceConfig]()) {
		if contains(keys, f.name) {
			continue
		}
		n++
		t.Run(f.name, func(t *testing.T) {
			var s types.ServiceConfig
			v := reflect.ValueOf(&s).Elem().FieldByIndex(f.index)
			v.Set(nonZero(v.Type()))
			s.Name, s.Image = "app", "x"
			p := &types.Project{Name: "p", WorkingDir: t.TempDir(), Services: types.Services{"app": s}}
			err := Check("compose.yaml", p)
			if !errors.Is(err, ErrNotHonoured) && !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("field %s set: Check = %v", f.name, err)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Key != "services.app."+f.name {
				t.Errorf("key = %q, want services.app.%s (%v)", fe.Key, f.name, err)
			}
		})
	}
	if n < 40 {
		t.Errorf("only %d unhonoured fields found: the walk over ServiceConfig is broken", n)
	}
}

type yamlField struct {
	name  string
	index []int
}

// yamlFields lists the YAML keys of a struct, through inlined structs.
func yamlFields(t reflect.Type) []yamlField {
	var out []yamlField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.Anonymous && strings.Contains(opts, "inline") {
			for _, sub := range yamlFields(f.Type) {
				out = append(out, yamlField{sub.name, append([]int{i}, sub.index...)})
			}
			continue
		}
		if name == "" || name == "-" || strings.HasPrefix(name, "#") {
			continue
		}
		out = append(out, yamlField{name, []int{i}})
	}
	return out
}

// nonZero makes a value of type t that is not its zero value.
func nonZero(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Pointer:
		v.Set(reflect.New(t.Elem()))
		v.Elem().Set(nonZero(t.Elem()))
	case reflect.Slice:
		v.Set(reflect.Append(v, nonZero(t.Elem())))
	case reflect.Map:
		v.Set(reflect.MakeMap(t))
		v.SetMapIndex(nonZero(t.Key()), nonZero(t.Elem()))
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				v.Field(i).Set(nonZero(t.Field(i).Type))
				break
			}
		}
	}
	return v
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The harness opens a build context's .dockerignore and Dockerfile to hash
// the context: a link out of the project, or one below a writable bind mount
// (which a running container could swap for such a link), is refused.
func TestCheckRefusesBuildFilesLeadingOut(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // under proj/; "-> target" is a link
		want  []string
	}{
		{".dockerignore links out", map[string]string{
			"compose.yaml":   "services:\n  app:\n    image: x\n    build: ctx\n",
			"ctx/Dockerfile": "FROM scratch\n", "ctx/.dockerignore": "-> ../../outside/ignore",
		}, []string{":4: services.app.build.context:", `the build context's .dockerignore`, "outside the project"}},
		{"default Dockerfile links out", map[string]string{
			"compose.yaml":   "services:\n  app:\n    image: x\n    build: ctx\n",
			"ctx/Dockerfile": "-> ../../outside/Dockerfile",
		}, []string{":4: services.app.build.dockerfile:", "Dockerfile", "outside the project"}},
		{".dockerignore below a writable bind", map[string]string{
			"compose.yaml":      "services:\n  dev:\n    image: x\n    volumes: [\"./ctx:/src\"]\n  app:\n    image: x\n    build: {context: ctx, dockerfile_inline: \"FROM scratch\"}\n",
			"ctx/.dockerignore": "*.tmp\n",
		}, []string{":7: services.app.build.context:", ".dockerignore", "services.dev.volumes[0]", ":ro"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{"outside/ignore": "*\n", "outside/Dockerfile": "FROM scratch\n"}
			for k, v := range tt.files {
				files["proj/"+k] = v
			}
			for name, content := range files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				var err error
				if target, ok := strings.CutPrefix(content, "-> "); ok {
					err = os.Symlink(target, p)
				} else {
					err = os.WriteFile(p, []byte(content), 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			file := filepath.Join(root, "proj", "compose.yaml")
			err := Check(file, load(t, file))
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("Check = %v, want a sandbox refusal", err)
			}
			if !strings.HasPrefix(err.Error(), file+tt.want[0]) {
				t.Errorf("error %q does not start with %q", err, file+tt.want[0])
			}
			for _, w := range tt.want[1:] {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// CheckLoaded, the second line behind CheckReferences, finds an env or label
// file outside the project wherever the loaded project names one: a
// service, a pre_start hook, a service a profile disabled.
func TestCheckLoadedRefusesFilesOutside(t *testing.T) {
	dir := t.TempDir()
	inside := filepath.Join(dir, "app.env")
	svc := func(mod func(*types.ServiceConfig)) types.ServiceConfig {
		s := types.ServiceConfig{Name: "app"}
		s.EnvFiles = []types.EnvFile{{Path: inside}}
		mod(&s)
		return s
	}
	tests := []struct {
		name     string
		services types.Services
		disabled types.Services
		key      string
	}{
		{"env file", types.Services{"app": svc(func(s *types.ServiceConfig) { s.EnvFiles = append(s.EnvFiles, types.EnvFile{Path: "/etc/passwd"}) })}, nil, "services.app.env_file[1]"},
		{"label file", types.Services{"app": svc(func(s *types.ServiceConfig) { s.LabelFiles = []string{"/etc/passwd"} })}, nil, "services.app.label_file[0]"},
		{"pre_start env file", types.Services{"app": svc(func(s *types.ServiceConfig) {
			var h types.PreStartHook
			h.EnvFiles = []types.EnvFile{{Path: "/etc/passwd"}}
			s.PreStart = []types.PreStartHook{h}
		})}, nil, "services.app.pre_start[0].env_file[0]"},
		{"disabled service", types.Services{"app": svc(func(*types.ServiceConfig) {})},
			types.Services{"off": {Name: "off", ContainerSpec: types.ContainerSpec{LabelFiles: []string{"/etc/passwd"}}}}, "services.off.label_file[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &types.Project{Name: "p", WorkingDir: dir, Services: tt.services, DisabledServices: tt.disabled}
			err := CheckLoaded("compose.yaml", p)
			var fe *FileError
			if !errors.As(err, &fe) || !errors.Is(err, ErrNotAllowed) || fe.Key != tt.key {
				t.Fatalf("CheckLoaded = %v, want a refusal at %s", err, tt.key)
			}
		})
	}
	ok := &types.Project{Name: "p", WorkingDir: dir, Services: types.Services{"app": svc(func(*types.ServiceConfig) {})}}
	if err := CheckLoaded("compose.yaml", ok); err != nil {
		t.Errorf("env file inside the project: %v", err)
	}
}

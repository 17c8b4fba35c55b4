// Package sandbox holds the rules a compose file must obey before a
// rehearsal runs it: nothing in it may reach the host, production or another
// run, and nothing in it is silently dropped.
//
// CheckReferences runs on the raw compose file before compose-go loads it,
// so that the loader reads nothing outside the project; CheckLoaded, right
// after loading, confirms it for the env and label files the loader read;
// Check runs on the project compose-go loaded. Neither touches an engine. Each refusal is a
// FileError naming the file, line, key and service, that unwraps to
// ErrNotAllowed (the sandbox forbids it) or ErrNotHonoured (the harness
// would ignore it).
package sandbox

import (
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// labelPrefix starts every label the sandbox itself sets (run, owner,
// service); a compose file may not set any of them.
const labelPrefix = "rehearse."

// Check refuses a project that breaks a sandbox rule or uses a key the
// harness does not honour. file is the compose file as the user named it;
// the project directory is p.WorkingDir. Sandbox refusals come before keys
// that are merely not honoured.
func Check(file string, p *types.Project) error {
	if err := checkNames(file, p.ServiceNames(), slices.Sorted(maps.Keys(p.Networks)), slices.Sorted(maps.Keys(p.Volumes))); err != nil {
		return err
	}
	if err := checkProject(file, p); err != nil {
		return err
	}
	for _, name := range p.ServiceNames() {
		if err := checkService(file, p, p.Services[name]); err != nil {
			return err
		}
	}
	if err := checkSources(file, p); err != nil {
		return err
	}
	return checkKeys(file, nil, reflect.ValueOf(p).Elem())
}

// CheckInside refuses a host path that is not inside the project directory
// once symbolic links are resolved; key and what name it in the error. Bind
// mounts, build contexts, Dockerfiles, env files, secrets and harness/env's
// x-rehearse Go mains all go through it.
func CheckInside(file, projectDir string, key []string, what, path string) error {
	if Inside(projectDir, path) {
		return nil
	}
	return outside(file, keyLine(file, key...), key, what, path, projectDir)
}

// outside is the refusal of a path outside the project directory.
func outside(file string, line int, key []string, what, path, projectDir string) *FileError {
	msg := fmt.Sprintf("%s %q is outside the project directory %q: %v", what, path, projectDir, ErrNotAllowed)
	if len(key) > 1 && key[0] == "services" {
		msg += fmt.Sprintf(" (service %q)", key[1])
	}
	return &FileError{File: file, Line: line, Key: JoinKey(key), Msg: msg, Err: ErrNotAllowed}
}

func checkProject(file string, p *types.Project) error {
	for _, n := range slices.Sorted(maps.Keys(p.Networks)) {
		cfg, key := p.Networks[n], []string{"networks", n}
		if cfg.External {
			return refuse(file, append(key, "external"), "external networks are %v: a run creates its own", ErrNotAllowed)
		}
		if err := checkLabels(file, append(key, "labels"), "", cfg.Labels); err != nil {
			return err
		}
		if d := cfg.Driver; d != "" && d != "bridge" {
			return unhonoured(file, append(key, "driver"), fmt.Sprintf("driver %q: a run's networks are internal bridges", d))
		}
		if cfg.Name != "" && cfg.Name != p.Name+"_"+n {
			return unhonoured(file, append(key, "name"), "each run names its own networks")
		}
	}
	for _, v := range slices.Sorted(maps.Keys(p.Volumes)) {
		cfg, key := p.Volumes[v], []string{"volumes", v}
		if cfg.External {
			return refuse(file, append(key, "external"), "external volumes are %v: a run creates its own", ErrNotAllowed)
		}
		if len(cfg.DriverOpts) > 0 {
			return refuse(file, append(key, "driver_opts"), "volume driver options are %v: they can mount a host path", ErrNotAllowed)
		}
		if err := checkLabels(file, append(key, "labels"), "", cfg.Labels); err != nil {
			return err
		}
		if d := cfg.Driver; d != "" && d != "local" {
			return unhonoured(file, append(key, "driver"), fmt.Sprintf("driver %q: a run's volumes are local", d))
		}
		if cfg.Name != "" && cfg.Name != p.Name+"_"+v {
			return unhonoured(file, append(key, "name"), "each run names its own volumes")
		}
	}
	files := func(kind string, objs map[string]types.FileObjectConfig) error {
		for _, n := range slices.Sorted(maps.Keys(objs)) {
			cfg, key := objs[n], []string{kind, n}
			if cfg.External {
				return refuse(file, append(key, "external"), "external %s are %v: a run has only what its project holds", kind, ErrNotAllowed)
			}
			if err := checkLabels(file, append(key, "labels"), "", cfg.Labels); err != nil {
				return err
			}
			if cfg.File == "" {
				k := "environment"
				if cfg.Content != "" {
					k = "content"
				}
				return unhonoured(file, append(key, k), fmt.Sprintf("only %s with file: are honoured (bind-mounted read-only)", kind))
			}
			if err := CheckInside(file, p.WorkingDir, append(key, "file"), strings.TrimSuffix(kind, "s")+" file", cfg.File); err != nil {
				return err
			}
		}
		return nil
	}
	secrets := map[string]types.FileObjectConfig{}
	for k, v := range p.Secrets {
		secrets[k] = types.FileObjectConfig(v)
	}
	configs := map[string]types.FileObjectConfig{}
	for k, v := range p.Configs {
		configs[k] = types.FileObjectConfig(v)
	}
	if err := files("secrets", secrets); err != nil {
		return err
	}
	return files("configs", configs)
}

// namespaces are the keys that would share a namespace with the host.
var namespaces = []struct {
	key   string
	value func(types.ServiceConfig) string
}{
	{"pid", func(s types.ServiceConfig) string { return s.Pid }},
	{"ipc", func(s types.ServiceConfig) string { return s.Ipc }},
	{"uts", func(s types.ServiceConfig) string { return s.Uts }},
	{"userns_mode", func(s types.ServiceConfig) string { return s.UserNSMode }},
	{"cgroup", func(s types.ServiceConfig) string { return s.Cgroup }},
}

func checkService(file string, p *types.Project, s types.ServiceConfig) error {
	key := func(k ...string) []string { return append([]string{"services", s.Name}, k...) }
	if s.Privileged {
		return refuse(file, key("privileged"), "privileged containers are %v (service %q)", ErrNotAllowed, s.Name)
	}
	switch nm := s.NetworkMode; {
	case nm == "host":
		return refuse(file, key("network_mode"), "network_mode: host is %v (service %q)", ErrNotAllowed, s.Name)
	case nm == "bridge" || nm == "default":
		return refuse(file, key("network_mode"), "network_mode: %s is %v (service %q): it is Docker's default bridge, which reaches the outside; leave it out for the run's internal network", nm, ErrNotAllowed, s.Name)
	case nm != "" && nm != "none":
		return refuse(file, key("network_mode"), "network_mode %q is %v (service %q); use networks", nm, ErrNotAllowed, s.Name)
	case nm == "none" && len(s.Ports) > 0:
		return unhonoured(file, key("ports"), "a service with network_mode: none has no network to publish a port on")
	case nm == "none" && len(s.Expose) > 0:
		return unhonoured(file, key("expose"), "a service with network_mode: none has no network to expose a port on")
	}
	for _, ns := range namespaces {
		if ns.value(s) == "host" {
			return refuse(file, key(ns.key), "%s: host is %v (service %q)", ns.key, ErrNotAllowed, s.Name)
		}
	}
	if len(s.Devices) > 0 {
		return refuse(file, key("devices"), "host devices are %v (service %q)", ErrNotAllowed, s.Name)
	}
	if len(s.DeviceCgroupRules) > 0 {
		return refuse(file, key("device_cgroup_rules"), "host devices are %v (service %q)", ErrNotAllowed, s.Name)
	}
	if s.UseAPISocket {
		return refuse(file, key("use_api_socket"), "the Docker socket is %v (service %q)", ErrNotAllowed, s.Name)
	}
	if err := checkCapAdd(file, s.Name, s.CapAdd); err != nil {
		return err
	}
	if err := checkSecurityOpt(file, s); err != nil {
		return err
	}
	if err := checkSysctls(file, s); err != nil {
		return err
	}
	if err := checkLabels(file, key("labels"), s.Name, s.Labels); err != nil {
		return err
	}
	if s.Build != nil {
		if err := checkLabels(file, key("build", "labels"), s.Name, s.Build.Labels); err != nil {
			return err
		}
	}
	if s.Deploy != nil {
		if err := checkLabels(file, key("deploy", "labels"), s.Name, s.Deploy.Labels); err != nil {
			return err
		}
	}
	if err := checkVolumes(file, p.WorkingDir, s); err != nil {
		return err
	}
	if err := checkTargets(file, s); err != nil {
		return err
	}
	if err := checkBuild(file, p.WorkingDir, s); err != nil {
		return err
	}
	for i, f := range s.EnvFiles {
		if err := CheckInside(file, p.WorkingDir, key("env_file", fmt.Sprintf("[%d]", i)), "env file", f.Path); err != nil {
			return err
		}
	}
	for i, f := range s.LabelFiles {
		if err := CheckInside(file, p.WorkingDir, key("label_file", fmt.Sprintf("[%d]", i)), "label file", f); err != nil {
			return err
		}
	}
	for i, ref := range s.Secrets {
		if err := checkFileRef(file, key("secrets", fmt.Sprintf("[%d]", i)), "secret", ref.Source, p.Secrets[ref.Source].File); err != nil {
			return err
		}
	}
	for i, ref := range s.Configs {
		if err := checkFileRef(file, key("configs", fmt.Sprintf("[%d]", i)), "config", ref.Source, p.Configs[ref.Source].File); err != nil {
			return err
		}
	}
	if pl := s.Platform; pl != "" && pl != "linux/"+runtime.GOARCH {
		return unhonoured(file, key("platform"), fmt.Sprintf("platform %q: images are built for this engine's linux/%s", pl, runtime.GOARCH))
	}
	switch s.PullPolicy {
	case "", types.PullPolicyNever, types.PullPolicyMissing, types.PullPolicyIfNotPresent, types.PullPolicyBuild:
	default:
		return unhonoured(file, key("pull_policy"), fmt.Sprintf("pull_policy %q: nothing is pulled in a rehearsal; images are built or already present", s.PullPolicy))
	}
	return nil
}

// checkFileRef refuses a secret or config that is not a file: the harness
// bind-mounts it, read-only, as docker compose does outside swarm.
func checkFileRef(file string, key []string, kind, name, path string) error {
	if path == "" {
		return unhonoured(file, key, fmt.Sprintf("%s %q: only %ss with file: are honoured", kind, name, kind))
	}
	return nil
}

func checkLabels(file string, key []string, service string, labels map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if strings.HasPrefix(strings.ToLower(k), labelPrefix) {
			msg := fmt.Sprintf("label %s is %v: the rehearse.* labels are the sandbox's own", k, ErrNotAllowed)
			if service != "" {
				msg += fmt.Sprintf(" (service %q)", service)
			}
			return refuse(file, key, "%s", msg)
		}
	}
	return nil
}

func checkVolumes(file, projectDir string, s types.ServiceConfig) error {
	for i, v := range s.Volumes {
		key := []string{"services", s.Name, "volumes", fmt.Sprintf("[%d]", i)}
		if isDockerSocket(v.Source) || isDockerSocket(v.Target) {
			return refuse(file, key, "mounting the Docker socket (%s) is %v (service %q)", v.Source, ErrNotAllowed, s.Name)
		}
		switch v.Type {
		case types.VolumeTypeBind:
			if err := CheckInside(file, projectDir, key, "bind mount", v.Source); err != nil {
				return err
			}
			if b := v.Bind; b != nil && b.Propagation != "" && b.Propagation != "private" && b.Propagation != "rprivate" {
				return refuse(file, append(key, "bind", "propagation"), "propagation %q is %v (service %q): mounts would propagate to the host", b.Propagation, ErrNotAllowed, s.Name)
			}
		case types.VolumeTypeVolume, types.VolumeTypeTmpfs:
		default:
			return unhonoured(file, append(key, "type"), fmt.Sprintf("volume type %q: only bind (inside the project), volume and tmpfs are", v.Type))
		}
	}
	return nil
}

// checkBuild keeps a build's context, Dockerfile and the context's
// .dockerignore (which the harness opens to hash the context) inside the
// project, links resolved.
func checkBuild(file, projectDir string, s types.ServiceConfig) error {
	b := s.Build
	if b == nil {
		return nil
	}
	key := []string{"services", s.Name, "build"}
	ctx, df := buildPaths(projectDir, b)
	if err := CheckInside(file, projectDir, append(key, "context"), "build context", ctx); err != nil {
		return err
	}
	if err := CheckInside(file, projectDir, append(key, "context"), "the build context's .dockerignore", filepath.Join(ctx, ".dockerignore")); err != nil {
		return err
	}
	if df == "" {
		return nil
	}
	return CheckInside(file, projectDir, append(key, "dockerfile"), "Dockerfile", df)
}

func isDockerSocket(p string) bool {
	return strings.HasSuffix(p, "/docker.sock") || p == "docker.sock"
}

// KernelTarget reports whether a mount target in a container is the
// kernel's /proc or /sys, or below them.
func KernelTarget(target string) bool {
	t := path.Clean("/" + target)
	return t == "/proc" || t == "/sys" || strings.HasPrefix(t, "/proc/") || strings.HasPrefix(t, "/sys/")
}

// checkTargets refuses a mount over the kernel's interfaces: a tmpfs, volume
// or bind over /proc or /sys (or below them) can hide the masks the engine
// puts on /proc and /sys, and mounts there are how runc escapes have begun.
func checkTargets(file string, s types.ServiceConfig) error {
	bad := KernelTarget
	for i, t := range s.Tmpfs {
		target, _, _ := strings.Cut(t, ":")
		if bad(target) {
			return refuse(file, []string{"services", s.Name, "tmpfs", fmt.Sprintf("[%d]", i)}, "tmpfs on %s is %v (service %q): it would cover the kernel's /proc or /sys", target, ErrNotAllowed, s.Name)
		}
	}
	for i, v := range s.Volumes {
		if bad(v.Target) {
			return refuse(file, []string{"services", s.Name, "volumes", fmt.Sprintf("[%d]", i)}, "a %s mount on %s is %v (service %q): it would cover the kernel's /proc or /sys", v.Type, v.Target, ErrNotAllowed, s.Name)
		}
	}
	for i, ref := range s.Secrets {
		if bad(ref.Target) {
			return refuse(file, []string{"services", s.Name, "secrets", fmt.Sprintf("[%d]", i)}, "a secret mounted on %s is %v (service %q): it would cover the kernel's /proc or /sys", ref.Target, ErrNotAllowed, s.Name)
		}
	}
	for i, ref := range s.Configs {
		if bad(ref.Target) {
			return refuse(file, []string{"services", s.Name, "configs", fmt.Sprintf("[%d]", i)}, "a config mounted on %s is %v (service %q): it would cover the kernel's /proc or /sys", ref.Target, ErrNotAllowed, s.Name)
		}
	}
	return nil
}

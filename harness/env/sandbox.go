package env

import (
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// checkSandbox refuses the settings that would let a rehearsal touch the host
// or production: each refusal names the file, the service and the key.
func checkSandbox(file, projectDir string, s types.ServiceConfig) error {
	key := func(k ...string) []string { return append([]string{"services", s.Name}, k...) }
	if s.Privileged {
		return sandboxError(file, key("privileged"), "privileged containers are %v (service %q)", ErrSandbox, s.Name)
	}
	switch nm := s.NetworkMode; {
	case nm == "host":
		return sandboxError(file, key("network_mode"), "network_mode: host is %v (service %q)", ErrSandbox, s.Name)
	case nm != "" && nm != "bridge" && nm != "default" && nm != "none":
		return sandboxError(file, key("network_mode"), "network_mode %q is %v (service %q); use networks", nm, ErrSandbox, s.Name)
	}
	if s.Pid == "host" {
		return sandboxError(file, key("pid"), "pid: host is %v (service %q)", ErrSandbox, s.Name)
	}
	if s.Ipc == "host" {
		return sandboxError(file, key("ipc"), "ipc: host is %v (service %q)", ErrSandbox, s.Name)
	}
	if s.UserNSMode == "host" {
		return sandboxError(file, key("userns_mode"), "userns_mode: host is %v (service %q)", ErrSandbox, s.Name)
	}
	if len(s.Devices) > 0 {
		return sandboxError(file, key("devices"), "host devices are %v (service %q)", ErrSandbox, s.Name)
	}
	for _, c := range s.CapAdd {
		if strings.EqualFold(c, "ALL") || strings.EqualFold(strings.TrimPrefix(strings.ToUpper(c), "CAP_"), "SYS_ADMIN") {
			return sandboxError(file, key("cap_add"), "capability %s is %v (service %q)", c, ErrSandbox, s.Name)
		}
	}
	for _, v := range s.Volumes {
		if isDockerSocket(v.Source) || isDockerSocket(v.Target) {
			return sandboxError(file, key("volumes"), "mounting the Docker socket (%s) is %v (service %q)", v.Source, ErrSandbox, s.Name)
		}
		if v.Type == types.VolumeTypeBind && !inside(projectDir, v.Source) {
			return sandboxError(file, key("volumes"), "bind mount %q is outside the project directory %q: %v (service %q)", v.Source, projectDir, ErrSandbox, s.Name)
		}
	}
	return nil
}

func isDockerSocket(p string) bool {
	return strings.HasSuffix(p, "/docker.sock") || p == "docker.sock"
}

// inside reports whether path is dir or below it, after resolving symlinks
// (a link inside the project that points out is still outside).
func inside(dir, path string) bool {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

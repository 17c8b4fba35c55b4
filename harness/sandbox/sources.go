package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// source is a host path the harness mounts into a service or reads for it
// after the run has started (images are built as their services' turn
// comes, so a build context is read while other services already run).
type source struct {
	service  string
	key      []string
	what     string
	path     string // absolute
	writable bool   // a bind mount its container may write
}

// sources lists every host path of p's services: bind mounts, secret and
// config files, build contexts, their .dockerignore files and Dockerfiles.
func sources(p *types.Project) []source {
	var out []source
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		key := func(k ...string) []string { return append([]string{"services", name}, k...) }
		for i, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				out = append(out, source{name, key("volumes", fmt.Sprintf("[%d]", i)), "bind mount", v.Source, !v.ReadOnly})
			}
		}
		for i, ref := range s.Secrets {
			if f := p.Secrets[ref.Source].File; f != "" {
				out = append(out, source{name, key("secrets", fmt.Sprintf("[%d]", i)), "secret file", f, false})
			}
		}
		for i, ref := range s.Configs {
			if f := p.Configs[ref.Source].File; f != "" {
				out = append(out, source{name, key("configs", fmt.Sprintf("[%d]", i)), "config file", f, false})
			}
		}
		if b := s.Build; b != nil {
			ctx, df := buildPaths(p.WorkingDir, b)
			out = append(out, source{name, key("build", "context"), "build context", ctx, false},
				source{name, key("build", "context"), ".dockerignore", filepath.Join(ctx, ".dockerignore"), false})
			if df != "" {
				out = append(out, source{name, key("build", "dockerfile"), "Dockerfile", df, false})
			}
		}
	}
	return out
}

// buildPaths are a build's context and Dockerfile as absolute paths; the
// Dockerfile is "" when it is inline or the default one in the context.
func buildPaths(projectDir string, b *types.BuildConfig) (ctx, dockerfile string) {
	ctx = b.Context
	if ctx == "" {
		ctx = "."
	}
	if !filepath.IsAbs(ctx) {
		ctx = filepath.Join(projectDir, ctx)
	}
	if b.DockerfileInline != "" || b.Dockerfile == "" {
		return ctx, ""
	}
	dockerfile = b.Dockerfile
	if !filepath.IsAbs(dockerfile) {
		dockerfile = filepath.Join(ctx, dockerfile)
	}
	return ctx, dockerfile
}

// checkSources refuses a host path that lies strictly below a writable bind
// mount's source (checkUnderWritable), and a bind mount, secret or config
// whose file does not exist.
func checkSources(file string, p *types.Project) error {
	all := sources(p)
	for _, s := range all {
		if s.what == "build context" || s.what == "Dockerfile" || s.what == ".dockerignore" {
			continue // harness/env names a missing context or Dockerfile; .dockerignore is optional
		}
		if _, err := os.Lstat(s.path); errors.Is(err, os.ErrNotExist) {
			return At(file, s.key, "%s source %q does not exist (service %q): create it first; rehearse does not create host paths, which a run would leave behind (and one created below another service's writable bind could follow a link that service planted)", s.what, s.path, s.service)
		}
	}
	for _, s := range all {
		if err := checkUnderWritable(file, all, s); err != nil {
			return err
		}
	}
	return nil
}

// CheckSource is CheckInside for a host path the harness reads for a service
// once the run has started (harness/env's x-rehearse Go mains), and refuses
// it, too, below another service's writable bind mount.
func CheckSource(file string, p *types.Project, service string, key []string, what, path string) error {
	if err := CheckInside(file, p.WorkingDir, key, what, path); err != nil {
		return err
	}
	return checkUnderWritable(file, sources(p), source{service: service, key: key, what: what, path: path})
}

// checkUnderWritable refuses s when it lies strictly below the source of a
// writable bind mount (of any service, s's own included): that service's
// container can replace a directory on the way to s with a symbolic link to
// anywhere on the host before s is mounted or read, after every check here
// has passed. The mount point itself cannot be swapped, so equal paths are
// fine; a read-only outer bind cannot be written through.
func checkUnderWritable(file string, all []source, s source) error {
	inner, ok := resolve(s.path)
	if !ok {
		return nil // CheckInside has refused what cannot be resolved
	}
	for _, w := range all {
		if !w.writable || sameKey(w.key, s.key) {
			continue
		}
		outer, ok := resolve(w.path)
		if !ok {
			continue
		}
		rel, err := filepath.Rel(outer, inner)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		return refuse(file, s.key,
			"%s %q (service %q) lies below %q, which service %q bind-mounts writable (%s): that container could replace a directory on the way with a link to anywhere on the host, so this is %v; make %s read-only (:ro)",
			s.what, s.path, s.service, w.path, w.service, JoinKey(w.key), ErrNotAllowed, JoinKey(w.key))
	}
	return nil
}

func sameKey(a, b []string) bool {
	return JoinKey(a) == JoinKey(b)
}

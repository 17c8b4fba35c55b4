package env

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"

	"github.com/rehearse/rehearse/harness/image"
)

// Plan is a compose project turned into what one sandboxed run creates.
// It is pure data: making a plan touches no engine.
type Plan struct {
	File     string // the compose file as the user named it
	Project  string
	Dir      string // the project directory; bind mounts must stay inside it
	Services []*ServicePlan
	Networks []string // compose network names used by services
	Volumes  []string // compose named volumes used by services
}

// ServicePlan is one service as it will be started.
type ServicePlan struct {
	Name        string
	Image       image.Spec
	Env         map[string]string
	Entrypoint  []string
	Command     []string
	User        string
	WorkingDir  string
	Hostname    string
	Ports       []Port
	Health      *container.HealthConfig
	Networks    map[string][]string // compose network -> extra aliases
	Mounts      []Mount
	Tmpfs       map[string]string
	DependsOn   map[string]string // service -> condition
	Labels      map[string]string
	StopSignal  string
	StopTimeout *time.Duration
	CapAdd      []string
	CapDrop     []string
	Ext         Extension
}

// Port is a container port the run publishes on 127.0.0.1.
type Port struct {
	Target   uint32
	Protocol string // tcp or udp
}

// Key is the port as Docker names it, such as 5432/tcp.
func (p Port) Key() string { return fmt.Sprintf("%d/%s", p.Target, p.Protocol) }

// Mount is a volume, bind or tmpfs mount of a service.
type Mount struct {
	Type     string // volume, bind or tmpfs
	Source   string // compose volume name, or an absolute host path inside the project
	Target   string
	ReadOnly bool
}

// Dependency conditions, as compose names them.
const (
	ConditionStarted   = types.ServiceConditionStarted
	ConditionHealthy   = types.ServiceConditionHealthy
	ConditionCompleted = types.ServiceConditionCompletedSuccessfully
)

// NewPlan checks a project against the sandbox rules and plans its run.
// file is the compose file as the user named it, for error messages.
func NewPlan(file string, p *types.Project) (*Plan, error) {
	plan := &Plan{File: file, Project: p.Name, Dir: p.WorkingDir}
	nets, vols := map[string]bool{}, map[string]bool{}
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range p.Services {
			if !yield(name) {
				return
			}
		}
	})
	for _, name := range names {
		sp, err := planService(file, p, p.Services[name])
		if err != nil {
			return nil, err
		}
		for n := range sp.Networks {
			nets[n] = true
		}
		for _, m := range sp.Mounts {
			if m.Type == types.VolumeTypeVolume {
				vols[m.Source] = true
			}
		}
		plan.Services = append(plan.Services, sp)
	}
	plan.Networks = sortedKeys(nets)
	plan.Volumes = sortedKeys(vols)
	for _, n := range plan.Networks {
		if cfg, ok := p.Networks[n]; ok && bool(cfg.External) {
			return nil, sandboxError(file, []string{"networks", n, "external"}, "external networks are %v: a run creates its own", ErrSandbox)
		}
	}
	for _, v := range plan.Volumes {
		if cfg, ok := p.Volumes[v]; ok && bool(cfg.External) {
			return nil, sandboxError(file, []string{"volumes", v, "external"}, "external volumes are %v: a run creates its own", ErrSandbox)
		}
	}
	for _, s := range plan.Services {
		for _, dep := range sortedKeys(s.DependsOn) {
			if s.DependsOn[dep] == ConditionHealthy && plan.Service(dep).Health == nil {
				return nil, keyError(file, []string{"services", s.Name, "depends_on", dep}, "condition service_healthy, but service %q has no healthcheck", dep)
			}
		}
	}
	if err := checkCycles(plan); err != nil {
		return nil, err
	}
	return plan, nil
}

// Service returns the named service's plan, or nil.
func (p *Plan) Service(name string) *ServicePlan {
	for _, s := range p.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Images lists every image the plan needs, in service order.
func (p *Plan) Images() []image.Spec {
	var specs []image.Spec
	for _, s := range p.Services {
		specs = append(specs, s.Image)
	}
	return specs
}

func planService(file string, p *types.Project, s types.ServiceConfig) (*ServicePlan, error) {
	key := func(k ...string) []string { return append([]string{"services", s.Name}, k...) }
	if err := checkSandbox(file, p.WorkingDir, s); err != nil {
		return nil, err
	}
	ext, err := ExtensionOf(s)
	if err != nil {
		return nil, keyError(file, key(ExtensionKey), "%v", err)
	}
	sp := &ServicePlan{
		Name:       s.Name,
		Env:        map[string]string{},
		Entrypoint: s.Entrypoint,
		Command:    s.Command,
		User:       s.User,
		WorkingDir: s.WorkingDir,
		Hostname:   s.Hostname,
		Networks:   map[string][]string{},
		Tmpfs:      map[string]string{},
		DependsOn:  map[string]string{},
		Labels:     map[string]string{},
		StopSignal: s.StopSignal,
		CapAdd:     s.CapAdd,
		CapDrop:    s.CapDrop,
		Ext:        ext,
	}
	if s.StopGracePeriod != nil {
		d := time.Duration(*s.StopGracePeriod)
		sp.StopTimeout = &d
	}
	for k, v := range s.Environment {
		if v != nil {
			sp.Env[k] = *v
		}
	}
	for k, v := range s.Labels {
		sp.Labels[k] = v
	}
	img, err := imageSpec(file, p, s, ext)
	if err != nil {
		return nil, err
	}
	sp.Image = img
	for _, port := range s.Ports {
		proto := port.Protocol
		if proto == "" {
			proto = "tcp"
		}
		sp.Ports = append(sp.Ports, Port{Target: port.Target, Protocol: proto})
	}
	if hc := s.HealthCheck; hc != nil && !hc.Disable && len(hc.Test) > 0 {
		sp.Health = &container.HealthConfig{Test: hc.Test}
		if hc.Interval != nil {
			sp.Health.Interval = time.Duration(*hc.Interval)
		}
		if hc.Timeout != nil {
			sp.Health.Timeout = time.Duration(*hc.Timeout)
		}
		if hc.StartPeriod != nil {
			sp.Health.StartPeriod = time.Duration(*hc.StartPeriod)
		}
		if hc.StartInterval != nil {
			sp.Health.StartInterval = time.Duration(*hc.StartInterval)
		}
		if hc.Retries != nil {
			sp.Health.Retries = int(*hc.Retries)
		}
	}
	if len(s.Networks) == 0 {
		sp.Networks["default"] = nil
	}
	for name, n := range s.Networks {
		var aliases []string
		if n != nil {
			aliases = n.Aliases
		}
		sp.Networks[name] = aliases
	}
	for dep, d := range s.DependsOn {
		cond := d.Condition
		if cond == "" {
			cond = ConditionStarted
		}
		sp.DependsOn[dep] = cond
	}
	for i, v := range s.Volumes {
		m := Mount{Type: v.Type, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		if v.Type == types.VolumeTypeVolume && v.Source == "" {
			return nil, keyError(file, key("volumes"), "volumes[%d]: anonymous volumes are not supported; name the volume", i)
		}
		if v.Type == types.VolumeTypeTmpfs {
			sp.Tmpfs[v.Target] = ""
			continue
		}
		sp.Mounts = append(sp.Mounts, m)
	}
	for _, t := range s.Tmpfs {
		path, opts, _ := strings.Cut(t, ":")
		sp.Tmpfs[path] = opts
	}
	if ext.Init == "systemd" {
		sp.Tmpfs["/run"] = "rw,exec"
		sp.Tmpfs["/run/lock"] = "rw"
		sp.Env["container"] = "docker"
		if sp.StopSignal == "" {
			sp.StopSignal = "SIGRTMIN+3"
		}
	}
	return sp, nil
}

func imageSpec(file string, p *types.Project, s types.ServiceConfig, ext Extension) (image.Spec, error) {
	key := func(k ...string) []string { return append([]string{"services", s.Name}, k...) }
	spec := image.Spec{Ref: s.Image, Origin: fmt.Sprintf("%s: services.%s", file, s.Name)}
	if spec.Ref == "" {
		spec.Ref = p.Name + "-" + s.Name
	}
	if !strings.Contains(lastSegment(spec.Ref), ":") {
		spec.Ref += ":latest"
	}
	if b := s.Build; b != nil {
		ctxDir := b.Context
		if !filepath.IsAbs(ctxDir) {
			ctxDir = filepath.Join(p.WorkingDir, ctxDir)
		}
		if st, err := os.Stat(ctxDir); err != nil || !st.IsDir() {
			return spec, keyError(file, key("build", "context"), "build context %q is not a directory", b.Context)
		}
		dockerfile := b.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if b.DockerfileInline == "" {
			if _, err := os.Stat(filepath.Join(ctxDir, dockerfile)); err != nil {
				return spec, keyError(file, key("build", "dockerfile"), "%s not found in build context %q", dockerfile, b.Context)
			}
		}
		spec.Build = &image.Build{Context: ctxDir, Dockerfile: dockerfile, Inline: b.DockerfileInline, Target: b.Target, Args: map[string]string{}}
		for k, v := range b.Args {
			if v != nil {
				spec.Build.Args[k] = *v
			}
		}
	}
	if len(ext.Go) > 0 && spec.Build == nil {
		spec.Base = ext.Base
		if spec.Base == "" {
			spec.Base = image.DebianBase
		}
	}
	for i, g := range ext.Go {
		dir := g.Main
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(p.WorkingDir, dir)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return spec, keyError(file, key(ExtensionKey, "go"), "go[%d].main: %q is not a directory", i, g.Main)
		}
		spec.Go = append(spec.Go, image.GoBinary{Main: dir, Path: g.Path, Ldflags: g.Ldflags})
	}
	return spec, nil
}

func lastSegment(ref string) string {
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

// checkCycles refuses depends_on cycles, which would never start.
func checkCycles(p *Plan) error {
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 1:
			return keyError(p.File, []string{"services", name, "depends_on"}, "dependency cycle: %s", strings.Join(append(path, name), " -> "))
		case 2:
			return nil
		}
		state[name] = 1
		s := p.Service(name)
		for _, dep := range sortedKeys(s.DependsOn) {
			if err := visit(dep, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		return nil
	}
	for _, s := range p.Services {
		if err := visit(s.Name, nil); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

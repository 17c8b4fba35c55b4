package env

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/graph"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"

	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/sandbox"
)

// Plan is a compose project turned into what one sandboxed run creates.
// It is pure data: making a plan touches no engine.
type Plan struct {
	File     string // the compose file as the user named it
	Project  string
	Dir      string // the project directory; bind mounts must stay inside it
	Services []*ServicePlan
	Networks []string // compose network names used by services
	// Volumes are the compose named volumes used by services, and one per
	// anonymous volume (see Mount.Anonymous); each run creates its own.
	Volumes []string
}

// ServicePlan is one service as it will be started. Every compose key the
// sandbox honours (harness/sandbox) lands in one of its fields.
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
	Expose      []Port                  // exposed to the run's networks, not published
	Health      *container.HealthConfig // the compose file's; nil: none (an empty Test takes the image's)
	NoHealth    bool                    // healthcheck: disable or test: [NONE]: the image's healthcheck is off too
	NoNetwork   bool                    // network_mode: none: the container joins no network
	Networks    map[string][]string     // compose network -> extra aliases
	Mounts      []Mount
	Tmpfs       map[string]string
	DependsOn   map[string]string // service -> condition
	Labels      map[string]string // the compose file's; never rehearse.*
	StopSignal  string
	StopTimeout *time.Duration
	Restart     string // restart policy as compose writes it: no, always, on-failure[:N], unless-stopped
	Init        bool   // run an init process as PID 1
	ReadOnly    bool   // read-only root filesystem
	ShmSize     int64  // bytes of /dev/shm; 0: the engine's default
	StdinOpen   bool
	Tty         bool
	CapAdd      []string
	CapDrop     []string
	SecurityOpt []string          // only values the sandbox allows
	Sysctls     map[string]string // only the container's own namespaces
	Disk        *Disk             // x-rehearse disk: a size-limited volume, also in Mounts; nil: none
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
	Type     string // volume or bind (tmpfs mounts are in ServicePlan.Tmpfs)
	Source   string // compose volume name, or an absolute host path inside the project
	Target   string
	ReadOnly bool
	NoCopy   bool // volume: do not copy the image's content into it
	// Anonymous is a volume the compose file left unnamed (- /app/node_modules);
	// the plan names it <service>.anon<N>, and the run creates and removes it
	// like a named one.
	Anonymous bool
}

// Dependency conditions, as compose names them.
const (
	ConditionStarted   = types.ServiceConditionStarted
	ConditionHealthy   = types.ServiceConditionHealthy
	ConditionCompleted = types.ServiceConditionCompletedSuccessfully
)

// NewPlan checks a project against the sandbox rules (harness/sandbox) and
// plans its run. file is the compose file as the user named it, for error
// messages.
func NewPlan(file string, p *types.Project) (*Plan, error) {
	// Load already ran compose-go's cycle check; a project built in memory has not.
	if err := graph.CheckCycle(p); err != nil {
		if fe := dependencyError(file, err); fe != nil {
			return nil, fe
		}
		return nil, &FileError{File: file, Msg: err.Error()}
	}
	if err := sandbox.Check(file, p); err != nil {
		return nil, err
	}
	plan := &Plan{File: file, Project: p.Name, Dir: p.WorkingDir}
	nets, vols := map[string]bool{}, map[string]bool{}
	for _, name := range p.ServiceNames() {
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
	if err := checkDiskTotal(file, plan); err != nil {
		return nil, err
	}
	plan.Networks = slices.Sorted(maps.Keys(nets))
	plan.Volumes = slices.Sorted(maps.Keys(vols))
	for _, s := range plan.Services {
		for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
			if s.DependsOn[dep] != ConditionHealthy {
				continue
			}
			if d := plan.Service(dep); d.NoHealth {
				return nil, keyError(file, []string{"services", s.Name, "depends_on", dep}, "condition service_healthy, but service %q has no healthcheck (it is disabled)", dep)
			} else if d.Health == nil {
				return nil, keyError(file, []string{"services", s.Name, "depends_on", dep}, "condition service_healthy, but service %q has no healthcheck", dep)
			}
		}
	}
	return plan, nil
}

// dependedOn reports whether any service depends on the named one.
func (p *Plan) dependedOn(name string) bool {
	for _, s := range p.Services {
		if _, ok := s.DependsOn[name]; ok {
			return true
		}
	}
	return false
}

// criticalFirst is, for each service that neither depends on another nor
// is depended on, the services it starts after: those that depend on
// nothing and that others wait for, the first links of the dependency
// chains. On a machine of few cores, a service nobody waits for that
// starts beside them takes CPU and engine time from the chains' first
// steps. It waits at most criticalHold (see runService): Start returns
// only once every service is ready, so a long hold (a root whose image is
// being built) would put the loose service on the critical path.
func (p *Plan) criticalFirst() map[string][]string {
	var roots, loose []string
	for _, s := range p.Services {
		if len(s.DependsOn) > 0 {
			continue
		}
		if p.dependedOn(s.Name) {
			roots = append(roots, s.Name)
		} else {
			loose = append(loose, s.Name)
		}
	}
	if len(roots) == 0 {
		return nil
	}
	after := map[string][]string{}
	for _, name := range loose {
		after[name] = roots
	}
	return after
}

// healthyDependents lists the services that depend on name with
// condition service_healthy.
func (p *Plan) healthyDependents(name string) []string {
	var out []string
	for _, s := range p.Services {
		if s.DependsOn[name] == ConditionHealthy {
			out = append(out, s.Name)
		}
	}
	return out
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
	ext, err := ExtensionOf(s)
	if err != nil {
		return nil, keyError(file, key(ExtensionKey), "%v", err)
	}
	sp := &ServicePlan{
		Name:        s.Name,
		Env:         map[string]string{},
		Entrypoint:  s.Entrypoint,
		Command:     s.Command,
		User:        s.User,
		WorkingDir:  s.WorkingDir,
		Hostname:    s.Hostname,
		Networks:    map[string][]string{},
		Tmpfs:       map[string]string{},
		DependsOn:   map[string]string{},
		Labels:      map[string]string{},
		StopSignal:  s.StopSignal,
		Restart:     s.Restart,
		Init:        s.Init != nil && *s.Init,
		ReadOnly:    s.ReadOnly,
		ShmSize:     int64(s.ShmSize),
		StdinOpen:   s.StdinOpen,
		Tty:         s.Tty,
		CapAdd:      s.CapAdd,
		CapDrop:     s.CapDrop,
		SecurityOpt: s.SecurityOpt,
		Sysctls:     map[string]string(s.Sysctls),
		NoNetwork:   s.NetworkMode == "none",
		Ext:         ext,
	}
	if _, err := restartPolicy(s.Restart); err != nil {
		return nil, keyError(file, key("restart"), "%v", err)
	}
	if sp.NoNetwork && ext.Egress {
		return nil, keyError(file, key(ExtensionKey, "egress"), "egress: true, but network_mode: none gives the service no network")
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
	for i, e := range s.Expose {
		ports, err := exposed(e)
		if err != nil {
			return nil, keyError(file, key("expose", fmt.Sprintf("[%d]", i)), "%v", err)
		}
		sp.Expose = append(sp.Expose, ports...)
	}
	if hc := s.HealthCheck; hc != nil {
		// test: ["NONE"] disables the healthcheck as disable: true does
		// (compose-go keeps it as a test). A healthcheck with no test
		// keeps its other settings: the engine takes the test from the
		// image's HEALTHCHECK, when it has one (waitReady reads what the
		// engine runs).
		sp.NoHealth = hc.Disable || (len(hc.Test) > 0 && hc.Test[0] == "NONE")
		if !sp.NoHealth {
			sp.Health = healthConfig(hc)
		}
	}
	if len(s.Networks) == 0 && !sp.NoNetwork {
		sp.Networks["default"] = nil
	}
	for name, n := range s.Networks {
		var aliases []string
		if n != nil {
			aliases = n.Aliases
		}
		sp.Networks[name] = aliases
	}
	// The container is named for the run; its compose name still resolves.
	if s.ContainerName != "" && s.ContainerName != s.Name {
		for n := range sp.Networks {
			sp.Networks[n] = append(sp.Networks[n], s.ContainerName)
		}
	}
	for dep, d := range s.DependsOn {
		cond := d.Condition
		if cond == "" {
			cond = ConditionStarted
		}
		sp.DependsOn[dep] = cond
	}
	if err := planVolumes(file, p, s, sp); err != nil {
		return nil, err
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
	if err := planDisk(file, p, s, sp); err != nil {
		return nil, err
	}
	return sp, nil
}

func healthConfig(hc *types.HealthCheckConfig) *container.HealthConfig {
	h := &container.HealthConfig{Test: hc.Test}
	if hc.Interval != nil {
		h.Interval = time.Duration(*hc.Interval)
	}
	if hc.Timeout != nil {
		h.Timeout = time.Duration(*hc.Timeout)
	}
	if hc.StartPeriod != nil {
		h.StartPeriod = time.Duration(*hc.StartPeriod)
	}
	if hc.StartInterval != nil {
		h.StartInterval = time.Duration(*hc.StartInterval)
	}
	if hc.Retries != nil {
		h.Retries = int(*hc.Retries)
	}
	return h
}

// planVolumes turns volumes, secrets and configs into mounts. An anonymous
// volume gets a name of its own for the run; secrets and configs are their
// files bind-mounted read-only, as docker compose does outside swarm.
func planVolumes(file string, p *types.Project, s types.ServiceConfig, sp *ServicePlan) error {
	for i, v := range s.Volumes {
		switch v.Type {
		case types.VolumeTypeTmpfs:
			var opts []string
			if v.Tmpfs != nil && v.Tmpfs.Size > 0 {
				opts = append(opts, fmt.Sprintf("size=%d", int64(v.Tmpfs.Size)))
			}
			if v.Tmpfs != nil && v.Tmpfs.Mode != 0 {
				opts = append(opts, fmt.Sprintf("mode=%o", v.Tmpfs.Mode))
			}
			sp.Tmpfs[v.Target] = strings.Join(opts, ",")
			continue
		case types.VolumeTypeVolume:
		case types.VolumeTypeBind:
		default:
			return keyError(file, []string{"services", s.Name, "volumes", fmt.Sprintf("[%d]", i)}, "volume type %q is %v", v.Type, ErrNotHonoured)
		}
		m := Mount{Type: v.Type, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		if v.Volume != nil {
			m.NoCopy = v.Volume.NoCopy
		}
		if v.Type == types.VolumeTypeVolume && v.Source == "" {
			m.Source, m.Anonymous = fmt.Sprintf("%s.anon%d", s.Name, i), true
			if _, taken := p.Volumes[m.Source]; taken {
				return keyError(file, []string{"volumes", m.Source}, "volume name %q is the name a run gives the anonymous volume services.%s.volumes[%d]; rename it", m.Source, s.Name, i)
			}
		}
		sp.Mounts = append(sp.Mounts, m)
	}
	for _, ref := range s.Secrets {
		target := ref.Target
		if target == "" {
			target = ref.Source
		}
		if !path.IsAbs(target) {
			target = path.Join("/run/secrets", target)
		}
		sp.Mounts = append(sp.Mounts, Mount{Type: types.VolumeTypeBind, Source: p.Secrets[ref.Source].File, Target: target, ReadOnly: true})
	}
	for _, ref := range s.Configs {
		target := ref.Target
		if target == "" {
			target = ref.Source
		}
		if !path.IsAbs(target) {
			target = "/" + target
		}
		sp.Mounts = append(sp.Mounts, Mount{Type: types.VolumeTypeBind, Source: p.Configs[ref.Source].File, Target: target, ReadOnly: true})
	}
	return nil
}

// exposed parses an expose entry: "80", "53/udp" or a range "8000-8002/tcp".
func exposed(e string) ([]Port, error) {
	spec, proto, _ := strings.Cut(e, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("expose %q: protocol %q is not tcp, udp or sctp", e, proto)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last := first
	var err2 error
	if isRange {
		last, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return nil, fmt.Errorf("expose %q: not a port or port range", e)
	}
	var ports []Port
	for p := first; p <= last; p++ {
		ports = append(ports, Port{Target: uint32(p), Protocol: proto})
	}
	return ports, nil
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
		k := key(ExtensionKey, "go", fmt.Sprintf("[%d]", i), "main")
		dir := g.Main
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(p.WorkingDir, dir)
		}
		if err := sandbox.CheckSource(file, p, s.Name, k, "go main", dir); err != nil {
			return spec, err
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return spec, keyError(file, k, "%q is not a directory", g.Main)
		}
		g.Main = dir
		spec.Go = append(spec.Go, g)
	}
	if spec.Build != nil || len(spec.Go) > 0 {
		k := key("image")
		if s.Image == "" {
			k = key("build")
		}
		if err := sandbox.CheckBuiltImage(file, k, s.Name, spec.Ref); err != nil {
			return spec, err
		}
	}
	return spec, nil
}

func lastSegment(ref string) string {
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

// sortedKeys is a map's keys in order (start.go uses it).
func sortedKeys[M ~map[string]V, V any](m M) []string {
	return slices.Sorted(maps.Keys(m))
}

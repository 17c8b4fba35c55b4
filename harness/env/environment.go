// Package env turns a compose file into a sandboxed plan and the plan into
// a running environment: networks, volumes and one container per service,
// started in dependency order and always torn down. Services are reached
// through Service (exec, copy, logs, state) and Service.Container (pause,
// signal, stop/start, networks, resources). Run ids, ownership, removal and
// gc live in harness/runs; the port gateway in harness/gateway.
package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/rehearse/rehearse/harness/engine"
	"github.com/rehearse/rehearse/harness/gateway"
	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/runs"
)

// Environment is a running, sandboxed copy of a compose project.
type Environment struct {
	RunID string
	Plan  *Plan

	cli      *client.Client
	ownCli   bool
	owner    runs.Owner
	opts     startOptions
	wd       *runs.Watchdog
	mu       sync.Mutex
	services map[string]*Service
	// networks: compose network name (and egress, ports) -> engine id;
	// written (under mu) before any container is created, read-only after.
	networks map[string]string
	// endpoints: service -> container port -> 127.0.0.1 endpoint
	endpoints map[string]map[string]string
	images    *image.Builder
	timings   map[string]Timing
	// passes: container id -> the State.StartedAt of the container start
	// for which a health check run by the harness passed (State counts it
	// healthy while the engine still says starting).
	passes map[string]string
	down   bool
}

// recordPass records that the harness's health check passed for the
// start of container id at startedAt (its State.StartedAt).
func (e *Environment) recordPass(id, startedAt string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.passes == nil {
		e.passes = map[string]string{}
	}
	e.passes[id] = startedAt
}

// passedFor is the State.StartedAt of the start of container id for which
// the harness's health check last passed, "" when none did.
func (e *Environment) passedFor(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.passes[id]
}

// Timing is when a service's start began (its dependencies were ready) and
// when it became ready (healthy, or running when it has no healthcheck).
type Timing struct {
	Start time.Time
	Ready time.Time
}

// StartOption configures Start.
type StartOption func(*startOptions) error

type startOptions struct {
	runID         string
	cli           *client.Client
	log           io.Writer
	imageOpts     []image.Option
	imageLines    io.Writer // WithImageProgress
	imageLinesSet bool
	startTimeout  time.Duration
	keepOnFailure bool
	sweep         bool
	tracer        func(what string, at time.Time) // withTrace
}

// withTrace calls f at each phase of the start (the benchmark's
// breakdown). Default: nothing is called.
func withTrace(f func(what string, at time.Time)) StartOption {
	return func(o *startOptions) error {
		o.tracer = f
		return nil
	}
}

// trace marks a phase of the start (withTrace).
func (o startOptions) trace(what string) {
	if o.tracer != nil {
		o.tracer(what, time.Now())
	}
}

// WithRunID names the run. Default: a fresh random id (runs.NewID).
func WithRunID(id string) StartOption {
	return func(o *startOptions) error {
		if err := runs.ValidID(id); err != nil {
			return err
		}
		o.runID = id
		return nil
	}
}

// WithClient uses an existing engine client. Default: engine.Connect.
func WithClient(cli *client.Client) StartOption {
	return func(o *startOptions) error {
		o.cli = cli
		return nil
	}
}

// WithProgress writes one line per step of the start (image built, service
// started, healthy) to w, and, unless WithImageProgress says otherwise,
// the progress of images that take long to make. Default: nothing is
// written.
func WithProgress(w io.Writer) StartOption {
	return func(o *startOptions) error {
		o.log = w
		return nil
	}
}

// WithImageProgress writes the progress of the images the environment's
// builder makes (at Start, and later for fault and snapshot helpers) to
// w: plain lines once making has taken a few seconds, then at least
// every 10 s, and one when it ends (image.WithProgressLines); making
// that ends sooner, every image cached, writes nothing. Default: the
// WithProgress writer; nil: none.
func WithImageProgress(w io.Writer) StartOption {
	return func(o *startOptions) error {
		o.imageLines, o.imageLinesSet = w, true
		return nil
	}
}

// builderOptions are the image builder's options: WithImageOptions's,
// and progress lines (WithImageProgress).
func (o startOptions) builderOptions() []image.Option {
	lines := o.log
	if o.imageLinesSet {
		lines = o.imageLines
	}
	opts := slices.Clip(o.imageOpts)
	if lines != nil && lines != io.Discard {
		opts = append(opts, image.WithProgressLines(lines))
	}
	return opts
}

// WithImageOptions passes options to the image builder. Default: none.
func WithImageOptions(opts ...image.Option) StartOption {
	return func(o *startOptions) error {
		o.imageOpts = append(o.imageOpts, opts...)
		return nil
	}
}

// WithStartTimeout bounds how long one service may take to become ready.
// Default: 5 minutes.
func WithStartTimeout(d time.Duration) StartOption {
	return func(o *startOptions) error {
		o.startTimeout = d
		return nil
	}
}

// WithKeepOnFailure leaves a failed start's resources up (and marks the run
// kept) instead of removing them; Start then returns the Environment with
// its error. Default: false.
func WithKeepOnFailure(keep bool) StartOption {
	return func(o *startOptions) error {
		o.keepOnFailure = keep
		return nil
	}
}

// WithSweep controls removing leftovers of dead owners before starting.
// Default: true.
func WithSweep(sweep bool) StartOption {
	return func(o *startOptions) error {
		o.sweep = sweep
		return nil
	}
}

// Start creates the run's networks and volumes, then starts every service:
// each makes sure its image exists (building what is missing or stale) while
// its dependencies start, so images build in parallel with the start of what
// is ready. When a build reads a directory that a service may write through
// a bind mount, every image is made before the first service starts
// instead (see imagesFirst). Independent services start in parallel,
// dependents once their dependencies meet their condition. It returns when
// every service is ready.
//
// On failure Start removes everything it created (unless WithKeepOnFailure)
// and the error carries the failing service's log tail and health output.
// When the program opted in (runs.WatchdogMain), a detached watchdog removes
// the run if this process dies before Down; otherwise the next run's sweep
// or rehearse gc does.
func Start(ctx context.Context, plan *Plan, opts ...StartOption) (*Environment, error) {
	o := startOptions{log: io.Discard, startTimeout: 5 * time.Minute, sweep: true}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.runID == "" {
		o.runID = runs.NewID()
	}
	e := &Environment{RunID: o.runID, Plan: plan, cli: o.cli, owner: runs.Self(), opts: o,
		services: map[string]*Service{}, timings: map[string]Timing{}, networks: map[string]string{}}
	if e.cli == nil {
		cli, err := engine.Connect(ctx)
		if err != nil {
			return nil, err
		}
		e.cli, e.ownCli = cli, true
	}
	fail := func(err error) (*Environment, error) {
		if e.ownCli {
			e.cli.Close()
		}
		return nil, err
	}
	if o.sweep {
		if removed, err := runs.GC(ctx, e.cli, false); err != nil {
			fmt.Fprintf(o.log, "sweeping leftovers: %v\n", err)
		} else {
			for _, r := range removed {
				fmt.Fprintf(o.log, "removed leftovers of run %s (owner %s gone)\n", r.ID, r.Owner)
			}
		}
	}
	if exists, err := runs.Exists(ctx, e.cli, o.runID); err != nil {
		return fail(err)
	} else if exists {
		return fail(fmt.Errorf("run %s already exists; choose another id or remove it (rehearse down --run-id %s)", o.runID, o.runID))
	}
	builder, err := image.NewBuilder(e.cli, o.builderOptions()...)
	if err != nil {
		return fail(err)
	}
	e.images = builder
	wd, err := runs.StartWatchdog(e.RunID, e.owner)
	if err != nil {
		return fail(err)
	}
	if wd == nil {
		fmt.Fprintf(o.log, "no watchdog (the program did not call runs.WatchdogMain): if it is killed, the next run or rehearse gc removes run %s\n", e.RunID)
	}
	e.wd = wd
	if err := e.start(ctx); err != nil {
		cleanup := context.WithoutCancel(ctx)
		if o.keepOnFailure {
			if kerr := e.Keep(cleanup); kerr != nil {
				err = errors.Join(err, kerr)
			}
			return e, err
		}
		if derr := e.abandon(cleanup); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	return e, nil
}

// start creates the run's networks and volumes, makes images, starts the
// services and the port gateway, all at once where nothing orders them: a
// service waits only for what it needs (its image, the run's networks and
// volumes, its dependencies' conditions) and the gateway for the networks;
// Start returns once all of them are done.
func (e *Environment) start(ctx context.Context) error {
	labels := e.owner.Labels(e.RunID)
	g, gctx := errgroup.WithContext(ctx)
	pre := prerequisites{resources: make(chan struct{}), images: make(chan struct{}), after: e.Plan.criticalFirst()}
	g.Go(func() error {
		if err := e.createResources(gctx, labels); err != nil {
			return err
		}
		e.opts.trace("networks and volumes created")
		close(pre.resources)
		return nil
	})
	first, why := imagesFirst(e.Plan)
	if first {
		fmt.Fprintf(e.opts.log, "making every image before any service starts: %s\n", why)
		g.Go(func() error {
			if err := e.ensureImages(gctx, e.Plan.Images()); err != nil {
				return err
			}
			close(pre.images)
			return nil
		})
	} else {
		close(pre.images)
	}
	states := map[string]*serviceState{}
	for _, sp := range e.Plan.Services {
		states[sp.Name] = newServiceState()
	}
	for _, sp := range e.Plan.Services {
		g.Go(func() error { return e.runService(gctx, sp, states, !first, pre) })
	}
	if e.Plan.hasPorts() {
		g.Go(func() error {
			gw, err := gateway.EnsureImage(gctx, e.images)
			if err != nil {
				return err
			}
			if gw.Action == image.Built {
				fmt.Fprintf(e.opts.log, "image %s built\n", gw.Ref)
			}
			if err := pre.await(gctx, pre.resources); err != nil {
				return err
			}
			if err := e.startGateway(gctx, labels); err != nil {
				return err
			}
			e.opts.trace("gateway ready")
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, ports := range e.endpoints {
		if s := e.services[name]; s != nil {
			s.Ports = ports
		}
	}
	return nil
}

// prerequisites are what every service waits for before its container is
// created: the run's networks and volumes exist (resources), and, when
// imagesFirst says so, every image is made (images). Each channel closes
// once its part is done.
type prerequisites struct {
	resources chan struct{}
	images    chan struct{}
	// after names, for a service, the services whose start it waits for
	// besides its dependencies (Plan.criticalFirst).
	after map[string][]string
}

// await waits for ch to close, or for the start to be called off.
func (prerequisites) await(ctx context.Context, ch chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// createResources creates the run's networks, one after another, beside
// its volumes, concurrently: none depends on another. The engine's network
// code takes its own locks (and iptables') for each create: creating them
// side by side saves little, and on the 2-core CI machine, with other runs
// creating and removing networks at the same time, a network removal hung
// for ten minutes. On an error the others may still land; they carry the
// run's labels, and the run's removal finds them.
func (e *Environment) createResources(ctx context.Context, labels map[string]string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for _, n := range e.Plan.Networks {
			if err := e.createNetwork(gctx, n, true, labels); err != nil {
				return err
			}
		}
		if e.Plan.hasEgress() {
			if err := e.createNetwork(gctx, egressNetwork, false, labels); err != nil {
				return err
			}
		}
		if e.Plan.hasPorts() {
			return e.createNetwork(gctx, portsNetwork, false, labels)
		}
		return nil
	})
	for _, v := range e.Plan.Volumes {
		g.Go(func() error { return e.createVolume(gctx, v, labels) })
	}
	return g.Wait()
}

func (e *Environment) createNetwork(ctx context.Context, name string, internal bool, labels map[string]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cctx, cancel := landed(ctx)
	defer cancel()
	created, err := e.cli.NetworkCreate(cctx, e.resourceName(name), client.NetworkCreateOptions{
		Driver:   "bridge",
		Internal: internal,
		Labels:   labels,
	})
	if err != nil {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	e.mu.Lock()
	e.networks[name] = created.ID
	e.mu.Unlock()
	return nil
}

// createVolume creates a volume of the run and fails unless the volume it
// got is the run's own. The engine answers a create of an existing name
// with the existing volume, and names can meet: run ids and compose volume
// names both may contain '-', so volume x-data of run ci and volume data of
// run ci-x are both rehearse-ci-x-data. Adopting it would share the other
// run's data, and its removal would pull the volume from under this run.
// The volume found is left as it was. (Networks need no such check: a
// network create never adopts one, and services join networks by id.)
func (e *Environment) createVolume(ctx context.Context, v string, labels map[string]string) error {
	name := e.resourceName(v)
	if err := ctx.Err(); err != nil {
		return err
	}
	cctx, cancel := landed(ctx)
	defer cancel()
	if _, err := e.cli.VolumeCreate(cctx, client.VolumeCreateOptions{Name: name, Labels: labels, DriverOpts: e.Plan.volumeOptions(v)}); err != nil {
		return fmt.Errorf("create volume %s: %w", v, err)
	}
	ins, err := e.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if err != nil {
		return fmt.Errorf("create volume %s: inspect %s: %w", v, name, err)
	}
	got := ins.Volume.Labels
	for k, want := range labels {
		if got[k] == want {
			continue
		}
		owner := "no run"
		if id := got[runs.LabelRun]; id != "" {
			owner = fmt.Sprintf("run %s (owner %s)", id, got[runs.LabelOwner])
		}
		return fmt.Errorf("create volume %s: engine volume %s already exists and belongs to %s, not to run %s (owner %s); it was left as it was: choose another run id or rename the volume",
			v, name, owner, e.RunID, labels[runs.LabelOwner])
	}
	return nil
}

// imagesFirst reports whether every image must be made before the first
// container starts, and why. A build reads its context, its Dockerfile and
// (go build) its Go module by path while earlier services already run.
// Where one of those holds, is, or lies under a writable bind source of any
// service, a running container could swap a directory there for a symbolic
// link between the reader's lstat and open, and a host file would land in
// the image. Otherwise images are made while dependencies start: the
// bundled world's start time depends on that overlap.
func imagesFirst(p *Plan) (bool, string) {
	type input struct{ service, what, path string }
	var inputs []input
	for _, sp := range p.Services {
		if b := sp.Image.Build; b != nil {
			inputs = append(inputs, input{sp.Name, "build context", b.Context})
			if b.Inline == "" {
				inputs = append(inputs, input{sp.Name, "Dockerfile", filepath.Join(b.Context, b.Dockerfile)})
			}
		}
		for _, g := range sp.Image.Go {
			inputs = append(inputs, input{sp.Name, "Go module", goModule(g.Main)})
		}
	}
	for _, in := range inputs {
		for _, sp := range p.Services {
			for _, m := range sp.Mounts {
				if m.Type == "bind" && !m.ReadOnly && overlap(in.path, m.Source) {
					return true, fmt.Sprintf("the %s %s of service %s and the writable bind mount %s (target %s) of service %s overlap",
						in.what, in.path, in.service, m.Source, m.Target, sp.Name)
				}
			}
		}
	}
	return false, ""
}

// goModule is the root of the Go module that holds dir (where go.mod is),
// or dir when none does: go build reads the whole module.
func goModule(dir string) string {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// overlap reports whether one of two paths is the other or lies under it,
// as written or with symbolic links resolved (a path that cannot be
// resolved is compared as written).
func overlap(a, b string) bool {
	for _, x := range pathForms(a) {
		for _, y := range pathForms(b) {
			if under(x, y) || under(y, x) {
				return true
			}
		}
	}
	return false
}

func pathForms(p string) []string {
	forms := []string{filepath.Clean(p)}
	if real, err := filepath.EvalSymlinks(p); err == nil && real != forms[0] {
		forms = append(forms, real)
	}
	return forms
}

// under reports whether path is dir or lies under it.
func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// ensureImages makes images exist, saying which it had to build (each
// once, however many services run it).
func (e *Environment) ensureImages(ctx context.Context, specs []image.Spec) error {
	rs, err := e.images.Ensure(ctx, specs...)
	if err != nil {
		return err
	}
	said := map[string]bool{}
	for _, r := range rs {
		if r.Action == image.Built && !said[r.Ref] {
			said[r.Ref] = true
			fmt.Fprintf(e.opts.log, "image %s built\n", r.Ref)
		}
	}
	return nil
}

// resourceName is the engine name of a run's network, volume or container.
func (e *Environment) resourceName(name string) string {
	return "rehearse-" + e.RunID + "-" + name
}

// Service returns a running service, or nil.
func (e *Environment) Service(name string) *Service {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.services[name]
}

// Services lists the running services by name.
func (e *Environment) Services() []*Service {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Service, 0, len(e.services))
	for _, s := range e.services {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Timings returns each service's start and ready times.
func (e *Environment) Timings() map[string]Timing {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]Timing, len(e.timings))
	for k, v := range e.timings {
		out[k] = v
	}
	return out
}

// Version runs a service's x-rehearse version command and returns what it
// printed, trimmed.
func (e *Environment) Version(ctx context.Context, service string) (string, error) {
	s, sp := e.Service(service), e.Plan.Service(service)
	if s == nil || sp == nil {
		return "", fmt.Errorf("no service %q is running", service)
	}
	if len(sp.Ext.Version) == 0 {
		return "", fmt.Errorf("service %s has no x-rehearse: {version: [command...]} in %s", service, e.Plan.File)
	}
	res, err := s.Exec(ctx, sp.Ext.Version)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("version command of %s exited %d: %s", service, res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return strings.TrimSpace(res.Stdout), nil
}

// Down removes every container, network and volume of the run, dependents
// first. It is safe to call more than once.
func (e *Environment) Down(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.down {
		return nil
	}
	if err := runs.Remove(ctx, e.cli, e.RunID); err != nil {
		return err // the watchdog stays armed and retries when we exit
	}
	e.down = true
	e.wd.Release()
	if e.ownCli {
		e.cli.Close()
	}
	return nil
}

// landed is the context of an engine call that creates something of the
// run, which must not begin once ctx is done (the caller checks). The
// engine finishes a create whose client went away, so a create cancelled
// with the start would land after abandon's sweeps and outlive the run:
// the call outlives ctx by up to landGrace, time for the engine to finish
// it, and is bounded by createTimeout in all. (What an engine that hangs
// lands later still carries the run's labels: the watchdog and gc remove
// it.)
func landed(ctx context.Context) (context.Context, context.CancelFunc) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(landGrace, cancel)
		context.AfterFunc(lctx, func() { t.Stop() })
	})
	return lctx, func() { stop(); cancel() }
}

const (
	// createTimeout bounds one create the engine works on (see landed).
	createTimeout = 2 * time.Minute
	// landGrace is how long a create may go on once the start is
	// cancelled (see landed).
	landGrace = 10 * time.Second
)

// abandon removes a run whose start failed. A create the engine was still
// working on when the start was cancelled can land after a sweep, and a
// container whose removal is in progress holds its volumes a moment longer:
// it sweeps at least twice, a second apart, until a sweep after the first
// succeeds, and only then releases the watchdog.
func (e *Environment) abandon(ctx context.Context) error {
	const sweeps = 6
	for i := 1; ; i++ {
		err := runs.Remove(ctx, e.cli, e.RunID)
		switch {
		case i > 1 && err == nil:
			return e.Down(ctx)
		case i == sweeps:
			return err // the watchdog stays armed and retries when we exit
		}
		time.Sleep(time.Second)
	}
}

// Keep leaves the environment up on purpose: it marks the run kept (gc
// skips it without --all) and disarms the watchdog.
func (e *Environment) Keep(ctx context.Context) error {
	if err := runs.Keep(ctx, e.cli, e.RunID, e.owner); err != nil {
		return err
	}
	e.wd.Release()
	return nil
}

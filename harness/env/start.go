package env

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/sandbox"
)

const egressNetwork = "egress"

// criticalHold is the longest a service nobody waits for waits for the
// dependency chains' first links to start (Plan.criticalFirst): their
// starts take about half a second on two cores.
const criticalHold = 2 * time.Second

// serviceState is what dependents wait on.
type serviceState struct {
	started  chan struct{}
	ready    chan struct{}
	exited   chan struct{}
	once     sync.Once
	exitCode int
}

func newServiceState() *serviceState {
	return &serviceState{started: make(chan struct{}), ready: make(chan struct{}), exited: make(chan struct{})}
}

func (s *serviceState) markExited(code int) {
	s.once.Do(func() {
		s.exitCode = code
		close(s.exited)
	})
}

// runService makes the service's image exist (unless makeImage is false:
// every image is made before any service starts, pre.images), waits for
// its dependencies and the run's networks and volumes, starts it and waits
// until it is ready.
func (e *Environment) runService(ctx context.Context, sp *ServicePlan, states map[string]*serviceState, makeImage bool, pre prerequisites) error {
	if err := pre.await(ctx, pre.images); err != nil {
		return err
	}
	if makeImage {
		if err := e.ensureImages(ctx, []image.Spec{sp.Image}); err != nil {
			return err
		}
	}
	e.opts.trace(sp.Name + ": image checked")
	if err := e.checkDiskImage(ctx, sp); err != nil {
		return err
	}
	for _, dep := range sortedKeys(sp.DependsOn) {
		st := states[dep]
		var ch chan struct{}
		switch sp.DependsOn[dep] {
		case ConditionHealthy:
			ch = st.ready
		case ConditionCompleted:
			ch = st.exited
		default:
			ch = st.started
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		if sp.DependsOn[dep] == ConditionCompleted && st.exitCode != 0 {
			return fmt.Errorf("service %s: dependency %s exited with code %d", sp.Name, dep, st.exitCode)
		}
	}
	if err := pre.await(ctx, pre.resources); err != nil {
		return err
	}
	// A service nobody waits for starts after the chains' first links
	// (Plan.criticalFirst), or after criticalHold at most.
	if after := pre.after[sp.Name]; len(after) > 0 {
		e.opts.trace(sp.Name + ": waiting for " + strings.Join(after, ", ") + " to start")
		hold := time.NewTimer(criticalHold)
		defer hold.Stop()
	held:
		for _, first := range after {
			select {
			case <-states[first].started:
			case <-hold.C:
				break held
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	me := states[sp.Name]
	began := time.Now()
	fmt.Fprintf(e.opts.log, "%s: starting\n", sp.Name)
	id, nets, err := e.createService(ctx, sp)
	if err != nil {
		return err
	}
	e.opts.trace(sp.Name + ": created")
	// The bind sources were resolved and checked at create: check them
	// again right before the start, as every later start does.
	if err := e.checkBinds(ctx, sp, id); err != nil {
		return err
	}
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("service %s: start: %w", sp.Name, err)
	}
	e.opts.trace(sp.Name + ": started")
	// Once started, the engine records each network's id: check again.
	if err := e.checkNetworks(ctx, sp, id, nets); err != nil {
		return err
	}
	close(me.started)
	if err := e.waitReady(ctx, sp, id, me); err != nil {
		return err
	}
	e.opts.trace(sp.Name + ": ready")
	e.mu.Lock()
	e.timings[sp.Name] = Timing{Start: began, Ready: time.Now()}
	e.mu.Unlock()
	fmt.Fprintf(e.opts.log, "%s: ready\n", sp.Name)
	close(me.ready)
	if e.Plan.awaitsCompletion(sp.Name) {
		return e.waitExit(ctx, sp, id, me)
	}
	return nil
}

// waitReady polls the container until it is ready: with a healthcheck,
// when its command first passes (run by the harness itself, see
// checkFirst) or the engine reports it healthy, whichever comes first;
// without one, running (and settled, when a restart policy may restart
// it). A container that exits, restarts too often or turns unhealthy (as
// the engine judges it) fails with its log tail and last health check
// output.
//
// The healthcheck is the one the engine runs (the container's config: the
// compose file's merged with the image's HEALTHCHECK), not only the compose
// file's. A pass of the harness's check counts only when an inspect after
// it finds the container still running the same start (same StartedAt
// and RestartCount as when the check began), and, for a service a restart
// policy may restart, only once it has also run for runningSettle without
// restarting, as a service without a healthcheck must: a service that
// passes its check once and then crashes is not ready. A counted pass is
// recorded (recordPass), so State calls the service healthy from then on.
func (e *Environment) waitReady(ctx context.Context, sp *ServicePlan, id string, st *serviceState) error {
	deadline := time.Now().Add(e.opts.startTimeout)
	// The engine counts a restart when it schedules it, and a crashing
	// service may run between two polls: only a service seen running, with
	// the same count and the same start (the count may not change between
	// two polls: it was already counted when the restart was scheduled),
	// for runningSettle has stopped restarting.
	restarts, runningSince, startedAt := -1, time.Now(), ""
	var (
		health *container.HealthConfig // the healthcheck the engine runs; nil: none
		argv   []string                // its command; nil: none the harness can run
		own    *checkResult            // the harness's last finished check
		wait   *backoff
		// running is the harness's check under way (nil: none), and
		// overran the exec of the last check that overran its timeout,
		// which may still run in the container.
		running *check
		overran string
		// justEnded: a check ended since the last pause, so the next one
		// waits for the next pause, as the schedule says.
		justEnded bool
		// notYet: the host-side probe failed at this poll; it is polled
		// again after checkFirst, without using up the schedule.
		notYet bool
		// passedStart is the StartedAt of the container start a check
		// passed for ("" none), and passedRestarts its RestartCount.
		passedStart    string
		passedRestarts int
	)
	defer func() {
		if running != nil {
			running.cancel()
		}
	}()
	for first := true; ; first = false {
		// A check that ended is taken before the inspect: the inspect that
		// confirms a pass is one made after it.
		if running != nil {
			select {
			case <-running.done:
				if running.err != nil {
					return fmt.Errorf("service %s: %w", sp.Name, running.err)
				}
				res := running.res
				own, justEnded = &res, true
				if res.passed() {
					passedStart, passedRestarts = running.startedAt, running.restarts
				}
				running = nil
			default:
				if running.overdue() {
					running.cancel()
					res := running.timedOut()
					own, justEnded, overran = &res, true, running.exec()
					running = nil
				}
			}
		}
		ins, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("service %s: inspect: %w", sp.Name, err)
		}
		if first {
			health = sp.Health
			var shell []string
			if cfg := ins.Container.Config; cfg != nil {
				health, shell = cfg.Healthcheck, cfg.Shell
			}
			if !hasTest(health) {
				health = nil
			}
			if health != nil {
				argv = HealthArgv(health.Test, shell)
				wait = newBackoff()
			} else {
				if deps := e.Plan.healthyDependents(sp.Name); len(deps) > 0 {
					return fmt.Errorf("%s: service %s has no healthcheck (neither the compose file nor its image sets a test), but %s depends on it with condition service_healthy",
						e.Plan.File, sp.Name, strings.Join(deps, ", "))
				}
				// Nothing to check sooner: running is seen at the first
				// poll, and settling (runningSettle) is judged at the
				// usual pace.
				wait = &backoff{next: noHealthPoll, cap: noHealthPoll}
			}
		}
		state := ins.Container.State
		if n := ins.Container.RestartCount; n != restarts || state == nil || !state.Running || state.Restarting || state.StartedAt != startedAt {
			restarts, runningSince = n, time.Now()
			if state != nil {
				startedAt = state.StartedAt
			}
		}
		switch {
		case state == nil:
		case restarts >= maxStartRestarts:
			return e.startError(ctx, sp, id, fmt.Sprintf("restarted %d times (last exit code %d) before it was ready", restarts, state.ExitCode), state.Health, own)
		case state.Restarting:
		case health == nil && state.Running && mayRestart(sp):
			if time.Since(runningSince) >= runningSettle {
				return nil
			}
		case !state.Running && (state.Status == container.StateExited || state.Status == container.StateDead):
			st.markExited(state.ExitCode)
			if state.ExitCode == 0 && (health == nil || !hasTest(sp.Health)) {
				// A one-shot job that finished is ready, also when its
				// image has a HEALTHCHECK the compose file did not ask for.
				return nil
			}
			return e.startError(ctx, sp, id, fmt.Sprintf("exited with code %d", state.ExitCode), state.Health, own)
		case health == nil:
			return nil
		case state.Health != nil && state.Health.Status == container.Healthy:
			return nil
		case state.Health != nil && state.Health.Status == container.Unhealthy:
			return e.startError(ctx, sp, id, "is unhealthy", state.Health, own)
		case !state.Running:
		default:
			if passedStart != "" && (state.StartedAt != passedStart || restarts != passedRestarts) {
				passedStart = "" // it passed for an earlier start
			}
			if passedStart != "" {
				if !mayRestart(sp) || time.Since(runningSince) >= runningSettle {
					e.recordPass(id, passedStart)
					return nil
				}
				break // settling: no need to check again
			}
			if argv == nil || running != nil || justEnded || state.Paused {
				break
			}
			if overran != "" {
				if e.execRunning(ctx, overran) {
					break
				}
				overran = ""
			}
			// The first check waits for the first pause: a container an
			// instant old is not ready yet.
			if first {
				break
			}
			// A host-side probe, where the service has one, must pass
			// before the healthcheck's pass counts (see presignal).
			if pre := e.presignal(sp); pre != nil && pre(ctx) != nil {
				notYet = true
				break
			}
			// nil when other services' checks hold every slot: this
			// one's runs at a later poll.
			running = e.startCheck(ctx, id, argv, health.Timeout, state.StartedAt, restarts)
		}
		if time.Now().After(deadline) {
			var h *container.Health
			if state != nil {
				h = state.Health
			}
			if running != nil && running.overdue() {
				res := running.timedOut()
				own = &res
			}
			return e.startError(ctx, sp, id, fmt.Sprintf("not healthy after %s", e.opts.startTimeout), h, own)
		}
		var pause time.Duration
		switch {
		case justEnded && own != nil:
			pause = wait.After(own.end.Sub(own.began))
		case notYet:
			// A host-side probe costs the engine no exec (an inspect
			// per poll): it is polled at the floor's pace until it
			// passes.
			pause = checkFirst
		default:
			pause = wait.Next()
		}
		justEnded, notYet = false, false
		var ended <-chan struct{} // nil: no check runs
		if running != nil {
			ended = running.done
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s: %w", sp.Name, ctx.Err())
		case <-ended:
		case <-time.After(pause):
		}
	}
}

func (e *Environment) waitExit(ctx context.Context, sp *ServicePlan, id string, st *serviceState) error {
	select {
	case <-st.exited:
		return nil
	default:
	}
	w := e.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case res := <-w.Result:
		st.markExited(int(res.StatusCode))
		return nil
	case err := <-w.Error:
		return fmt.Errorf("service %s: wait for exit: %w", sp.Name, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StartError is a service that did not become ready.
type StartError struct {
	Service string
	Reason  string
	Health  string // last health check output; "" without a healthcheck
	Logs    string // tail of the container's logs
}

func (e *StartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "service %s %s", e.Service, e.Reason)
	if e.Health != "" {
		fmt.Fprintf(&b, "\n--- last health check ---\n%s", strings.TrimRight(e.Health, "\n"))
	}
	if e.Logs != "" {
		fmt.Fprintf(&b, "\n--- last log lines ---\n%s", strings.TrimRight(e.Logs, "\n"))
	}
	return b.String()
}

// startError is a service that did not become ready, with the newer of the
// engine's last health check (h) and the harness's own (own), and its log
// tail.
func (e *Environment) startError(ctx context.Context, sp *ServicePlan, id, reason string, h *container.Health, own *checkResult) error {
	se := &StartError{Service: sp.Name, Reason: reason, Health: lastHealth(h, own)}
	se.Logs, _ = containerLogs(context.WithoutCancel(ctx), e.cli, id, 30)
	return se
}

func containerLogs(ctx context.Context, cli *client.Client, id string, tail int) (string, error) {
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}
	if tail > 0 {
		opts.Tail = fmt.Sprint(tail)
	}
	rc, err := cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return buf.String(), err
	}
	return buf.String(), nil
}

// runningSettle is how long a service with a restart policy and no
// healthcheck must run without restarting to count as ready. Two seconds,
// not one: on a loaded machine the engine has been seen to report a
// crash-looping container as running for over a second after its process
// exited (it handles the exit late), which one second took for ready.
const runningSettle = 2 * time.Second

// noHealthPoll is how often the state of a starting service without a
// healthcheck is polled.
const noHealthPoll = 200 * time.Millisecond

// mayRestart reports whether the engine restarts the service when it exits.
func mayRestart(sp *ServicePlan) bool { return sp.Restart != "" && sp.Restart != "no" }

// maxStartRestarts is how often a service with a restart policy may restart
// before it is ready: enough for one that retries until a dependency
// answers, few enough that a crash loop fails fast with its logs.
const maxStartRestarts = 5

// createOptions turns a service plan into the engine's create request.
// mounts are the service's mounts with every bind source already resolved
// (resolveMounts). The container joins nets[0] at create; the caller
// connects the others before the start.
func (e *Environment) createOptions(sp *ServicePlan, mounts []mount.Mount, nets []attachment) (client.ContainerCreateOptions, error) {
	restart, err := restartPolicy(sp.Restart)
	if err != nil {
		return client.ContainerCreateOptions{}, fmt.Errorf("service %s: %w", sp.Name, err)
	}
	hostname := sp.Hostname
	if hostname == "" {
		hostname = sp.Name
	}
	// Exposed, never published: a declared port is published by the
	// gateway, on 127.0.0.1; nothing else is published at all.
	exposed := network.PortSet{}
	for _, p := range append(slices.Clone(sp.Ports), sp.Expose...) {
		port, err := network.ParsePort(p.Key())
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("service %s: port %s: %w", sp.Name, p.Key(), err)
		}
		exposed[port] = struct{}{}
	}
	env := make([]string, 0, len(sp.Env))
	for _, k := range sortedKeys(sp.Env) {
		env = append(env, k+"="+sp.Env[k])
	}
	cfg := &container.Config{
		Image:        sp.Image.Ref,
		Hostname:     hostname,
		User:         sp.User,
		WorkingDir:   sp.WorkingDir,
		Env:          env,
		Entrypoint:   sp.Entrypoint,
		Cmd:          sp.Command,
		Labels:       e.containerLabels(sp),
		ExposedPorts: exposed,
		Healthcheck:  sp.Health,
		StopSignal:   sp.StopSignal,
		OpenStdin:    sp.StdinOpen,
		Tty:          sp.Tty,
	}
	if sp.NoHealth {
		cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	}
	if sp.StopTimeout != nil {
		secs := int(sp.StopTimeout.Seconds())
		cfg.StopTimeout = &secs
	}
	hc := &container.HostConfig{
		CapAdd:         sp.CapAdd,
		CapDrop:        sp.CapDrop,
		SecurityOpt:    sp.SecurityOpt,
		Sysctls:        sp.Sysctls,
		RestartPolicy:  restart,
		ReadonlyRootfs: sp.ReadOnly,
		ShmSize:        sp.ShmSize,
		Tmpfs:          sp.Tmpfs,
		Mounts:         mounts,
	}
	if sp.Init {
		init := true
		hc.Init = &init
	}
	opts := client.ContainerCreateOptions{Name: e.resourceName(sp.Name), Config: cfg, HostConfig: hc}
	if sp.NoNetwork || len(nets) == 0 {
		hc.NetworkMode = "none"
		return opts, nil
	}
	// Engine 20.10 (API 1.41) takes one network at create. Networks are
	// named by id: a name two networks share cannot pick the wrong one.
	hc.NetworkMode = container.NetworkMode(nets[0].id)
	opts.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		nets[0].id: {Aliases: nets[0].aliases},
	}}
	return opts, nil
}

// attachment is one network a service joins: its engine id, and the names
// the service answers to there.
type attachment struct {
	name    string // compose name, for errors
	id      string
	aliases []string
}

// attachments lists the networks of sp in the order they are joined.
func (e *Environment) attachments(sp *ServicePlan) ([]attachment, error) {
	if sp.NoNetwork {
		return nil, nil
	}
	var out []attachment
	add := func(n string, aliases []string) error {
		id, ok := e.networks[n]
		if !ok {
			return fmt.Errorf("service %s: network %s was not created", sp.Name, n)
		}
		out = append(out, attachment{name: n, id: id, aliases: aliases})
		return nil
	}
	for _, n := range sortedKeys(sp.Networks) {
		if err := add(n, append([]string{sp.Name}, sp.Networks[n]...)); err != nil {
			return nil, err
		}
	}
	if sp.Ext.Egress {
		if err := add(egressNetwork, []string{sp.Name}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resolveMounts turns the plan's mounts into the engine's. Every bind
// source (bind mounts, secret and config files) is resolved right before the
// create, checked again to be inside the project directory, and passed
// resolved: what the plan checked may have been replaced by a symbolic link
// since (by another service's writable bind, say), and the engine follows
// links in a source when it mounts. The resolved sources come back with
// their device and inode, for the container's labelBinds.
func (e *Environment) resolveMounts(sp *ServicePlan) ([]mount.Mount, []bindSource, error) {
	var out []mount.Mount
	var binds []bindSource
	for _, m := range sp.Mounts {
		switch m.Type {
		case "volume":
			mt := mount.Mount{Type: mount.TypeVolume, Source: e.resourceName(m.Source), Target: m.Target, ReadOnly: m.ReadOnly}
			if m.NoCopy {
				mt.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
			}
			out = append(out, mt)
		case "bind":
			real, err := filepath.EvalSymlinks(m.Source)
			if err != nil {
				return nil, nil, fmt.Errorf("service %s: bind mount %s (target %s): resolve the source: %w", sp.Name, m.Source, m.Target, err)
			}
			if !sandbox.Inside(e.Plan.Dir, real) {
				return nil, nil, fmt.Errorf("service %s: bind mount %s (target %s): the source now resolves to %s, outside the project directory %s: %w",
					sp.Name, m.Source, m.Target, real, e.Plan.Dir, ErrSandbox)
			}
			dev, ino, err := fileID(real)
			if err != nil {
				return nil, nil, fmt.Errorf("service %s: bind mount %s (target %s): %w", sp.Name, m.Source, m.Target, err)
			}
			out = append(out, mount.Mount{Type: mount.TypeBind, Source: real, Target: m.Target, ReadOnly: m.ReadOnly})
			binds = append(binds, bindSource{Path: real, Target: m.Target, Dev: dev, Ino: ino})
		default:
			return nil, nil, fmt.Errorf("service %s: mount %s: type %q is %w", sp.Name, m.Target, m.Type, ErrNotHonoured)
		}
	}
	if sp.Ext.Init == "systemd" {
		out = append(out, mount.Mount{Type: mount.TypeBind, Source: cgroupMount, Target: cgroupMount, ReadOnly: true})
	}
	return out, binds, nil
}

// cgroupMount is the host's cgroup tree, which a systemd host gets
// read-only: the one bind mount the harness adds itself, from outside the
// project.
const cgroupMount = "/sys/fs/cgroup"

// createService creates the service's container, stopped, on exactly the
// networks of its plan. Every engine error is returned (a network that cannot
// be joined never falls back to another), and a container whose networks
// are not the plan's is removed before anything runs in it. A container
// that exists is recorded even on error, so the run's removal finds it.
func (e *Environment) createService(ctx context.Context, sp *ServicePlan) (string, []attachment, error) {
	mounts, binds, err := e.resolveMounts(sp)
	if err != nil {
		return "", nil, err
	}
	nets, err := e.attachments(sp)
	if err != nil {
		return "", nil, err
	}
	opts, err := e.createOptions(sp, mounts, nets)
	if err != nil {
		return "", nil, err
	}
	if len(binds) > 0 {
		rec, err := json.Marshal(binds)
		if err != nil {
			return "", nil, fmt.Errorf("service %s: record its bind sources: %w", sp.Name, err)
		}
		opts.Config.Labels[labelBinds] = string(rec)
	}
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	cctx, cancel := landed(ctx)
	created, err := e.cli.ContainerCreate(cctx, opts)
	cancel()
	if created.ID != "" {
		e.addService(sp.Name, created.ID)
	}
	if err != nil {
		return "", nil, fmt.Errorf("service %s: create: %w", sp.Name, err)
	}
	removeOnError := func(err error) (string, []attachment, error) {
		if _, rerr := e.cli.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
			err = errors.Join(err, fmt.Errorf("service %s: remove the container: %w", sp.Name, rerr))
		}
		return "", nil, err
	}
	for _, n := range nets[min(1, len(nets)):] {
		if _, err := e.cli.NetworkConnect(ctx, n.id, client.NetworkConnectOptions{
			Container: created.ID, EndpointConfig: &network.EndpointSettings{Aliases: n.aliases}}); err != nil {
			return removeOnError(fmt.Errorf("service %s: connect network %s: %w", sp.Name, n.name, err))
		}
	}
	if err := e.checkNetworks(ctx, sp, created.ID, nets); err != nil {
		return removeOnError(err)
	}
	return created.ID, nets, nil
}

// checkNetworks fails unless the container joins exactly nets (none at
// all for network_mode: none). Before the start the engine records joined
// networks by name only: each is looked up, and a name two networks share
// is an error, never a guess.
func (e *Environment) checkNetworks(ctx context.Context, sp *ServicePlan, id string, nets []attachment) error {
	ins, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("service %s: inspect: %w", sp.Name, err)
	}
	want := map[string]bool{}
	for _, n := range nets {
		want[n.id] = true
	}
	joined := 0
	if ns := ins.Container.NetworkSettings; ns != nil {
		for name, ep := range ns.Networks {
			if len(nets) == 0 && name == "none" {
				continue
			}
			netID := ""
			if ep != nil {
				netID = ep.NetworkID
			}
			if netID == "" {
				n, err := e.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
				if err != nil {
					return fmt.Errorf("service %s: check network %s: %w", sp.Name, name, err)
				}
				netID = n.Network.ID
			}
			if !want[netID] {
				return fmt.Errorf("service %s: the container joined network %s, which is not one of the run's: %w", sp.Name, name, ErrSandbox)
			}
			joined++
		}
	}
	if joined != len(want) {
		return fmt.Errorf("service %s: the container joined %d networks, want %d", sp.Name, joined, len(want))
	}
	return nil
}

// containerLabels are the compose file's labels with the sandbox's on top:
// the run, the owner and the service, which nothing in a compose file may
// change (the sandbox also refuses rehearse.* labels outright).
func (e *Environment) containerLabels(sp *ServicePlan) map[string]string {
	labels := maps.Clone(sp.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, e.owner.Labels(e.RunID))
	labels[LabelService] = sp.Name
	labels["com.docker.compose.project"] = e.Plan.Project
	labels["com.docker.compose.service"] = sp.Name
	return labels
}

// restartPolicy parses compose's restart: no, always, unless-stopped,
// on-failure[:max-retries].
func restartPolicy(s string) (container.RestartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	rp := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if rp.Name == "" {
		rp.Name = container.RestartPolicyDisabled
	}
	if hasMax {
		n, err := strconv.Atoi(max)
		if err != nil {
			return rp, fmt.Errorf("restart %q: the retry count is not a number", s)
		}
		rp.MaximumRetryCount = n
	}
	if err := container.ValidateRestartPolicy(rp); err != nil {
		return rp, fmt.Errorf("restart %q: %w", s, err)
	}
	return rp, nil
}

package env

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

const egressNetwork = "egress"

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

// runService waits for the service's dependencies, starts it and waits until
// it is ready.
func (e *Environment) runService(ctx context.Context, sp *ServicePlan, states map[string]*serviceState) error {
	if err := e.ensureImage(ctx, sp.Image); err != nil {
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
	me := states[sp.Name]
	began := time.Now()
	fmt.Fprintf(e.opts.log, "%s: starting\n", sp.Name)
	req, err := e.request(ctx, sp)
	if err != nil {
		return err
	}
	c, err := testcontainers.GenericContainer(ctx, req)
	if c != nil {
		e.addService(sp.Name, c.GetContainerID())
	}
	if err != nil {
		return fmt.Errorf("service %s: start: %w", sp.Name, err)
	}
	close(me.started)
	if err := e.waitReady(ctx, sp, c.GetContainerID(), me); err != nil {
		return err
	}
	e.mu.Lock()
	e.timings[sp.Name] = Timing{Start: began, Ready: time.Now()}
	e.mu.Unlock()
	fmt.Fprintf(e.opts.log, "%s: ready\n", sp.Name)
	close(me.ready)
	if e.Plan.awaitsCompletion(sp.Name) {
		return e.waitExit(ctx, sp, c.GetContainerID(), me)
	}
	return nil
}

// waitReady polls the container until it is healthy (or running, without a
// healthcheck). A container that exits or turns unhealthy fails with its
// log tail and last health check output.
func (e *Environment) waitReady(ctx context.Context, sp *ServicePlan, id string, st *serviceState) error {
	deadline := time.Now().Add(e.opts.startTimeout)
	// The engine counts a restart when it schedules it, and a crashing
	// service may run between two polls: only a service seen running, with
	// the same count, for runningSettle has stopped restarting.
	restarts, runningSince := -1, time.Now()
	for {
		ins, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("service %s: inspect: %w", sp.Name, err)
		}
		state := ins.Container.State
		if n := ins.Container.RestartCount; n != restarts || state == nil || !state.Running || state.Restarting {
			restarts, runningSince = n, time.Now()
		}
		switch {
		case state == nil:
		case restarts >= maxStartRestarts:
			return e.startError(ctx, sp, id, fmt.Sprintf("restarted %d times (last exit code %d) before it was ready", restarts, state.ExitCode), state.Health)
		case state.Restarting:
		case sp.Health == nil && state.Running && mayRestart(sp):
			if time.Since(runningSince) >= runningSettle {
				return nil
			}
		case !state.Running && (state.Status == container.StateExited || state.Status == container.StateDead):
			st.markExited(state.ExitCode)
			if state.ExitCode == 0 && sp.Health == nil {
				return nil // a one-shot job that finished is ready
			}
			return e.startError(ctx, sp, id, fmt.Sprintf("exited with code %d", state.ExitCode), state.Health)
		case sp.Health == nil:
			return nil
		case state.Health != nil && state.Health.Status == container.Healthy:
			return nil
		case state.Health != nil && state.Health.Status == container.Unhealthy:
			return e.startError(ctx, sp, id, "is unhealthy", state.Health)
		}
		if time.Now().After(deadline) {
			var h *container.Health
			if state != nil {
				h = state.Health
			}
			return e.startError(ctx, sp, id, fmt.Sprintf("not healthy after %s", e.opts.startTimeout), h)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s: %w", sp.Name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
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

func (e *Environment) startError(ctx context.Context, sp *ServicePlan, id, reason string, h *container.Health) error {
	se := &StartError{Service: sp.Name, Reason: reason}
	if h != nil && len(h.Log) > 0 {
		last := h.Log[len(h.Log)-1]
		se.Health = fmt.Sprintf("exit %d: %s", last.ExitCode, last.Output)
	}
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
// healthcheck must run without restarting to count as ready.
const runningSettle = time.Second

// mayRestart reports whether the engine restarts the service when it exits.
func mayRestart(sp *ServicePlan) bool { return sp.Restart != "" && sp.Restart != "no" }

// maxStartRestarts is how often a service with a restart policy may restart
// before it is ready: enough for one that retries until a dependency
// answers, few enough that a crash loop fails fast with its logs.
const maxStartRestarts = 5

// request turns a service plan into a testcontainers request.
func (e *Environment) request(ctx context.Context, sp *ServicePlan) (testcontainers.GenericContainerRequest, error) {
	labels := e.containerLabels(sp)
	nets := sortedKeys(sp.Networks)
	var netNames []string
	aliases := map[string][]string{}
	for _, n := range nets {
		name := e.resourceName(n)
		netNames = append(netNames, name)
		aliases[name] = append([]string{sp.Name}, sp.Networks[n]...)
	}
	if sp.Ext.Egress && !sp.NoNetwork {
		name := e.resourceName(egressNetwork)
		netNames = append(netNames, name)
		aliases[name] = []string{sp.Name}
	}
	// testcontainers publishes an image's exposed ports on every host
	// address when a request names none; name them, bound to 127.0.0.1.
	// (Services on internal networks, or on none, publish nothing anyway;
	// the gateway does.)
	ins, err := e.cli.ImageInspect(ctx, sp.Image.Ref)
	if err != nil {
		return testcontainers.GenericContainerRequest{}, fmt.Errorf("service %s: image %s: %w", sp.Name, sp.Image.Ref, err)
	}
	var exposed []string
	if ins.Config != nil {
		for p := range ins.Config.ExposedPorts {
			exposed = append(exposed, p)
		}
	}
	for _, p := range sp.Expose {
		if !slices.Contains(exposed, p.Key()) {
			exposed = append(exposed, p.Key())
		}
	}
	hostname := sp.Hostname
	if hostname == "" {
		hostname = sp.Name
	}
	restart, err := restartPolicy(sp.Restart)
	if err != nil {
		return testcontainers.GenericContainerRequest{}, fmt.Errorf("service %s: %w", sp.Name, err)
	}
	req := testcontainers.ContainerRequest{
		Image:          sp.Image.Ref,
		Name:           e.resourceName(sp.Name),
		Env:            sp.Env,
		Entrypoint:     sp.Entrypoint,
		Cmd:            sp.Command,
		Labels:         labels,
		Networks:       netNames,
		NetworkAliases: aliases,
		ExposedPorts:   exposed,
		Tmpfs:          sp.Tmpfs,
		ConfigModifier: func(c *container.Config) {
			c.Hostname = hostname
			c.User = sp.User
			c.WorkingDir = sp.WorkingDir
			c.Healthcheck = sp.Health
			if sp.NoHealth {
				c.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
			}
			c.StopSignal = sp.StopSignal
			if sp.StopTimeout != nil {
				secs := int(sp.StopTimeout.Seconds())
				c.StopTimeout = &secs
			}
			c.OpenStdin = sp.StdinOpen
			c.Tty = sp.Tty
		},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.PortBindings = loopbackBindings(exposed)
			if sp.NoNetwork {
				hc.NetworkMode = "none"
			}
			hc.CapAdd = sp.CapAdd
			hc.CapDrop = sp.CapDrop
			hc.SecurityOpt = sp.SecurityOpt
			hc.Sysctls = sp.Sysctls
			hc.RestartPolicy = restart
			hc.ReadonlyRootfs = sp.ReadOnly
			hc.ShmSize = sp.ShmSize
			if sp.Init {
				init := true
				hc.Init = &init
			}
			for _, m := range sp.Mounts {
				switch m.Type {
				case "volume":
					mt := mount.Mount{Type: mount.TypeVolume, Source: e.resourceName(m.Source), Target: m.Target, ReadOnly: m.ReadOnly}
					if m.NoCopy {
						mt.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
					}
					hc.Mounts = append(hc.Mounts, mt)
				case "bind":
					hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
				}
			}
			if sp.Ext.Init == "systemd" {
				hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: "/sys/fs/cgroup", Target: "/sys/fs/cgroup", ReadOnly: true})
			}
		},
	}
	return testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true, Logger: tclog.NewNoopLogger()}, nil
}

// containerLabels are the compose file's labels with the sandbox's on top:
// the run, the owner and the service, which nothing in a compose file may
// change (the sandbox also refuses rehearse.* labels outright).
func (e *Environment) containerLabels(sp *ServicePlan) map[string]string {
	labels := map[string]string{}
	for k, v := range sp.Labels {
		labels[k] = v
	}
	for k, v := range e.owner.Labels(e.RunID) {
		labels[k] = v
	}
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
	switch rp.Name {
	case "":
		rp.Name = container.RestartPolicyDisabled
	case container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
	case container.RestartPolicyOnFailure:
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return rp, fmt.Errorf("restart %q: the retry count is not a number", s)
			}
			rp.MaximumRetryCount = n
		}
		return rp, nil
	default:
		return rp, fmt.Errorf("restart %q: use no, always, unless-stopped or on-failure[:N]", s)
	}
	if hasMax {
		return rp, fmt.Errorf("restart %q: only on-failure takes a retry count", s)
	}
	return rp, nil
}

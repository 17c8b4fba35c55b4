package env

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/image"
)

// LabelHelper marks a short-lived helper container that runs in a
// service's network namespace; its value is the service. Helpers carry the
// run's labels too, so removing the run (Down, the watchdog, gc) removes a
// helper that a killed process left behind.
const LabelHelper = "rehearse.helper"

// helperRemoveTimeout bounds removing a helper once it is done, even when
// the caller's context is already cancelled.
const helperRemoveTimeout = 30 * time.Second

// RunInNetns runs cmd in a short-lived helper container of image that shares
// the service's network namespace (network mode container:<id>), waits for
// it to exit, and removes it. The helper has no capabilities but capAdd
// (NET_ADMIN to change the namespace's packet filter) and cannot gain any;
// the service's container keeps exactly the capabilities it had. A helper
// that exits non-zero is not an error: read ExitCode. The service must be
// running (or paused, State.Live): the engine refuses to join the
// namespace of a stopped container.
func (c *Container) RunInNetns(ctx context.Context, image string, cmd []string, capAdd []string) (ExecResult, error) {
	what := fmt.Sprintf("run %q in the network namespace of %s", strings.Join(cmd, " "), c.svc.Name)
	return c.runHelper(ctx, what, "netns", image, cmd, capAdd, &container.HostConfig{
		NetworkMode: container.NetworkMode("container:" + c.id()),
	})
}

// runHelper is the life cycle of every helper container of the service:
// it creates one of image running cmd (named <run>-<service>-<kind>-<id>,
// labelled with the run and LabelHelper, so the run's removal removes one a
// killed process left behind), with hc's namespaces, mounts and limits,
// every capability dropped but capAdd and no way to gain any; runs it to
// its exit, collects its output and removes it, even when ctx is
// cancelled. A helper that exits non-zero is not an error: read ExitCode.
func (c *Container) runHelper(ctx context.Context, what, kind, image string, cmd, capAdd []string, hc *container.HostConfig) (res ExecResult, err error) {
	if image == "" || len(cmd) == 0 {
		return ExecResult{}, fmt.Errorf("%s: no image or no command", what)
	}
	h := *hc
	h.CapDrop, h.CapAdd = []string{"ALL"}, capAdd
	h.SecurityOpt = []string{"no-new-privileges"}
	e := c.svc.env
	labels := e.owner.Labels(e.RunID)
	labels[LabelHelper] = c.svc.Name
	created, err := c.cli().ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       e.resourceName(c.svc.Name + "-" + kind + "-" + helperID()),
		Config:     &container.Config{Image: image, Entrypoint: cmd, Labels: labels},
		HostConfig: &h,
	})
	// Removal is registered before the error check: a create that failed
	// half-way may still have left a container.
	if created.ID != "" {
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), helperRemoveTimeout)
			defer cancel()
			_, rerr := c.cli().ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true})
			if rerr != nil && !cerrdefs.IsNotFound(rerr) {
				err = errors.Join(err, fmt.Errorf("%s: remove helper: %w", what, rerr))
			}
		}()
	}
	if err != nil {
		return ExecResult{}, fmt.Errorf("%s: create helper: %w: %w", what, ErrHelperNotRun, err)
	}
	// Wait is asked for before the start, so that a helper that exits at
	// once cannot be missed.
	waitCtx, stopWait := context.WithCancel(ctx)
	defer stopWait()
	wait := c.cli().ContainerWait(waitCtx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := c.cli().ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		if ctx.Err() != nil {
			// A start cut short may have reached the engine: not known
			// whether the helper ran.
			return ExecResult{}, fmt.Errorf("%s: start helper: %w", what, err)
		}
		return ExecResult{}, fmt.Errorf("%s: start helper: %w: %w", what, ErrHelperNotRun, err)
	}
	select {
	case r := <-wait.Result:
		res.ExitCode = int(r.StatusCode)
		if r.Error != nil && r.Error.Message != "" {
			return res, fmt.Errorf("%s: wait for helper: %s", what, r.Error.Message)
		}
	case err := <-wait.Error:
		return ExecResult{}, fmt.Errorf("%s: wait for helper: %w", what, err)
	case <-ctx.Done():
		return ExecResult{}, fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var stdout, stderr bytes.Buffer
	logs, err := c.cli().ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return res, fmt.Errorf("%s: read helper output: %w", what, err)
	}
	defer logs.Close()
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil && !errors.Is(err, io.EOF) {
		return res, fmt.Errorf("%s: read helper output: %w", what, err)
	}
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	return res, nil
}

// Address is one of a service's addresses: the compose network it is on
// and its IP there.
type Address struct {
	Network string // as in the compose file: "default", "backend"
	IP      netip.Addr
}

// Addresses asks the engine for the service's addresses on the run's
// networks (IPv4, and IPv6 where a network has it), by network name. The
// engine may give a container a new address when it starts again: ask
// again after a restart.
func (s *Service) Addresses(ctx context.Context) ([]Address, error) {
	ins, err := s.env.cli.ContainerInspect(ctx, s.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", s.Name, err)
	}
	if ins.Container.NetworkSettings == nil {
		return nil, fmt.Errorf("addresses of %s: the engine reports no network settings", s.Name)
	}
	byID := map[string]string{}
	for name, id := range s.env.networks {
		byID[id] = name
	}
	var out []Address
	for _, ep := range ins.Container.NetworkSettings.Networks {
		name, ok := byID[ep.NetworkID]
		if !ok || name == portsNetwork || name == egressNetwork {
			continue // not one of the run's service networks
		}
		for _, ip := range []netip.Addr{ep.IPAddress, ep.GlobalIPv6Address} {
			if ip.IsValid() && !ip.IsUnspecified() {
				out = append(out, Address{Network: name, IP: ip})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].IP.Less(out[j].IP)
	})
	return out, nil
}

// ImageBuilder is the run's image builder, for the harness's helper images
// (a fault's packet filter helper, a proxy): it makes base images exist the
// way it does for the services, and reaches no container.
func (e *Environment) ImageBuilder() *image.Builder { return e.images }

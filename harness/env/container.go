package env

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Container is what faults may do to a service's container: pause it, send
// it a signal, stop, start and restart it, take it off and back onto one of
// the run's networks, and squeeze its resources. It is the only way the
// harness above env reaches a container; nobody needs the raw Docker client.
type Container struct {
	svc *Service
}

// Container returns the handle on the service's container.
func (s *Service) Container() *Container { return &Container{svc: s} }

func (c *Container) cli() *client.Client { return c.svc.env.cli }
func (c *Container) id() string          { return c.svc.ContainerID }

func (c *Container) fail(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w", what, c.svc.Name, err)
}

// Pause freezes every process of the container (the cgroup freezer).
func (c *Container) Pause(ctx context.Context) error {
	_, err := c.cli().ContainerPause(ctx, c.id(), client.ContainerPauseOptions{})
	return c.fail("pause", err)
}

// Unpause thaws a paused container.
func (c *Container) Unpause(ctx context.Context) error {
	_, err := c.cli().ContainerUnpause(ctx, c.id(), client.ContainerUnpauseOptions{})
	return c.fail("unpause", err)
}

// Signal sends a signal ("SIGKILL", "SIGTERM", "HUP", "9") to the
// container's main process. SIGKILL kills the container.
func (c *Container) Signal(ctx context.Context, signal string) error {
	if signal == "" {
		return fmt.Errorf("signal %s: no signal named", c.svc.Name)
	}
	_, err := c.cli().ContainerKill(ctx, c.id(), client.ContainerKillOptions{Signal: signal})
	return c.fail("signal "+signal+" to", err)
}

// Stop sends the container's stop signal and waits up to timeout for it to
// exit before killing it.
func (c *Container) Stop(ctx context.Context, timeout time.Duration) error {
	secs := int(timeout.Seconds())
	_, err := c.cli().ContainerStop(ctx, c.id(), client.ContainerStopOptions{Timeout: &secs})
	return c.fail("stop", err)
}

// Start starts a stopped container again; its published ports keep their
// endpoints (they are the gateway's). The engine mounts every bind source
// again, by the path resolved at create, following any symbolic link put
// in it since: each is checked first (same resolved path, inside the
// project directory, same device and inode as at create), and a start
// that would mount anything else is refused with ErrSandbox, naming the
// compose file, service and path.
func (c *Container) Start(ctx context.Context) error {
	sp := c.plan()
	if sp == nil {
		return fmt.Errorf("start %s: not in the plan of %s", c.svc.Name, c.svc.env.Plan.File)
	}
	if err := c.svc.env.checkBinds(ctx, sp, c.id()); err != nil {
		return c.fail("start", err)
	}
	_, err := c.cli().ContainerStart(ctx, c.id(), client.ContainerStartOptions{})
	return c.fail("start", err)
}

// Restart stops the container as Stop does, then starts it as Start does
// (its bind sources checked between the two, which the engine's own
// restart would not allow).
func (c *Container) Restart(ctx context.Context, timeout time.Duration) error {
	if err := c.Stop(ctx, timeout); err != nil {
		return err
	}
	return c.Start(ctx)
}

// ImageID is the ID ("sha256:...") of the image the container runs: the
// one it was created from, whatever image its reference names since.
func (c *Container) ImageID(ctx context.Context) (string, error) {
	ins, err := c.cli().ContainerInspect(ctx, c.id(), client.ContainerInspectOptions{})
	if err != nil {
		return "", c.fail("inspect", err)
	}
	if ins.Container.Image == "" {
		return "", fmt.Errorf("inspect %s: the engine names no image", c.svc.Name)
	}
	return ins.Container.Image, nil
}

// Disconnect takes the container off one of the run's networks, named as
// in the compose file ("default", "backend").
func (c *Container) Disconnect(ctx context.Context, net string) error {
	name, err := c.network(net)
	if err == nil {
		_, err = c.cli().NetworkDisconnect(ctx, name, client.NetworkDisconnectOptions{Container: c.id(), Force: true})
	}
	return c.fail("disconnect network "+net+" from", err)
}

// Connect puts the container back on one of the run's networks, with the
// service name and the aliases the compose file gives it there.
func (c *Container) Connect(ctx context.Context, net string) error {
	name, err := c.network(net)
	if err == nil {
		aliases := append([]string{c.svc.Name}, c.plan().Networks[net]...)
		_, err = c.cli().NetworkConnect(ctx, name, client.NetworkConnectOptions{
			Container: c.id(), EndpointConfig: &network.EndpointSettings{Aliases: aliases}})
	}
	return c.fail("connect network "+net+" to", err)
}

func (c *Container) plan() *ServicePlan { return c.svc.env.Plan.Service(c.svc.Name) }

// network is the engine id of a compose network the service joins (an id,
// so that a network another party gave the same name is never picked).
func (c *Container) network(net string) (string, error) {
	if sp := c.plan(); sp != nil {
		if _, ok := sp.Networks[net]; ok {
			if id := c.svc.env.networks[net]; id != "" {
				return id, nil
			}
			return c.svc.env.resourceName(net), nil
		}
	}
	return "", fmt.Errorf("service %s is not on network %q in %s", c.svc.Name, net, c.svc.env.Plan.File)
}

// Resources are the limits a squeeze changes. Zero means unlimited when
// read, and unchanged when updating.
type Resources struct {
	Memory     int64 // bytes
	MemorySwap int64 // memory plus swap, bytes; -1 unlimited; set it with Memory (cgroup v1 wants MemorySwap >= Memory)
	NanoCPUs   int64 // CPU quota in billionths of a CPU: 1.5 CPUs is 1.5e9
}

// Update changes the container's limits at once, without a restart.
func (c *Container) Update(ctx context.Context, r Resources) error {
	_, err := c.cli().ContainerUpdate(ctx, c.id(), client.ContainerUpdateOptions{Resources: &container.Resources{
		Memory: r.Memory, MemorySwap: r.MemorySwap, NanoCPUs: r.NanoCPUs}})
	return c.fail("update resources of", err)
}

// Resources reads the container's current limits, so a squeeze can put
// them back.
func (c *Container) Resources(ctx context.Context) (Resources, error) {
	ins, err := c.cli().ContainerInspect(ctx, c.id(), client.ContainerInspectOptions{})
	if err != nil {
		return Resources{}, c.fail("inspect", err)
	}
	hc := ins.Container.HostConfig
	if hc == nil {
		return Resources{}, fmt.Errorf("inspect %s: no host config", c.svc.Name)
	}
	return Resources{Memory: hc.Memory, MemorySwap: hc.MemorySwap, NanoCPUs: hc.NanoCPUs}, nil
}

package env

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/gateway"
	"github.com/rehearse/rehearse/harness/runs"
)

// LabelSidecar marks a long-lived container the harness adds to a run (a
// fault's proxy); its value is the sidecar's name. Sidecars carry the run's
// labels too, so removing the run (Down, the watchdog, gc) removes them.
const LabelSidecar = "rehearse.sidecar"

// SidecarSpec is a container the harness adds to a run, next to its
// services.
type SidecarSpec struct {
	// Name is unique in the run ("toxiproxy"): the container is
	// rehearse-<run>-rehearse-<name>, which no compose service can be.
	Name       string
	Image      string
	Entrypoint []string
	Cmd        []string
	Env        []string
	// Networks are compose networks of the run (as in the compose file) to
	// join.
	Networks []string
	// Publish are container ports ("8474/tcp") published on 127.0.0.1 at
	// ports the engine picks. The run's networks are internal, where the
	// engine publishes nothing: a sidecar that publishes also joins a
	// bridge of its own, rehearse-<run>-rehearse-<name>, which no service
	// joins. Its entry must then confine itself (accept on that bridge only
	// what it publishes): the bridge reaches the host and beyond.
	Publish []string
	// CapAdd are the only capabilities it gets (every other is dropped).
	CapAdd []string
}

// Sidecar is a running sidecar of the run.
type Sidecar struct {
	Name string
	ID   string
	// Ports maps each published container port ("8474/tcp") to its
	// endpoint on 127.0.0.1.
	Ports map[string]netip.AddrPort
	e     *Environment
}

// sidecarName is the engine name of a sidecar's container and bridge.
func (e *Environment) sidecarName(name string) string { return e.resourceName("rehearse-" + name) }

// StartSidecar creates and starts a sidecar of the run, on the run's
// networks it names (and its own bridge if it publishes ports), with the
// run's labels and LabelSidecar. Like the port gateway it routes nothing
// (forwarding off), searches no DNS domain, runs with no capability but
// CapAdd and cannot gain any. It returns once the container runs; whether
// what runs in it is ready is the caller's to check. On error nothing of it
// is left.
func (e *Environment) StartSidecar(ctx context.Context, spec SidecarSpec) (_ *Sidecar, err error) {
	what := "sidecar " + spec.Name
	if spec.Name == "" || spec.Image == "" {
		return nil, fmt.Errorf("sidecar %q: no name or no image", spec.Name)
	}
	if err := runs.ValidID(spec.Name); err != nil {
		return nil, fmt.Errorf("%s: name: %w", what, err)
	}
	var nets []attachment
	for _, n := range spec.Networks {
		id, ok := e.networks[n]
		if !ok || n == portsNetwork || n == egressNetwork {
			return nil, fmt.Errorf("%s: %q is not one of the run's networks in %s", what, n, e.Plan.File)
		}
		nets = append(nets, attachment{name: n, id: id})
	}
	exposed, bindings := network.PortSet{}, network.PortMap{}
	for _, p := range spec.Publish {
		port, perr := network.ParsePort(p)
		if perr != nil {
			return nil, fmt.Errorf("%s: publish %s: %w", what, p, perr)
		}
		exposed[port] = struct{}{}
		bindings[port] = []network.PortBinding{{HostIP: gateway.Loopback}}
	}
	if len(nets) == 0 && len(exposed) == 0 {
		return nil, fmt.Errorf("%s: it joins no network", what)
	}
	labels := e.owner.Labels(e.RunID)
	labels[LabelSidecar] = spec.Name
	name := e.sidecarName(spec.Name)
	var bridge string // its own network's id, when it publishes
	// Whatever was made is removed on error (the run's removal would find
	// it too, by its labels, but bad input leaves nothing behind).
	var created string
	defer func() {
		if err == nil {
			return
		}
		cleanup := context.WithoutCancel(ctx)
		if created != "" {
			if _, rerr := e.cli.ContainerRemove(cleanup, created, client.ContainerRemoveOptions{Force: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
				err = errors.Join(err, fmt.Errorf("%s: remove the container: %w", what, rerr))
			}
		}
		if bridge != "" {
			if _, rerr := e.cli.NetworkRemove(cleanup, bridge, client.NetworkRemoveOptions{}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
				err = errors.Join(err, fmt.Errorf("%s: remove its bridge: %w", what, rerr))
			}
		}
	}()
	if len(exposed) > 0 {
		nw, nerr := e.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: maps.Clone(labels)})
		if nerr != nil {
			return nil, fmt.Errorf("%s: create its bridge: %w", what, nerr)
		}
		bridge = nw.ID
		nets = append([]attachment{{name: name, id: bridge}}, nets...)
	}
	hc := &container.HostConfig{
		NetworkMode:  container.NetworkMode(nets[0].id),
		PortBindings: bindings,
		CapDrop:      []string{"ALL"},
		CapAdd:       spec.CapAdd,
		SecurityOpt:  []string{"no-new-privileges"},
		DNSSearch:    []string{"."},
		Sysctls:      map[string]string{"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"},
	}
	res, cerr := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{Image: spec.Image, Entrypoint: spec.Entrypoint, Cmd: spec.Cmd, Env: spec.Env,
			Labels: labels, ExposedPorts: exposed},
		HostConfig:       hc,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{nets[0].id: {}}},
	})
	created = res.ID
	if cerr != nil {
		return nil, fmt.Errorf("%s: create: %w", what, cerr)
	}
	for _, n := range nets[1:] {
		if _, err := e.cli.NetworkConnect(ctx, n.id, client.NetworkConnectOptions{Container: created}); err != nil {
			return nil, fmt.Errorf("%s: connect network %s: %w", what, n.name, err)
		}
	}
	sp := &ServicePlan{Name: what}
	if err := e.checkNetworks(ctx, sp, created, nets); err != nil {
		return nil, err
	}
	if _, err := e.cli.ContainerStart(ctx, created, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("%s: start: %w", what, err)
	}
	if err := e.checkNetworks(ctx, sp, created, nets); err != nil {
		return nil, err
	}
	return e.sidecar(ctx, spec.Name, created)
}

// Sidecar finds the run's sidecar of that name, made by this process or
// another: nil, without error, when there is none.
func (e *Environment) Sidecar(ctx context.Context, name string) (*Sidecar, error) {
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.
		Add("label", runs.LabelRun+"="+e.RunID).Add("label", LabelSidecar+"="+name)})
	if err != nil {
		return nil, fmt.Errorf("find sidecar %s: %w", name, err)
	}
	switch len(list.Items) {
	case 0:
		return nil, nil
	case 1:
		return e.sidecar(ctx, name, list.Items[0].ID)
	default:
		return nil, fmt.Errorf("find sidecar %s: run %s has %d of them", name, e.RunID, len(list.Items))
	}
}

func (e *Environment) sidecar(ctx context.Context, name, id string) (*Sidecar, error) {
	ins, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("sidecar %s: inspect: %w", name, err)
	}
	s := &Sidecar{Name: name, ID: id, Ports: map[string]netip.AddrPort{}, e: e}
	if ns := ins.Container.NetworkSettings; ns != nil {
		for p, b := range ns.Ports {
			if len(b) == 0 {
				continue
			}
			n, err := strconv.ParseUint(b[0].HostPort, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("sidecar %s: %s published at %q: %w", name, p, b[0].HostPort, err)
			}
			s.Ports[p.String()] = netip.AddrPortFrom(gateway.Loopback, uint16(n))
		}
	}
	return s, nil
}

// Running reports whether the sidecar's container runs; when it does not,
// the error carries the tail of its output.
func (s *Sidecar) Running(ctx context.Context) (bool, error) {
	ins, err := s.e.cli.ContainerInspect(ctx, s.ID, client.ContainerInspectOptions{})
	if err != nil {
		return false, fmt.Errorf("sidecar %s: inspect: %w", s.Name, err)
	}
	if st := ins.Container.State; st != nil && st.Running {
		return true, nil
	}
	out, _ := containerLogs(ctx, s.e.cli, s.ID, 30)
	return false, fmt.Errorf("sidecar %s is not running:\n%s", s.Name, out)
}

// Connect puts the sidecar on one more of the run's networks (as in the
// compose file); one it is on already is no error.
func (s *Sidecar) Connect(ctx context.Context, net string) error {
	id, ok := s.e.networks[net]
	if !ok || net == portsNetwork || net == egressNetwork {
		return fmt.Errorf("sidecar %s: %q is not one of the run's networks in %s", s.Name, net, s.e.Plan.File)
	}
	addrs, err := s.Addresses(ctx)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if a.Network == net {
			return nil
		}
	}
	if _, err := s.e.cli.NetworkConnect(ctx, id, client.NetworkConnectOptions{Container: s.ID}); err != nil {
		return fmt.Errorf("sidecar %s: connect network %s: %w", s.Name, net, err)
	}
	return nil
}

// Addresses are the sidecar's addresses on the run's networks (not its
// own bridge), as Service.Addresses gives a service's.
func (s *Sidecar) Addresses(ctx context.Context) ([]Address, error) {
	as := &Service{Name: "sidecar " + s.Name, ContainerID: s.ID, env: s.e}
	return as.Addresses(ctx)
}

// Disconnect takes the sidecar off one of the run's networks (as in the
// compose file); one it is not on is no error.
func (s *Sidecar) Disconnect(ctx context.Context, net string) error {
	id, ok := s.e.networks[net]
	if !ok || net == portsNetwork || net == egressNetwork {
		return fmt.Errorf("sidecar %s: %q is not one of the run's networks in %s", s.Name, net, s.e.Plan.File)
	}
	addrs, err := s.Addresses(ctx)
	if err != nil {
		return err
	}
	on := false
	for _, a := range addrs {
		on = on || a.Network == net
	}
	if !on {
		return nil
	}
	if _, err := s.e.cli.NetworkDisconnect(ctx, id, client.NetworkDisconnectOptions{Container: s.ID}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("sidecar %s: disconnect network %s: %w", s.Name, net, err)
	}
	return nil
}

// Remove removes the sidecar's container and its own bridge, if it has
// one: for a sidecar that stopped, before another of the same name starts.
// What is already gone is no error.
func (s *Sidecar) Remove(ctx context.Context) error {
	var errs []error
	if _, err := s.e.cli.ContainerRemove(ctx, s.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("sidecar %s: remove the container: %w", s.Name, err))
	}
	if _, err := s.e.cli.NetworkRemove(ctx, s.e.sidecarName(s.Name), client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("sidecar %s: remove its bridge: %w", s.Name, err))
	}
	return errors.Join(errs...)
}

// RunInNetns runs cmd in a short-lived helper container sharing the
// sidecar's network namespace, as Container.RunInNetns does for a service
// (the helper gets capAdd, the sidecar keeps what it had), and removes it.
func (s *Sidecar) RunInNetns(ctx context.Context, image string, cmd []string, capAdd []string) (ExecResult, error) {
	svc := &Service{Name: "rehearse-" + s.Name, ContainerID: s.ID, ContainerName: s.e.sidecarName(s.Name), env: s.e}
	return svc.Container().RunInNetns(ctx, image, cmd, capAdd)
}

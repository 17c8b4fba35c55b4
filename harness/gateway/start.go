package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Loopback is the only host address a rehearsal publishes on.
var Loopback = netip.MustParseAddr("127.0.0.1")

// LoopbackBindings publishes each port ("5432/tcp") on 127.0.0.1, at a port
// the engine picks.
func LoopbackBindings(ports []string) network.PortMap {
	m := network.PortMap{}
	for _, p := range ports {
		if port, err := network.ParsePort(p); err == nil {
			m[port] = []network.PortBinding{{HostIP: Loopback}}
		}
	}
	return m
}

// firstListen is the gateway's first listening port; each target gets the
// next one.
const firstListen = 20000

// Target is a service port the gateway publishes.
type Target struct {
	Host     string // the service's name on the run's networks
	Port     uint32
	Protocol string // tcp or udp
}

// Spec is one run's gateway.
type Spec struct {
	Name   string            // container name
	Labels map[string]string // the run's labels, so removing the run removes the gateway
	// Networks are engine network names. The first is the non-internal
	// bridge where ports are published; the others are the run's internal
	// networks, where the services are.
	Networks []string
	Targets  []Target
}

// Client is the part of the Docker API that starting the gateway needs.
type Client interface {
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	NetworkConnect(ctx context.Context, networkID string, options client.NetworkConnectOptions) (client.NetworkConnectResult, error)
	ContainerStart(ctx context.Context, containerID string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}

// Start creates and starts the gateway of s (its image must exist: see
// EnsureImage) and returns each target's endpoint on 127.0.0.1, in order.
// A container made before an error carries s.Labels: removing the run
// removes it.
func Start(ctx context.Context, cli Client, s Spec) ([]netip.AddrPort, error) {
	if len(s.Networks) == 0 || len(s.Targets) == 0 {
		return nil, fmt.Errorf("port gateway %s: no network or no target", s.Name)
	}
	var args, exposed []string
	for i, t := range s.Targets {
		listen := firstListen + i
		args = append(args, fmt.Sprintf("%d:%s:%s:%d", listen, t.Protocol, t.Host, t.Port))
		exposed = append(exposed, fmt.Sprintf("%d/%s", listen, t.Protocol))
	}
	ports := network.PortSet{}
	for _, p := range exposed {
		ports[network.MustParsePort(p)] = struct{}{}
	}
	// Engine 20.10 (API 1.41) takes one network at create; the others are
	// connected before the start.
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   s.Name,
		Config: &container.Config{Image: Image, Cmd: args, Labels: s.Labels, ExposedPorts: ports},
		HostConfig: &container.HostConfig{
			NetworkMode:  container.NetworkMode(s.Networks[0]),
			PortBindings: LoopbackBindings(exposed),
		},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Networks[0]: {}}},
	})
	if err != nil {
		return nil, fmt.Errorf("port gateway %s: create: %w", s.Name, err)
	}
	for _, n := range s.Networks[1:] {
		if _, err := cli.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: created.ID}); err != nil {
			return nil, fmt.Errorf("port gateway %s: connect network %s: %w", s.Name, n, err)
		}
	}
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("port gateway %s: start: %w", s.Name, err)
	}
	ins, err := cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("port gateway %s: inspect: %w", s.Name, err)
	}
	endpoints := make([]netip.AddrPort, len(exposed))
	for i, p := range exposed {
		b := ins.Container.NetworkSettings.Ports[network.MustParsePort(p)]
		if len(b) == 0 {
			return nil, fmt.Errorf("port gateway %s: %s not published", s.Name, p)
		}
		n, err := strconv.ParseUint(b[0].HostPort, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("port gateway %s: %s published at %q: %w", s.Name, p, b[0].HostPort, err)
		}
		endpoints[i] = netip.AddrPortFrom(Loopback, uint16(n))
	}
	return endpoints, nil
}

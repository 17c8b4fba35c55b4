package gateway

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Loopback is the only host address a rehearsal publishes on.
var Loopback = netip.MustParseAddr("127.0.0.1")

// loopbackBindings publishes each port ("5432/tcp") on 127.0.0.1, at a port
// the engine picks.
func loopbackBindings(ports []string) network.PortMap {
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
	Image  string            // the gateway image (see EnsureImage); "" is Image
	Labels map[string]string // the run's labels, so removing the run removes the gateway
	// Networks are engine network ids (or names). The first is the
	// non-internal bridge where ports are published; the others are the
	// run's internal networks, where the services are, and the only places
	// the gateway's own traffic may go.
	Networks []string
	Targets  []Target
}

// Client is the part of the Docker API that starting the gateway needs.
type Client interface {
	NetworkInspect(ctx context.Context, network string, options client.NetworkInspectOptions) (client.NetworkInspectResult, error)
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	NetworkConnect(ctx context.Context, networkID string, options client.NetworkConnectOptions) (client.NetworkConnectResult, error)
	ContainerStart(ctx context.Context, containerID string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerLogs(ctx context.Context, container string, options client.ContainerLogsOptions) (client.ContainerLogsResult, error)
}

// noForwarding turns routing off in the gateway's network namespace: it
// joins the ports bridge and the run's networks, and a service with
// NET_ADMIN must not route through it to the ports bridge, the host or
// beyond. Its socat forwards are proxies and need no routing; its entry
// script also sets the FORWARD policies to DROP. Docker leaves a
// container's namespace forwarding as the host has it (on, where Docker
// runs), so it is set here rather than assumed.
var noForwarding = map[string]string{
	"net.ipv4.ip_forward":          "0",
	"net.ipv6.conf.all.forwarding": "0",
}

// readyTimeout bounds the wait for the gateway's confinement and forwards.
const readyTimeout = 30 * time.Second

// Start creates and starts the gateway of s (its image must exist: see
// EnsureImage) and returns each target's endpoint on 127.0.0.1, in order.
// Before any forward starts, the gateway's own traffic is confined to the
// subnets of s.Networks[1:] (their bridge gateways, the host, excluded), and
// it searches no DNS domain: a target name that does not resolve on the
// run's networks reaches nothing. It routes nothing either: forwarding is
// off (IPv4 and IPv6) and the FORWARD policies drop. It is given NET_ADMIN
// for that, and its forwards run without it. A container made before an
// error carries s.Labels: removing the run removes it.
func Start(ctx context.Context, cli Client, s Spec) ([]netip.AddrPort, error) {
	if len(s.Networks) < 2 || len(s.Targets) == 0 {
		return nil, fmt.Errorf("port gateway %s: it needs the ports network, at least one network of the run and a target", s.Name)
	}
	if s.Image == "" {
		s.Image = Image
	}
	fail := func(err error) ([]netip.AddrPort, error) { return nil, fmt.Errorf("port gateway %s: %w", s.Name, err) }
	var args, exposed, allow, deny []string
	for i, t := range s.Targets {
		listen := firstListen + i
		args = append(args, fmt.Sprintf("%d:%s:%s:%d", listen, t.Protocol, t.Host, t.Port))
		exposed = append(exposed, fmt.Sprintf("%d/%s", listen, t.Protocol))
	}
	ids := map[string]bool{}
	for i, n := range s.Networks {
		ins, err := cli.NetworkInspect(ctx, n, client.NetworkInspectOptions{})
		if err != nil {
			return fail(fmt.Errorf("inspect network %s: %w", n, err))
		}
		ids[ins.Network.ID] = true
		if i == 0 {
			continue
		}
		before := len(allow)
		for _, c := range ins.Network.IPAM.Config {
			if !c.Subnet.IsValid() {
				continue
			}
			allow = append(allow, c.Subnet.String())
			if c.Gateway.IsValid() {
				deny = append(deny, c.Gateway.String())
			}
		}
		if len(allow) == before {
			return fail(fmt.Errorf("network %s has no subnet to confine the gateway to", n))
		}
	}
	ports := network.PortSet{}
	for _, p := range exposed {
		ports[network.MustParsePort(p)] = struct{}{}
	}
	// Engine 20.10 (API 1.41) takes one network at create; the others are
	// connected before the start.
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: s.Name,
		Config: &container.Config{Image: s.Image, Cmd: args, Labels: s.Labels, ExposedPorts: ports,
			Env: []string{"REHEARSE_GATEWAY_ALLOW=" + strings.Join(allow, ","), "REHEARSE_GATEWAY_DENY=" + strings.Join(deny, ",")}},
		HostConfig: &container.HostConfig{
			NetworkMode:  container.NetworkMode(s.Networks[0]),
			PortBindings: loopbackBindings(exposed),
			CapAdd:       []string{"NET_ADMIN"},
			DNSSearch:    []string{"."}, // no search domain: names resolve on the run's networks or not at all
			Sysctls:      maps.Clone(noForwarding),
		},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Networks[0]: {}}},
	})
	if err != nil {
		return fail(fmt.Errorf("create: %w", err))
	}
	for _, n := range s.Networks[1:] {
		if _, err := cli.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: created.ID}); err != nil {
			return fail(fmt.Errorf("connect network %s: %w", n, err))
		}
	}
	if err := checkNetworks(ctx, cli, created.ID, ids); err != nil {
		return fail(err)
	}
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return fail(fmt.Errorf("start: %w", err))
	}
	if err := checkNetworks(ctx, cli, created.ID, ids); err != nil {
		return fail(err)
	}
	if err := waitReady(ctx, cli, created.ID); err != nil {
		return fail(err)
	}
	ins, err := cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		return fail(fmt.Errorf("inspect: %w", err))
	}
	endpoints := make([]netip.AddrPort, len(exposed))
	for i, p := range exposed {
		b := ins.Container.NetworkSettings.Ports[network.MustParsePort(p)]
		if len(b) == 0 {
			return fail(fmt.Errorf("%s not published", p))
		}
		n, err := strconv.ParseUint(b[0].HostPort, 10, 16)
		if err != nil {
			return fail(fmt.Errorf("%s published at %q: %w", p, b[0].HostPort, err))
		}
		endpoints[i] = netip.AddrPortFrom(Loopback, uint16(n))
	}
	return endpoints, nil
}

// checkNetworks fails unless the container joins exactly the networks ids.
// Before the start the engine records joined networks by name only; each is
// looked up, and a name two networks share is an error, never a guess.
func checkNetworks(ctx context.Context, cli Client, id string, ids map[string]bool) error {
	ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	joined := 0
	for name, ep := range ins.Container.NetworkSettings.Networks {
		netID := ""
		if ep != nil {
			netID = ep.NetworkID
		}
		if netID == "" {
			n, err := cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
			if err != nil {
				return fmt.Errorf("check network %s: %w", name, err)
			}
			netID = n.Network.ID
		}
		if !ids[netID] {
			return fmt.Errorf("joined network %s, which is not one of the run's", name)
		}
		joined++
	}
	if joined != len(ids) {
		return fmt.Errorf("joined %d networks, want %d", joined, len(ids))
	}
	return nil
}

// readyLine is what the entry script prints once its traffic is confined
// and its forwards are started.
const readyLine = "rehearse-gateway: confined to "

// waitReady waits until the gateway says it is confined and forwarding;
// one that exits first fails with its output.
func waitReady(ctx context.Context, cli Client, id string) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		out, err := logs(ctx, cli, id)
		if err != nil {
			return fmt.Errorf("read its output: %w", err)
		}
		if strings.Contains(out, readyLine) {
			return nil
		}
		ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect: %w", err)
		}
		if st := ins.Container.State; st != nil && !st.Running {
			out, _ = logs(ctx, cli, id)
			return fmt.Errorf("exited with code %d before it forwarded anything:\n%s", st.ExitCode, strings.TrimSpace(out))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not forwarding after %s:\n%s", readyTimeout, strings.TrimSpace(out))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func logs(ctx context.Context, cli Client, id string) (string, error) {
	rc, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var buf bytes.Buffer
	_, err = stdcopy.StdCopy(&buf, &buf, rc)
	return buf.String(), err
}

package env

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/rehearse/rehearse/harness/image"
)

// GatewayImage is the image of the port gateway.
const GatewayImage = "rehearse/gateway:1"

// gatewayService is the rehearse.service label of the gateway container.
const gatewayService = "rehearse-gateway"

const (
	portsNetwork     = "ports"
	firstGatewayPort = 20000
)

//go:embed gateway
var gatewayFiles embed.FS

// gatewaySpec writes the gateway's build context to a directory that lives
// for the process (the digest is content-based, so its path does not matter).
func gatewaySpec() (image.Spec, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("rehearse-gateway-%d", os.Getpid()))
	sub, _ := fs.Sub(gatewayFiles, "gateway")
	if err := os.CopyFS(dir, sub); err != nil && !os.IsExist(err) {
		return image.Spec{}, fmt.Errorf("gateway build context: %w", err)
	}
	return image.Spec{Ref: GatewayImage, Origin: "rehearse gateway",
		Build: &image.Build{Context: dir, Dockerfile: "Dockerfile"}}, nil
}

type forward struct {
	service string
	port    Port
	listen  int
}

func (p *Plan) forwards() []forward {
	var fw []forward
	for _, s := range p.Services {
		for _, port := range s.Ports {
			fw = append(fw, forward{service: s.Name, port: port, listen: firstGatewayPort + len(fw)})
		}
	}
	return fw
}

func (p *Plan) hasPorts() bool { return len(p.forwards()) > 0 }

func (p *Plan) hasEgress() bool {
	for _, s := range p.Services {
		if s.Ext.Egress {
			return true
		}
	}
	return false
}

// awaitsCompletion reports whether a dependent waits for name to exit.
func (p *Plan) awaitsCompletion(name string) bool {
	for _, s := range p.Services {
		if s.DependsOn[name] == ConditionCompleted {
			return true
		}
	}
	return false
}

// startGateway starts the container that publishes every service port on
// 127.0.0.1 and records the endpoints on the services.
func (e *Environment) startGateway(ctx context.Context, labels map[string]string) error {
	if err := e.createNetwork(ctx, portsNetwork, false, labels); err != nil {
		return err
	}
	fw := e.Plan.forwards()
	var args, exposed []string
	for _, f := range fw {
		args = append(args, fmt.Sprintf("%d:%s:%s:%d", f.listen, f.port.Protocol, f.service, f.port.Target))
		exposed = append(exposed, fmt.Sprintf("%d/%s", f.listen, f.port.Protocol))
	}
	gl := map[string]string{LabelService: gatewayService}
	for k, v := range labels {
		gl[k] = v
	}
	nets := []string{e.resourceName(portsNetwork)}
	for _, n := range e.Plan.Networks {
		nets = append(nets, e.resourceName(n))
	}
	req := testcontainers.ContainerRequest{
		Image:        GatewayImage,
		Name:         e.resourceName(gatewayService),
		Cmd:          args,
		Labels:       gl,
		Networks:     nets,
		ExposedPorts: exposed,
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.PortBindings = loopbackBindings(exposed)
		},
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true, Logger: tclog.NewNoopLogger()})
	if err != nil {
		return fmt.Errorf("port gateway: %w", err)
	}
	ins, err := e.cli.ContainerInspect(ctx, c.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("port gateway: %w", err)
	}
	endpoints := map[string]map[string]string{}
	for _, f := range fw {
		p := network.MustParsePort(fmt.Sprintf("%d/%s", f.listen, f.port.Protocol))
		b := ins.Container.NetworkSettings.Ports[p]
		if len(b) == 0 {
			return fmt.Errorf("port gateway: %s not published", p)
		}
		if endpoints[f.service] == nil {
			endpoints[f.service] = map[string]string{}
		}
		endpoints[f.service][f.port.Key()] = netip.AddrPortFrom(loopback, mustPort(b[0].HostPort)).String()
	}
	e.mu.Lock()
	e.endpoints = endpoints
	e.mu.Unlock()
	return nil
}

// loopback is the only host address a rehearsal publishes on.
var loopback = netip.MustParseAddr("127.0.0.1")

// loopbackBindings publishes each port ("5432/tcp") on 127.0.0.1, at a port
// the engine picks.
func loopbackBindings(ports []string) network.PortMap {
	m := network.PortMap{}
	for _, p := range ports {
		if port, err := network.ParsePort(p); err == nil {
			m[port] = []network.PortBinding{{HostIP: loopback}}
		}
	}
	return m
}

func mustPort(s string) uint16 {
	n, _ := strconv.Atoi(s)
	return uint16(n)
}

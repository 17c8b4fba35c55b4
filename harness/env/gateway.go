package env

import (
	"context"
	"maps"

	"github.com/rehearse/rehearse/harness/gateway"
)

// gatewayService is the rehearse.service label of the gateway container.
const gatewayService = "rehearse-gateway"

// portsNetwork is the run's one non-internal network besides egress: the
// gateway publishes ports from it.
const portsNetwork = "ports"

// forward is a service port the run publishes.
type forward struct {
	service string
	port    Port
}

func (p *Plan) forwards() []forward {
	var fw []forward
	for _, s := range p.Services {
		for _, port := range s.Ports {
			fw = append(fw, forward{service: s.Name, port: port})
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
// 127.0.0.1 and records the endpoints for the services. The ports network
// exists already (start creates every network before any container).
func (e *Environment) startGateway(ctx context.Context, labels map[string]string) error {
	spec := gateway.Spec{
		Name:     e.resourceName(gatewayService),
		Labels:   maps.Clone(labels),
		Networks: []string{e.networks[portsNetwork]},
	}
	spec.Labels[LabelService] = gatewayService
	for _, n := range e.Plan.Networks {
		spec.Networks = append(spec.Networks, e.networks[n])
	}
	fw := e.Plan.forwards()
	for _, f := range fw {
		spec.Targets = append(spec.Targets, gateway.Target{Host: f.service, Port: f.port.Target, Protocol: f.port.Protocol})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The gateway's container is created under the run's labels: it must
	// not land after a cancelled start was swept (see landed).
	gctx, cancel := landed(ctx)
	eps, err := gateway.Start(gctx, e.cli, spec)
	cancel()
	if err != nil {
		return err
	}
	endpoints := map[string]map[string]string{}
	for i, f := range fw {
		if endpoints[f.service] == nil {
			endpoints[f.service] = map[string]string{}
		}
		endpoints[f.service][f.port.Key()] = eps[i].String()
	}
	e.mu.Lock()
	e.endpoints = endpoints
	e.mu.Unlock()
	return nil
}

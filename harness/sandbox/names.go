package sandbox

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/rehearse/rehearse/harness/gateway"
	"github.com/rehearse/rehearse/harness/image"
)

// reservedPrefix starts every name the harness gives its own resources: a
// compose service, network or volume may not start with it (any case).
const reservedPrefix = "rehearse"

// reservedNetworks are the networks a run makes beside the compose file's,
// named rehearse-<run>-<name> like them (harness/env start.go egressNetwork
// and gateway.go portsNetwork). A compose network of the same name would be
// the same engine network, and the engine would put the service on its
// default bridge, which has egress.
var reservedNetworks = map[string]string{
	"egress": "the network of services with x-rehearse egress: true",
	"ports":  "the network the port gateway publishes ports from",
}

// ReservedImages are the image references the harness itself makes; a
// service may use them but not build into them (build: or x-rehearse go),
// which would retag an image every run shares.
// The fault helper image (fault.Image) is named as a literal: harness/fault
// builds on harness/env, which imports this package; a test in harness/fault
// keeps the two equal.
var ReservedImages = []string{image.DebianBase, gateway.Image, "rehearse/netfilter:1", "rehearse/toxiproxy:2.12.0"}

// checkNames refuses compose service, network and volume names that the
// harness uses for its own containers and networks (the port gateway is the
// container rehearse-<run>-rehearse-gateway).
func checkNames(file string, serviceNames, networks, volumes []string) error {
	for _, n := range serviceNames {
		if hasReservedPrefix(n) {
			return refuse(file, []string{"services", n}, "service name %q is %v: names starting with %q are the harness's own (its port gateway is the service %q)", n, ErrNotAllowed, reservedPrefix, "rehearse-gateway")
		}
	}
	for _, n := range networks {
		if why, ok := reservedNetworks[strings.ToLower(n)]; ok {
			return refuse(file, []string{"networks", n}, "network name %q is %v: the harness makes a network of that name in every run (%s); rename it", n, ErrNotAllowed, why)
		}
		if hasReservedPrefix(n) {
			return refuse(file, []string{"networks", n}, "network name %q is %v: names starting with %q are the harness's own; rename it", n, ErrNotAllowed, reservedPrefix)
		}
	}
	for _, n := range volumes {
		if hasReservedPrefix(n) {
			return refuse(file, []string{"volumes", n}, "volume name %q is %v: names starting with %q are the harness's own; rename it", n, ErrNotAllowed, reservedPrefix)
		}
	}
	return nil
}

func hasReservedPrefix(n string) bool {
	return strings.HasPrefix(strings.ToLower(n), reservedPrefix)
}

// CheckBuiltImage refuses a service that builds (build:, or Go programs
// packed by harness/image) into one of the ReservedImages; key is where the
// image is named. References are compared normalized, so
// docker.io/library/debian:bookworm-slim is debian:bookworm-slim.
func CheckBuiltImage(file string, key []string, service, ref string) error {
	got, err := name.ParseReference(ref)
	if err != nil {
		return nil // not a reference the engine could tag either; the build fails on it
	}
	for _, r := range ReservedImages {
		want, err := name.ParseReference(r)
		if err != nil {
			panic(fmt.Sprintf("reserved image %q: %v", r, err))
		}
		if got.Name() == want.Name() {
			return refuse(file, key, "building image %q is %v (service %q): the harness makes that image and every run shares it; name the service's image differently", ref, ErrNotAllowed, service)
		}
	}
	return nil
}

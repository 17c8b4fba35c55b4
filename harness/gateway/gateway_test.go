package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/gateway"
	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
)

// The image is built from the embedded files streamed from memory: nothing
// lands in the temporary directory (where a predictable path was once
// written), and a second call finds it cached.
func TestEnsureImageWritesNothingToDisk(t *testing.T) {
	cli := enginetest.Connect(t)
	ctx := context.Background()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	b, err := image.NewBuilder(cli)
	if err != nil {
		t.Fatal(err)
	}
	ref := "rehearse-test/gateway:" + runs.NewID()
	t.Cleanup(func() {
		if _, err := cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil {
			t.Errorf("remove test image %s: %v", ref, err)
		}
	})
	r, err := gateway.EnsureImage(ctx, b, gateway.WithRef(ref))
	if err != nil {
		t.Fatal(err)
	}
	if r.Ref != ref || r.Action != image.Built || r.ID == "" {
		t.Errorf("first EnsureImage = %+v, want %s built", r, ref)
	}
	if r, err := gateway.EnsureImage(ctx, b, gateway.WithRef(ref)); err != nil || r.Action != image.Cached {
		t.Errorf("second EnsureImage = %+v, %v; want cached", r, err)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("building the gateway wrote %s to the temporary directory", e.Name())
	}
}

func TestEnsureImageRefusesEmptyRef(t *testing.T) {
	if _, err := gateway.EnsureImage(context.Background(), nil, gateway.WithRef("")); err == nil || !strings.Contains(err.Error(), "empty ref") {
		t.Errorf("err = %v", err)
	}
}

// A service that only sits on an internal network answers on 127.0.0.1
// through the gateway, and the gateway's own traffic reaches nothing but
// the run's internal networks: not the host behind either bridge.
func TestStartPublishesOnLoopback(t *testing.T) {
	cli, labels, name := newRun(t)
	ctx := context.Background()
	bridgeIPs := map[string]string{} // network -> the host's address on its bridge
	for _, n := range []struct {
		name     string
		internal bool
	}{{"ports", false}, {"default", true}} {
		if _, err := cli.NetworkCreate(ctx, name(n.name), client.NetworkCreateOptions{Driver: "bridge", Internal: n.internal, Labels: labels}); err != nil {
			t.Fatal(err)
		}
		ins, err := cli.NetworkInspect(ctx, name(n.name), client.NetworkInspectOptions{})
		if err != nil || len(ins.Network.IPAM.Config) == 0 {
			t.Fatalf("inspect network %s: %v %+v", n.name, err, ins.Network.IPAM)
		}
		bridgeIPs[n.name] = ins.Network.IPAM.Config[0].Gateway.String()
	}
	// The echo service: socat from the gateway's own image, nothing to pull.
	run(t, cli, name("echo"), labels, []string{"socat", "TCP-LISTEN:7000,fork,reuseaddr", "SYSTEM:echo hello"}, name("default"), "echo")
	eps, err := gateway.Start(ctx, cli, gateway.Spec{
		Name:     name("gateway"),
		Labels:   labels,
		Networks: []string{name("ports"), name("default")},
		Targets:  []gateway.Target{{Host: "echo", Port: 7000, Protocol: "tcp"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 {
		t.Fatalf("endpoints %v, want one", eps)
	}
	ins, err := cli.ContainerInspect(ctx, name("gateway"), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for port, bs := range ins.Container.NetworkSettings.Ports {
		for _, b := range bs {
			if b.HostIP != gateway.Loopback {
				t.Errorf("gateway publishes %s on %s, want 127.0.0.1 only", port, b.HostIP)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		line, err := readLine(eps[0].String())
		if err == nil && line == "hello" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("via %s: %q %v", eps[0], line, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("the gateway reaches nothing but the run's networks", func(t *testing.T) {
		// A container on both networks without the gateway's confinement
		// reaches the host's listeners: the control that makes the
		// gateway's failure mean something.
		control := run(t, cli, name("control"), labels, []string{"sleep", "infinity"}, name("ports"), "control")
		if _, err := cli.NetworkConnect(ctx, name("default"), client.NetworkConnectOptions{Container: control}); err != nil {
			t.Fatal(err)
		}
		for _, nw := range []string{"ports", "default"} {
			ln, err := net.Listen("tcp", bridgeIPs[nw]+":0")
			if err != nil {
				t.Fatalf("listen on the %s bridge: %v", nw, err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			addr := ln.Addr().(*net.TCPAddr)
			connect := []string{"timeout", "5", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && echo connected", addr.IP, addr.Port)}
			if out := execIn(t, cli, control, connect); !strings.Contains(out, "connected") {
				t.Fatalf("control cannot reach the host on the %s bridge (%s): %s", nw, addr, out)
			}
			began := time.Now()
			if out := execIn(t, cli, name("gateway"), connect); strings.Contains(out, "connected") {
				t.Errorf("the gateway reached the host on the %s bridge (%s)", nw, addr)
			}
			if d := time.Since(began); d > 3*time.Second {
				t.Errorf("the refused connect took %s, want a quick failure", d)
			}
		}
		if out := execIn(t, cli, name("gateway"), []string{"cat", "/etc/resolv.conf"}); strings.Contains(out, "search") {
			t.Errorf("the gateway searches DNS domains:\n%s", out)
		}
		// The forward still works after all that.
		if line, err := readLine(eps[0].String()); err != nil || line != "hello" {
			t.Errorf("via %s: %q %v", eps[0], line, err)
		}
	})

	// The gateway stops on Docker's stop signal, cleanly (exit 0), instead
	// of ignoring it as a bash PID 1 does and being killed after the
	// timeout (exit 137). The bound is Docker's 10 s kill, not a speed target.
	timeout := 10
	start := time.Now()
	if _, err := cli.ContainerStop(ctx, name("gateway"), client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	inspect, err := cli.ContainerInspect(ctx, name("gateway"), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if code := inspect.Container.State.ExitCode; code != 0 || took >= 5*time.Second {
		t.Errorf("gateway stopped after %s with exit %d, want a clean exit 0 well before the 10 s kill", took, code)
	}
}

// The gateway joins the ports bridge and the run's networks, and a service
// with NET_ADMIN (cap_add allows it) can point its routes at it: the gateway
// must not route. A plain container on the same two networks routes the same
// packets (the control that shows the routes work), the gateway routes none,
// and its forwarding is off with FORWARD policies that drop. Both test
// networks are non-internal bridges: an internal bridge's host rules drop
// routed traffic already, and the gateway must not rely on the host.
func TestGatewayRoutesNothing(t *testing.T) {
	cli, labels, name := newRun(t)
	ctx := context.Background()
	for _, n := range []string{"ports", "inner"} {
		if _, err := cli.NetworkCreate(ctx, name(n), client.NetworkCreateOptions{Driver: "bridge", Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := gateway.Start(ctx, cli, gateway.Spec{
		Name:     name("gateway"),
		Labels:   labels,
		Networks: []string{name("ports"), name("inner")},
		Targets:  []gateway.Target{{Host: "nothing", Port: 7000, Protocol: "tcp"}},
	}); err != nil {
		t.Fatal(err)
	}
	// The listener sits on the ports bridge, where the run's services are not.
	target := run(t, cli, name("target"), labels, []string{"socat", "TCP-LISTEN:7000,fork,reuseaddr", "SYSTEM:echo hello"}, name("ports"), "target", "NET_ADMIN")
	control := run(t, cli, name("control"), labels, []string{"sleep", "infinity"}, name("ports"), "control")
	if _, err := cli.NetworkConnect(ctx, name("inner"), client.NetworkConnectOptions{Container: control}); err != nil {
		t.Fatal(err)
	}
	viaControl := run(t, cli, name("via-control"), labels, []string{"sleep", "infinity"}, name("inner"), "via-control", "NET_ADMIN")
	viaGateway := run(t, cli, name("via-gateway"), labels, []string{"sleep", "infinity"}, name("inner"), "via-gateway", "NET_ADMIN")
	ip := func(id, net string) string {
		ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ep := ins.Container.NetworkSettings.Networks[name(net)]
		if ep == nil || !ep.IPAddress.IsValid() {
			t.Fatalf("container %s has no address on %s", id, net)
		}
		return ep.IPAddress.String()
	}
	targetIP := ip(target, "ports")
	for _, r := range []struct{ client, router string }{{viaControl, control}, {viaGateway, name("gateway")}} {
		addRoute(t, cli, r.client, targetIP, ip(r.router, "inner"))
		addRoute(t, cli, target, ip(r.client, "inner"), ip(r.router, "ports"))
	}
	connect := []string{"timeout", "5", "bash", "-c", "exec 3<>/dev/tcp/" + targetIP + "/7000 && head -1 <&3"}
	if out := execIn(t, cli, viaControl, connect); !strings.Contains(out, "hello") {
		t.Fatalf("routed through the control container, the listener on the ports bridge did not answer: %q", out)
	}
	if out := execIn(t, cli, viaGateway, connect); strings.Contains(out, "hello") {
		t.Errorf("routed through the gateway, a service on the run's network reached the ports bridge (%s)", targetIP)
	}
	for file, want := range map[string]string{"/proc/sys/net/ipv4/ip_forward": "0", "/proc/sys/net/ipv6/conf/all/forwarding": "0"} {
		if out := strings.TrimSpace(execIn(t, cli, name("gateway"), []string{"cat", file})); out != want {
			t.Errorf("gateway %s = %q, want %s", file, out, want)
		}
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		if out := execIn(t, cli, name("gateway"), []string{tool, "-w", "-S", "FORWARD"}); !strings.HasPrefix(out, "-P FORWARD DROP\n") {
			t.Errorf("gateway %s FORWARD chain:\n%s\nwant the policy DROP", tool, out)
		}
	}
}

// addRouteScript adds a host route (SIOCADDRT, struct rtentry of a 64-bit
// kernel): the images have perl but no iproute2. Arguments: destination,
// gateway.
const addRouteScript = `
my ($dst, $gw) = @ARGV;
socket(my $s, 2, 2, 0) or die "socket: $!";
sub sa { pack("S n C4 x8", 2, 0, split(/\./, $_[0])) }
my $rt = pack("Q a16 a16 a16 S s x4 Q Q s x6 Q Q Q S x6", 0, sa($dst), sa($gw), sa("255.255.255.255"), 3, 0, 0, 0, 0, 0, 0, 0, 0);
ioctl($s, 0x890B, $rt) or die "route $dst via $gw: $!";
print "ok\n";
`

// addRoute routes one address through another in a container that has
// NET_ADMIN.
func addRoute(t *testing.T, cli *client.Client, id, dst, via string) {
	t.Helper()
	if out := execIn(t, cli, id, []string{"perl", "-e", addRouteScript, dst, via}); strings.TrimSpace(out) != "ok" {
		t.Fatalf("route %s via %s in %s: %s", dst, via, id, out)
	}
}

// run starts a container of the gateway image on one network, with an alias
// and the given capabilities.
func run(t *testing.T, cli *client.Client, name string, labels map[string]string, entrypoint []string, net, alias string, caps ...string) string {
	t.Helper()
	ctx := context.Background()
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     &container.Config{Image: gateway.Image, Labels: labels, Entrypoint: entrypoint},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(net), CapAdd: caps},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			net: {Aliases: []string{alias}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// execIn runs a command in a container and returns its output.
func execIn(t *testing.T, cli *client.Client, id string, cmd []string) string {
	t.Helper()
	ctx := context.Background()
	ex, err := cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func readLine(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestStartRefusesEmptySpec(t *testing.T) {
	if _, err := gateway.Start(context.Background(), nil, gateway.Spec{Name: "x"}); err == nil {
		t.Error("a gateway with no network and no target started")
	}
}

// EnsureImage makes image.DebianBase exist and hashes its ID: the
// Dockerfile must start from that image.
func TestDockerfileStartsFromDebianBase(t *testing.T) {
	data, err := os.ReadFile("files/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "\nFROM "+image.DebianBase+"\n") {
		t.Errorf("files/Dockerfile does not start FROM %s", image.DebianBase)
	}
}

// fakeClient records the create request and stops there.
type fakeClient struct {
	gateway.Client
	created client.ContainerCreateOptions
}

func (f *fakeClient) NetworkInspect(_ context.Context, n string, _ client.NetworkInspectOptions) (client.NetworkInspectResult, error) {
	ins := network.Inspect{Network: network.Network{ID: n + "-id", Name: n}}
	ins.IPAM.Config = []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.9.0.0/24"), Gateway: netip.MustParseAddr("10.9.0.1")}}
	return client.NetworkInspectResult{Network: ins}, nil
}

var errStop = errors.New("stop after create")

func (f *fakeClient) ContainerCreate(_ context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	f.created = o
	return client.ContainerCreateResult{}, errStop
}

// Start runs the image the spec names (the one EnsureImage built with
// WithRef), Image by default, confined to the run's internal networks.
func TestStartRunsTheSpecImage(t *testing.T) {
	for _, tt := range []struct{ spec, want string }{{"", gateway.Image}, {"rehearse-test/gateway:x", "rehearse-test/gateway:x"}} {
		f := &fakeClient{}
		_, err := gateway.Start(context.Background(), f, gateway.Spec{Name: "gw", Image: tt.spec,
			Networks: []string{"ports", "default"}, Targets: []gateway.Target{{Host: "echo", Port: 7000, Protocol: "tcp"}}})
		if !errors.Is(err, errStop) {
			t.Fatalf("Start = %v, want the fake's create error", err)
		}
		c, hc := f.created.Config, f.created.HostConfig
		if c.Image != tt.want {
			t.Errorf("Spec.Image %q: ran %q, want %q", tt.spec, c.Image, tt.want)
		}
		if !slices.Contains(c.Env, "REHEARSE_GATEWAY_ALLOW=10.9.0.0/24") || !slices.Contains(c.Env, "REHEARSE_GATEWAY_DENY=10.9.0.1") {
			t.Errorf("env %v: want the default network's subnet allowed and its bridge gateway denied", c.Env)
		}
		if fmt.Sprint(hc.CapAdd) != "[NET_ADMIN]" || fmt.Sprint(hc.DNSSearch) != "[.]" {
			t.Errorf("cap_add %v, dns search %v; want NET_ADMIN and no search domain", hc.CapAdd, hc.DNSSearch)
		}
		if hc.Sysctls["net.ipv4.ip_forward"] != "0" || hc.Sysctls["net.ipv6.conf.all.forwarding"] != "0" {
			t.Errorf("sysctls %v: want IPv4 and IPv6 forwarding off", hc.Sysctls)
		}
	}
}

// newRun connects, makes sure the gateway image exists, and starts a run of
// the test's own whose resources are removed (and checked gone) at the end.
// It returns the run's labels and its resource naming.
func newRun(t *testing.T) (*client.Client, map[string]string, func(string) string) {
	t.Helper()
	cli := enginetest.Connect(t)
	ctx := context.Background()
	b, err := image.NewBuilder(cli)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gateway.EnsureImage(ctx, b); err != nil {
		t.Fatal(err)
	}
	runID, since := runs.NewID(), time.Now()
	t.Cleanup(func() {
		if err := runs.Remove(ctx, cli, runID); err != nil {
			t.Error(err)
		}
		enginetest.AssertCreatedThenGone(t, cli, runID, since, 0)
	})
	return cli, runs.Self().Labels(runID), func(s string) string { return "rehearse-" + runID + "-" + s }
}

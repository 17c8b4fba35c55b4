package gateway_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

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
	r, err := gateway.EnsureImage(ctx, cli, b, gateway.WithRef(ref))
	if err != nil {
		t.Fatal(err)
	}
	if r.Ref != ref || r.Action != image.Built || r.ID == "" {
		t.Errorf("first EnsureImage = %+v, want %s built", r, ref)
	}
	if r, err := gateway.EnsureImage(ctx, cli, b, gateway.WithRef(ref)); err != nil || r.Action != image.Cached {
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
	if _, err := gateway.EnsureImage(context.Background(), nil, nil, gateway.WithRef("")); err == nil || !strings.Contains(err.Error(), "empty ref") {
		t.Errorf("err = %v", err)
	}
}

// A service that only sits on an internal network answers on 127.0.0.1
// through the gateway.
func TestStartPublishesOnLoopback(t *testing.T) {
	cli := enginetest.Connect(t)
	ctx := context.Background()
	b, err := image.NewBuilder(cli)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gateway.EnsureImage(ctx, cli, b); err != nil {
		t.Fatal(err)
	}
	runID, since := runs.NewID(), time.Now()
	labels := runs.Self().Labels(runID)
	t.Cleanup(func() {
		if err := runs.Remove(ctx, cli, runID); err != nil {
			t.Error(err)
		}
		enginetest.AssertCreatedThenGone(t, cli, runID, since, 0)
	})
	name := func(s string) string { return "rehearse-" + runID + "-" + s }
	for _, n := range []struct {
		name     string
		internal bool
	}{{"ports", false}, {"default", true}} {
		if _, err := cli.NetworkCreate(ctx, name(n.name), client.NetworkCreateOptions{Driver: "bridge", Internal: n.internal, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	// The echo service: socat from the gateway's own image, nothing to pull.
	echo, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name("echo"),
		Config: &container.Config{Image: gateway.Image, Labels: labels,
			Entrypoint: []string{"socat", "TCP-LISTEN:7000,fork,reuseaddr", "SYSTEM:echo hello"}},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(name("default"))},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			name("default"): {Aliases: []string{"echo"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerStart(ctx, echo.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	eps, err := gateway.Start(ctx, cli, gateway.Spec{
		Name:     name("gateway"),
		Labels:   labels,
		Networks: []string{name("ports"), name("default")},
		Targets:  []gateway.Target{{Host: "echo", Port: 7000, Protocol: "tcp"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || eps[0].Addr() != gateway.Loopback {
		t.Fatalf("endpoints %v, want one on 127.0.0.1", eps)
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

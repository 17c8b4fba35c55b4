package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
)

// Anonymous volumes become volumes of the run: labelled with it, written to
// like any volume, and removed with it. A network_mode: none service joins
// no network at all.
func TestAnonymousVolumesAndNoNetwork(t *testing.T) {
	ctx := context.Background()
	cli := enginetest.Connect(t)
	plan, err := loadPlan(t, "testdata/anonymous.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runID := fmt.Sprintf("anon%d", time.Now().UnixNano()%1e9)
	e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID))
	if err != nil {
		t.Fatal(err)
	}
	down := func() {
		if err := e.Down(ctx); err != nil {
			t.Errorf("down: %v", err)
		}
	}
	defer down()

	app := e.Service("app")
	for _, dir := range []string{"/app/node_modules", "/cache"} {
		if res := exec1(t, app, "", "sh", "-c", "echo kept > "+dir+"/f && cat "+dir+"/f"); res.ExitCode != 0 || res.Stdout != "kept\n" {
			t.Errorf("write to %s: %+v", dir, res)
		}
	}
	ins, err := cli.ContainerInspect(ctx, app.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ins.Container.Mounts {
		if m.Type != "volume" {
			continue
		}
		if !strings.HasPrefix(m.Name, "rehearse-"+runID+"-app.anon") {
			t.Errorf("mount %s is volume %q, not one of the run's", m.Destination, m.Name)
		}
		names = append(names, m.Name)
		v, err := cli.VolumeInspect(ctx, m.Name, client.VolumeInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v.Volume.Labels[runs.LabelRun] != runID {
			t.Errorf("volume %s labels = %v, want %s=%s", m.Name, v.Volume.Labels, runs.LabelRun, runID)
		}
	}
	if len(names) != 2 {
		t.Errorf("volume mounts = %v, want two anonymous volumes of the run", names)
	}

	off, err := cli.ContainerInspect(ctx, e.Service("offline").ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mode := off.Container.HostConfig.NetworkMode; mode != "none" {
		t.Errorf("offline network mode = %q, want none", mode)
	}
	for name := range off.Container.NetworkSettings.Networks {
		if name != "none" {
			t.Errorf("offline joined network %s", name)
		}
	}

	down()
	enginetest.AssertGone(t, cli, runID, 0)
	for _, name := range names {
		if _, err := cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("volume %s after down: %v, want not found", name, err)
		}
	}
}

// What the plan honours reaches the container.
func TestHonouredKeysReachTheContainer(t *testing.T) {
	ctx := context.Background()
	e, cli := startPlan(t, "testdata/honoured.yaml")
	app := e.Service("app")
	ins, err := cli.ContainerInspect(ctx, app.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, hc := ins.Container.Config, ins.Container.HostConfig
	checks := []struct {
		what string
		ok   bool
	}{
		{"restart", hc.RestartPolicy.Name == "on-failure" && hc.RestartPolicy.MaximumRetryCount == 3},
		{"init", hc.Init != nil && *hc.Init},
		{"read_only", hc.ReadonlyRootfs},
		{"shm_size", hc.ShmSize == 64<<20},
		{"stdin_open and tty", c.OpenStdin && c.Tty},
		{"cap_add", slices.Contains(hc.CapAdd, "CAP_NET_ADMIN") || slices.Contains(hc.CapAdd, "NET_ADMIN")},
		{"security_opt", fmt.Sprint(hc.SecurityOpt) == "[no-new-privileges:true]"},
		{"sysctls", hc.Sysctls["net.core.somaxconn"] == "1024"},
		{"healthcheck disable", c.Healthcheck != nil && fmt.Sprint(c.Healthcheck.Test) == "[NONE]"},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("%s not applied: config %+v host config %+v", ch.what, c, hc)
		}
	}
	for _, p := range []string{"3000/tcp", "5000/udp", "5001/udp"} {
		if _, ok := c.ExposedPorts[network.MustParsePort(p)]; !ok {
			t.Errorf("port %s not exposed: %v", p, c.ExposedPorts)
		}
	}
	for _, n := range ins.Container.NetworkSettings.Networks {
		if !slices.Contains(n.Aliases, "frontend") {
			t.Errorf("container_name is not an alias: %v", n.Aliases)
		}
	}
	for path, want := range map[string]string{"/run/secrets/pw": "pw\n", "/etc/app.conf": "level=debug\n"} {
		if res := exec1(t, app, "", "cat", path); res.Stdout != want {
			t.Errorf("%s = %q, want %q", path, res.Stdout, want)
		}
	}
	if res := exec1(t, app, "", "sh", "-c", "echo x > /run/secrets/pw"); res.ExitCode == 0 {
		t.Error("a secret is writable")
	}
}

// A service whose restart policy keeps restarting it fails the start after a
// few restarts, with its logs, instead of waiting for the start timeout.
func TestRestartLoopFailsFast(t *testing.T) {
	cli := enginetest.Connect(t)
	plan, err := loadPlan(t, "testdata/restart-loop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runID := fmt.Sprintf("loop%d", time.Now().UnixNano()%1e9)
	began := time.Now()
	_, err = Start(context.Background(), plan, WithClient(cli), WithRunID(runID), WithStartTimeout(2*time.Minute))
	var se *StartError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "restarted") || !strings.Contains(se.Logs, "giving up") {
		t.Fatalf("Start = %v, want a StartError saying it restarted, with its logs", err)
	}
	if d := time.Since(began); d > time.Minute {
		t.Errorf("failed after %s: waited for the start timeout", d)
	}
	enginetest.AssertGone(t, cli, runID, 10*time.Second)
}

// A service that restarts a few times before it runs is ready once it runs.
func TestRestartUntilReady(t *testing.T) {
	e, cli := startPlan(t, "testdata/restart-retry.yaml")
	ins, err := cli.ContainerInspect(context.Background(), e.Service("app").ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := ins.Container.RestartCount; n != 2 || !ins.Container.State.Running {
		t.Errorf("restart count %d, running %v; want 2 restarts, then running", n, ins.Container.State.Running)
	}
}

// A network that shares its name with one of the run's (Docker 20.10 allows
// it) never makes a service land on another network: the start fails with
// the engine's error, or every service joins exactly the run's networks.
func TestNetworkNameTakenTwice(t *testing.T) {
	ctx := context.Background()
	cli := enginetest.Connect(t)
	plan, err := loadPlan(t, "testdata/egress.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runID, since := runs.NewID(), time.Now()
	decoy, err := cli.NetworkCreate(ctx, "rehearse-"+runID+"-default", client.NetworkCreateOptions{Driver: "bridge", Labels: map[string]string{"rehearse.test.decoy": runID}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := cli.NetworkRemove(ctx, decoy.ID, client.NetworkRemoveOptions{}); err != nil {
			t.Errorf("remove the decoy network: %v", err)
		}
	})
	e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID))
	if err != nil {
		t.Logf("Start refused: %v", err)
		if !strings.Contains(err.Error(), "network") {
			t.Errorf("Start failed without naming a network: %v", err)
		}
		enginetest.AssertCreatedThenGone(t, cli, runID, since, 0)
		return
	}
	defer func() {
		if err := e.Down(ctx); err != nil {
			t.Error(err)
		}
		enginetest.AssertGone(t, cli, runID, 0)
	}()
	for _, s := range e.Services() {
		for name, n := range networksOf(t, cli, s.ContainerID) {
			if n.ID == decoy.ID || n.Labels[runs.LabelRun] != runID {
				t.Errorf("%s joined network %s (%s), not one of the run's", s.Name, name, n.ID)
			}
		}
	}
}

// A bind source that became a link out of the project after the plan was
// made (a container planted it through another service's writable bind) is
// refused when the container is created, and the run is removed.
func TestBindSourceReplacedByLinkAfterPlan(t *testing.T) {
	ctx := context.Background()
	cli := enginetest.Connect(t)
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/toctou.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "compose.yaml")
	for _, d := range []string{"work", "x"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := loadPlan(t, file)
	if err != nil {
		t.Fatal(err)
	}
	// The race, won by the attacker: ./x is now a link into ./work, where
	// service a plants x -> /.
	if err := os.Remove(filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("work", "x"), filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	runID, since := runs.NewID(), time.Now()
	e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID), WithStartTimeout(time.Minute))
	if err == nil {
		defer e.Down(ctx)
		res := exec1(t, e.Service("b"), "", "ls", "/host")
		t.Fatalf("started: service b mounts the host's / (ls /host: %q)", res.Stdout)
	}
	for _, want := range []string{"service b", "bind mount " + filepath.Join(dir, "x"), "/host", "outside the project directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if !errors.Is(err, ErrSandbox) {
		t.Errorf("error is not ErrSandbox: %v", err)
	}
	enginetest.AssertCreatedThenGone(t, cli, runID, since, 0)
}

// Only declared ports are published, and only by the gateway on 127.0.0.1:
// an egress service's expose: ports (and the image's) are not published.
func TestOnlyDeclaredPortsPublished(t *testing.T) {
	ctx := context.Background()
	e, cli := startPlan(t, "testdata/ports-egress.yaml")
	open := e.Service("open")
	ins, err := cli.ContainerInspect(ctx, open.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for port, bs := range ins.Container.NetworkSettings.Ports {
		if len(bs) > 0 {
			t.Errorf("the service itself publishes %s at %v", port, bs)
		}
	}
	if len(ins.Container.HostConfig.PortBindings) > 0 {
		t.Errorf("the service asks for port bindings %v", ins.Container.HostConfig.PortBindings)
	}
	if ep, err := open.Endpoint("7000"); err != nil || !strings.HasPrefix(ep, "127.0.0.1:") {
		t.Errorf("declared port 7000: %q %v, want a 127.0.0.1 endpoint from the gateway", ep, err)
	}
	if ep, err := open.Endpoint("7001"); err == nil {
		t.Errorf("exposed port 7001 has an endpoint %s", ep)
	}
}

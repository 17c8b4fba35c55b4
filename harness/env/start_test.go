package env

import (
	"context"
	"errors"
	"fmt"
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

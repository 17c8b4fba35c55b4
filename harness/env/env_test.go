package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
)

var billingCompose = filepath.Join("..", "..", "fixtures", "billing", "compose.yaml")

// startPlan starts a compose file and registers its teardown.
func startPlan(t *testing.T, file string, opts ...StartOption) (*Environment, *client.Client) {
	t.Helper()
	cli := enginetest.Connect(t)
	plan, err := loadPlan(t, file)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Start(context.Background(), plan, append([]StartOption{WithClient(cli)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
		enginetest.AssertGone(t, cli, e.RunID, 0)
	})
	return e, cli
}

// networksOf inspects every network a container joins, by name.
func networksOf(t *testing.T, cli *client.Client, containerID string) map[string]network.Network {
	t.Helper()
	ctx := context.Background()
	ins, err := cli.ContainerInspect(ctx, containerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nets := map[string]network.Network{}
	for name := range ins.Container.NetworkSettings.Networks {
		n, err := cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nets[name] = n.Network.Network
	}
	return nets
}

func exec1(t *testing.T, s *Service, user string, cmd ...string) ExecResult {
	t.Helper()
	var opts []ExecOption
	if user != "" {
		opts = append(opts, AsUser(user))
	}
	res, err := s.Exec(context.Background(), cmd, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBillingWorld(t *testing.T) {
	e, cli := startPlan(t, billingCompose)
	ctx := context.Background()
	billing, db := e.Service("billing"), e.Service("db")
	if billing == nil || db == nil {
		t.Fatalf("services: %v", e.Services())
	}

	t.Run("ports bind 127.0.0.1 only", func(t *testing.T) {
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", runs.LabelRun+"="+e.RunID)})
		if err != nil {
			t.Fatal(err)
		}
		published := 0
		for _, c := range cs.Items {
			ins, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for port, bindings := range ins.Container.NetworkSettings.Ports {
				for _, b := range bindings {
					published++
					if b.HostIP.String() != "127.0.0.1" {
						t.Errorf("%s: %s bound to %s", c.Names[0], port, b.HostIP)
					}
				}
			}
		}
		if want := len(e.Plan.forwards()); published != want || want < 4 {
			t.Errorf("%d published ports, want %d (every port the world declares)", published, want)
		}
	})

	t.Run("service networks are internal", func(t *testing.T) {
		for _, s := range e.Services() {
			nets := networksOf(t, cli, s.ContainerID)
			if len(nets) == 0 {
				t.Errorf("%s joins no network", s.Name)
			}
			for name, n := range nets {
				if !n.Internal {
					t.Errorf("%s joins network %s, which is not internal", s.Name, name)
				}
				if n.Labels[runs.LabelRun] != e.RunID || n.Labels[runs.LabelOwner] == "" {
					t.Errorf("network %s labels %v", name, n.Labels)
				}
			}
			ins, err := cli.ContainerInspect(ctx, s.ContainerID, client.ContainerInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ins.Container.Config.Labels[LabelService] != s.Name || ins.Container.Config.Labels[runs.LabelOwner] != runs.Self().String() {
				t.Errorf("%s labels %v", s.Name, ins.Container.Config.Labels)
			}
		}
	})

	t.Run("systemd is PID 1 on billing", func(t *testing.T) {
		res := exec1(t, billing, "", "systemctl", "is-system-running", "--wait")
		if res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != "running" {
			t.Errorf("systemctl is-system-running: exit %d, %q %q", res.ExitCode, res.Stdout, res.Stderr)
		}
		if res := exec1(t, billing, "", "ps", "-p", "1", "-o", "comm="); strings.TrimSpace(res.Stdout) != "systemd" {
			t.Errorf("PID 1 is %q", res.Stdout)
		}
	})

	t.Run("billing-api.service runs, billing.service does not exist", func(t *testing.T) {
		res := exec1(t, billing, "", "systemctl", "status", "billing.service")
		if res.ExitCode == 0 || !strings.Contains(res.Stdout+res.Stderr, "could not be found") {
			t.Errorf("systemctl status billing.service: exit %d, %q %q", res.ExitCode, res.Stdout, res.Stderr)
		}
		res = exec1(t, billing, "", "systemctl", "is-active", "billing-api.service")
		if res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != "active" {
			t.Errorf("billing-api.service: exit %d, %q", res.ExitCode, res.Stdout)
		}
	})

	t.Run("deploy cannot sudo", func(t *testing.T) {
		if res := exec1(t, billing, "deploy", "id", "-un"); strings.TrimSpace(res.Stdout) != "deploy" {
			t.Fatalf("exec as deploy ran as %q", res.Stdout)
		}
		res := exec1(t, billing, "deploy", "sudo", "-n", "true")
		if res.ExitCode == 0 {
			t.Errorf("sudo -n true succeeded for deploy")
		}
		if !strings.Contains(res.Stderr, "password is required") {
			t.Errorf("sudo -n true: %q (want the sudo refusal, not a missing sudo)", res.Stderr)
		}
		if res := exec1(t, billing, "root", "sudo", "-n", "true"); res.ExitCode != 0 {
			t.Errorf("sudo as root failed: %q (sudo itself is broken)", res.Stderr)
		}
	})

	t.Run("billing-api answers through 127.0.0.1", func(t *testing.T) {
		ep, err := billing.Endpoint("8080")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ep, "127.0.0.1:") {
			t.Fatalf("endpoint %s", ep)
		}
		resp, err := http.Get("http://" + ep + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || body["version"] != "2.3" {
			t.Errorf("GET /health: %s %v", resp.Status, body)
		}
	})

	t.Run("db speaks PostgreSQL through 127.0.0.1", func(t *testing.T) {
		ep, err := db.Endpoint("5432/tcp")
		if err != nil {
			t.Fatal(err)
		}
		// An SSLRequest (length 8, code 80877103) gets one byte back from a
		// PostgreSQL server: 'N' (no TLS here) or 'S'.
		conn, err := net.DialTimeout("tcp", ep, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(conn, b); err != nil || (b[0] != 'N' && b[0] != 'S') {
			t.Errorf("SSLRequest via %s: %q %v", ep, b, err)
		}
		res := exec1(t, db, "postgres", "psql", "-d", "billing", "-tAc", "select 6*7")
		if strings.TrimSpace(res.Stdout) != "42" {
			t.Errorf("psql in db: %+v", res)
		}
	})

	t.Run("dependents start after dependencies are healthy", func(t *testing.T) {
		tm := e.Timings()
		if tm["billing"].Start.Before(tm["db"].Ready) {
			t.Errorf("billing started at %s, before db was ready at %s", tm["billing"].Start, tm["db"].Ready)
		}
	})

	t.Run("copy, exec and logs", func(t *testing.T) {
		if err := billing.CopyIn(ctx, []byte("hello rehearsal\n"), "/tmp/note.txt", 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := billing.CopyOut(ctx, "/tmp/note.txt")
		if err != nil || string(got) != "hello rehearsal\n" {
			t.Errorf("copy out: %q %v", got, err)
		}
		res := exec1(t, billing, "", "sh", "-c", "echo out; echo err >&2; exit 7")
		if res.ExitCode != 7 || res.Stdout != "out\n" || res.Stderr != "err\n" {
			t.Errorf("exec: %+v", res)
		}
		logs, err := db.Logs(ctx, 50)
		if err != nil || !strings.Contains(logs, "database billing initialised") {
			t.Errorf("db logs: %v\n%s", err, logs)
		}
	})
}

func TestEgressOnlyWhereDeclared(t *testing.T) {
	e, cli := startPlan(t, filepath.Join("testdata", "egress.yaml"))
	external := func(s *Service) (n int) {
		for _, net := range networksOf(t, cli, s.ContainerID) {
			if !net.Internal {
				n++
			}
		}
		return n
	}
	if n := external(e.Service("closed")); n != 0 {
		t.Errorf("closed joins %d non-internal networks", n)
	}
	if n := external(e.Service("open")); n != 1 {
		t.Errorf("open (egress: true) joins %d non-internal networks, want 1", n)
	}
	// The two still see each other on the internal network.
	res := exec1(t, e.Service("closed"), "", "getent", "hosts", "open")
	if res.ExitCode != 0 {
		t.Errorf("closed cannot resolve open: %+v", res)
	}
}

func TestParallelStartAndOrder(t *testing.T) {
	e, _ := startPlan(t, filepath.Join("testdata", "sleepers.yaml"))
	tm := e.Timings()
	left, right, top := tm["left"], tm["right"], tm["top"]
	// Independent services start together: each began before the other was ready.
	if !left.Start.Before(right.Ready) || !right.Start.Before(left.Ready) {
		t.Errorf("left %+v and right %+v did not start in parallel", left, right)
	}
	if top.Start.Before(left.Ready) || top.Start.Before(right.Ready) {
		t.Errorf("top started at %s before its dependencies were healthy (%s, %s)", top.Start, left.Ready, right.Ready)
	}
	if ep, err := e.Service("top").Endpoint("7000"); err != nil || !strings.HasPrefix(ep, "127.0.0.1:") {
		t.Errorf("top endpoint %q %v", ep, err)
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		file   string
		reason string
		health string
		logs   string
	}{
		{"unhealthy.yaml", "is unhealthy", "probe-says-no", "config /etc/app.conf missing"},
		{"crashing.yaml", "exited with code 3", "", "fatal: cannot open database"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cli := enginetest.Connect(t)
			plan, err := loadPlan(t, filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			runID, since := runs.NewID(), time.Now()
			e, err := Start(context.Background(), plan, WithClient(cli), WithRunID(runID), WithStartTimeout(time.Minute))
			if err == nil {
				e.Down(context.Background())
				t.Fatal("started without error")
			}
			if e != nil {
				t.Error("a failed Start returned an environment without WithKeepOnFailure")
			}
			var se *StartError
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, not a StartError: %v", err, err)
			}
			if se.Service != "app" || !strings.Contains(se.Reason, tt.reason) || !strings.Contains(se.Logs, tt.logs) || !strings.Contains(se.Health, tt.health) {
				t.Errorf("start error:\n%v", err)
			}
			enginetest.AssertCreatedThenGone(t, cli, runID, since, 0)
		})
	}
}

func TestKeepOnFailure(t *testing.T) {
	cli := enginetest.Connect(t)
	plan, err := loadPlan(t, filepath.Join("testdata", "crashing.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Start(context.Background(), plan, WithClient(cli), WithKeepOnFailure(true))
	if err == nil || e == nil {
		t.Fatalf("Start = %v, %v; want the kept environment and an error", e, err)
	}
	defer func() {
		runs.Remove(context.Background(), cli, e.RunID)
		enginetest.AssertGone(t, cli, e.RunID, 0)
	}()
	if c, _, _ := enginetest.Resources(t, cli, e.RunID); c != 1 {
		t.Errorf("kept run has %d containers, want the failed one", c)
	}
	removed, err := runs.GC(context.Background(), cli, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range removed {
		if r.ID == e.RunID {
			t.Errorf("gc without --all removed a kept run")
		}
	}
}

// The helper modes run in a child process (see TestMain): they start an
// environment and then fail, panic, or panic without any teardown.
const helperEnv = "REHEARSE_ENV_TEST_HELPER"

func TestMain(m *testing.M) {
	runs.WatchdogMain() // the panic-no-teardown helper relies on its watchdog
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode, os.Getenv(helperEnv+"_RUN")))
	}
	os.Exit(m.Run())
}

func helper(mode, runID string) int {
	ctx := context.Background()
	plan, err := LoadPlan(ctx, filepath.Join("testdata", "sleepers.yaml"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	e, err := Start(ctx, plan, WithRunID(runID))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	switch mode {
	case "fail":
		defer e.Down(ctx)
		fmt.Fprintln(os.Stderr, "deliberate failure")
		return 1
	case "panic":
		defer e.Down(ctx)
		panic("deliberate panic")
	case "panic-no-teardown":
		panic("deliberate panic with no teardown")
	}
	return 3
}

func TestNothingLeftBehind(t *testing.T) {
	for _, mode := range []string{"fail", "panic", "panic-no-teardown"} {
		t.Run(mode, func(t *testing.T) {
			cli := enginetest.Connect(t)
			runID, since := runs.NewID(), time.Now()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperEnv+"_RUN="+runID)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 3 || ee.ExitCode() == 0 {
				t.Fatalf("helper %s: %v\n%s", mode, err, out)
			}
			if !strings.Contains(string(out), "deliberate") {
				t.Fatalf("helper did not reach its failure:\n%s", out)
			}
			// With teardown in a defer, nothing is left at exit; without it,
			// the watchdog removes the run within seconds.
			within := time.Duration(0)
			if mode == "panic-no-teardown" {
				within = 15 * time.Second
			}
			enginetest.AssertCreatedThenGone(t, cli, runID, since, within)
		})
	}
}

// An image that cannot be had fails the start, and what already started
// is removed.
func TestMissingImageLeavesNothing(t *testing.T) {
	cli := enginetest.Connect(t)
	plan, err := loadPlan(t, filepath.Join("testdata", "missing-image.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	runID, since := runs.NewID(), time.Now()
	_, err = Start(context.Background(), plan, WithClient(cli), WithRunID(runID))
	if err == nil || !strings.Contains(err.Error(), "services.ghost") || !strings.Contains(err.Error(), "rehearse-test/absent:never") {
		t.Fatalf("err = %v", err)
	}
	enginetest.AssertCreatedThenGone(t, cli, runID, since, 0)
}

package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/internal/enginetest"
)

// engineInterval is the healthcheck interval of testdata/late-healthy.yaml:
// the engine's first check of a service comes that long after its start.
// A start that waited for the engine's health status could not return
// sooner; readyBound leaves a wide margin below it for a loaded machine.
const (
	engineInterval = 60 * time.Second
	readyBound     = 45 * time.Second
)

// markerTime reads the time the slow service's healthcheck first could
// pass: the marker file holds it, written by the container's date +%s.%N.
func markerTime(t *testing.T, s *Service) time.Time {
	t.Helper()
	res := exec1(t, s, "", "cat", "/marker/ready")
	secs, err := strconv.ParseFloat(strings.TrimSpace(res.Stdout), 64)
	if res.ExitCode != 0 || err != nil {
		t.Fatalf("read the marker: %+v %v", res, err)
	}
	return time.Unix(0, int64(secs*1e9))
}

// A dependency is ready when its healthcheck first passes, as the harness
// checks it, not when the engine's next health interval comes round; and a
// dependent starts only once it is.
func TestReadyWhenTheCheckFirstPasses(t *testing.T) {
	ctx := context.Background()
	began := time.Now()
	e, cli := startPlan(t, filepath.Join("testdata", "late-healthy.yaml"))
	took := time.Since(began)
	if took >= readyBound {
		t.Errorf("Start took %s: the engine's first health check (after %s) would have been as quick", took, engineInterval)
	}
	slow, dependent := e.Service("slow"), e.Service("dependent")
	marker := markerTime(t, slow)
	ins, err := cli.ContainerInspect(ctx, dependent.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	startedAt, err := time.Parse(time.RFC3339Nano, ins.Container.State.StartedAt)
	if err != nil {
		t.Fatal(err)
	}
	if startedAt.Before(marker) {
		t.Errorf("dependent started at %s, before its dependency's check could pass (%s)", startedAt, marker)
	}
	tm := e.Timings()
	if tm["slow"].Ready.Before(marker) {
		t.Errorf("slow was ready at %s, before its check could pass (%s)", tm["slow"].Ready, marker)
	}
	if tm["dependent"].Start.Before(tm["slow"].Ready) {
		t.Errorf("dependent's start began at %s, before slow was ready (%s)", tm["dependent"].Start, tm["slow"].Ready)
	}
	// The readiness was the harness's own: the engine has not checked yet.
	// Ready is healthy all the same.
	for _, s := range []*Service{slow, dependent} {
		if h := engineHealth(t, cli, s); h != "starting" {
			t.Errorf("%s: engine health %q, want starting: no engine check has run yet", s.Name, h)
		}
		if st, err := s.State(ctx); err != nil || st.Health != "healthy" || !st.Healthy() {
			t.Errorf("%s: state %+v (%v) right after Start, want healthy", s.Name, st, err)
		}
	}

	// WaitReady after a restart takes the same path. Until it has seen
	// the check pass again, the pass of the earlier start counts for
	// nothing.
	restarted := time.Now()
	if err := slow.Container().Restart(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if st, err := slow.State(ctx); err != nil || st.Health != "starting" || st.Healthy() {
		t.Errorf("state %+v (%v) right after the restart, want starting", st, err)
	}
	if err := slow.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := slow.State(ctx); err != nil || !st.Healthy() {
		t.Errorf("state %+v (%v) after WaitReady, want healthy", st, err)
	}
	ready := time.Now()
	if d := ready.Sub(restarted); d >= readyBound {
		t.Errorf("WaitReady took %s after the restart: the engine's first health check (after %s) would have been as quick", d, engineInterval)
	}
	if m := markerTime(t, slow); m.Before(restarted) || ready.Before(m) {
		t.Errorf("restarted at %s, marker at %s, ready at %s: want the marker between them", restarted, m, ready)
	}
}

// engineHealth is the health status the engine reports for s.
func engineHealth(t *testing.T, cli *client.Client, s *Service) string {
	t.Helper()
	ins, err := cli.ContainerInspect(context.Background(), s.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := ins.Container.State.Health; h != nil {
		return string(h.Status)
	}
	return ""
}

// A service whose check passes once and which then crashes is not ready.
// With a restart policy, it must run for runningSettle after the pass
// without restarting: this one crashes half a second after each start,
// long before that, and fails the start once it has restarted too often.
// Without one, the harness's pass may come before the crash: then Start
// returns, and once the container has exited it is neither healthy nor
// ready again.
func TestPassThenCrashIsNotReady(t *testing.T) {
	t.Run("restart policy", func(t *testing.T) {
		cli := enginetest.Connect(t)
		plan, err := loadPlan(t, filepath.Join("testdata", "pass-then-crash.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		runID := fmt.Sprintf("crash%d", time.Now().UnixNano()%1e9)
		e, err := Start(context.Background(), plan, WithClient(cli), WithRunID(runID), WithStartTimeout(2*time.Minute))
		if err == nil {
			e.Down(context.Background())
			t.Fatal("Start declared a service ready that crashes half a second after each start")
		}
		var se *StartError
		if !errors.As(err, &se) || !strings.Contains(se.Reason, "restarted") || !strings.Contains(se.Logs, "crashed after the check") {
			t.Errorf("Start = %v, want a StartError saying it restarted, with its logs", err)
		}
		enginetest.AssertGone(t, cli, runID, 10*time.Second)
	})
	t.Run("no restart policy", func(t *testing.T) {
		ctx := context.Background()
		cli := enginetest.Connect(t)
		plan, err := loadPlan(t, filepath.Join("testdata", "pass-then-exit.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		runID := fmt.Sprintf("exit%d", time.Now().UnixNano()%1e9)
		e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID), WithStartTimeout(2*time.Minute))
		if err != nil {
			var se *StartError
			if !errors.As(err, &se) || !strings.Contains(se.Reason, "exited with code 3") {
				t.Errorf("Start = %v, want ready or a StartError saying it exited with code 3", err)
			}
			enginetest.AssertGone(t, cli, runID, 10*time.Second)
			return
		}
		t.Cleanup(func() {
			if err := e.Down(ctx); err != nil {
				t.Errorf("down: %v", err)
			}
			enginetest.AssertGone(t, cli, runID, 0)
		})
		app := e.Service("app")
		var st State
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			if st, err = app.State(ctx); err != nil {
				t.Fatal(err)
			}
			if st.Status == "exited" || time.Now().After(deadline) {
				break
			}
		}
		if st.Status != "exited" || st.Healthy() {
			t.Errorf("state %+v a minute after a start that exits after a second, want exited, not healthy", st)
		}
		var se *StartError
		if err := app.WaitReady(ctx); !errors.As(err, &se) || !strings.Contains(se.Reason, "exited with code 3") {
			t.Errorf("WaitReady = %v, want a StartError saying it exited with code 3", err)
		}
	})
}

// A check that overruns its timeout fails with the engine's words, does
// not stop the wait from seeing its deadline, and is never run again while
// its command still runs in the container.
func TestCheckOverrunningItsTimeout(t *testing.T) {
	ctx := context.Background()
	cli := enginetest.Connect(t)
	plan, err := loadPlan(t, filepath.Join("testdata", "check-overruns.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	runID := fmt.Sprintf("overrun%d", time.Now().UnixNano()%1e9)
	e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID), WithStartTimeout(6*time.Second), WithKeepOnFailure(true))
	if e != nil {
		t.Cleanup(func() {
			if err := e.Down(ctx); err != nil {
				t.Errorf("down: %v", err)
			}
			enginetest.AssertGone(t, cli, runID, 0)
		})
	}
	var se *StartError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "not healthy after 6s") || !strings.Contains(se.Health, "Health check exceeded timeout (1s)") {
		t.Fatalf("Start = %v, want a StartError: not healthy after 6s, its check exceeded its timeout", err)
	}
	if e == nil {
		t.Fatal("no environment kept")
	}
	res := exec1(t, e.Service("app"), "", "cat", "/tmp/checks")
	if n := strings.Count(res.Stdout, "started"); n != 1 {
		t.Errorf("the check started %d times in 6 s, want once: its first run never ended\n%s", n, res.Stdout)
	}
}

// The healthcheck waited for is the one the engine runs: the image's
// HEALTHCHECK when the compose file sets none, or sets one without a
// test; none at all when the compose file's test is NONE (a start that
// waited for it would time out).
func TestImageHealthcheckIsWaitedFor(t *testing.T) {
	ctx := context.Background()
	cli := enginetest.Connect(t)
	dir := t.TempDir()
	runID := fmt.Sprintf("imghc%d", time.Now().UnixNano()%1e9)
	ref := "rehearse-test/image-healthcheck:" + runID
	files := map[string]string{
		"compose.yaml": `services:
  plain:
    image: ` + ref + `
    build: .
    command: ["sh", "-c", "sleep 2; touch /tmp/up; exec sleep infinity"]
  inherits:
    image: ` + ref + `-b
    build: .
    command: ["sh", "-c", "sleep 2; touch /tmp/up; exec sleep infinity"]
    healthcheck:
      interval: 60s
  none:
    image: ` + ref + `-c
    build: .
    command: ["sleep", "infinity"]
    healthcheck:
      test: ["NONE"]
`,
		"Dockerfile": "FROM debian:bookworm-slim\nHEALTHCHECK --interval=60s --timeout=5s CMD test -f /tmp/up\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, r := range []string{ref, ref + "-b", ref + "-c"} {
			if _, err := cli.ImageRemove(ctx, r, client.ImageRemoveOptions{PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("remove test image %s: %v", r, err)
			}
		}
	})
	plan, err := loadPlan(t, filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID), WithStartTimeout(90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Down(ctx); err != nil {
			t.Errorf("down: %v", err)
		}
		enginetest.AssertGone(t, cli, runID, 0)
	})
	for _, name := range []string{"plain", "inherits"} {
		s := e.Service(name)
		if res := exec1(t, s, "", "test", "-f", "/tmp/up"); res.ExitCode != 0 {
			t.Errorf("%s: ready before its image's healthcheck could pass", name)
		}
		if st, err := s.State(ctx); err != nil || !st.Healthy() || st.Health != "healthy" {
			t.Errorf("%s: state %+v (%v), want healthy", name, st, err)
		}
	}
	if st, err := e.Service("none").State(ctx); err != nil || st.Health != "" || !st.Healthy() {
		t.Errorf("none: state %+v (%v), want running without a healthcheck", st, err)
	}
}

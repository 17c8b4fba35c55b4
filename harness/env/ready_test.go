package env

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
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
	for _, s := range []*Service{slow, dependent} {
		if st, err := s.State(ctx); err != nil || st.Health != "starting" {
			t.Errorf("%s: engine health %q (%v), want starting: no engine check has run yet", s.Name, st.Health, err)
		}
	}

	// WaitReady after a restart takes the same path.
	restarted := time.Now()
	if err := slow.Container().Restart(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := slow.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	ready := time.Now()
	if d := ready.Sub(restarted); d >= readyBound {
		t.Errorf("WaitReady took %s after the restart: the engine's first health check (after %s) would have been as quick", d, engineInterval)
	}
	if m := markerTime(t, slow); m.Before(restarted) || ready.Before(m) {
		t.Errorf("restarted at %s, marker at %s, ready at %s: want the marker between them", restarted, m, ready)
	}
}

// Package enginetest holds test helpers for tests that need a real Docker
// engine.
package enginetest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/engine"
)

// Connect returns an engine client. Without an engine the test fails when
// CI is set (CI must never pass by skipping) and is skipped otherwise.
func Connect(t testing.TB) *client.Client {
	t.Helper()
	cli, err := engine.Connect(context.Background())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and no Docker engine answers: %v", err)
		}
		t.Skipf("no Docker engine answers (set CI=true to make this a failure): %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Resources counts the containers, networks and volumes labelled with a run.
func Resources(t testing.TB, cli *client.Client, runID string) (containers, networks, volumes int) {
	t.Helper()
	ctx := context.Background()
	f := client.Filters{}.Add("label", "rehearse.run="+runID)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	return len(cs.Items), len(ns.Items), len(vs.Items)
}

// AssertGone fails unless the run has no container, network or volume left
// within the given time (0: right now).
func AssertGone(t testing.TB, cli *client.Client, runID string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, n, v := Resources(t, cli, runID)
		if c+n+v == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s left %d containers, %d networks, %d volumes after %s", runID, c, n, v, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// WaitForContainer waits until the run has at least one container.
func WaitForContainer(t testing.TB, cli *client.Client, runID string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if c, _, _ := Resources(t, cli, runID); c > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s created no container within %s", runID, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Package enginetest holds test helpers for tests that need a real Docker
// engine.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/engine"
	"github.com/rehearse/rehearse/harness/runs"
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
	startLiveEvents()
	return cli
}

// The liveEvents follows the engine's create events live, for the whole test
// binary, from its first Connect on: the engine keeps only its last few
// hundred events for a later query, and a busy engine (other packages'
// tests at the same time) pushes a test's own out of that history within
// seconds.
var liveEvents struct {
	once sync.Once
	mu   sync.Mutex
	seen []liveEvent
}

type liveEvent struct {
	at         time.Time
	typ, name  string
	labelRunID string
}

func startLiveEvents() {
	liveEvents.once.Do(func() {
		cli, err := engine.Connect(context.Background())
		if err != nil {
			return // Created falls back on the engine's history alone
		}
		since := time.Now().Add(-time.Second)
		go func() {
			for {
				res := cli.Events(context.Background(), client.EventsListOptions{
					Since:   fmt.Sprint(since.Unix()),
					Filters: client.Filters{}.Add("event", "create"),
				})
			stream:
				for {
					select {
					case m := <-res.Messages:
						name := m.Actor.Attributes["name"]
						if m.Type == "volume" {
							name = m.Actor.ID
						}
						at := time.Unix(0, m.TimeNano)
						liveEvents.mu.Lock()
						liveEvents.seen = append(liveEvents.seen, liveEvent{at: at, typ: string(m.Type), name: name, labelRunID: m.Actor.Attributes[runs.LabelRun]})
						liveEvents.mu.Unlock()
						since = at
					case <-res.Err:
						break stream
					}
				}
				time.Sleep(time.Second)
			}
		}()
	})
}

// Resources counts the containers, networks and volumes labelled with a run.
func Resources(t testing.TB, cli *client.Client, runID string) (containers, networks, volumes int) {
	t.Helper()
	ctx := context.Background()
	f := client.Filters{}.Add("label", runs.LabelRun+"="+runID)
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
	Eventually(t, within, 250*time.Millisecond, func() string {
		if c, n, v := Resources(t, cli, runID); c+n+v > 0 {
			return fmt.Sprintf("run %s left %d containers, %d networks, %d volumes after %s", runID, c, n, v, within)
		}
		return ""
	})
}

// WaitForContainer waits until the run has at least one container.
func WaitForContainer(t testing.TB, cli *client.Client, runID string, within time.Duration) {
	t.Helper()
	Eventually(t, within, 100*time.Millisecond, func() string {
		if c, _, _ := Resources(t, cli, runID); c == 0 {
			return fmt.Sprintf("run %s created no container within %s", runID, within)
		}
		return ""
	})
}

// Created lists the containers, networks and volumes of a run that the
// engine created since a time, by name, from the engine's event log (so it
// sees what was removed again).
func Created(t testing.TB, cli *client.Client, runID string, since time.Time) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := cli.Events(ctx, client.EventsListOptions{
		Since:   fmt.Sprint(since.Unix() - 1),
		Until:   fmt.Sprint(time.Now().Unix() + 1),
		Filters: client.Filters{}.Add("event", "create"),
	})
	ours := func(name string) bool {
		rest, ok := strings.CutPrefix(name, "rehearse-"+runID)
		return ok && (strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "."))
	}
	var names []string
	liveEvents.mu.Lock()
	for _, r := range liveEvents.seen {
		if !r.at.Before(since.Add(-time.Second)) && (ours(r.name) || r.labelRunID == runID) {
			names = append(names, r.typ+" "+r.name)
		}
	}
	liveEvents.mu.Unlock()
	for {
		select {
		case m := <-res.Messages:
			name := m.Actor.Attributes["name"]
			if m.Type == "volume" {
				name = m.Actor.ID
			}
			if ours(name) || m.Actor.Attributes[runs.LabelRun] == runID {
				names = append(names, string(m.Type)+" "+name)
			}
		case err := <-res.Err:
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("engine events of run %s: %v", runID, err)
			}
			return names
		}
	}
}

// AssertCreatedThenGone is AssertGone for a run that must have created
// something since a time: a run that created nothing leaves nothing behind
// trivially, and the check would prove nothing.
func AssertCreatedThenGone(t testing.TB, cli *client.Client, runID string, since time.Time, within time.Duration) {
	t.Helper()
	AssertGone(t, cli, runID, within)
	if created := Created(t, cli, runID, since); len(created) == 0 {
		t.Fatalf("run %s created nothing since %s: nothing was left behind because nothing was made", runID, since.Format(time.TimeOnly))
	}
}

// Eventually polls check every interval until it returns "" (the condition
// holds) and fails the test with check's last message when within is up.
func Eventually(t testing.TB, within, interval time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s", msg)
		}
		time.Sleep(interval)
	}
}

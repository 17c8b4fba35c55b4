package fault

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/probe"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/internal/envtest"
)

// startResources brings up testdata/resources.yaml: store (a 16 MiB disk
// at /data) and plain (no disk).
func startResources(t *testing.T) *world {
	t.Helper()
	e := envtest.Start(t, filepath.Join("testdata", "resources.yaml"))
	w := &world{e: e, cli: enginetest.Connect(t)}
	w.healthy(t, "store")
	w.healthy(t, "plain")
	return w
}

// sh runs a shell command in a service and fails the test if it cannot run
// at all; the exit code is the caller's to judge.
func (w *world) sh(t *testing.T, svc, script string) env.ExecResult {
	t.Helper()
	res, err := w.e.Service(svc).Exec(context.Background(), []string{"sh", "-c", script})
	if err != nil {
		t.Fatalf("exec in %s: %v", svc, err)
	}
	return res
}

// helpers lists the run's helper containers (none once a fault is done).
func (w *world) helpers(t *testing.T) []string {
	t.Helper()
	f := client.Filters{}.Add("label", runs.LabelRun+"="+w.e.RunID).Add("label", env.LabelHelper)
	cs, err := w.cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs.Items {
		names = append(names, strings.Join(c.Names, ","))
	}
	return names
}

func TestDiskFull(t *testing.T) {
	w := startResources(t)
	ctx := context.Background()
	store := w.e.Service("store")

	// The declared disk is a 16 MiB file system of its own at /data.
	if res := w.sh(t, "store", `stat -f -c '%b %S' /data`); strings.TrimSpace(res.Stdout) != "4096 4096" {
		t.Fatalf("/data in store: %q blocks and block size, want 4096 of 4096 bytes (16 MiB): %s", res.Stdout, res.Stderr)
	}
	if _, err := NewDiskFull(w.e, "plain"); err == nil || !strings.Contains(err.Error(), "declares no disk in testdata/resources.yaml") {
		t.Errorf("NewDiskFull(plain) = %v, want an error naming the compose file", err)
	}
	if _, err := NewDiskFull(w.e, "store", WithCPUs(1)); err == nil {
		t.Error("NewDiskFull took WithCPUs")
	}

	// A new file each time: rewriting one file frees its page first.
	write, err := probe.Exec(store, "sh", "-c", "echo x > /data/probe.$$ && rm /data/probe.$$")
	if err != nil {
		t.Fatal(err)
	}
	if err := write.Check(ctx); err != nil {
		t.Fatalf("before the fault: %v", err)
	}
	w.sh(t, "store", "echo kept > /data/kept")

	f, err := NewDiskFull(w.e, "store")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "disk full store" {
		t.Errorf("name %q", f.Name())
	}
	set := NewSet(timeline.New())
	defer set.HealAll(ctx)
	if err := set.Inject(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := write.Check(ctx); !errors.Is(err, probe.ErrExit) {
		t.Errorf("a write probe on a full disk: %v, want it to fail", err)
	}
	res := w.sh(t, "store", "dd if=/dev/zero of=/data/more bs=4096 count=1")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "No space left on device") {
		t.Errorf("writing to the full disk: exit %d, %q; want No space left on device", res.ExitCode, res.Stderr)
	}
	if res := w.sh(t, "store", "ls -A /data"); !strings.Contains(res.Stdout, filepath.Base(f.File())) {
		t.Errorf("the disk holds %q, not the fill file %s", res.Stdout, f.File())
	}
	if h := w.helpers(t); len(h) > 0 {
		t.Errorf("helper containers left after the fill: %v", h)
	}

	// A disk helper may hold the disk's size and a little more, no more:
	// the tmpfs pages it writes are charged to it.
	limit, err := store.Container().RunOnDisk(ctx, Image, []string{"sh", "-c",
		"cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"}, nil)
	if want := strconv.FormatInt(16<<20+env.HelperMemorySlack, 10); err != nil || strings.TrimSpace(limit.Stdout) != want {
		t.Errorf("a disk helper's memory limit: %q %q (%v), want %s bytes", limit.Stdout, limit.Stderr, err, want)
	}

	if err := set.Heal(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := write.Check(ctx); err != nil {
		t.Errorf("after heal: %v", err)
	}
	res = w.sh(t, "store", "cat /data/kept; ls -A /data")
	if !strings.HasPrefix(res.Stdout, "kept\n") || strings.Contains(res.Stdout, fillPrefix) {
		t.Errorf("after heal the disk holds %q: want the service's files and no fill file", res.Stdout)
	}
	if err := f.Heal(ctx); err != nil {
		t.Errorf("a second heal: %v", err)
	}
	if h := w.helpers(t); len(h) > 0 {
		t.Errorf("helper containers left after heal: %v", h)
	}

	// Sweep empties a disk whose fault nobody heals.
	lost, err := NewDiskFull(w.e, "store")
	if err != nil {
		t.Fatal(err)
	}
	if err := lost.Inject(ctx); err != nil {
		t.Fatal(err)
	}
	if err := write.Check(ctx); err == nil {
		t.Error("the second fill left room")
	}
	if err := Sweep(ctx, w.e); err != nil {
		t.Fatal(err)
	}
	if err := write.Check(ctx); err != nil {
		t.Errorf("after sweep: %v", err)
	}

	// A stopped service has no disk to fill; healing it does nothing.
	if err := store.Container().Stop(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Inject(ctx); err == nil || !strings.Contains(err.Error(), "exists only while it runs") {
		t.Errorf("filling a stopped service: %v", err)
	}
	if err := f.Heal(ctx); err != nil {
		t.Errorf("healing a stopped service: %v", err)
	}

	// Down removes the disk's volume with the run.
	if err := w.e.Down(ctx); err != nil {
		t.Fatal(err)
	}
	enginetest.AssertGone(t, w.cli, w.e.RunID, 30*time.Second)
}

// A bad disk declaration is one error naming the file and the key, and
// nothing of the run is created.
func TestDiskDeclarationRefused(t *testing.T) {
	cli := enginetest.Connect(t)
	for file, want := range map[string]string{
		"disk-relative.yaml": `testdata/disk-relative.yaml:5: services.app.x-rehearse: disk: path: "data" is not absolute`,
		"disk-size.yaml":     `testdata/disk-size.yaml:5: services.app.x-rehearse: disk: size: "lots" is not a size`,
		"disk-root.yaml":     `testdata/disk-root.yaml:5: services.app.x-rehearse: disk: path: a disk cannot be mounted on /`,
	} {
		t.Run(file, func(t *testing.T) {
			ctx := context.Background()
			since, id := time.Now(), runs.NewID()
			plan, err := env.LoadPlan(ctx, filepath.Join("testdata", file))
			if err == nil {
				e, serr := env.Start(ctx, plan, env.WithClient(cli), env.WithRunID(id))
				if serr == nil {
					defer e.Down(ctx)
				}
				t.Errorf("planned and started (start error %v)", serr)
			} else if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, want)
			}
			enginetest.AssertGone(t, cli, id, 0)
			if made := enginetest.Created(t, cli, id, since); len(made) > 0 {
				t.Errorf("the run created %v", made)
			}
		})
	}
}

// emptyCmd passes the file name to the helper's shell as an argument: a
// name is never read as shell code, and deletes that file only (or, as a
// prefix, every file it starts).
func TestEmptyCmd(t *testing.T) {
	run := func(t *testing.T, dir string, cmd []string) {
		t.Helper()
		if cmd[4] != env.HelperDiskPath {
			t.Fatalf("command %q does not name the disk at %s", cmd, env.HelperDiskPath)
		}
		c := exec.Command(cmd[0], append(slices.Clone(cmd[1:4]), append([]string{dir}, cmd[5:]...)...)...)
		c.Dir = dir
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%q: %v: %s", cmd, err, out)
		}
	}
	files := func(t *testing.T, dir string) []string {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	dir := t.TempDir()
	odd := fillPrefix + "x; touch pwned"
	for _, n := range []string{odd, fillPrefix + "aa", fillPrefix + "bb", "kept"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, emptyCmd(odd, false))
	if got, want := files(t, dir), []string{fillPrefix + "aa", fillPrefix + "bb", "kept"}; !slices.Equal(got, want) {
		t.Errorf("after deleting %q the disk holds %q, want %q", odd, got, want)
	}
	run(t, dir, emptyCmd(fillPrefix, true))
	if got := files(t, dir); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("after deleting every fill file the disk holds %q, want only kept", got)
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newID()
		if len(id) != 8 || strings.Trim(id, "0123456789abcdef") != "" || seen[id] {
			t.Fatalf("id %q: want 8 fresh hex digits (seen %d)", id, len(seen))
		}
		seen[id] = true
	}
}

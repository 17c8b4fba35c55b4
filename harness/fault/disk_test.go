package fault

import (
	"context"
	"errors"
	"path/filepath"
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

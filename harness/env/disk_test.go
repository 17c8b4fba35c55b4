package env

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
)

// planText plans a compose file written to a temporary project.
func planText(t *testing.T, text string) (*Plan, string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := loadPlan(t, file)
	return p, file, err
}

func TestPlanDisk(t *testing.T) {
	p, _, err := planText(t, `services:
  app:
    image: debian:bookworm-slim
    volumes: [data:/var/lib/data]
    tmpfs: [/tmp]
    x-rehearse:
      disk: {path: /var/lib/app, size: 64m}
  other:
    image: debian:bookworm-slim
volumes:
  data:
`)
	if err != nil {
		t.Fatal(err)
	}
	app := p.Service("app")
	want := Disk{Path: "/var/lib/app", Size: 64 << 20, Volume: "app.disk"}
	if app.Disk == nil || *app.Disk != want {
		t.Fatalf("disk = %+v, want %+v", app.Disk, want)
	}
	if !slices.Contains(app.Mounts, Mount{Type: "volume", Source: "app.disk", Target: "/var/lib/app", NoCopy: true}) {
		t.Errorf("mounts %+v lack the disk's volume", app.Mounts)
	}
	if !slices.Contains(p.Volumes, "app.disk") {
		t.Errorf("plan volumes %v lack the disk's volume", p.Volumes)
	}
	opts := p.volumeOptions("app.disk")
	if opts["type"] != "tmpfs" || opts["device"] != "tmpfs" || !strings.HasPrefix(opts["o"], "size=67108864,") {
		t.Errorf("disk volume options = %v, want a tmpfs of 67108864 bytes", opts)
	}
	if opts := p.volumeOptions("data"); opts != nil {
		t.Errorf("plain volume options = %v, want none", opts)
	}
	if d := p.Service("other").Disk; d != nil {
		t.Errorf("a service without a disk has %+v", d)
	}
}

func TestPlanDiskSizes(t *testing.T) {
	for size, want := range map[string]int64{"64m": 64 << 20, "1g": 1 << 30, "512MiB": 512 << 20, "1024m": 1 << 30, "100000": 100000} {
		p, _, err := planText(t, "services:\n  app:\n    image: debian:bookworm-slim\n    x-rehearse:\n      disk: {path: /data, size: \""+size+"\"}\n")
		if err != nil {
			t.Errorf("size %s: %v", size, err)
			continue
		}
		if got := p.Service("app").Disk.Size; got != want {
			t.Errorf("size %s = %d bytes, want %d", size, got, want)
		}
	}
}

func TestPlanDiskRejects(t *testing.T) {
	tests := []struct {
		name, service, top string // the service's x-rehearse and other keys, top-level keys
		sandbox            bool
		want               []string
	}{
		{name: "relative path", service: "x-rehearse: {disk: {path: data, size: 64m}}",
			want: []string{"compose.yaml:4: services.app.x-rehearse:", `disk: path: "data" is not absolute`}},
		{name: "unclean path", service: "x-rehearse: {disk: {path: /data/../data/, size: 64m}}",
			want: []string{"services.app.x-rehearse:", `not clean (write "/data")`}},
		{name: "root", service: "x-rehearse: {disk: {path: /, size: 64m}}",
			want: []string{"services.app.x-rehearse:", "cannot be mounted on /"}},
		{name: "no path", service: "x-rehearse: {disk: {size: 64m}}",
			want: []string{"services.app.x-rehearse:", "disk: path: missing"}},
		{name: "proc", service: "x-rehearse: {disk: {path: /proc/sys, size: 64m}}", sandbox: true,
			want: []string{"compose.yaml:4: services.app.x-rehearse.disk.path:", "would cover the kernel's /proc or /sys", `"app"`}},
		{name: "not a size", service: "x-rehearse: {disk: {path: /data, size: lots}}",
			want: []string{"compose.yaml:4: services.app.x-rehearse:", `disk: size: "lots" is not a size`}},
		{name: "no size", service: "x-rehearse: {disk: {path: /data}}",
			want: []string{"services.app.x-rehearse:", "disk: size: missing"}},
		{name: "zero", service: "x-rehearse: {disk: {path: /data, size: \"0\"}}",
			want: []string{"services.app.x-rehearse:", `size: "0" is out of range`}},
		{name: "too big", service: "x-rehearse: {disk: {path: /data, size: 1025m}}",
			want: []string{"services.app.x-rehearse:", `size: "1025m" is out of range`, "at most 1GiB"}},
		{name: "unknown key", service: "x-rehearse: {disk: {path: /data, size: 64m, mode: 700}}",
			want: []string{"services.app.x-rehearse:", "mode"}},
		{name: "same as a volume", service: "volumes: [data:/data]\n    x-rehearse: {disk: {path: /data, size: 64m}}", top: "volumes: {data: {}}",
			want: []string{"compose.yaml:5: services.app.x-rehearse.disk.path:", "overlaps the volume mount on /data"}},
		{name: "below a bind", service: "volumes: [./src:/srv]\n    x-rehearse: {disk: {path: /srv/cache, size: 64m}}",
			want: []string{"services.app.x-rehearse.disk.path:", "the disk on /srv/cache overlaps the bind mount on /srv"}},
		{name: "above a tmpfs", service: "tmpfs: [/data/tmp]\n    x-rehearse: {disk: {path: /data, size: 64m}}",
			want: []string{"services.app.x-rehearse.disk.path:", "overlaps the tmpfs on /data/tmp"}},
		{name: "systemd's /run", service: "x-rehearse: {init: systemd, disk: {path: /run/app, size: 64m}}",
			want: []string{"services.app.x-rehearse.disk.path:", "overlaps the tmpfs on /run"}},
		{name: "volume name taken", service: "volumes: [app.disk:/x]\n    x-rehearse: {disk: {path: /data, size: 64m}}", top: "volumes: {app.disk: {}}",
			want: []string{"volumes.app.disk:", "the name a run gives the disk of service app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "services:\n  app:\n    image: debian:bookworm-slim\n    " + tt.service + "\n" + tt.top + "\n"
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "src"), 0o755); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "compose.yaml")
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := loadPlan(t, file)
			if err == nil {
				t.Fatal("planned without error")
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.File != file {
				t.Errorf("error %v does not name the compose file %s", err, file)
			}
			if got := errors.Is(err, ErrSandbox); got != tt.sandbox {
				t.Errorf("errors.Is(err, ErrSandbox) = %v, want %v (%v)", got, tt.sandbox, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

// The disks of one file together are bounded too: each lives in the engine
// host's memory. The error names the disk that crosses the bound.
func TestPlanDiskTotal(t *testing.T) {
	svc := func(name, size string) string {
		return "  " + name + ":\n    image: debian:bookworm-slim\n    x-rehearse:\n      disk: {path: /data, size: " + size + "}\n"
	}
	p, _, err := planText(t, "services:\n"+svc("a", "1g")+svc("b", "1g")+"  c:\n    image: debian:bookworm-slim\n")
	if err != nil {
		t.Fatalf("two disks of 1GiB: %v", err)
	}
	if p.Service("a").Disk == nil || p.Service("b").Disk == nil {
		t.Fatal("disks missing from the plan")
	}
	_, file, err := planText(t, "services:\n"+svc("a", "1g")+svc("b", "512m")+svc("c", "600m")+svc("d", "16m"))
	want := file + ":13: services.c.x-rehearse.disk.size: with the disk of service c the disks of the file add up to 2.086GiB, more than the 2GiB a run may hold"
	var fe *FileError
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.As(err, &fe) || strings.Contains(err.Error(), "\n") {
		t.Errorf("disks of 2.1GiB in all: %v, want one line starting %q", err, want)
	}
}

func TestStateLive(t *testing.T) {
	for status, want := range map[string]bool{"running": true, "paused": true, "restarting": false,
		"exited": false, "created": false, "dead": false, "removing": false} {
		if got := (State{Status: status}).Live(); got != want {
			t.Errorf("State{Status: %q}.Live() = %v, want %v", status, got, want)
		}
	}
}

// A disk above a VOLUME of the service's image would not get the writes
// below that volume (the engine mounts an anonymous volume there): the
// start refuses it with the file and key before creating any container,
// and leaves nothing behind. A disk exactly at the VOLUME replaces it.
func TestDiskAboveImageVolume(t *testing.T) {
	cli := enginetest.Connect(t)
	ctx := context.Background()
	file := filepath.Join("testdata", "disk-volume", "above.yaml")
	plan, err := loadPlan(t, file)
	if err != nil {
		t.Fatal(err)
	}
	runID, since := runs.NewID(), time.Now()
	e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID))
	if err == nil {
		defer e.Down(ctx)
	}
	want := file + ":13: services.app.x-rehearse.disk.path: the disk on /var/lib/app lies above the VOLUME /var/lib/app/data of image rehearse-test/disk-volume:1 (service app)"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("start: %v, want one line starting %q", err, want)
	}
	for _, made := range enginetest.Created(t, cli, runID, since) {
		if strings.HasPrefix(made, "container ") {
			t.Errorf("the refused run created %s", made)
		}
	}
	enginetest.AssertGone(t, cli, runID, 0)

	e, _ = startPlan(t, filepath.Join("testdata", "disk-volume", "at.yaml"))
	res := exec1(t, e.Service("app"), "", "sh", "-c", "stat -f -c '%T %b %S' /var/lib/app/data")
	if got := strings.TrimSpace(res.Stdout); got != "tmpfs 2048 4096" {
		t.Errorf("/var/lib/app/data in app is %q (type, blocks, block size), want the 8MiB tmpfs disk", got)
	}
	// The image's VOLUMEs, as the snapshot's rules read them.
	if vols, err := e.Service("app").Container().ImageVolumes(ctx); err != nil || strings.Join(vols, " ") != "/var/lib/app/data" {
		t.Errorf("ImageVolumes = %q, %v, want [/var/lib/app/data]", vols, err)
	}
}

package env

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/internal/enginetest"
)

// TestVolumeCopy extracts an archive keeping its owners and modes, copies a
// stopped service's volume into a spare volume and back, and removes the
// spare volume.
func TestVolumeCopy(t *testing.T) {
	e, cli := startPlan(t, filepath.Join("testdata", "volume-copy.yaml"))
	ctx := context.Background()
	store := e.Service("store")

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "x/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1234, Gid: 2345, ModTime: time.Now()})
	tw.WriteHeader(&tar.Header{Name: "x/f", Typeflag: tar.TypeReg, Mode: 0o4640, Uid: 1234, Gid: 2345, Size: 2, ModTime: time.Now()})
	tw.Write([]byte("hi"))
	tw.Close()
	if err := store.ExtractTree(ctx, "/data", &buf); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err := store.ReadTree(ctx, "/data/x", func(h *tar.Header, r io.Reader) error {
		b, _ := io.ReadAll(r)
		got[h.Name] = fmt.Sprintf("%d %d %o %s", h.Uid, h.Gid, h.Mode&0o7777, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got["/data/x"] != "1234 2345 750 " || got["/data/x/f"] != "1234 2345 4640 hi" {
		t.Errorf("extracted (uid gid mode content): %q", got)
	}
	if err := store.ExtractTree(ctx, "data", &buf); err == nil {
		t.Error("a relative directory was accepted")
	}

	_, _, vols := enginetest.Resources(t, cli, e.RunID)
	spare, err := e.CreateSpareVolume(ctx, "store.spare", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateSpareVolume(ctx, "store.spare", "test"); err == nil {
		t.Error("a second spare volume of the same name was created")
	}
	if _, _, n := enginetest.Resources(t, cli, e.RunID); n != vols+1 {
		t.Errorf("%d volumes with the spare one, want %d", n, vols+1)
	}
	c := store.Container()
	if err := c.Stop(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	caps := []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"}
	data := VolumeMount{Volume: "data", Target: "/data"}
	// Only the volume asked for is mounted: not the service's bind mount.
	res, err := c.RunWithVolumes(ctx, "debian:bookworm-slim", []string{"sh", "-c", `test -d /data && test ! -e /bound.yaml`}, nil, spare, data)
	if err != nil || res.ExitCode != 0 {
		t.Errorf("the helper sees the service's bind mount (or not its volume): %v, exit %d", err, res.ExitCode)
	}
	res, err = c.RunWithVolumes(ctx, "debian:bookworm-slim",
		[]string{"sh", "-c", `cp -a /data/. /rehearse-spare/ && rm -rf /data/x && stat -c '%u %g %a' /rehearse-spare/x/f`}, caps, spare, data)
	if err != nil || res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != "1234 2345 4640" {
		t.Fatalf("copy to the spare volume: %v, exit %d, %q %q", err, res.ExitCode, res.Stdout, res.Stderr)
	}
	// Without the capabilities, root cannot keep another user's owner.
	res, err = c.RunWithVolumes(ctx, "debian:bookworm-slim", []string{"sh", "-c", `cp -a /rehearse-spare/x /data/y`}, nil, spare, data)
	if err != nil || res.ExitCode == 0 {
		t.Errorf("a helper without capabilities copied owners: %v, exit %d", err, res.ExitCode)
	}
	res, err = c.RunWithVolumes(ctx, "debian:bookworm-slim", []string{"sh", "-c", `rm -rf /data/y && cp -a /rehearse-spare/. /data/`}, caps, spare, data)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("copy back: %v, exit %d, %q", err, res.ExitCode, res.Stderr)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := store.CopyOut(ctx, "/data/x/f"); err != nil || string(b) != "hi" {
		t.Errorf("after the copy back /data/x/f is %q (%v)", b, err)
	}
	if err := spare.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := spare.Remove(ctx); err != nil {
		t.Errorf("removing a removed spare volume: %v", err)
	}
	if _, _, n := enginetest.Resources(t, cli, e.RunID); n != vols {
		t.Errorf("%d volumes after the spare one's removal, want %d", n, vols)
	}
}

// TestVolumeHelperMounts: a helper mounts only volumes the service mounts,
// by their engine names; never a bind mount, another service's volume or
// a path over the spare volume's.
func TestVolumeHelperMounts(t *testing.T) {
	e := &Environment{RunID: "r1", Plan: &Plan{Services: []*ServicePlan{
		{Name: "db", Mounts: []Mount{
			{Type: "volume", Source: "dbdata", Target: "/var/lib/postgresql/data"},
			{Type: "bind", Source: "/proj/conf", Target: "/etc/conf"},
		}},
		{Name: "other", Mounts: []Mount{{Type: "volume", Source: "otherdata", Target: "/d"}}},
	}}}
	c := (&Service{Name: "db", env: e}).Container()
	got, err := c.helperMounts([]VolumeMount{{Volume: "dbdata", Target: "/rehearse-data", ReadOnly: true}})
	if err != nil || len(got) != 1 || got[0].Source != "rehearse-r1-dbdata" || got[0].Target != "/rehearse-data" || !got[0].ReadOnly || got[0].Type != "volume" {
		t.Errorf("helperMounts(dbdata) = %+v, %v", got, err)
	}
	for _, v := range []VolumeMount{
		{Volume: "/proj/conf", Target: "/x"},
		{Volume: "otherdata", Target: "/x"},
		{Volume: "dbdata", Target: "/rehearse-spare"},
		{Volume: "dbdata", Target: "x"},
		{Volume: "dbdata", Target: "/"},
	} {
		if _, err := c.helperMounts([]VolumeMount{v}); err == nil {
			t.Errorf("helperMounts(%+v) was accepted", v)
		}
	}
}

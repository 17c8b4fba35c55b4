package env

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/internal/enginetest"
)

func TestContainer(t *testing.T) {
	e, _ := startPlan(t, filepath.Join("testdata", "container.yaml"))
	ctx := context.Background()
	target, peer := e.Service("target"), e.Service("peer")
	c := target.Container()
	status := func(want string) func() string {
		return func() string {
			st, err := target.State(ctx)
			if err != nil {
				return err.Error()
			}
			if st.Status != want {
				return "status " + st.Status + ", want " + want
			}
			return ""
		}
	}

	t.Run("pause then unpause", func(t *testing.T) {
		if err := c.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		enginetest.Eventually(t, 5*time.Second, 100*time.Millisecond, status("paused"))
		if err := c.Unpause(ctx); err != nil {
			t.Fatal(err)
		}
		enginetest.Eventually(t, 5*time.Second, 100*time.Millisecond, status("running"))
	})

	t.Run("signal", func(t *testing.T) {
		if err := c.Signal(ctx, "SIGUSR1"); err != nil {
			t.Fatal(err)
		}
		enginetest.Eventually(t, 5*time.Second, 100*time.Millisecond, func() string {
			res := exec1(t, target, "", "cat", "/tmp/signals")
			if strings.TrimSpace(res.Stdout) != "usr1" {
				return "signals received: " + res.Stdout + res.Stderr
			}
			return ""
		})
		if err := c.Signal(ctx, ""); err == nil {
			t.Error("an empty signal was sent")
		}
	})

	t.Run("kill then start", func(t *testing.T) {
		if err := c.Signal(ctx, "SIGKILL"); err != nil {
			t.Fatal(err)
		}
		enginetest.Eventually(t, 5*time.Second, 100*time.Millisecond, status("exited"))
		if st, _ := target.State(ctx); st.ExitCode != 137 {
			t.Errorf("exit code after SIGKILL = %d, want 137", st.ExitCode)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		enginetest.Eventually(t, 5*time.Second, 100*time.Millisecond, status("running"))
	})

	t.Run("stop, start and restart", func(t *testing.T) {
		if err := c.Stop(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
		enginetest.Eventually(t, 5*time.Second, 100*time.Millisecond, status("exited"))
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		enginetest.Eventually(t, 5*time.Second, 100*time.Millisecond, status("running"))
		exec1(t, target, "", "touch", "/tmp/before-restart")
		if err := c.Restart(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
		enginetest.Eventually(t, 5*time.Second, 100*time.Millisecond, status("running"))
		// The same container came back: its files are still there.
		if res := exec1(t, target, "", "test", "-f", "/tmp/before-restart"); res.ExitCode != 0 {
			t.Errorf("restart lost the container's files")
		}
	})

	t.Run("disconnect then connect a network", func(t *testing.T) {
		resolves := func(name string) bool {
			return exec1(t, peer, "", "getent", "hosts", name).ExitCode == 0
		}
		if !resolves("target") {
			t.Fatal("peer cannot resolve target before the cut")
		}
		if err := c.Disconnect(ctx, "default"); err != nil {
			t.Fatal(err)
		}
		if resolves("target") {
			t.Error("peer still resolves target after disconnect")
		}
		if err := c.Connect(ctx, "default"); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"target", "target-alias"} {
			if !resolves(name) {
				t.Errorf("peer cannot resolve %s after connect", name)
			}
		}
		if err := c.Disconnect(ctx, "elsewhere"); err == nil || !strings.Contains(err.Error(), `not on network "elsewhere"`) {
			t.Errorf("disconnect from an unknown network: %v", err)
		}
	})

	t.Run("update memory", func(t *testing.T) {
		before, err := c.Resources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const limit = 64 << 20
		if err := c.Update(ctx, Resources{Memory: limit, MemorySwap: limit, NanoCPUs: 5e8}); err != nil {
			t.Fatal(err)
		}
		got, err := c.Resources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Memory != limit || got.MemorySwap != limit || got.NanoCPUs != 5e8 {
			t.Errorf("resources after update = %+v (before %+v)", got, before)
		}
		// The kernel sees it (cgroup v1 or v2).
		res := exec1(t, target, "", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
		if strings.TrimSpace(res.Stdout) != "67108864" {
			t.Errorf("memory limit inside the container: %q %q", res.Stdout, res.Stderr)
		}
	})

	t.Run("exec and copy", func(t *testing.T) {
		if err := target.CopyIn(ctx, []byte("note\n"), "/tmp/note.txt", 0o600); err != nil {
			t.Fatal(err)
		}
		if res := exec1(t, target, "", "stat", "-c", "%a %U", "/tmp/note.txt"); strings.TrimSpace(res.Stdout) != "600 root" {
			t.Errorf("copied file: %q", res.Stdout)
		}
		got, err := target.CopyOut(ctx, "/tmp/note.txt")
		if err != nil || string(got) != "note\n" {
			t.Errorf("copy out: %q %v", got, err)
		}
		if _, err := target.CopyOut(ctx, "/tmp"); err == nil {
			t.Error("copied a directory out as a file")
		}
		if err := target.CopyIn(ctx, []byte("x"), "/no/such/dir/f", 0o644); err == nil {
			t.Error("copied into a directory that does not exist")
		}
	})
}

// A bind source swapped for a symbolic link between a Stop and the next
// Start (the engine would mount what the link points at: it mounts the
// path resolved at create again, following links) is refused, naming the
// compose file, service and path; so is a source replaced by another
// directory, and a path above the source turned into a link. The
// unchanged source (moved back) starts, and a Restart checks too.
func TestStartRechecksBindSources(t *testing.T) {
	ctx := context.Background()
	dir, outside := t.TempDir(), t.TempDir()
	for _, d := range []string{"data", "conf/app"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"data/inside", "conf/app/inside"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("inside\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(outside, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "compose.yaml")
	compose := `services:
  app:
    image: debian:bookworm-slim
    command: ["sleep", "infinity"]
    volumes: ["./data:/data:ro", "./conf/app:/conf:ro"]
`
	if err := os.WriteFile(file, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	e, _ := startPlan(t, file)
	app := e.Service("app")
	c := app.Container()
	running := func(t *testing.T, want bool) {
		t.Helper()
		st, err := app.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Live() != want {
			t.Fatalf("app's state is %s, want live=%v", st.Status, want)
		}
	}
	// move renames a to b inside the project directory.
	move := func(t *testing.T, a, b string) {
		t.Helper()
		if err := os.Rename(filepath.Join(dir, a), filepath.Join(dir, b)); err != nil {
			t.Fatal(err)
		}
	}
	link := func(t *testing.T, target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(t *testing.T, err error, path string, more ...string) {
		t.Helper()
		if err == nil {
			res := exec1(t, app, "", "ls", "/data", "/conf")
			t.Fatalf("started with %s swapped (ls: %q)", path, res.Stdout)
		}
		for _, want := range append([]string{file, "service app", "bind mount " + path}, more...) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q: %v", want, err)
			}
		}
		if !errors.Is(err, ErrSandbox) {
			t.Errorf("error is not ErrSandbox: %v", err)
		}
		running(t, false)
	}
	data, err := filepath.EvalSymlinks(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := filepath.EvalSymlinks(filepath.Join(dir, "conf", "app"))
	if err != nil {
		t.Fatal(err)
	}

	if err := c.Stop(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	t.Run("source swapped for a link out of the project", func(t *testing.T) {
		move(t, "data", "data.orig")
		link(t, outside, "data")
		refused(t, c.Start(ctx), data, "outside the project directory", "symbolic link")
		os.Remove(filepath.Join(dir, "data"))
		move(t, "data.orig", "data")
	})
	t.Run("a directory above the source swapped for a link", func(t *testing.T) {
		move(t, "conf", "conf.orig")
		link(t, outside, "conf")
		refused(t, c.Start(ctx), conf, "outside the project directory")
		os.Remove(filepath.Join(dir, "conf"))
		move(t, "conf.orig", "conf")
	})
	t.Run("source replaced by another directory", func(t *testing.T) {
		move(t, "data", "data.orig")
		if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		refused(t, c.Start(ctx), data, "replaced since the container was created")
		os.Remove(filepath.Join(dir, "data"))
		move(t, "data.orig", "data")
	})
	t.Run("unchanged sources start", func(t *testing.T) {
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		running(t, true)
		if res := exec1(t, app, "", "cat", "/data/inside", "/conf/inside"); res.Stdout != "inside\ninside\n" {
			t.Errorf("the restarted app sees %q %q", res.Stdout, res.Stderr)
		}
	})
	t.Run("restart checks too", func(t *testing.T) {
		move(t, "data", "data.orig")
		link(t, outside, "data")
		refused(t, c.Restart(ctx, time.Second), data, "outside the project directory")
		os.Remove(filepath.Join(dir, "data"))
		move(t, "data.orig", "data")
		if err := c.Restart(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
		running(t, true)
	})
}

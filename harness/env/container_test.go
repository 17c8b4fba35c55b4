package env

import (
	"context"
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

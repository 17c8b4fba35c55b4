package runs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	WatchdogMain()
	os.Exit(m.Run())
}

// A released watchdog exits without touching the engine and removes its log.
func TestWatchdogRelease(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	id := NewID()
	w, err := StartWatchdog(id, Self())
	if err != nil || w == nil {
		t.Fatalf("StartWatchdog = %v, %v", w, err)
	}
	logs, _ := filepath.Glob(filepath.Join(tmp, "rehearse-watchdog-"+id+"-*.log"))
	if len(logs) != 1 {
		t.Fatalf("watchdog logs %v, want one", logs)
	}
	w.Release()
	w.Release() // twice is harmless
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(logs[0]); errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(logs[0])
			t.Fatalf("released watchdog left its log:\n%s", data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A program that finds the watchdog variable in its environment without
// the owner rehearse sets beside it does nothing.
func TestWatchdogIgnoresStrayVariable(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), watchdogRun+"="+NewID())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "not started by rehearse") {
		t.Errorf("stray %s: %v\n%s", watchdogRun, err, out)
	}
}

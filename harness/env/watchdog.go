package env

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rehearse/rehearse/harness/engine"
)

// The watchdog is this same executable started again with watchdogEnv set:
// a detached process that holds the read end of a pipe whose write end only
// the owner has. When the owner dies in any way (even SIGKILL) the pipe
// closes and the watchdog removes the run. No reaper image is needed, and it
// works inside test binaries because the check runs in a package init.
const watchdogEnv = "REHEARSE_WATCHDOG_RUN"

const releaseWord = "release"

func init() {
	if id := os.Getenv(watchdogEnv); id != "" {
		os.Exit(watchdogMain(id))
	}
}

type watchdog struct {
	pipe *os.File
	cmd  *exec.Cmd
}

// startWatchdog starts the detached watchdog for a run.
func startWatchdog(runID string) (*watchdog, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	logf, err := os.OpenFile(watchdogLog(runID), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), watchdogEnv+"="+runID)
	cmd.Stdin = r
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	go cmd.Wait() // reap it if it ends while we live
	return &watchdog{pipe: w, cmd: cmd}, nil
}

// release tells the watchdog the run is in good hands (removed, or kept on
// purpose) and lets it exit without touching anything.
func (w *watchdog) release() {
	if w == nil || w.pipe == nil {
		return
	}
	fmt.Fprintln(w.pipe, releaseWord)
	w.pipe.Close()
	w.pipe = nil
}

// watchdogMain waits for the owner to release the run or to die.
func watchdogMain(runID string) int {
	logger := log.New(os.Stderr, "watchdog "+runID+": ", log.LstdFlags)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err == nil && strings.TrimSpace(line) == releaseWord {
		os.Remove(watchdogLog(runID))
		return 0
	}
	logger.Printf("owner gone (%v); removing the run", err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := engine.Connect(ctx)
	if err != nil {
		logger.Print(err)
		return 1
	}
	defer cli.Close()
	// Twice: a create the owner sent just before dying can land after the
	// first sweep.
	for i := 0; i < 2; i++ {
		if err := Remove(ctx, cli, runID); err != nil {
			logger.Print(err)
		}
		time.Sleep(2 * time.Second)
	}
	if err := Remove(ctx, cli, runID); err != nil {
		logger.Print(err)
		return 1
	}
	logger.Print("removed")
	return 0
}

func watchdogLog(runID string) string {
	return filepath.Join(os.TempDir(), "rehearse-watchdog-"+runID+".log")
}

package runs

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/engine"
)

// A watchdog is the owner's own executable started again with watchdogRun
// set: a detached process that holds the read end of a pipe whose write end
// only the owner has. When the owner dies in any way (even SIGKILL) the pipe
// closes and the watchdog removes the run. No reaper image is needed. Only a
// program that called WatchdogMain is ever started again this way.
const (
	watchdogRun   = "REHEARSE_WATCHDOG_RUN"
	watchdogOwner = "REHEARSE_WATCHDOG_OWNER"
	watchdogLog   = "REHEARSE_WATCHDOG_LOG"
	releaseWord   = "release"
)

// optedIn records that the program called WatchdogMain.
var optedIn atomic.Bool

// WatchdogMain lets this program serve as the watchdog of the runs it
// starts. Call it first thing in main, and in TestMain of test binaries that
// start environments. When the process was started as a watchdog it does the
// watchdog's work and exits; otherwise it returns at once. A program that
// never calls it gets no watchdog: a run it leaves behind by dying without
// teardown (SIGKILL) is removed by the next run's sweep or by `rehearse gc`.
func WatchdogMain() {
	if id := os.Getenv(watchdogRun); id != "" {
		os.Exit(serveWatchdog(id, os.Getenv(watchdogOwner)))
	}
	optedIn.Store(true)
}

// Watchdog removes a run if its owner dies before releasing it.
type Watchdog struct {
	pipe *os.File
}

// StartWatchdog starts the detached watchdog of a run owned by this
// process. It returns a nil Watchdog (and no error) when the program did not
// call WatchdogMain: nothing is started then.
func StartWatchdog(runID string, owner Owner) (*Watchdog, error) {
	if !optedIn.Load() {
		return nil, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start watchdog of run %s: %w", runID, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start watchdog of run %s: %w", runID, err)
	}
	// A fresh file (never a predictable path another user could have
	// placed); the watchdog removes it when released.
	logf, err := os.CreateTemp("", "rehearse-watchdog-"+runID+"-*.log")
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start watchdog of run %s: %w", runID, err)
	}
	defer logf.Close()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), watchdogRun+"="+runID, watchdogOwner+"="+owner.String(), watchdogLog+"="+logf.Name())
	cmd.Stdin = r
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		os.Remove(logf.Name())
		return nil, fmt.Errorf("start watchdog of run %s: %w", runID, err)
	}
	go cmd.Wait() // reap it if it ends while we live
	return &Watchdog{pipe: w}, nil
}

// Release tells the watchdog the run is in good hands (removed, or kept on
// purpose) and lets it exit without touching anything. A nil Watchdog has
// nothing to release.
func (w *Watchdog) Release() {
	if w == nil || w.pipe == nil {
		return
	}
	fmt.Fprintln(w.pipe, releaseWord)
	w.pipe.Close()
	w.pipe = nil
}

// serveWatchdog waits for the owner to release the run or to die, then
// removes what the run has that carries the owner's label.
func serveWatchdog(runID, owner string) int {
	logger := log.New(os.Stderr, "watchdog "+runID+": ", log.LstdFlags)
	if ValidID(runID) != nil || owner == "" {
		logger.Printf("%s=%q %s=%q: not started by rehearse; nothing to watch", watchdogRun, runID, watchdogOwner, owner)
		return 2
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	// Its log is worth keeping only when a removal failed.
	removeLog := func() {
		if l := os.Getenv(watchdogLog); strings.HasPrefix(filepath.Base(l), "rehearse-watchdog-"+runID+"-") {
			os.Remove(l)
		}
	}
	if err == nil && strings.TrimSpace(line) == releaseWord {
		removeLog()
		return 0
	}
	logger.Printf("owner %s gone (%v); removing the run", owner, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := engine.Connect(ctx)
	if err != nil {
		logger.Print(err)
		return 1
	}
	defer cli.Close()
	f := client.Filters{}.Add("label", LabelRun+"="+runID).Add("label", LabelOwner+"="+owner)
	// Twice: a create the owner sent just before dying can land after the
	// first sweep.
	for i := 0; i < 2; i++ {
		if err := remove(ctx, cli, runID, f); err != nil {
			logger.Print(err)
		}
		time.Sleep(2 * time.Second)
	}
	if err := remove(ctx, cli, runID, f); err != nil {
		logger.Print(err)
		return 1
	}
	logger.Print("removed")
	removeLog()
	return 0
}

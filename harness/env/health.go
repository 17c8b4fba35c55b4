package env

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// A starting service with a healthcheck is ready when its healthcheck
// command first passes. The engine runs that command only every interval
// (engine 20.10 has no start_interval), so a service that is up a moment
// after a check would wait most of an interval for the next one: the
// harness runs the same command itself, through the engine's exec API,
// first checkFirst after the start and then at intervals that grow by half
// up to checkCap. An exec costs the engine about 140 ms of CPU
// (BenchmarkHealthCheckExec), and exec probes of other scenarios share the
// engine: at a 250 ms cap, make test on the 2-core CI machine saw exec
// probes time out, so a check runs at most twice a second, and the pause
// after a check is never shorter than the check took: on an engine slow
// to answer, a service's checks take at most half of its time. At most
// maxChecks checks run at once in this process, whatever number of
// services and environments start (a service whose turn it is not checks
// at its next poll). Where the service declares a probe that runs from
// this host, that probe is polled instead, every checkFirst until it
// passes, and the exec only confirms it (see presignal.go).
const (
	checkFirst = 50 * time.Millisecond
	checkCap   = 500 * time.Millisecond
	maxChecks  = 2
)

// slots hold one token per health check running.
type slots chan struct{}

// checkSlots are this process's: every environment's checks share them.
var checkSlots = make(slots, maxChecks)

// take takes a slot if one is free.
func (s slots) take() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s slots) release() { <-s }

// defaultCheckTimeout is the engine's timeout of one health check when the
// healthcheck sets none.
const defaultCheckTimeout = 30 * time.Second

// maxCheckOutput is how much of a check's output is kept, as the engine
// keeps it.
const maxCheckOutput = 4096

// backoff is the schedule of the harness's health checks.
type backoff struct{ next, cap time.Duration }

func newBackoff() *backoff { return &backoff{next: checkFirst, cap: checkCap} }

// Next returns the pause before the next check and lengthens the one after.
func (b *backoff) Next() time.Duration {
	d := b.next
	b.next = min(b.cap, b.next+b.next/2)
	return d
}

// After returns the pause after a check that took took: the next pause,
// or took when the check took longer (up to afterCap).
func (b *backoff) After(took time.Duration) time.Duration {
	return max(b.Next(), min(took, afterCap))
}

// afterCap bounds the pause a slow check earns: a check that overran a
// long timeout does not hold back the next one for as long.
const afterCap = 2 * time.Second

// HealthArgv is the command the engine runs for a healthcheck test: CMD
// runs its arguments as they are, CMD-SHELL runs its command with the
// image's shell (/bin/sh -c unless the image set SHELL). NONE, and a test
// that only inherits the image's, give nil: nothing to run.
func HealthArgv(test, shell []string) []string {
	if len(test) < 2 {
		return nil
	}
	switch test[0] {
	case "CMD":
		return slices.Clone(test[1:])
	case "CMD-SHELL":
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(slices.Clone(shell), test[1:]...)
	}
	return nil
}

// checkResult is one health check the harness ran.
type checkResult struct {
	exitCode   int
	output     string
	began, end time.Time
}

func (r checkResult) passed() bool { return r.exitCode == 0 }

// check is one health check the harness started in a container. It runs
// on its own while waitReady keeps inspecting the container, so that an
// exit, a restart, the engine's verdict or the start deadline are seen
// whatever the check does.
//
// A check that overruns its timeout fails, with the engine's own message,
// and is abandoned: the engine's API cannot stop an exec (ExecInspect's
// Pid is a host pid, which the harness never signals), so its command is
// left to finish in the container. No new check starts while it still
// runs (ExecInspect says Running), so at most one overrunning command is
// outstanding per service.
type check struct {
	began   time.Time
	timeout time.Duration
	// startedAt and restarts are the container's State.StartedAt and
	// RestartCount when the check began: a pass counts only for that start.
	startedAt string
	restarts  int
	cancel    context.CancelFunc
	done      chan struct{} // closed once res and err are set
	res       checkResult
	err       error // the context ended; not a failed check

	mu     sync.Mutex
	execID string // "" until the engine created the exec
}

// startCheck starts one health check command in container id, or returns
// nil when no check slot is free (checkSlots: the check gives its slot
// back when its command returns); timeout 0 is the engine's default.
// restarts and startedAt are the container's state just before (see
// check).
func (e *Environment) startCheck(ctx context.Context, id string, argv []string, timeout time.Duration, startedAt string, restarts int) *check {
	if !checkSlots.take() {
		return nil
	}
	if timeout <= 0 {
		timeout = defaultCheckTimeout
	}
	cctx, cancel := context.WithCancel(ctx)
	c := &check{began: time.Now(), timeout: timeout, startedAt: startedAt, restarts: restarts, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer checkSlots.release()
		out := &capped{max: maxCheckOutput}
		created, err := e.cli.ExecCreate(cctx, id, client.ExecCreateOptions{Cmd: argv, AttachStdout: true, AttachStderr: true})
		code := 0
		if err == nil {
			c.mu.Lock()
			c.execID = created.ID
			c.mu.Unlock()
			code, err = runExec(cctx, e.cli, created.ID, out, out)
		}
		c.res = checkResult{exitCode: code, output: out.String(), began: c.began, end: time.Now()}
		switch {
		case err == nil:
		case cctx.Err() != nil:
			c.err = cctx.Err()
		default:
			// A command that cannot run (the container is not running)
			// fails the check, as the engine's own check would.
			c.res.exitCode, c.res.output = -1, fmt.Sprintf("health check could not run: %v", err)
		}
	}()
	return c
}

// overdue reports whether the check has run past its timeout.
func (c *check) overdue() bool { return time.Since(c.began) > c.timeout }

// timedOut is the failed result of an overdue check, as the engine words it.
func (c *check) timedOut() checkResult {
	return checkResult{exitCode: -1, output: fmt.Sprintf("Health check exceeded timeout (%v)", c.timeout), began: c.began, end: time.Now()}
}

// exec is the id of the check's exec, "" before the engine created it.
func (c *check) exec() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.execID
}

// execRunning reports whether the exec execID still runs; one the engine
// no longer knows does not.
func (e *Environment) execRunning(ctx context.Context, execID string) bool {
	ins, err := e.cli.ExecInspect(ctx, execID, client.ExecInspectOptions{})
	return err == nil && ins.Running
}

// hasTest reports whether hc is a healthcheck the engine runs: one with a
// test other than NONE.
func hasTest(hc *container.HealthConfig) bool {
	return hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE"
}

// lastHealth is the newer of the engine's last health check and the
// harness's, as StartError shows it ("" when neither ran).
func lastHealth(h *container.Health, own *checkResult) string {
	var engine *container.HealthcheckResult
	if h != nil && len(h.Log) > 0 {
		engine = h.Log[len(h.Log)-1]
	}
	switch {
	case own != nil && (engine == nil || own.end.After(engine.End)):
		return fmt.Sprintf("exit %d: %s", own.exitCode, own.output)
	case engine != nil:
		return fmt.Sprintf("exit %d: %s", engine.ExitCode, engine.Output)
	}
	return ""
}

// capped keeps the first max bytes written to it.
type capped struct {
	mu  sync.Mutex
	max int
	b   strings.Builder
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

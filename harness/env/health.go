package env

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
)

// A starting service with a healthcheck is ready when its healthcheck
// command first passes. The engine runs that command only every interval
// (engine 20.10 has no start_interval), so a service that is up a moment
// after a check would wait most of an interval for the next one: the
// harness runs the same command itself, through the engine's exec API,
// first checkFirst after the start and then at intervals that grow by half
// up to checkCap. An exec costs the engine CPU (BenchmarkHealthCheckExec):
// where the service declares a probe that runs from this host, that probe
// is polled instead and the exec only confirms it (see presignal.go).
const (
	checkFirst = 50 * time.Millisecond
	checkCap   = 250 * time.Millisecond
)

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

// healthArgv is the command the engine runs for a healthcheck test: CMD
// runs its arguments as they are, CMD-SHELL runs its command with the
// image's shell (/bin/sh -c unless the image set SHELL). NONE, and a test
// that only inherits the image's, give nil: nothing to run.
func healthArgv(test, shell []string) []string {
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
	exitCode int
	output   string
	end      time.Time
}

func (r checkResult) passed() bool { return r.exitCode == 0 }

// runCheck runs one health check command in container id, bounded by
// timeout (the healthcheck's, or the engine's default). A command that
// cannot run (the container is not running) or overruns fails the check,
// as the engine's own check would.
func (e *Environment) runCheck(ctx context.Context, id string, argv []string, timeout time.Duration) (checkResult, error) {
	if timeout <= 0 {
		timeout = defaultCheckTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &capped{max: maxCheckOutput}
	code, err := execIn(cctx, e.cli, id, argv, execOptions{}, out, out)
	res := checkResult{exitCode: code, output: out.String(), end: time.Now()}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return res, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		res.exitCode, res.output = -1, fmt.Sprintf("health check exceeded timeout (%s)", timeout)
	default:
		res.exitCode, res.output = -1, fmt.Sprintf("health check could not run: %v", err)
	}
	return res, nil
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

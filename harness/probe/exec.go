package probe

import (
	"context"
	"fmt"
	"strings"

	"github.com/rehearse/rehearse/harness/env"
)

// Execer runs a command in a service; *env.Service is one.
type Execer interface {
	Exec(ctx context.Context, cmd []string, opts ...env.ExecOption) (env.ExecResult, error)
}

// ExecChecker runs a command in a service, as a healthcheck does; exit 0
// passes. An exec goes through the engine and costs it from a tenth to
// most of a second on a busy machine: sample every 500 ms or more, with a
// 1 s timeout, or the probe measures the engine rather than the service.
type ExecChecker struct {
	svc Execer
	cmd []string
}

// Exec returns a checker that runs cmd in svc.
func Exec(svc Execer, cmd ...string) (*ExecChecker, error) {
	if svc == nil {
		return nil, fmt.Errorf("exec probe %q: no service", strings.Join(cmd, " "))
	}
	if len(cmd) == 0 || cmd[0] == "" {
		return nil, fmt.Errorf("exec probe: no command")
	}
	return &ExecChecker{svc: svc, cmd: cmd}, nil
}

// String describes the check.
func (c *ExecChecker) String() string { return "exec " + strings.Join(c.cmd, " ") }

// Check runs the command once.
func (c *ExecChecker) Check(ctx context.Context) error {
	res, err := c.svc.Exec(ctx, c.cmd)
	if err != nil {
		return fmt.Errorf("run %q: %w", strings.Join(c.cmd, " "), err)
	}
	if res.ExitCode != 0 {
		out := excerpt(res.Stderr)
		if out == "" {
			out = excerpt(res.Stdout)
		}
		if out != "" {
			out = ": " + out
		}
		return fmt.Errorf("run %q: %w: exit %d%s", strings.Join(c.cmd, " "), ErrExit, res.ExitCode, out)
	}
	return nil
}

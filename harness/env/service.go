package env

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
)

// Service is one running container of an environment.
type Service struct {
	Name        string
	ContainerID string
	// Ports maps a container port ("5432/tcp") to its endpoint on the host
	// ("127.0.0.1:49153").
	Ports map[string]string

	env *Environment
	c   testcontainers.Container
}

// ExecResult is the outcome of a command run in a service.
type ExecResult struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

// ExecOption configures Exec.
type ExecOption func(*execOptions)

type execOptions struct {
	user    string
	workdir string
	env     []string
}

// AsUser runs the command as a user (name or uid[:gid]). Default: the
// container's user.
func AsUser(user string) ExecOption { return func(o *execOptions) { o.user = user } }

// InDir runs the command in a directory. Default: the container's working directory.
func InDir(dir string) ExecOption { return func(o *execOptions) { o.workdir = dir } }

// WithExecEnv adds KEY=VALUE pairs to the command's environment. Default: none.
func WithExecEnv(kv ...string) ExecOption {
	return func(o *execOptions) { o.env = append(o.env, kv...) }
}

// Exec runs a command in the service and waits for it. A command that runs
// and exits non-zero is not an error: read ExitCode.
func (s *Service) Exec(ctx context.Context, cmd []string, opts ...ExecOption) (ExecResult, error) {
	o := execOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	var popts []tcexec.ProcessOption
	if o.user != "" {
		popts = append(popts, tcexec.WithUser(o.user))
	}
	if o.workdir != "" {
		popts = append(popts, tcexec.WithWorkingDir(o.workdir))
	}
	if len(o.env) > 0 {
		popts = append(popts, tcexec.WithEnv(o.env))
	}
	code, r, err := s.c.Exec(ctx, cmd, popts...)
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec %q in %s: %w", strings.Join(cmd, " "), s.Name, err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, r); err != nil {
		return ExecResult{}, fmt.Errorf("exec %q in %s: read output: %w", strings.Join(cmd, " "), s.Name, err)
	}
	return ExecResult{ExitCode: code, Stdout: stdout.String(), Stderr: stderr.String()}, nil
}

// CopyIn writes a file into the service.
func (s *Service) CopyIn(ctx context.Context, data []byte, path string, mode int64) error {
	if err := s.c.CopyToContainer(ctx, data, path, mode); err != nil {
		return fmt.Errorf("copy to %s:%s: %w", s.Name, path, err)
	}
	return nil
}

// CopyDirIn copies a host directory into the service, at parent/<base of dir>.
func (s *Service) CopyDirIn(ctx context.Context, dir, parent string) error {
	if err := s.c.CopyDirToContainer(ctx, dir, parent, 0o755); err != nil {
		return fmt.Errorf("copy %s to %s:%s: %w", dir, s.Name, parent, err)
	}
	return nil
}

// CopyOut reads a file from the service.
func (s *Service) CopyOut(ctx context.Context, path string) ([]byte, error) {
	rc, err := s.c.CopyFileFromContainer(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("copy from %s:%s: %w", s.Name, path, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("copy from %s:%s: %w", s.Name, path, err)
	}
	return data, nil
}

// Logs returns the last tail lines of the service's output (all when tail <= 0).
func (s *Service) Logs(ctx context.Context, tail int) (string, error) {
	out, err := containerLogs(ctx, s.env.cli, s.ContainerID, tail)
	if err != nil {
		return out, fmt.Errorf("logs of %s: %w", s.Name, err)
	}
	return out, nil
}

// Endpoint returns the 127.0.0.1 address of a container port such as
// "5432" or "5432/tcp".
func (s *Service) Endpoint(port string) (string, error) {
	if !strings.Contains(port, "/") {
		port += "/tcp"
	}
	ep, ok := s.Ports[port]
	if !ok {
		return "", fmt.Errorf("service %s publishes no port %s (declare it under ports:)", s.Name, port)
	}
	return ep, nil
}

// State is a service's container state and health as the engine reports
// them: Health is "healthy", "unhealthy", "starting", or "" without a
// healthcheck.
type State struct {
	Status   string // running, exited, paused, ...
	Health   string
	ExitCode int
}

// State asks the engine for the service's current state.
func (s *Service) State(ctx context.Context) (State, error) {
	ins, err := s.env.cli.ContainerInspect(ctx, s.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		return State{}, fmt.Errorf("inspect %s: %w", s.Name, err)
	}
	st := ins.Container.State
	if st == nil {
		return State{}, fmt.Errorf("inspect %s: no state", s.Name)
	}
	out := State{Status: string(st.Status), ExitCode: st.ExitCode}
	if st.Health != nil {
		out.Health = string(st.Health.Status)
	}
	return out, nil
}

// Healthy reports whether the service runs and, when it has a healthcheck,
// passes it.
func (st State) Healthy() bool {
	return st.Status == "running" && (st.Health == "" || st.Health == "healthy")
}

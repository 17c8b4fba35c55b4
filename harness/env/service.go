package env

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Service is one running container of an environment: what runs in it
// (exec), its files (copy), its output (logs) and its state. What faults do
// to the container itself goes through Container.
type Service struct {
	Name          string
	ContainerID   string
	ContainerName string // for people: docker exec -it NAME bash
	// Ports maps a container port ("5432/tcp") to its endpoint on the host
	// ("127.0.0.1:49153").
	Ports map[string]string

	env *Environment
}

// addService records a service whose container exists.
func (e *Environment) addService(name, containerID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.services[name] = &Service{Name: name, ContainerID: containerID, ContainerName: e.resourceName(name),
		Ports: map[string]string{}, env: e}
}

// ExecResult is the outcome of a command run in a service.
type ExecResult struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

// ExecOption configures Exec.
type ExecOption func(*execOptions) error

type execOptions struct {
	user    string
	workdir string
	env     []string
}

// AsUser runs the command as a user (name or uid[:gid]). Default: the
// container's user.
func AsUser(user string) ExecOption {
	return func(o *execOptions) error { o.user = user; return nil }
}

// InDir runs the command in a directory. Default: the container's working directory.
func InDir(dir string) ExecOption {
	return func(o *execOptions) error { o.workdir = dir; return nil }
}

// WithExecEnv adds KEY=VALUE pairs to the command's environment. Default: none.
func WithExecEnv(kv ...string) ExecOption {
	return func(o *execOptions) error {
		for _, e := range kv {
			if !strings.Contains(e, "=") {
				return fmt.Errorf("exec environment %q: want KEY=VALUE", e)
			}
		}
		o.env = append(o.env, kv...)
		return nil
	}
}

// Exec runs a command in the service and waits for it. A command that runs
// and exits non-zero is not an error: read ExitCode.
func (s *Service) Exec(ctx context.Context, cmd []string, opts ...ExecOption) (ExecResult, error) {
	var stdout, stderr bytes.Buffer
	code, err := s.ExecStream(ctx, cmd, &stdout, &stderr, opts...)
	return ExecResult{ExitCode: code, Stdout: stdout.String(), Stderr: stderr.String()}, err
}

// ExecStream runs a command in the service, copying its output to stdout
// and stderr as it comes, and returns its exit code.
func (s *Service) ExecStream(ctx context.Context, cmd []string, stdout, stderr io.Writer, opts ...ExecOption) (int, error) {
	what := fmt.Sprintf("exec %q in %s", strings.Join(cmd, " "), s.Name)
	o := execOptions{}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return -1, fmt.Errorf("%s: %w", what, err)
		}
	}
	code, err := execIn(ctx, s.env.cli, s.ContainerID, cmd, o, stdout, stderr)
	if cerrdefs.IsConflict(err) { // the engine's 409: the container is not running (or is paused)
		return -1, fmt.Errorf("%s: %w: %w", what, ErrNotRunning, err)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return code, nil
}

// execIn runs cmd in container id, copying its output to stdout and
// stderr, and returns its exit code. Errors are the engine's, unwrapped
// (a 409 from the create: the container is not running).
func execIn(ctx context.Context, cli *client.Client, id string, cmd []string, o execOptions, stdout, stderr io.Writer) (int, error) {
	created, err := cli.ExecCreate(ctx, id, client.ExecCreateOptions{
		User: o.user, WorkingDir: o.workdir, Env: o.env, Cmd: cmd, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return 0, err
	}
	return runExec(ctx, cli, created.ID, stdout, stderr)
}

// runExec starts the created exec execID, copies its output to stdout and
// stderr, and returns its exit code once the engine marks it finished.
func runExec(ctx context.Context, cli *client.Client, execID string, stdout, stderr io.Writer) (int, error) {
	att, err := cli.ExecAttach(ctx, execID, client.ExecAttachOptions{})
	if err != nil {
		return 0, err
	}
	defer att.Close()
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.Reader)
		copied <- err
	}()
	select {
	case err := <-copied:
		if err != nil {
			return 0, fmt.Errorf("read output: %w", err)
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// The engine marks the exec finished a moment after closing the stream.
	for {
		ins, err := cli.ExecInspect(ctx, execID, client.ExecInspectOptions{})
		if err != nil {
			return 0, err
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// CopyIn writes a file into the service, owned by root with the given
// mode; its directory must exist.
func (s *Service) CopyIn(ctx context.Context, data []byte, file string, mode int64) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := tw.WriteHeader(&tar.Header{Name: path.Base(file), Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Now()})
	if err == nil {
		_, err = tw.Write(data)
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		_, err = s.env.cli.CopyToContainer(ctx, s.ContainerID, client.CopyToContainerOptions{DestinationPath: path.Dir(file), Content: &buf})
	}
	if err != nil {
		return fmt.Errorf("copy to %s:%s: %w", s.Name, file, err)
	}
	return nil
}

// MaxCopyOut bounds what CopyOut reads into memory; ReadTree streams a
// larger file.
const MaxCopyOut = 64 << 20

// CopyOut reads a file of at most MaxCopyOut bytes from the service.
func (s *Service) CopyOut(ctx context.Context, file string) ([]byte, error) {
	fail := func(err error) ([]byte, error) { return nil, fmt.Errorf("copy from %s:%s: %w", s.Name, file, err) }
	res, err := s.env.cli.CopyFromContainer(ctx, s.ContainerID, client.CopyFromContainerOptions{SourcePath: file})
	if err != nil {
		return fail(err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	h, err := tr.Next()
	if err != nil {
		return fail(err)
	}
	if h.Typeflag != tar.TypeReg {
		return fail(fmt.Errorf("not a regular file"))
	}
	if h.Size > MaxCopyOut {
		return fail(fmt.Errorf("%d bytes, over the %d bytes CopyOut reads (ReadTree streams it)", h.Size, MaxCopyOut))
	}
	data, err := io.ReadAll(io.LimitReader(tr, MaxCopyOut+1))
	if err != nil {
		return fail(err)
	}
	if len(data) > MaxCopyOut {
		return fail(fmt.Errorf("over the %d bytes CopyOut reads (ReadTree streams it)", MaxCopyOut))
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

// State is a service's container state and health: Health is "healthy",
// "unhealthy", "starting", or "" without a healthcheck.
//
// Health is the engine's, with one exception, so that "healthy" means what
// "ready" means: Start and WaitReady return once the healthcheck first
// passes as the harness runs it (see waitReady), which can be long before
// the engine's first check at its interval. While the engine still says
// "starting", a service whose healthcheck the harness saw pass for this
// same start of its container (same State.StartedAt) is "healthy". The
// engine's "healthy" and "unhealthy" always stand, and a pass recorded for
// an earlier start counts for nothing.
type State struct {
	Status   string // running, exited, paused, ...
	Health   string
	ExitCode int
}

// State asks the engine for the service's current state (see State for
// how Health counts the harness's own health checks).
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
		if st.Health.Status == container.Starting && st.StartedAt != "" && s.env.passedFor(s.ContainerID) == st.StartedAt {
			out.Health = string(container.Healthy)
		}
	}
	return out, nil
}

// Healthy reports whether the service runs and, when it has a healthcheck,
// passes it.
func (st State) Healthy() bool {
	return st.Status == "running" && (st.Health == "" || st.Health == "healthy")
}

// CopyTree copies a host directory into the service as dest (replacing
// nothing: remove dest first to start clean), keeping file modes; files
// are owned by root and readable by every user.
//
// The tar is written here rather than by moby/go-archive: TarWithOptions
// logs and skips a file it cannot read (archive.go, "Can't add file"), so a
// copy missing a file would succeed, and it cannot make entries readable by
// all (ChownOpts sets owners only), which needs a second pass over its
// output anyway. A walk that fails on the first unreadable file is shorter.
func (s *Service) CopyTree(ctx context.Context, hostDir, dest string) error {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := filepath.WalkDir(hostDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(hostDir, p)
			info, err := d.Info()
			if err != nil {
				return err
			}
			link := ""
			if info.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			h, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			h.Name = path.Join(strings.TrimPrefix(dest, "/"), filepath.ToSlash(rel))
			h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "root", "root"
			h.Mode |= 0o444
			if info.IsDir() {
				h.Mode |= 0o111
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if info.Mode().IsRegular() {
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = io.Copy(tw, f)
				return err
			}
			return nil
		})
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err := s.env.cli.CopyToContainer(ctx, s.ContainerID, client.CopyToContainerOptions{DestinationPath: "/", Content: pr})
	pr.Close() // a writer still going (the copy failed early) stops here
	if err != nil {
		return fmt.Errorf("copy %s to %s:%s: %w", hostDir, s.Name, dest, err)
	}
	return nil
}

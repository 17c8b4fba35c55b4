package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
)

// bin is the rehearse binary the tests run, built once in TestMain: signal
// tests need a real process.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rehearse-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "rehearse")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build rehearse: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func rehearse(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

func TestVersion(t *testing.T) {
	r := rehearse(t, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "rehearse ") {
		t.Errorf("version: %+v", r)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"up"},
		{"up", "-f", "x.yaml", "--format", "xml"},
		{"up", "--no-such-flag"},
		{"down"},
		{"up", "-f", "x.yaml", "--run-id", "Bad Id"},
		{"gc", "extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if r := rehearse(t, args...); r.code != exitUsage {
				t.Errorf("exit %d, want %d: %s", r.code, exitUsage, r.stderr)
			}
		})
	}
}

func TestUpBadInput(t *testing.T) {
	cli := enginetest.Connect(t)
	envTestdata := filepath.Join("..", "..", "harness", "env", "testdata")
	tests := []struct {
		file    string
		want    []string
		created bool // the run made resources before it failed (else it failed loading)
	}{
		{file: filepath.Join(envTestdata, "malformed.yaml"), want: []string{"malformed.yaml:4:"}},
		{file: filepath.Join(envTestdata, "unknown-dep.yaml"), want: []string{"unknown-dep.yaml:4:", "services.app.depends_on", "ghost"}},
		{file: filepath.Join(envTestdata, "missing-context.yaml"), want: []string{"missing-context.yaml:3:", "services.app.build"}},
		{file: filepath.Join(envTestdata, "privileged.yaml"), want: []string{"privileged.yaml:4:", "services.app.privileged"}},
		{file: filepath.Join("testdata", "does-not-exist.yaml"), want: []string{"does-not-exist.yaml", "does not exist"}},
		// A start that fails after creating the run's network and
		// containers: the same checks see them made and see them gone.
		{file: filepath.Join(envTestdata, "crashing.yaml"), want: []string{"app", "exited"}, created: true},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			runID := runs.NewID()
			since := time.Now()
			r := rehearse(t, "up", "-f", tt.file, "--run-id", runID)
			if r.code != exitFailure {
				t.Errorf("exit %d, want %d", r.code, exitFailure)
			}
			msg := strings.TrimSpace(r.stderr)
			if first, _, _ := strings.Cut(msg, "\n"); !tt.created && first != msg {
				t.Errorf("want one line of error, got:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not name %q", msg, w)
				}
			}
			// Nothing is left behind, and a failure while loading never
			// reached the engine at all: the engine's own event log says
			// what was made for this run, so the check cannot pass for
			// lack of anything to look at.
			made := runEvents(t, cli, runID, since)
			switch {
			case tt.created && len(made) == 0:
				t.Errorf("the engine saw nothing made for run %s: the start should have created its resources", runID)
			case !tt.created && len(made) > 0:
				t.Errorf("a load-time failure reached the engine: %v", made)
			}
			enginetest.AssertGone(t, cli, runID, 0)
		})
	}
}

// runEvents lists the engine's events since a time for one run's
// resources ("network create", "container destroy", ...): those whose name
// or labels carry the run id.
func runEvents(t *testing.T, cli *client.Client, runID string, since time.Time) []string {
	t.Helper()
	stamp := func(at time.Time) string { return fmt.Sprintf("%d.%09d", at.Unix(), at.Nanosecond()) }
	res := cli.Events(context.Background(), client.EventsListOptions{Since: stamp(since), Until: stamp(time.Now())})
	var out []string
	for {
		select {
		case m := <-res.Messages:
			mine := strings.Contains(m.Actor.ID, runID)
			for _, v := range m.Actor.Attributes {
				mine = mine || strings.Contains(v, runID)
			}
			if mine {
				out = append(out, string(m.Type)+" "+string(m.Action))
			}
		case err := <-res.Err:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("engine events: %v", err)
			}
			return out
		}
	}
}

func TestUpJSONGCAndDown(t *testing.T) {
	cli := enginetest.Connect(t)
	runID := runs.NewID()
	t.Cleanup(func() { rehearse(t, "down", "--run-id", runID) })
	r := rehearse(t, "up", "-f", filepath.Join("testdata", "quick.yaml"), "--run-id", runID, "--format", "json")
	if r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stderr)
	}
	var out struct {
		Run      string `json:"run"`
		Services map[string]struct {
			Container string            `json:"container"`
			Ports     map[string]string `json:"ports"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("up --format json: %v\n%s", err, r.stdout)
	}
	if out.Run != runID || len(out.Services) != 2 {
		t.Errorf("up json: %+v", out)
	}
	web := out.Services["web"]
	if len(web.Container) != 64 || !strings.HasPrefix(web.Ports["80/tcp"], "127.0.0.1:") {
		t.Errorf("web: %+v", web)
	}
	if w := out.Services["worker"]; w.Container == "" || len(w.Ports) != 0 {
		t.Errorf("worker: %+v", w)
	}

	// up exited, so the owner is gone, but the run was kept on purpose.
	if r := rehearse(t, "gc"); r.code != 0 || strings.Contains(r.stdout, runID) {
		t.Errorf("gc removed a run left up by 'up': %+v", r)
	}
	if c, _, _ := enginetest.Resources(t, cli, runID); c != 3 {
		t.Errorf("%d containers after gc, want web, worker and the port gateway", c)
	}
	if r := rehearse(t, "down", "--run-id", runID); r.code != 0 {
		t.Fatalf("down: %+v", r)
	}
	enginetest.AssertGone(t, cli, runID, 0)
}

func TestUpInterrupted(t *testing.T) {
	tests := []struct {
		sig    syscall.Signal
		within time.Duration // how long the leftovers may take to go
	}{
		{syscall.SIGINT, 0},
		{syscall.SIGTERM, 0},
		{syscall.SIGKILL, 15 * time.Second}, // the watchdog's job
	}
	for _, tt := range tests {
		t.Run(tt.sig.String(), func(t *testing.T) {
			cli := enginetest.Connect(t)
			runID := runs.NewID()
			cmd := exec.Command(bin, "up", "-f", filepath.Join("testdata", "slow.yaml"), "--run-id", runID)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			enginetest.WaitForContainer(t, cli, runID, time.Minute)
			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if err == nil {
				t.Fatalf("up exited 0 after %s", tt.sig)
			}
			if tt.sig != syscall.SIGKILL && !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("stderr does not say it was interrupted:\n%s", stderr.String())
			}
			enginetest.AssertGone(t, cli, runID, tt.within)
		})
	}
}

func TestImages(t *testing.T) {
	enginetest.Connect(t)
	r := rehearse(t, "images", "-f", filepath.Join("testdata", "quick.yaml"))
	if r.code != 0 {
		t.Fatalf("images: %+v", r)
	}
	for _, want := range []string{"debian:bookworm-slim", "rehearse/gateway:1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("images output does not list %s:\n%s", want, r.stdout)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	enginetest.Connect(t)
	testdata := filepath.Join("..", "..", "scenarios", "testdata")
	if r := rehearse(t, "run", filepath.Join(testdata, "good")); r.code != exitOK {
		t.Errorf("passing features: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Setenv("CI", "true") // a failing run cleans up even with --keep-on-failure
	r := rehearse(t, "run", "--keep-on-failure", filepath.Join(testdata, "keep"))
	if r.code != exitFailure || !strings.Contains(r.stderr, "keep/failing.feature:6:") {
		t.Errorf("failing feature: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := rehearse(t, "run", "--format", "html", filepath.Join(testdata, "good")); r.code != exitUsage {
		t.Errorf("bad format: exit %d", r.code)
	}
	if r := rehearse(t, "steps"); r.code != 0 || !strings.Contains(r.stdout, `Given the environment "PATH"`) {
		t.Errorf("steps: %+v", r)
	}
}

var update = flag.Bool("update", false, "rewrite golden files")

// The step catalogue is a public contract: a change to it shows here.
func TestStepsGolden(t *testing.T) {
	r := rehearse(t, "steps")
	golden := filepath.Join("testdata", "steps.golden")
	if *update {
		os.WriteFile(golden, []byte(r.stdout), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if r.stdout != string(want) {
		t.Errorf("rehearse steps differs from %s (go test -run TestStepsGolden -update to accept):\n%s", golden, r.stdout)
	}
}

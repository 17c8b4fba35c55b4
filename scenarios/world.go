// Package scenarios is the Gherkin glue of rehearse: the per-scenario world
// and the step vocabulary. It is importable, so a team can add its own steps
// next to these (see Register and WorldFrom).
package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/harness/snapshot"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/internal/term"
)

// Config is shared by every scenario of one run. It holds settings and the
// list of failures; scenario state lives in each World.
type Config struct {
	// KeepOnFailure leaves a failed scenario's environment up (ignored when
	// the CI environment variable is set: CI always cleans up).
	KeepOnFailure bool
	// Live, when set, receives each scenario's progress as it happens (use
	// with concurrency 1). Otherwise progress is kept and shown on failure.
	Live io.Writer
	// OutDir, when set, receives each scenario's timeline.
	OutDir string
	// StartOptions are passed to every environment start.
	StartOptions []env.StartOption
	// Fresh ignores cached seeded states: every dataset is loaded from
	// scratch, and the state it makes replaces the cached one (see
	// snapshot.Seed, WithSeedFresh).
	Fresh bool
	// SeedOptions are passed to every dataset's load (snapshot.Seed),
	// after Fresh.
	SeedOptions []snapshot.SeedOption

	lines      locator
	formatOnce sync.Once
	formatName string
	mu         sync.Mutex
	failures   []Failure
}

// Failure is a failed scenario, located in its feature file.
type Failure struct {
	File     string
	Line     int // the failing step's line; an outline example's row (the scenario's when unknown)
	Scenario string
	Err      string
}

func (f Failure) String() string {
	return fmt.Sprintf("%s:%d: scenario %q: %s", f.File, f.Line, f.Scenario, f.Err)
}

// Failures lists the failed scenarios so far.
func (c *Config) Failures() []Failure {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Failure(nil), c.failures...)
}

func (c *Config) addFailure(f Failure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, f)
}

// World is one scenario's state: its environment, run id and timeline.
type World struct {
	Config   *Config
	Scenario *godog.Scenario
	Timeline *timeline.Timeline
	Env      *env.Environment
	RunID    string

	featureDir  string
	composeFile string
	log         io.Writer
	buf         *bytes.Buffer
	failedStep  *godog.Step
	last        *commandResult
	up          upgradeState
	start       time.Time // the scenario's start: outages are located from it
	probes      probeState
	faults      faultState
	snaps       snapshotState
}

type commandResult struct {
	cmd, service string
	res          env.ExecResult
}

type worldKey struct{}

// WorldFrom returns the scenario's world from a step's context.
func WorldFrom(ctx context.Context) *World {
	w, _ := ctx.Value(worldKey{}).(*World)
	return w
}

// Initializer returns the godog scenario initializer for a run.
func Initializer(cfg *Config) func(*godog.ScenarioContext) {
	return func(sc *godog.ScenarioContext) {
		sc.Before(func(ctx context.Context, s *godog.Scenario) (context.Context, error) {
			w := &World{Config: cfg, Scenario: s, Timeline: timeline.New(), RunID: runs.NewID(),
				featureDir: filepath.Dir(s.Uri), start: time.Now()}
			if cfg.Live != nil {
				w.log = &syncWriter{w: cfg.Live}
			} else {
				w.buf = &bytes.Buffer{}
				w.log = &syncWriter{w: w.buf}
			}
			return context.WithValue(ctx, worldKey{}, w), nil
		})
		sc.StepContext().After(func(ctx context.Context, st *godog.Step, status godog.StepResultStatus, err error) (context.Context, error) {
			if w := WorldFrom(ctx); w != nil {
				if err != nil && w.failedStep == nil {
					w.failedStep = st
				}
			}
			return ctx, nil // the step's own error stands; returning it would double it
		})
		sc.After(func(ctx context.Context, s *godog.Scenario, err error) (context.Context, error) {
			w := WorldFrom(ctx)
			if w == nil {
				return ctx, nil
			}
			return ctx, w.finish(ctx, err)
		})
		for _, st := range Steps {
			sc.Step(st.Pattern, st.Func)
		}
	}
}

// finish tears the scenario down (or keeps it), records a failure and
// returns what should be added to the failing step's report: the tail of
// each container's log, and how to reach a kept environment.
func (w *World) finish(ctx context.Context, scenarioErr error) error {
	ctx = context.WithoutCancel(ctx)
	failed := scenarioErr != nil && !errors.Is(scenarioErr, godog.ErrSkip)
	// Probes stop and faults heal first: before the environment goes down
	// or is kept, whatever ended the scenario (a failure, a panic, an
	// interrupt), and before the scenario's output is read.
	healErr := w.endProbesAndFaults(ctx)
	// The data prints' private hashes go next, also before the environment
	// goes down or is kept (a failure is only said: the scenario stands).
	w.forgetPrints(ctx)
	var report strings.Builder
	if failed {
		msg := scenarioErr.Error()
		if errors.Is(scenarioErr, godog.ErrUndefined) {
			msg = "undefined step (rehearse steps lists them all)"
		}
		w.Config.addFailure(Failure{File: w.Scenario.Uri, Line: w.Config.lines.locate(w.Scenario, w.failedStep), Scenario: w.Scenario.Name, Err: firstLine(msg)})
		if w.Env != nil {
			w.writeLogTails(ctx, &report)
		}
		if w.buf != nil && w.buf.Len() > 0 {
			fmt.Fprintf(&report, "\n--- scenario output ---\n%s", term.Tail(w.buf.String(), 30))
		}
	}
	if healErr != nil {
		// Faults not healed, and faults armed for a step that never ran.
		fmt.Fprintf(&report, "\n--- faults ---\n%v", healErr)
		if !failed {
			failed = true
			w.Config.addFailure(Failure{File: w.Scenario.Uri, Line: w.Config.lines.locate(w.Scenario, nil), Scenario: w.Scenario.Name, Err: "faults: " + firstLine(healErr.Error())})
		}
	}
	var err error
	if w.Env != nil {
		keep := failed && w.Config.KeepOnFailure && os.Getenv("CI") == ""
		action := "down"
		if keep {
			action = "keep"
		}
		span := w.Timeline.Begin(timeline.KindEnvironment, "environment", action)
		if keep {
			err = w.Env.Keep(ctx)
			if err == nil {
				report.WriteString("\n" + w.reachInfo())
			}
		} else {
			err = w.Env.Down(ctx)
		}
		span.End(err)
	}
	if w.up.pkg != nil {
		w.up.pkg.Close()
	}
	w.writeTimeline()
	if err != nil {
		return err
	}
	if report.Len() > 0 {
		return errors.New(strings.TrimLeft(report.String(), "\n"))
	}
	return nil
}

func (w *World) writeLogTails(ctx context.Context, b *strings.Builder) {
	for _, s := range w.Env.Services() {
		logs, err := s.Logs(ctx, 15)
		if err != nil {
			logs = err.Error()
		}
		fmt.Fprintf(b, "\n--- %s: last log lines ---\n%s", s.Name, strings.TrimRight(logs, "\n"))
	}
}

// reachInfo says how to reach each service of a kept environment and how to
// remove it.
func (w *World) reachInfo() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- environment kept: run %s ---\n", w.Env.RunID)
	for _, s := range w.Env.Services() {
		fmt.Fprintf(&b, "%s:\n  docker exec -it %s bash\n", s.Name, s.ContainerName)
		for port, ep := range s.Ports {
			fmt.Fprintf(&b, "  %s -> %s\n", port, ep)
		}
		if _, ok := s.Ports["5432/tcp"]; ok {
			if dsn, err := dataset.DSN(w.Env, s.Name, ""); err == nil {
				fmt.Fprintf(&b, "  psql %q\n", dsn)
			}
		}
	}
	fmt.Fprintf(&b, "remove it: rehearse down --run-id %s", w.Env.RunID)
	return b.String()
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (w *World) writeTimeline() {
	if w.Config.OutDir == "" {
		return
	}
	dir := filepath.Join(w.Config.OutDir, "timelines")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	line := w.Config.lines.locate(w.Scenario, nil)
	name := fmt.Sprintf("%s-%d-%s.txt", strings.TrimSuffix(filepath.Base(w.Scenario.Uri), ".feature"), line,
		strings.Trim(unsafeName.ReplaceAllString(w.Scenario.Name, "-"), "-"))
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "# %s:%d %s (run %s)\n", w.Scenario.Uri, line, w.Scenario.Name, w.RunID)
	w.Timeline.WriteText(f)
}

// resolve finds a path relative to the feature file, then to the working
// directory.
func (w *World) resolve(path string) (string, error) {
	if filepath.IsAbs(path) {
		return path, nil
	}
	for _, base := range []string{w.featureDir, "."} {
		p := filepath.Join(base, path)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found relative to the feature file (%s) or the working directory", path, w.featureDir)
}

// environment returns the running environment or a clear error.
func (w *World) environment() (*env.Environment, error) {
	if w.Env == nil {
		return nil, errors.New(`no environment: start one first with Given the environment "PATH"`)
	}
	return w.Env, nil
}

func (w *World) service(name string) (*env.Service, error) {
	e, err := w.environment()
	if err != nil {
		return nil, err
	}
	s := e.Service(name)
	if s == nil {
		var names []string
		for _, s := range e.Services() {
			names = append(names, s.Name)
		}
		return nil, fmt.Errorf("no service %q in %s (services: %s)", name, w.composeFile, strings.Join(names, ", "))
	}
	return s, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// endProbesAndFaults stops every probe, then heals every fault; a panic
// here is an error, so that the environment still goes down.
func (w *World) endProbesAndFaults(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Join(err, fmt.Errorf("panic: %v", r))
		}
	}()
	w.stopProbes()
	return w.healFaults(ctx)
}

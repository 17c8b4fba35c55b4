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
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/report"
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
	// OutDir, when set, receives each scenario's timeline, as text and as
	// its record (OUT/timelines/NAME.txt and NAME.json, NAME from
	// report.RecordName).
	OutDir string
	// Command is how a failed scenario's reproduce command calls rehearse,
	// such as "bin/rehearse" or "go run ./cmd/rehearse"; default "rehearse".
	Command string
	// FailureBlocks says where Format's formatter prints each failed
	// scenario's failure block; default under the scenario.
	FailureBlocks FailureBlocks
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
	sel        *Selection // what Run selected: feature paths as given
	shard      string     // "I/N" when Run runs a shard

	mu          sync.Mutex
	failures    []Failure
	blocks      map[string]string // pickle id -> failure block, until printed
	blockOrder  []string
	records     map[string]report.Scenario // pickle id -> record
	recordOrder []string
	recordErrs  []error // writing records or timelines of OutDir
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

// Records returns the record of every scenario that has finished so far,
// in the order they finished.
func (c *Config) Records() []report.Scenario {
	c.mu.Lock()
	defer c.mu.Unlock()
	recs := make([]report.Scenario, 0, len(c.recordOrder))
	for _, id := range c.recordOrder {
		recs = append(recs, c.records[id])
	}
	return recs
}

func (c *Config) addRecord(pickleID string, rec report.Scenario) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.records == nil {
		c.records = map[string]report.Scenario{}
	}
	if _, ok := c.records[pickleID]; !ok {
		c.recordOrder = append(c.recordOrder, pickleID)
	}
	c.records[pickleID] = rec
}

// addRecordErr keeps an error writing a record or timeline: the run's
// reports miss that scenario, so the run fails (Summary.ReportErr).
func (c *Config) addRecordErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recordErrs = append(c.recordErrs, err)
}

// recordErr is every error addRecordErr kept, joined.
func (c *Config) recordErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.recordErrs...)
}

func (c *Config) setBlock(pickleID, block string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.blocks == nil {
		c.blocks = map[string]string{}
	}
	c.blocks[pickleID] = block
	c.blockOrder = append(c.blockOrder, pickleID)
}

// takeBlock returns a pickle's failure block once.
func (c *Config) takeBlock(pickleID string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[pickleID]
	delete(c.blocks, pickleID)
	return b, ok
}

// takeBlocks returns the failure blocks not printed yet, in the order the
// scenarios failed.
func (c *Config) takeBlocks() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var bs []string
	for _, id := range c.blockOrder {
		if b, ok := c.blocks[id]; ok {
			bs = append(bs, b)
			delete(c.blocks, id)
		}
	}
	c.blockOrder = nil
	return bs
}

// realPath is a godog Uri as the user gave the feature file.
func (c *Config) realPath(uri string) string {
	if c.sel != nil {
		return c.sel.RealPath(uri)
	}
	return uri
}

// World is one scenario's state: its environment, run id and timeline.
type World struct {
	Config   *Config
	Scenario *godog.Scenario
	Timeline *timeline.Timeline
	Env      *env.Environment
	RunID    string

	feature     string // the feature file as given
	featureDir  string
	composeFile string
	log         io.Writer
	buf         *bytes.Buffer // everything written to log, for a failure's output tail
	failedStep  *godog.Step
	end         time.Time
	steps       []report.Step  // the record's steps, as godog's step hooks report them
	stepIndex   map[string]int // pickle step id -> index in steps
	stepsDone   int
	finished    bool     // the After hook has run
	failure     *failure // what a failed scenario left behind
	last        *commandResult
	up          upgradeState
	start       time.Time // the scenario's start: outages are located from it
	probes      probeState
	faults      faultState
	snaps       snapshotState
}

// failure is what a failed scenario leaves for its record and its failure
// block, collected before its environment goes down.
type failure struct {
	err    string // the failing step's whole error (and faults not healed)
	line   int    // the failing step's line; an outline's row
	logs   []report.LogTail
	output string
	kept   string
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
			feature := cfg.realPath(s.Uri)
			w := &World{Config: cfg, Scenario: s, Timeline: timeline.New(), RunID: runs.NewID(),
				feature: feature, featureDir: filepath.Dir(filepath.FromSlash(feature)), start: time.Now(),
				buf: &bytes.Buffer{}}
			if cfg.Live != nil {
				w.log = &syncWriter{w: io.MultiWriter(cfg.Live, w.buf)}
			} else {
				w.log = &syncWriter{w: w.buf}
			}
			w.initSteps()
			if ctx.Err() != nil {
				// Interrupted: godog would go on starting every scenario
				// left. ErrSkip from this hook makes it skip the steps;
				// without a World in the context no other hook acts.
				w.end = w.start
				rec := w.record()
				rec.Status, rec.Error = report.StatusSkipped, errInterrupted
				cfg.keepNotRun(s.Id, rec)
				return ctx, godog.ErrSkip
			}
			return context.WithValue(ctx, worldKey{}, w), nil
		})
		sc.StepContext().Before(func(ctx context.Context, st *godog.Step) (context.Context, error) {
			if w := WorldFrom(ctx); w != nil {
				w.stepStarted(st)
			}
			return ctx, nil
		})
		sc.StepContext().After(func(ctx context.Context, st *godog.Step, status godog.StepResultStatus, err error) (context.Context, error) {
			if w := WorldFrom(ctx); w != nil {
				if err != nil && w.failedStep == nil {
					w.failedStep = st
				}
				w.stepEnded(st, status, err)
			}
			return ctx, nil // the step's own error stands; returning it would double it
		})
		sc.After(func(ctx context.Context, s *godog.Scenario, err error) (context.Context, error) {
			w := WorldFrom(ctx)
			if w == nil {
				return ctx, nil
			}
			return w.finish(ctx, err)
		})
		for _, st := range Steps {
			sc.Step(st.Pattern, st.Func)
		}
	}
}

// finish tears the scenario down (or keeps it) and records how it ended.
//
// A failed scenario's record gets its error, each container's log tail
// (read before the environment goes down), its output and the command
// that reproduces it. The same facts as a failure block (error first,
// reproduce command last) go to Config.Format's formatter, which prints
// them under the scenario, and as an attachment of the failing step to
// godog's cucumber report. The failing step's own error stays what godog
// reports for it: godog joins an After hook's error before the step's
// ("after scenario hook failed: BLOCK, step error: ERR"), which would put
// the error after the block. finish returns an error when the scenario
// fails here and not at a step (faults not healed, an environment that
// would not go down); then that error is the block.
func (w *World) finish(hookCtx context.Context, scenarioErr error) (context.Context, error) {
	ctx := context.WithoutCancel(hookCtx)
	failed := scenarioErr != nil && !errors.Is(scenarioErr, godog.ErrSkip)
	// Probes stop and faults heal first: before the environment goes down
	// or is kept, whatever ended the scenario (a failure, a panic, an
	// interrupt), and before the scenario's output is read.
	healErr := w.endProbesAndFaults(ctx)
	// The data prints' private hashes go next, also before the environment
	// goes down or is kept (a failure is only said: the scenario stands).
	w.forgetPrints(ctx)
	var f *failure
	if failed || healErr != nil {
		f = &failure{line: w.Config.lines.locate(w.Scenario, w.failedStep)}
		var errs []string
		if failed {
			msg := scenarioErr.Error()
			summary := firstLine(msg)
			if errors.Is(scenarioErr, godog.ErrUndefined) {
				summary = "undefined step (rehearse steps lists them all)"
			}
			w.Config.addFailure(Failure{File: w.feature, Line: f.line, Scenario: w.Scenario.Name, Err: summary})
			errs = append(errs, msg)
		}
		if healErr != nil {
			// Faults not healed, and faults armed for a step that never ran.
			errs = append(errs, "faults: "+healErr.Error())
			if !failed {
				f.line = w.Config.lines.locate(w.Scenario, nil)
				w.Config.addFailure(Failure{File: w.feature, Line: f.line, Scenario: w.Scenario.Name, Err: "faults: " + firstLine(healErr.Error())})
			}
		}
		f.err = strings.Join(errs, "\n")
		if w.Env != nil {
			f.logs = w.logTails(ctx)
		}
		f.output = w.outputTail()
	}
	var downErr error
	if w.Env != nil {
		keep := f != nil && w.Config.KeepOnFailure && os.Getenv("CI") == ""
		action := "down"
		if keep {
			action = "keep"
		}
		span := w.Timeline.Begin(timeline.KindEnvironment, "environment", action)
		if keep {
			downErr = w.Env.Keep(ctx)
			if downErr == nil {
				f.kept = w.reachInfo()
			}
		} else {
			downErr = w.Env.Down(ctx)
		}
		span.End(downErr)
	}
	if w.up.pkg != nil {
		w.up.pkg.Close()
	}
	w.writeTimeline()
	if downErr != nil && f == nil {
		f = &failure{err: "environment: " + downErr.Error(), line: w.Config.lines.locate(w.Scenario, nil)}
		w.Config.addFailure(Failure{File: w.feature, Line: f.line, Scenario: w.Scenario.Name, Err: firstLine(f.err)})
	}
	// A scenario whose steps passed but that fails here fails at its last
	// step, as godog reports it.
	hookFailed := f != nil && !failed
	if hookFailed && len(w.steps) > 0 {
		last := &w.steps[len(w.steps)-1]
		last.Status, last.Error = report.StatusFailed, f.err
	}
	w.failure, w.end, w.finished = f, time.Now(), true
	rec := w.writeRecord()
	if f == nil {
		return hookCtx, nil
	}
	block := failureBlock(&rec, w.Config.Live == nil)
	hookCtx = godog.Attach(hookCtx, godog.Attachment{Body: []byte(block), FileName: "failure.txt", MediaType: "text/plain"})
	if hookFailed {
		return hookCtx, errors.New(block)
	}
	w.Config.setBlock(w.Scenario.Id, block)
	return hookCtx, downErr
}

// logTails reads the end of each container's log.
func (w *World) logTails(ctx context.Context) []report.LogTail {
	var tails []report.LogTail
	for _, s := range w.Env.Services() {
		logs, err := s.Logs(ctx, logTailLines)
		if err != nil {
			logs = err.Error()
		}
		tails = append(tails, report.LogTail{Service: s.Name, Text: strings.TrimRight(logs, "\n")})
	}
	return tails
}

// outputTail is the end of the scenario's own output.
func (w *World) outputTail() string {
	if w.buf.Len() == 0 {
		return ""
	}
	return term.Tail(w.buf.String(), outputTailLines)
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
	fmt.Fprintf(&b, "remove it: %s down --run-id %s", w.Config.command(), w.Env.RunID)
	return b.String()
}

// writeTimeline writes the scenario's timeline as text beside its record
// (OUT/timelines/<name>.txt).
func (w *World) writeTimeline() {
	c := w.Config
	if c.OutDir == "" {
		return
	}
	line := c.lines.locate(w.Scenario, nil)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s:%d %s (run %s)\n", w.feature, line, w.Scenario.Name, w.RunID)
	w.Timeline.WriteText(&b)
	err := os.MkdirAll(filepath.Join(c.OutDir, report.TimelinesDir), 0o755)
	if err == nil {
		err = report.WriteFileAtomic(c.recordPath(w.feature, line, w.Scenario.Name, ".txt"), b.Bytes(), 0o644)
	}
	if err != nil {
		fmt.Fprintf(w.log, "timeline: %v\n", err)
		c.addRecordErr(err)
	}
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

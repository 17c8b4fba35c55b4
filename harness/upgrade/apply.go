package upgrade

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/timeline"
)

// Workdir is where a package lands in each target service.
const Workdir = "/tmp/rehearse-upgrade"

// KindStep is the timeline kind of upgrade steps; their output lines are
// KindStepOutput events.
const (
	KindStep       = "upgrade-step"
	KindStepOutput = "upgrade-output"
)

// PhaseRollback is the "phase" field of a rollback step's KindStep span and
// of its KindStepOutput lines; the upgrade's own steps have no phase field.
const PhaseRollback = "rollback"

// StepMarker starts a step in an entry script's output: "::step NAME".
const StepMarker = "::step "

// StepResult is one applied step.
type StepResult struct {
	Name     string
	Service  string
	User     string
	Start    time.Time
	End      time.Time
	ExitCode int
	TimedOut bool
	Output   string // stdout and stderr, interleaved as they came
	Cleanup  bool   // a cleanup step
	Rollback bool   // a rollback step
}

// Failed reports whether the step failed.
func (s StepResult) Failed() bool { return s.ExitCode != 0 || s.TimedOut }

// Outcome is the result of applying a package.
type Outcome struct {
	Steps      []StepResult
	FailedStep string // the first failed step; "" when every step passed
}

// Step returns the named step's result.
func (o *Outcome) Step(name string) (StepResult, bool) {
	for _, s := range o.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return StepResult{}, false
}

// Hooks are called at each step's start and end (faults hang off them).
type Hooks struct {
	StepStart func(ctx context.Context, step StepResult)
	StepEnd   func(ctx context.Context, step StepResult)
}

// ApplyOption configures Apply and Rollback (WithEntry is for Apply only).
type ApplyOption func(*applyOptions) error

type applyOptions struct {
	service       string
	user          string
	entry         string
	timeout       time.Duration
	timeline      *timeline.Timeline
	hooks         Hooks
	allowUnsigned bool
}

// WithService is the service for steps that name none. Default: the
// manifest's service; required for a package without a manifest.
func WithService(name string) ApplyOption {
	return func(o *applyOptions) error { o.service = name; return nil }
}

// WithUser is the user for steps that name none. Default: the manifest's
// user, else the image's.
func WithUser(user string) ApplyOption {
	return func(o *applyOptions) error { o.user = user; return nil }
}

// WithEntry is the entry script of a package without a manifest; it marks
// its steps with "::step NAME" lines. Default: upgrade.sh.
func WithEntry(script string) ApplyOption {
	return func(o *applyOptions) error { o.entry = script; return nil }
}

// WithStepTimeout bounds each step that names no timeout of its own.
// Default: DefaultStepTimeout.
func WithStepTimeout(d time.Duration) ApplyOption {
	return func(o *applyOptions) error {
		if d <= 0 {
			return fmt.Errorf("step timeout %s: must be positive", d)
		}
		o.timeout = d
		return nil
	}
}

// WithTimeline is where steps, their output and warnings are recorded.
// Default: a fresh timeline of Apply's own.
func WithTimeline(tl *timeline.Timeline) ApplyOption {
	return func(o *applyOptions) error { o.timeline = tl; return nil }
}

// WithHooks are called at each step's start and end. Default: none.
func WithHooks(h Hooks) ApplyOption {
	return func(o *applyOptions) error { o.hooks = h; return nil }
}

// AllowUnsigned applies a package whose signature was not found trusted
// (never verified, or another verdict), marking a timeline.KindWarning
// event. Default: such a package is refused with ErrUntrusted.
func AllowUnsigned() ApplyOption {
	return func(o *applyOptions) error { o.allowUnsigned = true; return nil }
}

// ErrNoSteps means the package has neither a manifest nor the entry script.
var ErrNoSteps = errors.New("package has no upgrade.yaml and no entry script")

// ErrUntrusted is wrapped by Apply's refusal of a package whose signature
// was not found trusted by Package.Verify.
var ErrUntrusted = errors.New("package signature not trusted")

// runKind is what a run of steps does: Apply or Rollback. It names the
// run in errors and in the warning about an unsigned package.
type runKind struct {
	verb     string // "apply"
	unsigned string // the timeline warning when the package is allowed unsigned
}

var (
	applying    = runKind{"apply", "applying a package without a trusted signature"}
	rollingBack = runKind{"rollback", "rolling back with a package without a trusted signature"}
)

// prepare reads the options and applies the signature gate, the same for
// Apply and Rollback: nothing has reached the environment yet.
func prepare(kind runKind, p *Package, opts []ApplyOption) (applyOptions, error) {
	o := applyOptions{timeout: DefaultStepTimeout}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, fmt.Errorf("%s %s: %w", kind.verb, p.Source, err)
		}
	}
	if o.timeline == nil {
		o.timeline = timeline.New()
	}
	return o, checkSigned(kind, p, o)
}

// checkSigned refuses a package without a trusted signature, or, when
// unsigned packages are allowed, marks a warning on the timeline.
func checkSigned(kind runKind, p *Package, o applyOptions) error {
	err := p.CheckTrusted()
	if err == nil {
		return nil
	}
	if !o.allowUnsigned {
		return fmt.Errorf("%s %s: %w (verify it with Package.Verify, or apply it with AllowUnsigned)", kind.verb, p.Source, err)
	}
	o.timeline.Mark(timeline.KindWarning, "upgrade", kind.unsigned,
		map[string]string{"package": p.Source, "why": err.Error()})
	return nil
}

// CheckTrusted says why the package may not be applied as signed (wrapping
// ErrUntrusted), or nil when Verify found its signature trusted.
func (p *Package) CheckTrusted() error {
	res, verified := p.Signature()
	switch {
	case verified && res.Verdict == Trusted:
		return nil
	case verified:
		return fmt.Errorf("%w: its signature is %s: %s", ErrUntrusted, res.Verdict, res.Reason)
	}
	return fmt.Errorf("%w: its signature was never verified", ErrUntrusted)
}

// Apply copies the package into each target service and runs its steps in
// order as their users, stopping at the first failure; cleanup steps run
// afterwards in every case. A package whose signature Package.Verify did
// not find trusted is refused (ErrUntrusted) before anything is copied,
// unless o.allowUnsigned. A step that fails is an Outcome, not an error:
// errors are for what kept the steps from running.
func Apply(ctx context.Context, e *env.Environment, p *Package, opts ...ApplyOption) (*Outcome, error) {
	o, err := prepare(applying, p, opts)
	if err != nil {
		return nil, err
	}
	out := &Outcome{}
	m := p.manifest
	if m == nil {
		return out, applyEntry(ctx, e, p, o, out)
	}
	r := &runner{ctx: ctx, e: e, p: p, o: o, out: out, fresh: true, copied: map[string]bool{}}
	err = r.run(m.Steps, phaseUpgrade)
	return out, errors.Join(err, r.run(m.Cleanup, phaseCleanup))
}

// phase is the part of a package a step belongs to.
type phase int

const (
	phaseUpgrade phase = iota
	phaseCleanup
	phaseRollback
)

// runner runs a list of manifest steps for Apply or Rollback, recording
// their results in out.
type runner struct {
	ctx context.Context
	e   *env.Environment
	p   *Package
	o   applyOptions
	out *Outcome
	// fresh: copy the package into each service anew (Apply); else only
	// into a service that does not hold it yet (Rollback).
	fresh  bool
	copied map[string]bool // the services this run copied the package into
}

// run runs the steps in order. Upgrade and rollback steps stop at the
// first failure, which becomes out.FailedStep; cleanup steps all run.
func (r *runner) run(steps []StepSpec, ph phase) error {
	var errs []error
	for _, s := range steps {
		err := r.step(s, ph)
		if ph == phaseCleanup {
			errs = append(errs, err)
			continue
		}
		if err != nil || r.out.FailedStep != "" {
			return err
		}
	}
	return errors.Join(errs...)
}

func (r *runner) step(spec StepSpec, ph phase) error {
	if spec.Service == "" {
		spec.Service = r.o.service
	}
	if spec.User == "" {
		spec.User = r.o.user
	}
	svc := r.e.Service(spec.Service)
	if svc == nil {
		return fmt.Errorf("step %s: no service %q", spec.Name, spec.Service)
	}
	if !r.copied[spec.Service] {
		if r.fresh || !holds(svc, r.p) {
			// A service that is down gets no copy; its step fails below.
			if err := install(r.ctx, svc, r.p); err != nil && !errors.Is(err, env.ErrNotRunning) {
				return err
			}
		}
		r.copied[spec.Service] = true
	}
	res, err := runStep(r.ctx, svc, spec, r.o, ph)
	r.out.Steps = append(r.out.Steps, res)
	if err == nil && res.Failed() && r.out.FailedStep == "" && ph != phaseCleanup {
		r.out.FailedStep = res.Name
	}
	return err
}

// installed records, for each container, the package this process last
// copied to its Workdir; a weak pointer, so it keeps no package alive.
var installed struct {
	mu  sync.Mutex
	pkg map[string]weak.Pointer[Package]
}

// holds reports whether p is the package last copied into the service.
func holds(svc *env.Service, p *Package) bool {
	installed.mu.Lock()
	defer installed.mu.Unlock()
	w, ok := installed.pkg[svc.ContainerID]
	return ok && w == weak.Make(p)
}

// noteInstalled records p as the package in the service's Workdir; nil
// forgets what was there.
func noteInstalled(svc *env.Service, p *Package) {
	installed.mu.Lock()
	defer installed.mu.Unlock()
	if p == nil {
		delete(installed.pkg, svc.ContainerID)
		return
	}
	if installed.pkg == nil {
		installed.pkg = map[string]weak.Pointer[Package]{}
	}
	installed.pkg[svc.ContainerID] = weak.Make(p)
}

// install copies the package to Workdir in a service, replacing an earlier
// copy. A service that is not running gets no copy: the error wraps
// env.ErrNotRunning, and the step that needed it fails when it runs.
func install(ctx context.Context, svc *env.Service, p *Package) error {
	noteInstalled(svc, nil) // whatever happens next, the old copy may be gone
	if res, err := svc.Exec(ctx, []string{"rm", "-rf", Workdir}, env.AsUser("root")); err != nil {
		return fmt.Errorf("copy package to %s: clear %s: %w", svc.Name, Workdir, err)
	} else if res.ExitCode != 0 {
		return fmt.Errorf("copy package to %s: clear %s: exit %d: %s", svc.Name, Workdir, res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	if err := svc.CopyTree(ctx, p.dir, Workdir); err != nil {
		return fmt.Errorf("copy package to %s: %w", svc.Name, err)
	}
	noteInstalled(svc, p)
	return nil
}

// shellCommand runs cmd with coreutils' timeout, so a step that hangs is
// stopped inside the container (exit 124).
func shellCommand(cmd string, d time.Duration) []string {
	secs := fmt.Sprintf("%d", max(1, int(d.Seconds())))
	return []string{"timeout", "--kill-after=5", secs, "sh", "-c", cmd}
}

// stepRecord reports one step to the hooks and the timeline, the same way
// for manifest steps and for an entry script's marked steps.
type stepRecord struct {
	ctx  context.Context
	o    applyOptions
	res  StepResult
	span *timeline.Span
}

func beginStep(ctx context.Context, o applyOptions, res StepResult) *stepRecord {
	res.Start = time.Now()
	if o.hooks.StepStart != nil {
		o.hooks.StepStart(ctx, res)
	}
	span := o.timeline.Begin(KindStep, res.Service, res.Name).Set("user", res.User)
	for k, v := range phaseFields(res) {
		span.Set(k, v)
	}
	return &stepRecord{ctx: ctx, o: o, res: res, span: span}
}

// phaseFields are the timeline fields of a rollback step and its output
// lines (phase=rollback); nil for the upgrade's own steps.
func phaseFields(res StepResult) map[string]string {
	if res.Rollback {
		return map[string]string{"phase": PhaseRollback}
	}
	return nil
}

// end closes the step with its exit code and output; err is a failure to
// run it at all.
func (r *stepRecord) end(code int, output string, err error) StepResult {
	r.res.End, r.res.ExitCode, r.res.Output, r.res.TimedOut = time.Now(), code, output, code == 124
	r.span.Set("exit", code)
	var stepErr error
	if r.res.Failed() {
		stepErr = fmt.Errorf("exit %d", code)
	}
	r.span.End(errors.Join(err, stepErr))
	if r.o.hooks.StepEnd != nil {
		r.o.hooks.StepEnd(r.ctx, r.res)
	}
	return r.res
}

func runStep(ctx context.Context, svc *env.Service, spec StepSpec, o applyOptions, ph phase) (StepResult, error) {
	rec := beginStep(ctx, o, StepResult{Name: spec.Name, Service: svc.Name, User: spec.User, Cleanup: ph == phaseCleanup, Rollback: ph == phaseRollback})
	fields := phaseFields(rec.res)
	out := &lineWriter{emit: func(line string) { o.timeline.Mark(KindStepOutput, spec.Name, line, maps.Clone(fields)) }}
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = o.timeout
	}
	opts := []env.ExecOption{env.InDir(Workdir)}
	if spec.User != "" {
		opts = append(opts, env.AsUser(spec.User))
	}
	code, err := svc.ExecStream(ctx, shellCommand(spec.Command, timeout), out, out, opts...)
	out.Flush()
	if code == 124 {
		rec.span.Set("timeout", timeout)
	}
	if errors.Is(err, env.ErrNotRunning) {
		// The step's service is down (a fault killed it, or it died): the
		// step fails, as it would have in production, and the upgrade stops.
		fmt.Fprintf(out, "rehearse: step %s could not run: %s is not running (stopped, killed or paused)\n", spec.Name, svc.Name)
		out.Flush()
		return rec.end(code, out.String(), err), nil
	}
	res := rec.end(code, out.String(), err)
	if err != nil {
		return res, fmt.Errorf("step %s: %w", spec.Name, err)
	}
	return res, nil
}

// applyEntry runs an entry script whose output marks its steps with
// "::step NAME"; output before the first marker belongs to step "start".
func applyEntry(ctx context.Context, e *env.Environment, p *Package, o applyOptions, out *Outcome) error {
	entry := o.entry
	if entry == "" {
		entry = "upgrade.sh"
	}
	if !strings.HasPrefix(entry, "/") && !strings.HasPrefix(entry, "./") {
		entry = "./" + entry
	}
	svc := e.Service(o.service)
	if svc == nil {
		return fmt.Errorf("apply: no service %q", o.service)
	}
	if err := install(ctx, svc, p); err != nil {
		return err
	}
	var (
		mu      sync.Mutex
		current *stepRecord
		buf     bytes.Buffer
	)
	begin := func(name string) {
		current = beginStep(ctx, o, StepResult{Name: name, Service: svc.Name, User: o.user})
		buf.Reset()
	}
	end := func(code int) {
		out.Steps = append(out.Steps, current.end(code, buf.String(), nil))
	}
	w := &lineWriter{emit: func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if name, ok := strings.CutPrefix(line, StepMarker); ok {
			if current != nil {
				end(0)
			}
			begin(strings.TrimSpace(name))
			return
		}
		if current == nil {
			begin("start")
		}
		buf.WriteString(line + "\n")
		o.timeline.Mark(KindStepOutput, current.res.Name, line, nil)
	}}
	opts := []env.ExecOption{env.InDir(Workdir)}
	if o.user != "" {
		opts = append(opts, env.AsUser(o.user))
	}
	code, err := svc.ExecStream(ctx, shellCommand(entry, o.timeout), w, w, opts...)
	w.Flush()
	mu.Lock()
	defer mu.Unlock()
	if current == nil {
		begin("start")
	}
	end(code)
	if code != 0 {
		out.FailedStep = out.Steps[len(out.Steps)-1].Name
	}
	return err
}

// lineWriter calls emit for each complete line and keeps everything written.
type lineWriter struct {
	mu      sync.Mutex
	emit    func(string)
	partial []byte
	all     bytes.Buffer
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(b)
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.emit(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
}

// Flush emits a last line that had no newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.emit(string(w.partial))
		w.partial = nil
	}
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

var _ io.Writer = (*lineWriter)(nil)

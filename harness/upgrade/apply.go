package upgrade

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

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

// ApplyOptions says how to apply a package.
type ApplyOptions struct {
	Service  string // default target service
	User     string // default user
	Entry    string // entry script (packages without a manifest); default upgrade.sh
	Timeout  time.Duration
	Timeline *timeline.Timeline
	Hooks    Hooks
	// AllowUnsigned applies a package whose signature was not found
	// trusted (never verified, or another verdict), marking a
	// timeline.KindWarning event. Default false: such a package is refused
	// with ErrUntrusted.
	AllowUnsigned bool
}

// ErrNoSteps means the package has neither a manifest nor the entry script.
var ErrNoSteps = errors.New("package has no upgrade.yaml and no entry script")

// ErrUntrusted is wrapped by Apply's refusal of a package whose signature
// was not found trusted by Package.Verify.
var ErrUntrusted = errors.New("package signature not trusted")

// checkSigned refuses a package without a trusted signature, or, when
// unsigned packages are allowed, marks a warning on the timeline.
func checkSigned(p *Package, o ApplyOptions) error {
	res, verified := p.Signature()
	if verified && res.Verdict == Trusted {
		return nil
	}
	why := "its signature was never verified"
	if verified {
		why = fmt.Sprintf("its signature is %s: %s", res.Verdict, res.Reason)
	}
	if !o.AllowUnsigned {
		return fmt.Errorf("apply %s: %w: %s (verify it with Package.Verify, or set ApplyOptions.AllowUnsigned)", p.Source, ErrUntrusted, why)
	}
	o.Timeline.Mark(timeline.KindWarning, "upgrade", "applying a package without a trusted signature",
		map[string]string{"package": p.Source, "why": why})
	return nil
}

// Apply copies the package into each target service and runs its steps in
// order as their users, stopping at the first failure; cleanup steps run
// afterwards in every case. A package whose signature Package.Verify did
// not find trusted is refused (ErrUntrusted) before anything is copied,
// unless o.AllowUnsigned. A step that fails is an Outcome, not an error:
// errors are for what kept the steps from running.
func Apply(ctx context.Context, e *env.Environment, p *Package, o ApplyOptions) (*Outcome, error) {
	if o.Timeline == nil {
		o.Timeline = timeline.New()
	}
	if err := checkSigned(p, o); err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultStepTimeout
	}
	out := &Outcome{}
	m := p.manifest
	if m == nil {
		return out, applyEntry(ctx, e, p, o, out)
	}
	copied := map[string]bool{}
	run := func(spec StepSpec, cleanup bool) error {
		if spec.Service == "" {
			spec.Service = o.Service
		}
		if spec.User == "" {
			spec.User = o.User
		}
		svc := e.Service(spec.Service)
		if svc == nil {
			return fmt.Errorf("step %s: no service %q", spec.Name, spec.Service)
		}
		if !copied[spec.Service] {
			if err := install(ctx, svc, p); err != nil {
				return err
			}
			copied[spec.Service] = true
		}
		res, err := runStep(ctx, svc, spec, o, cleanup)
		out.Steps = append(out.Steps, res)
		if err == nil && res.Failed() && out.FailedStep == "" && !cleanup {
			out.FailedStep = res.Name
		}
		return err
	}
	var err error
	for _, s := range m.Steps {
		if err = run(s, false); err != nil || out.FailedStep != "" {
			break
		}
	}
	for _, s := range m.Cleanup {
		if cerr := run(s, true); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	return out, err
}

// install copies the package to Workdir in a service, replacing an earlier copy.
func install(ctx context.Context, svc *env.Service, p *Package) error {
	if res, err := svc.Exec(ctx, []string{"rm", "-rf", Workdir}, env.AsUser("root")); err != nil || res.ExitCode != 0 {
		return fmt.Errorf("copy package to %s: clear %s: %v %s", svc.Name, Workdir, err, res.Stderr)
	}
	if err := svc.CopyTree(ctx, p.dir, Workdir); err != nil {
		return fmt.Errorf("copy package to %s: %w", svc.Name, err)
	}
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
	o    ApplyOptions
	res  StepResult
	span *timeline.Span
}

func beginStep(ctx context.Context, o ApplyOptions, res StepResult) *stepRecord {
	res.Start = time.Now()
	if o.Hooks.StepStart != nil {
		o.Hooks.StepStart(ctx, res)
	}
	return &stepRecord{ctx: ctx, o: o, res: res, span: o.Timeline.Begin(KindStep, res.Service, res.Name).Set("user", res.User)}
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
	if r.o.Hooks.StepEnd != nil {
		r.o.Hooks.StepEnd(r.ctx, r.res)
	}
	return r.res
}

func runStep(ctx context.Context, svc *env.Service, spec StepSpec, o ApplyOptions, cleanup bool) (StepResult, error) {
	rec := beginStep(ctx, o, StepResult{Name: spec.Name, Service: svc.Name, User: spec.User, Cleanup: cleanup})
	out := &lineWriter{emit: func(line string) { o.Timeline.Mark(KindStepOutput, spec.Name, line, nil) }}
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = o.Timeout
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
	res := rec.end(code, out.String(), err)
	if err != nil {
		return res, fmt.Errorf("step %s: %w", spec.Name, err)
	}
	return res, nil
}

// applyEntry runs an entry script whose output marks its steps with
// "::step NAME"; output before the first marker belongs to step "start".
func applyEntry(ctx context.Context, e *env.Environment, p *Package, o ApplyOptions, out *Outcome) error {
	entry := o.Entry
	if entry == "" {
		entry = "upgrade.sh"
	}
	if !strings.HasPrefix(entry, "/") && !strings.HasPrefix(entry, "./") {
		entry = "./" + entry
	}
	svc := e.Service(o.Service)
	if svc == nil {
		return fmt.Errorf("apply: no service %q", o.Service)
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
		current = beginStep(ctx, o, StepResult{Name: name, Service: svc.Name, User: o.User})
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
		o.Timeline.Mark(KindStepOutput, current.res.Name, line, nil)
	}}
	opts := []env.ExecOption{env.InDir(Workdir)}
	if o.User != "" {
		opts = append(opts, env.AsUser(o.User))
	}
	code, err := svc.ExecStream(ctx, shellCommand(entry, o.Timeout), w, w, opts...)
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

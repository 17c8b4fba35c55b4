package scenarios

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/harness/upgrade"
	"github.com/rehearse/rehearse/internal/term"
)

// upgradeState is the part of a World about the upgrade package.
type upgradeState struct {
	pkgPath string
	pkg     *upgrade.Package
	entry   string
	roots   *x509.CertPool
	chain   []*x509.Certificate
	outcome *upgrade.Outcome
	// allowUnsigned: the scenario said the package may be applied without
	// a trusted signature.
	allowUnsigned bool
	// applied is each apply's span, its first step's start to its last
	// step's end (guarded by mu: assertions read it).
	mu      sync.Mutex
	applied []window
	// service and user are the last apply's defaults, which a rollback
	// uses too; rollback is the outcome of the last rollback since then.
	service, user string
	rollback      *upgrade.Outcome
}

var upgradeSteps = []Step{
	{`Given the upgrade package "PATH"`, `^the upgrade package "([^"]*)"$`, `Given the upgrade package "../out/packages/billing-3.0-rehearsed.zip"`,
		"open the package (.zip, .tar.gz, .tgz or a directory) safely; its signature is PATH.p7s", theUpgradePackage},
	{`Given the upgrade entry script "SCRIPT"`, `^the upgrade entry script "([^"]*)"$`, `Given the upgrade entry script "install.sh"`,
		"for packages without upgrade.yaml: the script to run (default upgrade.sh); it marks steps with lines ::step NAME", theEntryScript},
	{`Given the trust store "PATH"`, `^the trust store "([^"]*)"$`, `Given the trust store "../out/pki/old-root.pem"`,
		"trusted root certificates (a PEM file or a directory)", theTrustStore},
	{`Given the vendor chain "PATH"`, `^the vendor chain "([^"]*)"$`, `Given the vendor chain "../out/pki/cross-chain.pem"`,
		"extra chain certificates, such as a cross-signed intermediate after a CA rotation", theVendorChain},
	{`Then the package signature is trusted`, `^the package signature is trusted$`, `Then the package signature is trusted`,
		"the detached CMS signature verifies and chains to the trust store", signatureTrusted},
	{`Then the package signature is rejected as "VERDICT"`, `^the package signature is rejected as "([^"]*)"$`, `Then the package signature is rejected as "unknown-authority"`,
		"the verdict: " + upgrade.Rejections(), signatureRejected},
	{`Given the package may be applied unsigned`, `^the package may be applied unsigned$`, `Given the package may be applied unsigned`,
		"apply the package even though its signature was not found trusted in this scenario (a warning on the timeline)", mayApplyUnsigned},
	{`When the upgrade package is applied to "SVC" as "USER"`, `^the upgrade package is applied to "([^"]*)" as "([^"]*)"$`, `When the upgrade package is applied to "billing" as "deploy"`,
		"copy the package into the service(s) and run its steps (SVC and USER are the defaults for steps that name none); the signature must have been found trusted in this scenario", applyPackage},
	{`Then the upgrade succeeds`, `^the upgrade succeeds$`, `Then the upgrade succeeds`, "every step passed", upgradeSucceeds},
	{`Then the upgrade fails at step "STEP"`, `^the upgrade fails at step "([^"]*)"$`, `Then the upgrade fails at step "restart"`,
		"the first failing step", upgradeFailsAt},
	{`Then step "STEP" output contains "TEXT"`, `^step "([^"]*)" output contains "((?:[^"\\]|\\.)*)"$`, `Then step "restart" output contains "sudo"`,
		"the step's stdout or stderr", stepOutputContains},
	{`Then service "SVC" reports version "V"`, `^service "([^"]*)" reports version "([^"]*)"$`, `Then service "billing" reports version "3.0"`,
		"the service's x-rehearse version command prints V", serviceReportsVersion},
}

func theUpgradePackage(ctx context.Context, path string) error {
	w := WorldFrom(ctx)
	p, err := w.resolve(path)
	if err != nil {
		return fmt.Errorf("upgrade package %w (make packages builds the bundled ones)", err)
	}
	if w.up.pkg != nil {
		// Closed before the new one opens, and forgotten: a failed open must
		// not leave the old package, and its verdict, in the scenario.
		err := w.up.pkg.Close()
		w.up.pkgPath, w.up.pkg, w.up.outcome, w.up.rollback = "", nil, nil, nil
		if err != nil {
			return fmt.Errorf("close the previous upgrade package: %w", err)
		}
	}
	span := w.Timeline.Begin("upgrade", "package", "open").Set("path", p)
	pkg, err := upgrade.Open(p)
	span.End(err)
	if err != nil {
		return err
	}
	w.up.pkgPath, w.up.pkg, w.up.outcome, w.up.rollback = p, pkg, nil, nil
	return nil
}

func mayApplyUnsigned(ctx context.Context) error {
	w := WorldFrom(ctx)
	w.up.allowUnsigned = true
	w.Timeline.Mark(timeline.KindWarning, "upgrade", "the package may be applied unsigned", nil)
	return nil
}

func theEntryScript(ctx context.Context, script string) error {
	WorldFrom(ctx).up.entry = script
	return nil
}

func theTrustStore(ctx context.Context, path string) error {
	w := WorldFrom(ctx)
	p, err := w.resolve(path)
	if err != nil {
		return fmt.Errorf("trust store %w", err)
	}
	w.up.roots, err = upgrade.LoadTrust(p)
	return err
}

func theVendorChain(ctx context.Context, path string) error {
	w := WorldFrom(ctx)
	p, err := w.resolve(path)
	if err != nil {
		return fmt.Errorf("vendor chain %w", err)
	}
	certs, err := upgrade.LoadCerts(p)
	w.up.chain = append(w.up.chain, certs...)
	return err
}

func (w *World) verify() (upgrade.Result, error) {
	if w.up.pkg == nil {
		return upgrade.Result{}, errors.New(`no upgrade package: use Given the upgrade package "PATH"`)
	}
	if w.up.roots == nil {
		return upgrade.Result{}, errors.New(`no trust store: use Given the trust store "PATH"`)
	}
	// The signature is read once and checked over the bytes the package
	// was unpacked from; the verdict stays on the package for Apply.
	sigPath := w.up.pkgPath + ".p7s"
	var res upgrade.Result
	if sig, err := upgrade.ReadSignature(sigPath); err != nil {
		// No verdict is recorded on the package: it stays unverified.
		res = upgrade.Result{Verdict: upgrade.Malformed, Reason: fmt.Sprintf("signature %s: %v", sigPath, err)}
	} else {
		res = w.up.pkg.Verify(sig, upgrade.Trust{Roots: w.up.roots, Extra: w.up.chain})
	}
	w.Timeline.Mark("upgrade", "package", "signature "+string(res.Verdict), map[string]string{"reason": res.Reason, "signature": sigPath})
	return res, nil
}

func signatureTrusted(ctx context.Context) error {
	res, err := WorldFrom(ctx).verify()
	if err != nil {
		return err
	}
	if res.Verdict != upgrade.Trusted {
		return fmt.Errorf("signature %s: %s", res.Verdict, res.Reason)
	}
	return nil
}

func signatureRejected(ctx context.Context, verdict string) error {
	if !slices.Contains(upgrade.Verdicts, upgrade.Verdict(verdict)) || verdict == string(upgrade.Trusted) {
		return fmt.Errorf("%q is not a rejection verdict (%s)", verdict, upgrade.Rejections())
	}
	res, err := WorldFrom(ctx).verify()
	if err != nil {
		return err
	}
	if string(res.Verdict) != verdict {
		return fmt.Errorf("signature %s, want %s: %s", res.Verdict, verdict, res.Reason)
	}
	return nil
}

func applyPackage(ctx context.Context, service, user string) error {
	w := WorldFrom(ctx)
	if w.up.pkg == nil {
		return errors.New(`no upgrade package: use Given the upgrade package "PATH"`)
	}
	if err := w.checkArmed(); err != nil { // faults armed for steps it lacks
		return err
	}
	// The scenario must have found the signature trusted; the step says
	// what to add, before Apply refuses in its own words.
	if err := w.up.pkg.CheckTrusted(); err != nil && !w.up.allowUnsigned {
		return fmt.Errorf(`%w: add "Then the package signature is trusted" (after Given the trust store "PATH") before applying, `+
			`or "Given the package may be applied unsigned"`, err)
	}
	e, err := w.environment()
	if err != nil {
		return err
	}
	hooks := upgrade.Hooks{
		StepStart: func(ctx context.Context, s upgrade.StepResult) {
			fmt.Fprintf(w.log, "upgrade step %s: %s as %s\n", s.Name, s.Service, s.User)
			w.fireArmed(ctx, s.Name) // faults armed "during step": before the step's command runs
		},
		StepEnd: func(_ context.Context, s upgrade.StepResult) {
			fmt.Fprintf(w.log, "upgrade step %s: exit %d after %s\n", s.Name, s.ExitCode, s.End.Sub(s.Start).Round(1e6))
		},
	}
	opts := []upgrade.ApplyOption{upgrade.WithService(service), upgrade.WithUser(user), upgrade.WithEntry(w.up.entry),
		upgrade.WithTimeline(w.Timeline), upgrade.WithHooks(hooks)}
	if w.up.allowUnsigned {
		opts = append(opts, upgrade.AllowUnsigned())
	}
	w.up.service, w.up.user, w.up.rollback = service, user, nil
	w.noteConfigBeforeApply(ctx) // for the "created during the upgrade" steps
	w.up.outcome, err = upgrade.Apply(ctx, e, w.up.pkg, opts...)
	w.noteApplied(w.up.outcome)
	// Apply runs its hooks synchronously: no fault fires after it returns.
	return errors.Join(err, w.takePending(), w.unfiredAfter(w.up.outcome))
}

// noteApplied records the span of an apply's steps: the upgrade's window,
// which the promised downtime is about. An apply that ran no step has none.
func (w *World) noteApplied(o *upgrade.Outcome) {
	if o == nil || len(o.Steps) == 0 {
		return
	}
	win := window{what: "the upgrade", start: o.Steps[0].Start, end: o.Steps[0].End}
	for _, s := range o.Steps {
		if s.Start.Before(win.start) {
			win.start = s.Start
		}
		if s.End.After(win.end) {
			win.end = s.End
		}
	}
	w.up.mu.Lock()
	defer w.up.mu.Unlock()
	w.up.applied = append(w.up.applied, win)
}

// upgradeWindows lists the spans of the applies so far.
func (w *World) upgradeWindows() []window {
	w.up.mu.Lock()
	defer w.up.mu.Unlock()
	return slices.Clone(w.up.applied)
}

func (w *World) outcome() (*upgrade.Outcome, error) {
	if w.up.outcome == nil {
		return nil, errors.New(`the upgrade has not been applied: use When the upgrade package is applied to "SVC" as "USER"`)
	}
	return w.up.outcome, nil
}

func describeSteps(o *upgrade.Outcome) string {
	var b strings.Builder
	for _, s := range o.Steps {
		fmt.Fprintf(&b, "\n  %s (%s as %s): exit %d", s.Name, s.Service, s.User, s.ExitCode)
		if s.Failed() {
			fmt.Fprintf(&b, "\n    %s", strings.ReplaceAll(term.Tail(s.Output, 5), "\n", "\n    "))
		}
	}
	return b.String()
}

func upgradeSucceeds(ctx context.Context) error {
	o, err := WorldFrom(ctx).outcome()
	if err != nil {
		return err
	}
	if o.FailedStep != "" {
		return fmt.Errorf("the upgrade failed at step %q:%s", o.FailedStep, describeSteps(o))
	}
	for _, s := range o.Steps {
		if s.Cleanup && s.Failed() {
			return fmt.Errorf("cleanup step %q failed:%s", s.Name, describeSteps(o))
		}
	}
	return nil
}

func upgradeFailsAt(ctx context.Context, step string) error {
	o, err := WorldFrom(ctx).outcome()
	if err != nil {
		return err
	}
	if o.FailedStep != step {
		if o.FailedStep == "" {
			return fmt.Errorf("the upgrade succeeded, want it to fail at step %q:%s", step, describeSteps(o))
		}
		return fmt.Errorf("the upgrade failed at step %q, want %q:%s", o.FailedStep, step, describeSteps(o))
	}
	return nil
}

func stepOutputContains(ctx context.Context, step, text string) error {
	s, err := WorldFrom(ctx).ranStep(step)
	if err != nil {
		return err
	}
	if text = unescape(text); !strings.Contains(s.Output, text) {
		return fmt.Errorf("step %q output does not contain %q:\n%s", step, text, term.Tail(s.Output, 10))
	}
	return nil
}

func serviceReportsVersion(ctx context.Context, service, want string) error {
	w := WorldFrom(ctx)
	e, err := w.environment()
	if err != nil {
		return err
	}
	span := w.Timeline.Begin(timeline.KindCommand, service, "version")
	got, err := e.Version(ctx, service)
	span.Set("version", got).End(err)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("service %s reports version %q, want %q", service, got, want)
	}
	return nil
}

package scenarios

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rehearse/rehearse/harness/preflight"
	"github.com/rehearse/rehearse/harness/timeline"
)

var preflightSteps = []Step{
	{`When preflight checks run`, `^preflight checks run$`, `When preflight checks run`,
		"read the scenario's upgrade package's hazards (harness/preflight) and its running environment's: units, installed version, configuration; deprecations.yaml beside the compose file is the deprecation matrix", preflightRun},
	{`Then preflight reports "RULE" in "FILE"`, `^preflight reports "([^"]*)" in "([^"]*)"$`, `Then preflight reports "sudo" in "upgrade.yaml"`,
		"a finding of the rule in the package file (a path relative to the package)", preflightReports},
	{`Then preflight reports no errors`, `^preflight reports no errors$`, `Then preflight reports no errors`,
		"no finding is an error (warnings and infos are allowed)", preflightNoErrors},
}

// preflightKey holds the scenario's last preflight findings in its context.
type preflightKey struct{}

func preflightRun(ctx context.Context) (context.Context, error) {
	w := WorldFrom(ctx)
	if w.up.pkg == nil {
		return ctx, errors.New(`no upgrade package: use Given the upgrade package "PATH"`)
	}
	var opts []preflight.Option
	span := w.Timeline.Begin(timeline.KindCommand, "preflight", "check").Set("package", w.up.pkgPath)
	if w.Env != nil {
		inv, err := preflight.FromEnvironment(ctx, w.Env)
		if err != nil {
			span.End(err)
			return ctx, err
		}
		opts = append(opts, preflight.WithInventory(inv))
		if m := preflight.MatrixBeside(w.composeFile); m != "" {
			matrix, err := preflight.LoadMatrix(m)
			if err != nil {
				span.End(err)
				return ctx, err
			}
			opts = append(opts, preflight.WithMatrix(matrix))
		}
	}
	fs, err := preflight.Check(ctx, w.up.pkg, opts...)
	span.Set("findings", len(fs)).End(err)
	if err != nil {
		return ctx, err
	}
	for _, f := range fs {
		fmt.Fprintf(w.log, "preflight: %s:%d: %s %s: %s\n", f.File, f.Line, f.Severity, f.Rule, f.Message)
	}
	return context.WithValue(ctx, preflightKey{}, fs), nil
}

func preflightFindings(ctx context.Context) ([]preflight.Finding, error) {
	fs, ok := ctx.Value(preflightKey{}).([]preflight.Finding)
	if !ok {
		return nil, errors.New("preflight has not run: use When preflight checks run")
	}
	return fs, nil
}

func describeFindings(fs []preflight.Finding) string {
	if len(fs) == 0 {
		return " none"
	}
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  %s:%d: %s %s: %s", f.File, f.Line, f.Severity, f.Rule, f.Message)
	}
	return b.String()
}

func preflightReports(ctx context.Context, rule, file string) error {
	fs, err := preflightFindings(ctx)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if f.Rule == rule && f.File == file {
			return nil
		}
	}
	return fmt.Errorf("preflight reported no %q in %q; it reported:%s", rule, file, describeFindings(fs))
}

func preflightNoErrors(ctx context.Context) error {
	fs, err := preflightFindings(ctx)
	if err != nil {
		return err
	}
	var errs []preflight.Finding
	for _, f := range fs {
		if f.Severity == preflight.Error {
			errs = append(errs, f)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("preflight reported %d error(s):%s", len(errs), describeFindings(errs))
	}
	return nil
}

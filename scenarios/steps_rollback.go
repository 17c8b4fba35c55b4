package scenarios

import (
	"context"
	"errors"
	"fmt"

	"github.com/rehearse/rehearse/harness/upgrade"
)

var rollbackSteps = []Step{
	{`When the upgrade is rolled back`, `^the upgrade is rolled back$`, `When the upgrade is rolled back`,
		"run the package's rollback: steps in order, with the last apply's SVC and USER as the defaults for steps that name none, stopping at the first failure (no cleanup steps); needs an apply earlier in the scenario",
		rollBack},
	{`Then the rollback succeeds`, `^the rollback succeeds$`, `Then the rollback succeeds`, "every rollback step passed", rollbackSucceeds},
	{`Then the rollback fails at step "STEP"`, `^the rollback fails at step "([^"]*)"$`, `Then the rollback fails at step "restore-binary"`,
		"the first failing rollback step (step \"STEP\" output contains \"TEXT\" then looks at the rollback's steps first)", rollbackFailsAt},
}

func rollBack(ctx context.Context) error {
	w := WorldFrom(ctx)
	if w.up.pkg == nil || w.up.outcome == nil {
		return errors.New(`nothing to roll back: the upgrade has not been applied in this scenario (use When the upgrade package is applied to "SVC" as "USER" first)`)
	}
	e, err := w.environment()
	if err != nil {
		return err
	}
	hooks := upgrade.Hooks{
		StepStart: func(_ context.Context, s upgrade.StepResult) {
			fmt.Fprintf(w.log, "rollback step %s: %s as %s\n", s.Name, s.Service, s.User)
		},
		StepEnd: func(_ context.Context, s upgrade.StepResult) {
			fmt.Fprintf(w.log, "rollback step %s: exit %d after %s\n", s.Name, s.ExitCode, s.End.Sub(s.Start).Round(1e6))
		},
	}
	opts := []upgrade.ApplyOption{upgrade.WithService(w.up.service), upgrade.WithUser(w.up.user),
		upgrade.WithTimeline(w.Timeline), upgrade.WithHooks(hooks)}
	if w.up.allowUnsigned {
		opts = append(opts, upgrade.AllowUnsigned())
	}
	w.up.rollback, err = upgrade.Rollback(ctx, e, w.up.pkg, opts...)
	return err
}

func (w *World) rollbackOutcome() (*upgrade.Outcome, error) {
	if w.up.rollback == nil {
		return nil, errors.New(`the upgrade has not been rolled back: use When the upgrade is rolled back`)
	}
	return w.up.rollback, nil
}

func rollbackSucceeds(ctx context.Context) error {
	o, err := WorldFrom(ctx).rollbackOutcome()
	if err != nil {
		return err
	}
	if o.FailedStep != "" {
		return fmt.Errorf("the rollback failed at step %q:%s", o.FailedStep, describeSteps(o))
	}
	return nil
}

func rollbackFailsAt(ctx context.Context, step string) error {
	o, err := WorldFrom(ctx).rollbackOutcome()
	if err != nil {
		return err
	}
	if o.FailedStep != step {
		if o.FailedStep == "" {
			return fmt.Errorf("the rollback succeeded, want it to fail at step %q:%s", step, describeSteps(o))
		}
		return fmt.Errorf("the rollback failed at step %q, want %q:%s", o.FailedStep, step, describeSteps(o))
	}
	return nil
}

// ranStep finds a step that ran: after a rollback, among its steps first
// (a name both ran is the rollback's), then among the apply's.
func (w *World) ranStep(step string) (upgrade.StepResult, error) {
	o, err := w.outcome()
	if err != nil {
		return upgrade.StepResult{}, err
	}
	rb := w.up.rollback
	if rb != nil {
		if s, ok := rb.Step(step); ok {
			return s, nil
		}
	}
	if s, ok := o.Step(step); ok {
		return s, nil
	}
	if rb != nil {
		return upgrade.StepResult{}, fmt.Errorf("no step %q ran; the upgrade's steps:%s\nthe rollback's steps:%s", step, describeSteps(o), describeSteps(rb))
	}
	return upgrade.StepResult{}, fmt.Errorf("no step %q ran:%s", step, describeSteps(o))
}

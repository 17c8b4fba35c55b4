package scenarios

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/harness/upgrade"
)

func rollbackWorld(t *testing.T) (context.Context, *World) {
	w := &World{Timeline: timeline.New(), log: io.Discard}
	t.Cleanup(func() {
		if w.up.pkg != nil {
			w.up.pkg.Close()
		}
	})
	return context.WithValue(context.Background(), worldKey{}, w), w
}

// A rollback needs an apply earlier in the scenario; the assertions need a
// rollback. Both say which step to add, before any environment is needed.
func TestRollbackNeedsAnApply(t *testing.T) {
	const noApply = `nothing to roll back: the upgrade has not been applied in this scenario (use When the upgrade package is applied to "SVC" as "USER" first)`
	ctx, w := rollbackWorld(t)
	if err := rollBack(ctx); err == nil || err.Error() != noApply {
		t.Errorf("no package: %v", err)
	}
	pkg := filepath.Join("..", "fixtures", "billing", "packages", "billing-3.0", "rehearsed")
	if err := theUpgradePackage(ctx, pkg); err != nil {
		t.Fatal(err)
	}
	if err := rollBack(ctx); err == nil || err.Error() != noApply {
		t.Errorf("a package, not applied: %v", err)
	}
	for name, step := range map[string]func() error{
		"succeeds": func() error { return rollbackSucceeds(ctx) },
		"fails at": func() error { return rollbackFailsAt(ctx, "restart") },
	} {
		if err := step(); err == nil || !strings.Contains(err.Error(), "When the upgrade is rolled back") {
			t.Errorf("the rollback %s before a rollback: %v", name, err)
		}
	}
	// An apply (its outcome) without an environment: the rollback gets as
	// far as asking for one.
	w.up.outcome = &upgrade.Outcome{}
	if err := rollBack(ctx); err == nil || !strings.Contains(err.Error(), "no environment") {
		t.Errorf("after an apply: %v, want no environment", err)
	}
	// Opening another package forgets the apply.
	if err := theUpgradePackage(ctx, pkg); err != nil {
		t.Fatal(err)
	}
	if err := rollBack(ctx); err == nil || err.Error() != noApply {
		t.Errorf("after opening another package: %v", err)
	}
}

func TestRollbackAssertions(t *testing.T) {
	ctx, w := rollbackWorld(t)
	w.up.outcome = &upgrade.Outcome{FailedStep: "restart", Steps: []upgrade.StepResult{
		{Name: "install", Service: "billing", User: "deploy", Output: "installed\n"},
		{Name: "restart", Service: "billing", User: "deploy", ExitCode: 1, Output: "sudo: a password is required\n"},
	}}
	w.up.rollback = &upgrade.Outcome{FailedStep: "restore-binary", Steps: []upgrade.StepResult{
		{Name: "restore-binary", Service: "billing", User: "deploy", ExitCode: 1, Output: "the vendor ships no rollback for the binary\n", Rollback: true},
	}}
	if err := rollbackFailsAt(ctx, "restore-binary"); err != nil {
		t.Error(err)
	}
	err := rollbackFailsAt(ctx, "restart")
	if err == nil || !strings.Contains(err.Error(), `the rollback failed at step "restore-binary", want "restart"`) ||
		!strings.Contains(err.Error(), "restore-binary (billing as deploy): exit 1") || !strings.Contains(err.Error(), "the vendor ships no rollback") {
		t.Errorf("fails at another step: %v", err)
	}
	if err := rollbackSucceeds(ctx); err == nil || !strings.Contains(err.Error(), `the rollback failed at step "restore-binary"`) || !strings.Contains(err.Error(), "the vendor ships no rollback") {
		t.Errorf("succeeds: %v", err)
	}
	// Step output: the rollback's steps first, then the apply's.
	if err := stepOutputContains(ctx, "restore-binary", "the vendor ships no rollback for the binary"); err != nil {
		t.Error(err)
	}
	if err := stepOutputContains(ctx, "restart", "sudo"); err != nil {
		t.Errorf("a step only the apply ran: %v", err)
	}
	if err := stepOutputContains(ctx, "migrate", "x"); err == nil || !strings.Contains(err.Error(), "the rollback's steps:") {
		t.Errorf("a step neither ran: %v", err)
	}
	w.up.rollback.Steps = append(w.up.rollback.Steps, upgrade.StepResult{Name: "restart", Output: "restarted by the rollback\n", Rollback: true})
	if err := stepOutputContains(ctx, "restart", "restarted by the rollback"); err != nil {
		t.Errorf("a step both ran is the rollback's: %v", err)
	}

	w.up.rollback = &upgrade.Outcome{Steps: []upgrade.StepResult{{Name: "restore-binary"}, {Name: "restart"}}}
	if err := rollbackSucceeds(ctx); err != nil {
		t.Error(err)
	}
	if err := rollbackFailsAt(ctx, "restart"); err == nil || !strings.Contains(err.Error(), `the rollback succeeded, want it to fail at step "restart"`) {
		t.Errorf("fails at, after a rollback that passed: %v", err)
	}
}

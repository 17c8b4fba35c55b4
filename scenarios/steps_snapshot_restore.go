package scenarios

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/snapshot"
)

// restorePoint is a copy of the environment that it can be put back to
// (harness/snapshot's Snapshot).
type restorePoint interface {
	Restore(ctx context.Context) error
	Drop(ctx context.Context) error
}

// takeRestorePoint takes the restorable copy of the environment.
var takeRestorePoint = func(ctx context.Context, e *env.Environment, name string) (restorePoint, error) {
	s, err := snapshot.Take(ctx, e, name)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// rollBackPattern is the rollback step's pattern, for rollsBackTo.
var rollBackPattern = regexp.MustCompile(`^the environment is rolled back to snapshot "([^"]*)"$`)

// rollsBackTo reports whether the scenario has a step that rolls back to
// the named snapshot: only then is the restorable copy taken, since taking
// it stops each PostgreSQL service for a moment (an outage that a probe
// would count).
func (w *World) rollsBackTo(name string) bool {
	if w.Scenario == nil {
		return false
	}
	for _, st := range w.Scenario.Steps {
		if m := rollBackPattern.FindStringSubmatch(st.Text); m != nil && m[1] == name {
			return true
		}
	}
	return false
}

// restoreNameUnsafe is what a restorable copy's name may not hold: it
// names the engine's volumes.
var restoreNameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// restoreName is the snapshot's name as a copy's name: letters, digits,
// '.', '_' and '-', at most 40, unique in the scenario.
func (st *snapshotState) restoreName(name string) string {
	base := strings.TrimLeft(restoreNameUnsafe.ReplaceAllString(name, "-"), "-._")
	if base == "" {
		base = "snapshot"
	}
	base = strings.TrimRight(base[:min(len(base), 34)], "-._")
	n := base
	for i := 2; slices.Contains(st.restoreNames, n); i++ {
		n = base + "-" + strconv.Itoa(i)
	}
	st.restoreNames = append(st.restoreNames, n)
	return n
}

func rollBackToSnapshot(ctx context.Context, name string) error {
	w := WorldFrom(ctx)
	if _, err := w.environment(); err != nil {
		return err
	}
	s, err := w.snapshot(name)
	if err != nil {
		return err
	}
	if s.restore == nil {
		return fmt.Errorf("snapshot %q holds no restorable copy: it is taken when the scenario has the step When the environment is rolled back to snapshot %q", name, name)
	}
	fmt.Fprintf(w.log, "snapshot %s: restoring\n", name)
	span := w.Timeline.Begin(kindSnapshot, name, "restore")
	err = s.restore.Restore(ctx)
	if ph, ok := s.restore.(interface {
		Phases() []snapshot.RestorePhase
	}); ok {
		for _, p := range ph.Phases() {
			span.Set(p.Name, p.Duration.Round(time.Millisecond).String())
		}
	}
	span.End(err)
	var mm *snapshot.RestoreMismatch
	if errors.As(err, &mm) {
		var lines []string
		lines = append(lines, mm.Config.Lines()...)
		for _, svc := range slices.Sorted(maps.Keys(mm.Data)) {
			for _, f := range mm.Data[svc].Findings {
				lines = append(lines, svc+": "+f.String())
			}
		}
		return diffError(fmt.Sprintf("the environment is not back to snapshot %q after the restore", name), lines)
	}
	return err
}

// dropRestorePoints removes the restorable copies (the engine's volumes,
// which the run's removal would remove too).
func (w *World) dropRestorePoints(ctx context.Context) error {
	var errs []error
	for _, s := range w.snaps.taken {
		if s.restore != nil {
			errs = append(errs, s.restore.Drop(ctx))
		}
	}
	return errors.Join(errs...)
}

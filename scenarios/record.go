package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/rehearse/rehearse/harness/report"
	"github.com/rehearse/rehearse/harness/timeline"
)

// logTailLines is how many lines of each container's log a failure shows.
const logTailLines = 15

// outputTailLines is how much of a scenario's own output a failure shows.
const outputTailLines = 30

// stepStatus is godog's status of a step as the record says it. An
// ambiguous step failed (a strict run fails on it).
func stepStatus(s godog.StepResultStatus) string {
	switch s {
	case godog.StepPassed:
		return report.StatusPassed
	case godog.StepSkipped:
		return report.StatusSkipped
	case godog.StepUndefined:
		return report.StatusUndefined
	case godog.StepPending:
		return report.StatusPending
	}
	return report.StatusFailed
}

// scenarioStatus is the status godog's junit formatter and summary give a
// scenario from its steps: the last failed, undefined or pending step's;
// passed when a step passed and none of those; skipped when every step was.
func scenarioStatus(steps []report.Step) string {
	status := ""
	for _, st := range steps {
		switch st.Status {
		case report.StatusFailed, report.StatusUndefined, report.StatusPending:
			status = st.Status
		case report.StatusPassed:
			if status == "" {
				status = report.StatusPassed
			}
		}
	}
	switch {
	case status != "":
		return status
	case len(steps) == 0:
		return report.StatusUndefined
	}
	return report.StatusSkipped
}

// failureBlock is what a failed scenario shows under it, in this order:
// the error, each container's log tail under its own separator line, the
// scenario's output (when it was not shown as it happened), how to reach a
// kept environment, and the command that reproduces it, last.
func failureBlock(rec *report.Scenario, withOutput bool) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(rec.Error, "\n") + "\n")
	for _, l := range rec.Logs {
		text := strings.TrimRight(l.Text, "\n")
		if text == "" {
			text = "(empty)"
		}
		fmt.Fprintf(&b, "--- %s: last %d log lines ---\n%s\n", l.Service, logTailLines, text)
	}
	if withOutput && rec.Output != "" {
		fmt.Fprintf(&b, "--- scenario output: last %d lines ---\n%s\n", outputTailLines, strings.TrimRight(rec.Output, "\n"))
	}
	if rec.Kept != "" {
		b.WriteString(strings.TrimRight(rec.Kept, "\n") + "\n")
	}
	b.WriteString("reproduce: " + rec.Reproduce)
	return b.String()
}

// reproduce is the command that runs one scenario (or example row) again
// with its environment kept on failure, as this run ran it.
func (c *Config) reproduce(feature string, line int) string {
	s := c.command() + " run " + shellQuote(fmt.Sprintf("%s:%d", feature, line)) + " --keep-on-failure"
	if c.Fresh {
		s += " --fresh"
	}
	return s
}

// command is how the commands rehearse prints call it.
func (c *Config) command() string {
	if c.Command == "" {
		return "rehearse"
	}
	return c.Command
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// timelineBase is the base name of a scenario's timeline files:
// <feature>-<line>-<name>.
func timelineBase(feature string, line int, name string) string {
	return fmt.Sprintf("%s-%d-%s", strings.TrimSuffix(filepath.Base(feature), ".feature"), line,
		strings.Trim(unsafeName.ReplaceAllString(name, "-"), "-"))
}

// writeJSON writes v as indented JSON to path through a temporary file in
// the same directory, so that a reader never sees half a record.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// record is the scenario's record as it stands: steps not yet reported by
// godog are skipped (they will be: the scenario has failed before them).
func (w *World) record() report.Scenario {
	c := w.Config
	line := c.lines.locate(w.Scenario, nil)
	rec := report.Scenario{
		Schema:      report.Schema,
		Feature:     w.feature,
		FeatureName: c.lines.featureName(w.Scenario.Uri),
		Line:        line,
		Name:        w.Scenario.Name,
		Start:       w.start,
		End:         w.end,
		RunID:       w.RunID,
		Shard:       c.shard,
		Steps:       make([]report.Step, len(w.steps)),
		Events:      w.Timeline.Events(),
	}
	for _, t := range w.Scenario.Tags {
		rec.Tags = append(rec.Tags, t.Name)
	}
	copy(rec.Steps, w.steps)
	for i := range rec.Steps {
		if rec.Steps[i].Status == "" {
			rec.Steps[i].Status = report.StatusSkipped
		}
	}
	rec.Status = scenarioStatus(rec.Steps)
	if f := w.failure; f != nil {
		rec.Error, rec.FailedLine = f.err, f.line
		rec.Logs, rec.Output, rec.Kept = f.logs, f.output, f.kept
	}
	if rec.Status != report.StatusPassed && rec.Status != report.StatusSkipped {
		rec.Reproduce = c.reproduce(rec.Feature, rec.Line)
	}
	if rec.Events == nil {
		rec.Events = []timeline.Event{}
	}
	return rec
}

// writeRecord keeps the scenario's record for the run's reports and, with
// an output directory, writes it as OUT/timelines/<base>.json beside the
// text timeline.
func (w *World) writeRecord() report.Scenario {
	rec := w.record()
	w.Config.addRecord(w.Scenario.Id, rec)
	if w.Config.OutDir == "" {
		return rec
	}
	dir := filepath.Join(w.Config.OutDir, report.TimelinesDir)
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = writeJSON(filepath.Join(dir, timelineBase(rec.Feature, rec.Line, rec.Name)+".json"), rec)
	}
	if err != nil {
		fmt.Fprintf(w.log, "timeline record: %v\n", err)
	}
	return rec
}

// stepStarted and stepEnded follow godog's step hooks, which run for every
// step, the skipped ones after a failure too.
func (w *World) stepStarted(st *godog.Step) {
	if i, ok := w.stepIndex[st.Id]; ok {
		w.steps[i].Start = time.Now()
	}
}

func (w *World) stepEnded(st *godog.Step, status godog.StepResultStatus, err error) {
	i, ok := w.stepIndex[st.Id]
	if !ok {
		return
	}
	s := &w.steps[i]
	s.End = time.Now()
	if s.Start.IsZero() {
		s.Start = s.End
	}
	s.Status = stepStatus(status)
	if err != nil && s.Status == report.StatusFailed {
		s.Error = err.Error()
	}
	w.stepsDone++
	// After a failure godog reports the remaining steps after the
	// scenario's After hook: the record written then is rewritten with
	// their statuses once the last is in.
	if w.finished && w.stepsDone == len(w.steps) {
		w.writeRecord()
	}
}

// initSteps lays out the record's steps from the pickle, with their
// keywords and lines from godog's parse of the feature.
func (w *World) initSteps() {
	p := w.Scenario
	w.steps = make([]report.Step, len(p.Steps))
	w.stepIndex = make(map[string]int, len(p.Steps))
	for i, st := range p.Steps {
		w.stepIndex[st.Id] = i
		w.steps[i].Text = st.Text
		if len(st.AstNodeIds) > 0 {
			if n, ok := w.Config.lines.node(p.Uri, st.AstNodeIds[0]); ok {
				w.steps[i].Keyword, w.steps[i].Line = n.keyword, n.line
			}
		}
	}
}

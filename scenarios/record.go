package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cucumber/godog"
	"mvdan.cc/sh/v3/syntax"

	"github.com/rehearse/rehearse/harness/report"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/harness/upgrade"
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

// statusRank orders step statuses as cucumber does to give a scenario the
// worst of its steps' (an ambiguous step is failed here).
var statusRank = map[string]int{
	report.StatusPassed:    1,
	report.StatusSkipped:   2,
	report.StatusPending:   3,
	report.StatusUndefined: 4,
	report.StatusFailed:    5,
}

// scenarioStatus is a scenario's status from its steps, as cucumber gives
// it: the worst step's, failed over undefined over pending over skipped
// over passed; undefined when there is no step (godog counts such a
// scenario undefined). A failed step followed by an undefined one (godog
// reports a step after a failure undefined when no definition matches)
// is failed. godog's own formatters take the last failed, undefined or
// pending step's instead; its console's scenario line counts failed
// steps, so it says "1 failed, 1 undefined" of that one scenario.
func scenarioStatus(steps []report.Step) string {
	if len(steps) == 0 {
		return report.StatusUndefined
	}
	status := report.StatusPassed
	for _, st := range steps {
		if statusRank[st.Status] > statusRank[status] {
			status = st.Status
		}
	}
	return status
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
	s := c.command() + " run " + ShellQuote(fmt.Sprintf("%s:%d", feature, line)) + " --keep-on-failure"
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

// ShellQuote quotes s as one word for a shell (bash, zsh, POSIX sh for
// printable text) when it needs it, as reproduce commands do: a path with
// a space or a quote stays one argument.
func ShellQuote(s string) string {
	q, err := syntax.Quote(s, syntax.LangBash)
	if err != nil { // a NUL byte, which no path or argument holds
		return strconv.Quote(s)
	}
	return q
}

// writeJSON writes v as indented JSON to path, atomically
// (report.WriteFileAtomic): a reader never sees half a record.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return report.WriteFileAtomic(path, append(data, '\n'), 0o644)
}

// recordPath is where a scenario's record files go in OUT/timelines, with
// ext ".json" or ".txt" (report.RecordName).
func (c *Config) recordPath(feature string, line int, name, ext string) string {
	return filepath.Join(c.OutDir, report.TimelinesDir, report.RecordName(feature, line, name)+ext)
}

// saveRecord writes a scenario's record as OUT/timelines/<name>.json.
func (c *Config) saveRecord(rec report.Scenario) error {
	if err := os.MkdirAll(filepath.Join(c.OutDir, report.TimelinesDir), 0o755); err != nil {
		return err
	}
	return writeJSON(c.recordPath(rec.Feature, rec.Line, rec.Name, ".json"), rec)
}

// Why a selected scenario has no record once godog is done.
const (
	errNoSteps     = "the scenario has no steps"
	errNotRunBy    = "godog ran none of its steps"
	errInterrupted = "the run was interrupted before the scenario ran"
)

// recordUnrun gives every selected scenario that has no record once godog
// has returned one: after an interrupt, it is skipped (errInterrupted);
// else, with its Failure, a scenario without steps (godog counts it
// undefined, but runs none of its hooks) is undefined, and any other that
// godog did not run failed. None ran: each starts and ends at start, the
// run's start.
func (c *Config) recordUnrun(start time.Time, interrupted bool) {
	if c.sel == nil {
		return
	}
	have := map[string]bool{}
	for _, r := range c.Records() {
		have[r.Location()] = true
	}
	for _, p := range c.sel.Selected {
		if have[p.Key()] {
			continue
		}
		rec := report.Scenario{Schema: report.Schema, Feature: p.File, FeatureName: p.feature, Line: p.Line, Name: p.Name,
			Tags: p.Tags, Status: report.StatusUndefined, Start: start, End: start, Shard: c.shard,
			Steps: []report.Step{}, Error: errNoSteps, Events: []timeline.Event{}}
		switch {
		case interrupted:
			rec.Status, rec.Error = report.StatusSkipped, errInterrupted
		case p.steps > 0:
			rec.Status, rec.Error = report.StatusFailed, errNotRunBy
		}
		if rec.Status != report.StatusSkipped {
			rec.Reproduce = c.reproduce(rec.Feature, rec.Line)
			c.addFailure(Failure{File: p.File, Line: p.Line, Scenario: p.Name, Err: rec.Error})
		}
		c.keepNotRun("unrun "+p.Key(), rec)
	}
}

// keepNotRun keeps the record of a scenario that did not run and, with an
// output directory, writes it with a text timeline that says why.
func (c *Config) keepNotRun(id string, rec report.Scenario) {
	c.addRecord(id, rec)
	if c.OutDir == "" {
		return
	}
	err := c.saveRecord(rec)
	if err == nil {
		text := fmt.Sprintf("# %s:%d %s (not run: %s)\n", rec.Feature, rec.Line, rec.Name, rec.Error)
		err = report.WriteFileAtomic(c.recordPath(rec.Feature, rec.Line, rec.Name, ".txt"), []byte(text), 0o644)
	}
	if err != nil {
		c.addRecordErr(err)
	}
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
	return capRecord(rec, maxRecordEvents, maxRecordBytes)
}

// What a record written may hold: within what report.Load reads
// (report.MaxEvents events, report.MaxRecordSize bytes), with a margin.
const (
	maxRecordEvents = report.MaxEvents - 1000
	maxRecordBytes  = report.MaxRecordSize - 1<<20
)

// tailBytes is how much of the output and of each log tail a record too
// big keeps, at the end of each.
const tailBytes = 64 << 10

// capRecord keeps a record within maxEvents events and maxBytes bytes of
// the JSON writeJSON writes, so that report.Load reads it: past maxEvents
// it keeps the first and the last half of the events; past maxBytes it
// drops the upgrade steps' output lines first, then keeps the tail of the
// output and the log tails, then fewer events, the error text last. A
// KindWarning event of actor "report" says what was dropped.
func capRecord(rec report.Scenario, maxEvents, maxBytes int) report.Scenario {
	if len(rec.Events) > maxEvents {
		rec.Events = keepEnds(rec.Events, maxEvents)
	}
	if recordSize(rec) <= maxBytes {
		return rec
	}
	var kept, output []timeline.Event
	for _, e := range rec.Events {
		if e.Kind == upgrade.KindStepOutput {
			output = append(output, e)
			continue
		}
		kept = append(kept, e)
	}
	if len(output) > 0 {
		kept = append(kept, dropWarning(output[0].Start, output[0].Seq,
			fmt.Sprintf("%d upgrade output lines dropped: the record would be larger than %d bytes", len(output), maxBytes)))
		slices.SortStableFunc(kept, func(a, b timeline.Event) int { return a.Start.Compare(b.Start) })
		rec.Events = kept
		if recordSize(rec) <= maxBytes {
			return rec
		}
	}
	rec.Output = keepTail(rec.Output, tailBytes)
	rec.Logs = slices.Clone(rec.Logs)
	for i := range rec.Logs {
		rec.Logs[i].Text = keepTail(rec.Logs[i].Text, tailBytes)
	}
	base := rec.Events
	for n := len(base) / 2; recordSize(rec) > maxBytes && n >= 2; n /= 2 {
		rec.Events = keepEnds(base, n)
	}
	if recordSize(rec) > maxBytes {
		rec.Error = keepTail(rec.Error, tailBytes)
		rec.Steps = slices.Clone(rec.Steps)
		for i := range rec.Steps {
			rec.Steps[i].Error = keepTail(rec.Steps[i].Error, tailBytes)
		}
	}
	return rec
}

// keepEnds keeps max events: the first and the last half of them, and
// between them a warning that says how many were dropped.
func keepEnds(events []timeline.Event, max int) []timeline.Event {
	if len(events) <= max {
		return events
	}
	head := (max - 1) / 2
	tail := max - 1 - head
	dropped := len(events) - head - tail
	out := make([]timeline.Event, 0, max)
	out = append(out, events[:head]...)
	first := events[head]
	out = append(out, dropWarning(first.Start, first.Seq,
		fmt.Sprintf("%d events dropped: the record keeps the first %d and the last %d", dropped, head, tail)))
	return append(out, events[len(events)-tail:]...)
}

// dropWarning is the event that says what a record dropped, at the time
// of the first event dropped.
func dropWarning(at time.Time, seq int, what string) timeline.Event {
	return timeline.Event{Seq: seq, Kind: timeline.KindWarning, Actor: "report", Name: what, Start: at, End: at}
}

// keepTail keeps the last n bytes of s (whole characters), saying how
// much went before them.
func keepTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := len(s) - n
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return fmt.Sprintf("[%d bytes dropped]\n", cut) + s[cut:]
}

// recordSize is how many bytes writeJSON writes for a record.
func recordSize(rec report.Scenario) int {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return 0 // writeJSON will say why
	}
	return len(data) + 1
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
	if err := w.Config.saveRecord(rec); err != nil {
		fmt.Fprintf(w.log, "timeline record: %v\n", err)
		w.Config.addRecordErr(err)
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

package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/report"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/harness/upgrade"
)

// cancelAfter is an output that cancels the run once it has printed a
// text: Ctrl-C at that point.
type cancelAfter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	text   string
	cancel context.CancelFunc
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.text) {
		w.cancel()
	}
	return n, err
}

// Once the run is interrupted (its context cancelled after the first
// scenario), godog still goes through the others: each is skipped without
// running a step, with a record saying why, and the run does not pass.
func TestRunInterruptedSkipsTheRest(t *testing.T) {
	const file = "testdata/report/cheap.feature"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout := &cancelAfter{text: `Given the upgrade entry script "install.sh"`, cancel: cancel}
	var stderr bytes.Buffer
	out := t.TempDir()
	sum, err := Run(ctx, RunOptions{Paths: []string{file}, OutDir: out, Stdout: stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	text := stdout.buf.String() + stderr.String()
	if sum.Passed() || !sum.Interrupted || sum.NotRun != 4 || len(sum.Failures) != 0 {
		t.Errorf("summary %+v, want interrupted with 4 not run and no failure:\n%s", sum, text)
	}
	var b strings.Builder
	sum.WriteSummary(&b)
	if !strings.Contains(b.String(), "interrupted: 4 scenarios not run (skipped)") {
		t.Errorf("summary text:\n%s", b.String())
	}
	r, err := report.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Scenarios) != 5 {
		t.Fatalf("%d records, want 5", len(r.Scenarios))
	}
	for _, s := range r.Scenarios {
		if s.Line == 3 {
			if s.Status != report.StatusPassed {
				t.Errorf("%s ran before the interrupt: %s", s.Location(), s.Status)
			}
			continue
		}
		if s.Status != report.StatusSkipped || s.Error != errInterrupted || !s.End.Equal(s.Start) || s.Reproduce != "" || len(s.Events) != 0 {
			t.Errorf("%s: status %s, error %q, %s long, reproduce %q, %d events; want skipped as interrupted",
				s.Location(), s.Status, s.Error, s.Duration(), s.Reproduce, len(s.Events))
		}
		for _, st := range s.Steps {
			if st.Status != report.StatusSkipped {
				t.Errorf("%s: step %q %s", s.Location(), st.Text, st.Status)
			}
		}
	}
	if strings.Contains(text, "no environment:") {
		t.Errorf("the failing scenario ran after the interrupt:\n%s", text)
	}
}

// A run cancelled before it starts runs nothing, and records every
// scenario as skipped.
func TestRunInterruptedBeforeItStarts(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout, stderr bytes.Buffer
	sum, err := Run(ctx, RunOptions{Paths: []string{"testdata/report/more.feature", "testdata/report/stepless.feature"}, Format: "progress", Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Passed() || sum.NotRun != 6 || len(sum.Failures) != 0 {
		t.Errorf("summary %+v, want 6 not run, no failure:\n%s%s", sum, stdout.String(), stderr.String())
	}
}

// When the records cannot be read back at the end of the run, the
// reports are still this run's (from the records in memory), not the
// earlier run's; the step summary is written, and the error said.
func TestRunReportsFromMemoryWhenRecordsCannotBeRead(t *testing.T) {
	out := t.TempDir()
	if sum, text := run(t, RunOptions{Paths: []string{"testdata/report/cheap.feature:3"}, OutDir: out, Format: "progress"}); !sum.Passed() {
		t.Fatalf("the first run failed:\n%s", text)
	}
	loadReport = func(...string) (*report.Report, error) { return nil, errors.New("disk on fire") }
	t.Cleanup(func() { loadReport = report.Load })
	summary := filepath.Join(t.TempDir(), "step.md")
	var stdout, stderr bytes.Buffer
	sum, err := Run(t.Context(), RunOptions{Paths: []string{cheapScenario}, OutDir: out, Format: "junit", StepSummary: summary, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Passed() || sum.ReportErr == nil || !strings.Contains(sum.ReportErr.Error(), "read the run's records back: disk on fire") {
		t.Errorf("report error %v, want the load error", sum.ReportErr)
	}
	for _, name := range []string{report.HTMLFile, report.JUnitFile, report.MarkdownFile, summary} {
		if !filepath.IsAbs(name) {
			name = filepath.Join(out, name)
		}
		data, err := os.ReadFile(name)
		if err != nil || !strings.Contains(string(data), "The package may go unsigned") || strings.Contains(string(data), "An entry script is named") {
			t.Errorf("%s: want this run's scenario alone: %v\n%.400s", name, err, data)
		}
	}
}

// Past maxEvents a record keeps the first and the last half of its events
// and one warning between them saying how many went.
func TestRecordCapsEvents(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var events []timeline.Event
	for i := range 20 {
		at := t0.Add(time.Duration(i) * time.Second)
		events = append(events, timeline.Event{Seq: i + 1, Kind: timeline.KindLog, Actor: "db", Name: fmt.Sprint(i), Start: at, End: at})
	}
	rec := report.Scenario{Schema: report.Schema, Feature: "f.feature", Line: 3, Status: report.StatusPassed, Events: events}
	got := capRecord(rec, 9, 1<<20).Events
	if len(got) != 9 {
		t.Fatalf("%d events, want 9", len(got))
	}
	var names []string
	for _, e := range got {
		names = append(names, e.Name)
	}
	w := got[4]
	if strings.Join(names[:4], ",") != "0,1,2,3" || strings.Join(names[5:], ",") != "16,17,18,19" ||
		w.Kind != timeline.KindWarning || w.Actor != "report" || !strings.HasPrefix(w.Name, "12 events dropped") || !w.Start.Equal(events[4].Start) {
		t.Errorf("capped events %v, warning %+v", names, w)
	}
	if len(events) != 20 || events[4].Name != "4" {
		t.Errorf("the record's own events changed")
	}
	if same := capRecord(rec, 20, 1<<20); len(same.Events) != 20 {
		t.Errorf("a record within bounds lost events")
	}
}

// Past maxBytes a record drops the upgrade steps' output lines first, then
// keeps the tail of its output and log tails.
func TestRecordCapsBytes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var events []timeline.Event
	for i := range 200 {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		kind := upgrade.KindStepOutput
		if i%50 == 0 {
			kind = upgrade.KindStep
		}
		events = append(events, timeline.Event{Seq: i + 1, Kind: kind, Actor: "migrate", Name: strings.Repeat("x", 200), Start: at, End: at})
	}
	rec := report.Scenario{Schema: report.Schema, Feature: "f.feature", Line: 3, Status: report.StatusFailed, Events: events,
		Output: "small", Logs: []report.LogTail{{Service: "db", Text: "short"}}}
	full := recordSize(rec)
	capped := capRecord(rec, 1000, full/2)
	if n := recordSize(capped); n > full/2 {
		t.Errorf("%d bytes, want at most %d", n, full/2)
	}
	var kinds []string
	for _, e := range capped.Events {
		kinds = append(kinds, e.Kind)
	}
	if len(capped.Events) != 5 || capped.Events[1].Kind != timeline.KindWarning || !strings.HasPrefix(capped.Events[1].Name, "196 upgrade output lines dropped") ||
		capped.Output != "small" || capped.Logs[0].Text != "short" {
		t.Errorf("capped: kinds %v, warning %q, output %q", kinds, capped.Events[1].Name, capped.Output)
	}

	big := strings.Repeat("log line\n", 100_000)
	rec = report.Scenario{Schema: report.Schema, Feature: "f.feature", Line: 3, Status: report.StatusFailed, Events: events[:1],
		Output: "start\n" + big, Logs: []report.LogTail{{Service: "db", Text: "begin\n" + big}}}
	capped = capRecord(rec, 1000, 400<<10)
	if n := recordSize(capped); n > 400<<10 || !strings.HasSuffix(capped.Output, "log line\n") || strings.Contains(capped.Output, "start") ||
		!strings.HasPrefix(capped.Logs[0].Text, "[") || len(rec.Logs[0].Text) != len(big)+6 {
		t.Errorf("%d bytes; output %.60q; log %.60q", n, capped.Output, capped.Logs[0].Text)
	}
}

// The bounds a record is written within are within those report.Load
// reads.
func TestRecordBoundsAreWithinTheReaders(t *testing.T) {
	if maxRecordEvents >= report.MaxEvents || maxRecordBytes >= report.MaxRecordSize || maxRecordEvents < 1000 || maxRecordBytes < 1<<20 {
		t.Errorf("writer bounds %d events, %d bytes; reader %d, %d", maxRecordEvents, maxRecordBytes, report.MaxEvents, report.MaxRecordSize)
	}
}

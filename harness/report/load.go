package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Bounds on what Load reads: the directories may be artifacts from
// another machine, and a report of them must neither exhaust memory nor
// draw a chart of ten thousand years.
const (
	// MaxRecordSize bounds every file Load reads (run.json, each
	// timeline, rehearse.json).
	MaxRecordSize = 64 << 20
	// MaxLoadSize bounds the bytes Load reads across all files of all
	// directories. Decoded, records take up to about six times their
	// size in memory (a 27 MB record of 200,000 tiny events: 170 MB for
	// rehearse report in place, 310 MB when it copies the records to
	// --out); 256 MiB is a 200-scenario nightly of records ten times a
	// real rehearsal's, within what a CI worker has.
	MaxLoadSize = 256 << 20
	// MaxEvents bounds the events of one scenario's record.
	MaxEvents = 200_000
	// MaxSpan bounds how long a run, a scenario (its record's End -
	// Start) and a report (from the first start of its runs and
	// scenarios to the last end) may be, and how far from its
	// scenario's start an event may lie.
	MaxSpan = 7 * 24 * time.Hour
)

// Names inside an output directory.
const (
	RunFile       = "run.json"
	TimelinesDir  = "timelines"
	CucumberFile  = "rehearse.json"
	HTMLFile      = "report.html"
	JUnitFile     = "rehearse.xml"
	MarkdownFile  = "summary.md"
	timelineExt   = ".json"
	maxNamedInErr = 3
)

// Report is what one or several output directories of rehearse run hold:
// the runs that set out (one per shard), and every scenario's record,
// sorted by feature path, then line.
type Report struct {
	Runs      []Run
	Scenarios []Scenario

	dirs []string // the directories loaded, for Write
}

// Counts are a report's scenarios by status, and its errors.
type Counts struct {
	Total, Passed, Failed, Skipped, Undefined, Pending int
	// Errors is how many feature files the runs could not read or parse
	// (Report.Errors); they are not among Total.
	Errors int
}

// Counts counts the scenarios by status, and the errors.
func (r *Report) Counts() Counts {
	c := Counts{Total: len(r.Scenarios), Errors: len(r.Errors())}
	for _, s := range r.Scenarios {
		switch s.Status {
		case StatusPassed:
			c.Passed++
		case StatusFailed:
			c.Failed++
		case StatusSkipped:
			c.Skipped++
		case StatusUndefined:
			c.Undefined++
		case StatusPending:
			c.Pending++
		}
	}
	return c
}

// OK reports whether no scenario failed, every feature file was read and
// no run was interrupted. Undefined and pending scenarios fail as in
// rehearse run, which runs godog strict; skipped ones do not, but those
// an interrupted run skipped never ran.
func (r *Report) OK() bool {
	c := r.Counts()
	return c.Failed+c.Undefined+c.Pending+c.Errors == 0 && !r.Interrupted()
}

// Interrupted reports whether a run was stopped before every scenario it
// selected ran (its run.json says so).
func (r *Report) Interrupted() bool {
	for _, run := range r.Runs {
		if run.Interrupted {
			return true
		}
	}
	return false
}

// Errors are the feature files the runs could not read or parse (each
// run's Errors, once each, in the order of the runs): their scenarios ran
// nowhere.
func (r *Report) Errors() []string {
	var out []string
	seen := map[string]bool{}
	for _, run := range r.Runs {
		for _, e := range run.Errors {
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// Duration is the scenarios' time added up: what one worker would take.
func (r *Report) Duration() time.Duration {
	var d time.Duration
	for _, s := range r.Scenarios {
		d += s.Duration()
	}
	return d
}

// Wall is the time from the first start to the last end, of the runs when
// run.json says, else of the scenarios: shards that ran side by side count
// once.
func (r *Report) Wall() time.Duration {
	var start, end time.Time
	widen := func(s, e time.Time) {
		if !s.IsZero() && (start.IsZero() || s.Before(start)) {
			start = s
		}
		if e.After(end) {
			end = e
		}
	}
	for _, run := range r.Runs {
		widen(run.Start, run.End)
	}
	for _, s := range r.Scenarios {
		widen(s.Start, s.End)
	}
	if start.IsZero() || end.Before(start) {
		return 0
	}
	return end.Sub(start)
}

// Shards is how many shards the report merges: N of "I/N", or 0 for an
// unsharded run.
func (r *Report) Shards() int {
	for _, run := range r.Runs {
		if _, n, err := ParseShard(run.Shard); err == nil {
			return n
		}
	}
	return 0
}

// dirRecords is what one directory holds.
type dirRecords struct {
	dir       string
	run       *Run
	scenarios []Scenario
	files     []string // base names, beside scenarios
}

// Load reads the output directories of rehearse run: DIR/run.json and
// DIR/timelines/*.json of each. Several directories are merged, and must
// be the shards of one run, each present once, none crashed. Every record
// is checked for its schema and its bounds (MaxSpan, MaxEvents); no link
// is followed, no file is read past MaxRecordSize, and no more than
// MaxLoadSize is read in all.
func Load(dirs ...string) (*Report, error) {
	return LoadContext(context.Background(), dirs...)
}

// LoadContext is Load that stops, with ctx's error, when ctx is done: it
// checks between files.
func LoadContext(ctx context.Context, dirs ...string) (*Report, error) {
	if len(dirs) == 0 {
		return nil, errors.New("load report: no directory given")
	}
	return (&loader{ctx: ctx, limit: MaxLoadSize}).load(dirs)
}

// loader reads directories within the bounds of one Load.
type loader struct {
	ctx   context.Context
	limit int64 // MaxLoadSize, but in tests
	read  int64 // bytes read so far, against limit
}

func (l *loader) load(dirs []string) (*Report, error) {
	var recs []dirRecords
	for _, dir := range dirs {
		d, err := l.loadDir(dir)
		if err != nil {
			return nil, err
		}
		recs = append(recs, d)
	}
	return merge(recs)
}

func (l *loader) loadDir(dir string) (dirRecords, error) {
	d := dirRecords{dir: dir}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return d, fmt.Errorf("load report: %w", err)
	}
	defer root.Close()

	data, err := l.readRecord(root, dir, RunFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return d, err
	default:
		var run Run
		if err := decodeRecord(filepath.Join(dir, RunFile), data, RunSchema, &run); err != nil {
			return d, err
		}
		if _, _, err := ParseShard(run.Shard); run.Shard != "" && err != nil {
			return d, fmt.Errorf("%s: %w", filepath.Join(dir, RunFile), err)
		}
		if err := checkRun(run); err != nil {
			return d, fmt.Errorf("%s: %w", filepath.Join(dir, RunFile), err)
		}
		d.run = &run
	}

	tdir := filepath.Join(dir, TimelinesDir)
	st, err := root.Lstat(TimelinesDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if d.run == nil {
			return d, fmt.Errorf("load report: %s has neither %s nor %s/: not an output directory of rehearse run --out", dir, RunFile, TimelinesDir)
		}
		return d, nil
	case err != nil:
		return d, fmt.Errorf("load report: %w", err)
	case st.Mode()&fs.ModeSymlink != 0:
		return d, fmt.Errorf("load report: %s is a symbolic link: refused, the records must be in the directory itself", tdir)
	case !st.IsDir():
		return d, fmt.Errorf("load report: %s is not a directory", tdir)
	}
	f, err := root.OpenFile(TimelinesDir, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return d, fmt.Errorf("load report: %w", err)
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return d, fmt.Errorf("load report: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), timelineExt) {
			continue // the .txt timelines beside them
		}
		name := filepath.Join(tdir, e.Name())
		data, err := l.readRecord(root, dir, TimelinesDir+"/"+e.Name())
		if err != nil {
			return d, err
		}
		var s Scenario
		if err := decodeRecord(name, data, Schema, &s); err != nil {
			return d, err
		}
		if err := checkScenario(s); err != nil {
			return d, fmt.Errorf("%s: %w", name, err)
		}
		d.scenarios = append(d.scenarios, s)
		d.files = append(d.files, e.Name())
	}
	return d, nil
}

// readRecord is readRecord within the loader's bounds: it stops when the
// context is done, and when the files read add up to more than
// MaxLoadSize.
func (l *loader) readRecord(root *os.Root, dir, name string) ([]byte, error) {
	if err := l.ctx.Err(); err != nil {
		return nil, fmt.Errorf("load report: %w", err)
	}
	data, err := readRecord(root, dir, name)
	if err != nil {
		return nil, err
	}
	if l.read += int64(len(data)); l.read > l.limit {
		return nil, fmt.Errorf("read %s: the records add up to more than the %s a report may read", filepath.Join(dir, filepath.FromSlash(name)), sizeText(l.limit))
	}
	return data, nil
}

// sizeText is n bytes in the largest whole unit: "1 GiB", "64 MiB".
func sizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// readRecord reads one file under root without following a link,
// refusing anything but a regular file of at most MaxRecordSize.
func readRecord(root *os.Root, dir, name string) ([]byte, error) {
	path := filepath.Join(dir, filepath.FromSlash(name))
	st, err := root.Lstat(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("read %s: a symbolic link: refused, the records must be in the directory itself", path)
	}
	f, err := root.OpenFile(name, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", path)
	}
	if st.Size() > MaxRecordSize {
		return nil, fmt.Errorf("read %s: %d bytes, more than the %d MiB a record may have", path, st.Size(), MaxRecordSize>>20)
	}
	// Read into a buffer of the file's size: no copies while it grows.
	buf := bytes.NewBuffer(make([]byte, 0, st.Size()+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxRecordSize+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	data := buf.Bytes()
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("read %s: it grew past %d MiB while being read", path, MaxRecordSize>>20)
	}
	return data, nil
}

// decodeRecord checks the record's schema before anything else: a record
// of another schema is refused rather than half read.
func decodeRecord(path string, data []byte, schema string, v any) error {
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if head.Schema != schema {
		if head.Schema == "" {
			return fmt.Errorf("read %s: no schema, want %q", path, schema)
		}
		return fmt.Errorf("read %s: schema %q, want %q", path, head.Schema, schema)
	}
	// Unmarshal, not a Decoder: a Decoder copies the record into a buffer
	// of its own, and a record may be MaxRecordSize.
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func checkScenario(s Scenario) error {
	switch {
	case s.Feature == "":
		return errors.New("no feature")
	case s.Line < 1:
		return fmt.Errorf("line %d", s.Line)
	case s.Start.IsZero() != s.End.IsZero():
		return fmt.Errorf("%s: start %s, end %s: one without the other", s.Location(), fmtTime(s.Start), fmtTime(s.End))
	case s.End.Before(s.Start):
		return fmt.Errorf("%s: ends (%s) before it starts (%s)", s.Location(), fmtTime(s.End), fmtTime(s.Start))
	case s.End.Sub(s.Start) > MaxSpan:
		return fmt.Errorf("%s: runs from %s to %s, longer than the %d days a scenario may take", s.Location(), fmtTime(s.Start), fmtTime(s.End), MaxSpan/(24*time.Hour))
	case len(s.Events) > MaxEvents:
		return fmt.Errorf("%s: %d events, more than the %d a record may have", s.Location(), len(s.Events), MaxEvents)
	}
	switch s.Status {
	case StatusPassed, StatusFailed, StatusSkipped, StatusUndefined, StatusPending:
	default:
		return fmt.Errorf("%s: unknown status %q", s.Location(), s.Status)
	}
	if s.Start.IsZero() {
		return nil // it never ran: its events (if any) have no axis to lie on
	}
	// Events a little outside the scenario are drawn clamped to it; one
	// far away is a broken clock or a forged record.
	far := func(t time.Time) bool { return !t.IsZero() && (t.Sub(s.Start) > MaxSpan || s.Start.Sub(t) > MaxSpan) }
	for i, e := range s.Events {
		if far(e.Start) || far(e.End) {
			return fmt.Errorf("%s: event %d (%q of %q) from %s to %s: more than the %d days from the scenario's start (%s) an event may lie",
				s.Location(), i+1, e.Kind, e.Actor, fmtTime(e.Start), fmtTime(e.End), MaxSpan/(24*time.Hour), fmtTime(s.Start))
		}
	}
	return nil
}

// checkRun holds a run's times to the bounds of a scenario's.
func checkRun(r Run) error {
	switch {
	case r.Start.IsZero() != r.End.IsZero():
		return fmt.Errorf("start %s, end %s: one without the other", fmtTime(r.Start), fmtTime(r.End))
	case r.End.Before(r.Start):
		return fmt.Errorf("the run ends (%s) before it starts (%s)", fmtTime(r.End), fmtTime(r.Start))
	case r.End.Sub(r.Start) > MaxSpan:
		return fmt.Errorf("the run goes from %s to %s, longer than the %d days a run may take", fmtTime(r.Start), fmtTime(r.End), MaxSpan/(24*time.Hour))
	}
	return nil
}

package report

import (
	"bytes"
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

// MaxRecordSize bounds every file Load reads (run.json, each timeline,
// rehearse.json): the directories may be artifacts from another machine.
const MaxRecordSize = 64 << 20

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

	dirs  []string          // the directories loaded, for Write
	files map[string]string // Location -> the base name of its timeline file
}

// Counts are a report's scenarios by status.
type Counts struct {
	Total, Passed, Failed, Skipped, Undefined, Pending int
}

// Counts counts the scenarios by status.
func (r *Report) Counts() Counts {
	c := Counts{Total: len(r.Scenarios)}
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

// OK reports whether no scenario failed. Undefined and pending scenarios
// fail as in rehearse run, which runs godog strict; skipped ones do not.
func (r *Report) OK() bool {
	c := r.Counts()
	return c.Failed+c.Undefined+c.Pending == 0
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
		if _, n, err := ParseShard(run.Shard); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// ParseShard reads "I/N" (1 <= I <= N); "" is 0, 0.
func ParseShard(s string) (i, n int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	if _, err := fmt.Sscanf(s, "%d/%d", &i, &n); err != nil || fmt.Sprintf("%d/%d", i, n) != s || i < 1 || i > n {
		return 0, 0, fmt.Errorf("shard %q is not I/N with 1 <= I <= N", s)
	}
	return i, n, nil
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
// is checked for its schema; no link is followed and no file is read past
// MaxRecordSize.
func Load(dirs ...string) (*Report, error) {
	if len(dirs) == 0 {
		return nil, errors.New("load report: no directory given")
	}
	var recs []dirRecords
	for _, dir := range dirs {
		d, err := loadDir(dir)
		if err != nil {
			return nil, err
		}
		recs = append(recs, d)
	}
	return merge(recs)
}

func loadDir(dir string) (dirRecords, error) {
	d := dirRecords{dir: dir}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return d, fmt.Errorf("load report: %w", err)
	}
	defer root.Close()

	data, err := readRecord(root, dir, RunFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return d, err
	default:
		var run Run
		if err := decodeRecord(filepath.Join(dir, RunFile), data, RunSchema, &run); err != nil {
			return d, err
		}
		if _, _, err := ParseShard(run.Shard); err != nil {
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
		data, err := readRecord(root, dir, TimelinesDir+"/"+e.Name())
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
	data, err := io.ReadAll(io.LimitReader(f, MaxRecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
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
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

func checkScenario(s Scenario) error {
	switch {
	case s.Feature == "":
		return errors.New("no feature")
	case s.Line < 1:
		return fmt.Errorf("line %d", s.Line)
	}
	switch s.Status {
	case StatusPassed, StatusFailed, StatusSkipped, StatusUndefined, StatusPending:
		return nil
	}
	return fmt.Errorf("%s: unknown status %q", s.Location(), s.Status)
}

package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The report formats Write renders.
const (
	FormatHTML     = "html"
	FormatJUnit    = "junit"
	FormatMarkdown = "markdown"
)

// Formats are the report formats, in the order Write renders them.
var Formats = []string{FormatHTML, FormatJUnit, FormatMarkdown}

// WriteOption configures Write.
type WriteOption func(*writeOptions) error

type writeOptions struct {
	formats []string
}

// WithFormats names the report files Write renders (FormatHTML,
// FormatJUnit, FormatMarkdown); the default is all of them. The records
// (timelines, run.json, rehearse.json) are written regardless.
func WithFormats(formats ...string) WriteOption {
	return func(o *writeOptions) error {
		o.formats = nil
		for _, f := range formats {
			if !slices.Contains(Formats, f) {
				return fmt.Errorf("format %q: want one of %s", f, strings.Join(Formats, ", "))
			}
			if !slices.Contains(o.formats, f) {
				o.formats = append(o.formats, f)
			}
		}
		if len(o.formats) == 0 {
			return errors.New("no format")
		}
		return nil
	}
}

// outFile is one file Write writes, rendered before anything is written.
type outFile struct {
	name string // slash-separated, under the output directory
	data []byte
}

// Write writes the report into outDir: report.html, rehearse.xml (JUnit)
// and summary.md, and, unless outDir is the directory the report was
// loaded from, the records too, so that outDir is itself input for Load:
// timelines/*.json, run.json (the runs merged into one: no shard, every
// scenario selected) and rehearse.json (the cucumber JSON of every input
// directory merged, when each has one). An input directory's records are
// never rewritten; outDir may be one of them only when there is one.
// Everything is rendered before the first file is written, and each file
// is written to a temporary name and renamed into place.
func Write(outDir string, r *Report, opts ...WriteOption) error {
	o := writeOptions{formats: Formats}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	inPlace, err := isInput(outDir, r.dirs)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if inPlace && len(r.dirs) > 1 {
		return fmt.Errorf("write report: %s is one of the directories being merged: write the merged report to a new directory", outDir)
	}

	var files []outFile
	if !inPlace {
		records, err := recordFiles(r)
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		files = append(files, records...)
	}
	for _, f := range o.formats {
		var b bytes.Buffer
		var name string
		switch f {
		case FormatHTML:
			name, err = HTMLFile, HTML(&b, r.Scenarios, HTMLOptions{Runs: r.Runs})
		case FormatJUnit:
			name, err = JUnitFile, JUnit(&b, r)
		case FormatMarkdown:
			name, err = MarkdownFile, Markdown(&b, r)
		}
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		files = append(files, outFile{name: name, data: b.Bytes()})
	}

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	root, err := os.OpenRoot(outDir)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	defer root.Close()
	if !inPlace {
		if err := checkTimelinesDir(root, outDir, files); err != nil {
			return err
		}
		if err := root.MkdirAll(TimelinesDir, 0o755); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	for _, f := range files {
		if err := writeAtomic(root, f.name, f.data); err != nil {
			return fmt.Errorf("write report: %s: %w", filepath.Join(outDir, filepath.FromSlash(f.name)), err)
		}
	}
	return nil
}

// isInput reports whether dir is one of the input directories.
func isInput(dir string, inputs []string) (bool, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, in := range inputs {
		ist, err := os.Stat(in)
		if err != nil {
			return false, err
		}
		if os.SameFile(st, ist) {
			return true, nil
		}
	}
	return false, nil
}

// recordFiles renders the records: one timeline per scenario, the merged
// run, the merged cucumber JSON.
func recordFiles(r *Report) ([]outFile, error) {
	var files []outFile
	names := map[string]bool{}
	for _, s := range r.Scenarios {
		name := uniqueName(names, timelineName(r, s))
		data, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Location(), err)
		}
		files = append(files, outFile{name: TimelinesDir + "/" + name, data: append(data, '\n')})
	}
	if len(r.Runs) > 0 {
		data, err := json.MarshalIndent(mergeRuns(r.Runs), "", "  ")
		if err != nil {
			return nil, err
		}
		files = append(files, outFile{name: RunFile, data: append(data, '\n')})
	}
	cucumber, err := mergeCucumber(r.dirs)
	if err != nil {
		return nil, err
	}
	if cucumber != nil {
		files = append(files, outFile{name: CucumberFile, data: cucumber})
	}
	return files, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// timelineName is the scenario's timeline file name where it was loaded
// from, else FEATURE-LINE-NAME.json as rehearse run names it.
func timelineName(r *Report, s Scenario) string {
	if name, ok := r.files[s.Location()]; ok {
		return name
	}
	base := strings.TrimSuffix(filepath.Base(filepath.FromSlash(s.Feature)), ".feature")
	return fmt.Sprintf("%s-%d-%s%s", base, s.Line, strings.Trim(unsafeName.ReplaceAllString(s.Name, "-"), "-"), timelineExt)
}

// uniqueName keeps two scenarios (same file name and line in two feature
// directories) from overwriting each other.
func uniqueName(taken map[string]bool, name string) string {
	stem := strings.TrimSuffix(name, timelineExt)
	for i := 2; taken[name]; i++ {
		name = stem + "." + strconv.Itoa(i) + timelineExt
	}
	taken[name] = true
	return name
}

// mergeRuns is one run for several: no shard, every scenario selected,
// from the first start to the last end. The shards' digest, total and
// tags carry over; runs of different scenario sets (several unsharded
// runs) get the digest and total of their union. The command line is the
// first run's.
func mergeRuns(runs []Run) Run {
	if len(runs) == 1 {
		return runs[0]
	}
	m := Run{Schema: RunSchema, Digest: runs[0].Digest, Total: runs[0].Total, Tags: runs[0].Tags, Args: runs[0].Args}
	seen := map[string]bool{}
	sameDigest, sameTags := true, true
	var tags []string
	for _, run := range runs {
		for _, loc := range run.Selected {
			if !seen[loc] {
				seen[loc] = true
				m.Selected = append(m.Selected, loc)
			}
		}
		if !run.Start.IsZero() && (m.Start.IsZero() || run.Start.Before(m.Start)) {
			m.Start = run.Start
		}
		if run.End.After(m.End) {
			m.End = run.End
		}
		sameDigest = sameDigest && run.Digest == m.Digest
		sameTags = sameTags && run.Tags == m.Tags
		if run.Tags != "" && !slices.Contains(tags, run.Tags) {
			tags = append(tags, run.Tags)
		}
	}
	if !sameDigest {
		m.Digest, m.Total = digest(m.Selected), len(m.Selected)
	}
	if !sameTags {
		// Any filter means the selection cannot be checked against the
		// timelines; keep every filter, so that stays known.
		m.Tags = "(" + strings.Join(tags, ") || (") + ")"
	}
	if m.Selected == nil {
		m.Selected = []string{}
	}
	return m
}

// digest is the sha256 of the sorted locations, newline-joined.
func digest(locs []string) string {
	sorted := slices.Clone(locs)
	sort.Strings(sorted)
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	return hex.EncodeToString(sum[:])
}

// checkTimelinesDir refuses an output directory whose timelines/ holds
// records this report does not: a report of those mixed with these would
// count scenarios that were not in it. The same merge written again is
// fine.
func checkTimelinesDir(root *os.Root, outDir string, files []outFile) error {
	tdir := filepath.Join(outDir, TimelinesDir)
	st, err := root.Lstat(TimelinesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("write report: %s is not a directory", tdir)
	}
	f, err := root.OpenFile(TimelinesDir, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	ours := map[string]bool{}
	for _, f := range files {
		ours[f.name] = true
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), timelineExt) && !ours[TimelinesDir+"/"+e.Name()] {
			return fmt.Errorf("write report: %s holds %s, which is not in this report: write to a new directory", tdir, e.Name())
		}
	}
	return nil
}

var tmpSeq atomic.Int64

// writeAtomic writes data to a temporary file beside name and renames it
// into place, so a reader never sees half a file.
func writeAtomic(root *os.Root, name string, data []byte) error {
	dir, base := filepath.Split(filepath.FromSlash(name))
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d-%d-%d.tmp", base, os.Getpid(), time.Now().UnixNano(), tmpSeq.Add(1)))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, bytes.NewReader(data))
	err = errors.Join(err, f.Close())
	if err == nil {
		err = root.Rename(tmp, filepath.FromSlash(name))
	}
	if err != nil {
		root.Remove(tmp)
	}
	return err
}

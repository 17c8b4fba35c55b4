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
	"slices"
	"strings"
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
	ctx     context.Context
	notes   io.Writer
}

// WithNotes gives Write a writer for what it did beside writing the
// files, a line each: a stale rehearse.json it removed. The default is
// io.Discard.
func WithNotes(w io.Writer) WriteOption {
	return func(o *writeOptions) error {
		if w == nil {
			return errors.New("nil notes writer")
		}
		o.notes = w
		return nil
	}
}

// WithContext makes Write stop, with ctx's error, when ctx is done: it
// checks before rendering each report and before writing each file, so
// every file is whole, but some may not be written.
func WithContext(ctx context.Context) WriteOption {
	return func(o *writeOptions) error {
		if ctx == nil {
			return errors.New("nil context")
		}
		o.ctx = ctx
		return nil
	}
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

// ctxWriter is a writer that fails, with ctx's error, once ctx is done:
// rendering into it stops at its next write.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
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
// directory merged, when each has one; an earlier rehearse.json in outDir
// is removed otherwise, and WithNotes told). An input directory's records
// are never rewritten; outDir may be one of them only when there is one.
// Everything is rendered before the first file is written, and each file
// is written to a temporary name and renamed into place.
func Write(outDir string, r *Report, opts ...WriteOption) error {
	o := writeOptions{formats: Formats, ctx: context.Background(), notes: io.Discard}
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
	if !inPlace {
		if err := checkNested(outDir, r.dirs); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
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
		if err := o.ctx.Err(); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		var b bytes.Buffer
		var name string
		switch f {
		case FormatHTML:
			name, err = HTMLFile, writeHTML(o.ctx, &b, r.Scenarios, HTMLOptions{Runs: r.Runs})
		case FormatJUnit:
			name, err = JUnitFile, writeJUnit(o.ctx, &b, r)
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
	stale := false
	if !inPlace {
		if err := checkTimelinesDir(root, outDir, files); err != nil {
			return err
		}
		if stale, err = staleCucumber(root, outDir, files); err != nil {
			return err
		}
		if err := root.MkdirAll(TimelinesDir, 0o755); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	for _, f := range files {
		if err := o.ctx.Err(); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		if err := writeAtomic(root, f.name, f.data, 0o644); err != nil {
			return fmt.Errorf("write report: %s: %w", filepath.Join(outDir, filepath.FromSlash(f.name)), err)
		}
	}
	if stale {
		path := filepath.Join(outDir, CucumberFile)
		if err := root.Remove(CucumberFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("write report: remove the stale %s: %w", path, err)
		}
		fmt.Fprintf(o.notes, "removed %s, left by an earlier report: not every directory given has cucumber JSON (rehearse run --format cucumber writes it), so this report has none\n", path)
	}
	return nil
}

// staleCucumber reports whether outDir holds a rehearse.json this report
// does not write (an input directory has none): an earlier report's,
// which would pass for this one's. Write removes it when it is a regular
// file, and refuses anything else there rather than touch it.
func staleCucumber(root *os.Root, outDir string, files []outFile) (bool, error) {
	for _, f := range files {
		if f.name == CucumberFile {
			return false, nil
		}
	}
	st, err := root.Lstat(CucumberFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("write report: %w", err)
	case !st.Mode().IsRegular():
		return false, fmt.Errorf("write report: %s is not a regular file, and this report has no cucumber JSON to replace it with (not every directory given has one): remove it, or write to a new directory", filepath.Join(outDir, CucumberFile))
	}
	return true, nil
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

// checkNested refuses an output directory inside an input directory or
// holding one, links resolved: the report would be written among the
// records it reads (or, loaded again, read its own output as input).
func checkNested(outDir string, inputs []string) error {
	out, err := resolve(outDir)
	if err != nil {
		return err
	}
	for _, in := range inputs {
		rin, err := resolve(in)
		if err != nil {
			return err
		}
		switch {
		case within(out, rin):
			return fmt.Errorf("%s is inside %s, a directory being read: write the report to a directory of its own", outDir, in)
		case within(rin, out):
			return fmt.Errorf("%s holds %s, a directory being read: write the report to a directory of its own", outDir, in)
		}
	}
	return nil
}

// resolve is path made absolute with the links of its longest existing
// part resolved; the rest, which does not exist yet, is joined as given.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var rest []string
	for p := abs; ; {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			slices.Reverse(rest)
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return abs, nil
		}
		rest = append(rest, filepath.Base(p))
		p = parent
	}
}

// within reports whether path is dir or under it (both clean and absolute).
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// recordFiles renders the records: one timeline per scenario, the merged
// run, the merged cucumber JSON.
func recordFiles(r *Report) ([]outFile, error) {
	var files []outFile
	names := map[string]string{} // file name -> Location
	for _, s := range r.Scenarios {
		name := RecordName(s.Feature, s.Line, s.Name) + timelineExt
		if prev, ok := names[name]; ok {
			return nil, fmt.Errorf("%s and %s would both be written as %s/%s", prev, s.Location(), TimelinesDir, name)
		}
		names[name] = s.Location()
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

// mergeRuns is one run for several: no shard, every scenario selected,
// from the first start to the last end. The shards' digest, total and
// tags carry over; runs of different scenario sets (several unsharded
// runs) get the digest and total of their union. The command line is the
// first run's; it is interrupted when any of them was.
func mergeRuns(runs []Run) Run {
	if len(runs) == 1 {
		return runs[0]
	}
	m := Run{Schema: RunSchema, Digest: runs[0].Digest, Total: runs[0].Total, Tags: runs[0].Tags, Args: runs[0].Args}
	seen, seenErr := map[string]bool{}, map[string]bool{}
	sameDigest, sameTags := true, true
	var tags []string
	for _, run := range runs {
		for _, loc := range run.Selected {
			if !seen[loc] {
				seen[loc] = true
				m.Selected = append(m.Selected, loc)
			}
		}
		for _, e := range run.Errors {
			if !seenErr[e] {
				seenErr[e] = true
				m.Errors = append(m.Errors, e)
			}
		}
		if !run.Start.IsZero() && (m.Start.IsZero() || run.Start.Before(m.Start)) {
			m.Start = run.Start
		}
		if run.End.After(m.End) {
			m.End = run.End
		}
		m.Interrupted = m.Interrupted || run.Interrupted
		sameDigest = sameDigest && run.Digest == m.Digest
		sameTags = sameTags && run.Tags == m.Tags
		if run.Tags != "" && !slices.Contains(tags, run.Tags) {
			tags = append(tags, run.Tags)
		}
	}
	if !sameDigest {
		m.Digest, m.Total = Digest(m.Selected), len(m.Selected)
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

package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rehearse/rehearse/harness/report"
)

// earlierRun is what an earlier run left in an output directory and this
// run replaces, each file checked to be rehearse's before anything runs.
type earlierRun struct {
	dir   string
	files []string // slash-separated names under dir, removed in this order
}

// checkOutDir finds what an earlier rehearse run left in the output
// directory dir, which need not exist: its scenario records
// (timelines/*.json of schema report.Schema), the text timeline beside
// each (timelines/NAME.txt whose first line names the record's scenario),
// and, when run.json is a run record (report.RunSchema), run.json and the
// reports (report.html, rehearse.xml, summary.md, rehearse.json). Other
// files are left alone. It refuses, before anything runs or is removed, a
// directory whose run.json or timelines/*.json are not rehearse's, whose
// report files are links or stand without a rehearse run.json, or whose
// timelines is not a directory of its own (a link): the run's reports
// would read them, write over a user's files, or land elsewhere.
func checkOutDir(dir string) (*earlierRun, error) {
	e := &earlierRun{dir: dir}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return e, nil
	case err != nil:
		return nil, fmt.Errorf("--out: %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("--out %s: not a directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	defer root.Close()

	// The report files are written over (godog opens the cucumber file
	// with os.Create, which follows a link): each must be a regular file
	// rehearse wrote, known by a rehearse run.json beside it.
	var present []string
	for _, name := range []string{report.CucumberFile, report.HTMLFile, report.JUnitFile, report.MarkdownFile} {
		st, err := root.Lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Errorf("--out: %w", err)
		case !st.Mode().IsRegular():
			return nil, fmt.Errorf("%s is not a regular file (a link?): rehearse would write through it; choose another --out", filepath.Join(dir, name))
		}
		present = append(present, name)
	}
	var reports []string
	h, err := readHead(root, report.RunFile, false)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if len(present) > 0 {
			return nil, fmt.Errorf("%s is not rehearse's (no rehearse run record, %s, beside it): rehearse would overwrite it; choose another --out", filepath.Join(dir, present[0]), report.RunFile)
		}
	case err != nil:
		return nil, fmt.Errorf("%s is not a rehearse run record (%v): choose another --out", filepath.Join(dir, report.RunFile), err)
	case h.Schema != report.RunSchema:
		return nil, fmt.Errorf("%s is not a rehearse run record (%s): choose another --out", filepath.Join(dir, report.RunFile), schemaText(h.Schema, report.RunSchema))
	default:
		reports = append(present, report.RunFile) // last: a half-cleared directory is still rehearse's
	}

	tl := filepath.Join(dir, report.TimelinesDir)
	st, err = root.Lstat(report.TimelinesDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		e.files = reports
		return e, nil
	case err != nil:
		return nil, fmt.Errorf("--out: %w", err)
	case st.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("%s is a symbolic link: rehearse writes its records into a directory of its own; choose another --out", tl)
	case !st.IsDir():
		return nil, fmt.Errorf("%s is not a directory: choose another --out", tl)
	}
	f, err := root.OpenFile(report.TimelinesDir, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	heads := map[string]recordHead{} // base name -> its record
	for _, ent := range entries {
		base, ok := strings.CutSuffix(ent.Name(), ".json")
		if !ok {
			continue
		}
		name := report.TimelinesDir + "/" + ent.Name()
		h, err := readHead(root, name, true)
		if err == nil && h.Schema != report.Schema {
			err = errors.New(schemaText(h.Schema, report.Schema))
		}
		if err != nil {
			return nil, fmt.Errorf("%s is not a rehearse timeline record (%v): choose another --out", filepath.Join(tl, ent.Name()), err)
		}
		heads[base] = h
		e.files = append(e.files, name)
	}
	for _, ent := range entries {
		base, ok := strings.CutSuffix(ent.Name(), ".txt")
		h, rec := heads[base]
		if !ok || !rec || !ent.Type().IsRegular() {
			continue
		}
		name := report.TimelinesDir + "/" + ent.Name()
		if first, err := firstLineOf(root, name); err == nil && strings.HasPrefix(first, h.textHeader()) {
			e.files = append(e.files, name)
		}
	}
	e.files = append(e.files, reports...)
	return e, nil
}

// clear removes the earlier run's files.
func (e *earlierRun) clear() error {
	if len(e.files) == 0 {
		return nil
	}
	root, err := os.OpenRoot(e.dir)
	if err != nil {
		return fmt.Errorf("remove the earlier run's records: %w", err)
	}
	defer root.Close()
	var errs []error
	for _, name := range e.files {
		if err := root.Remove(filepath.FromSlash(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove the earlier run's %s: %w", filepath.Join(e.dir, filepath.FromSlash(name)), err))
		}
	}
	return errors.Join(errs...)
}

// recordHead is the start of a record: its schema and, for a scenario's,
// which scenario it is.
type recordHead struct {
	Schema, Feature, Name string
	Line                  int
}

// textHeader is how the first line of the scenario's text timeline starts
// (World.writeTimeline, Config.recordUnrun).
func (h recordHead) textHeader() string {
	return "# " + h.Feature + ":" + strconv.Itoa(h.Line) + " " + h.Name + " ("
}

// schemaText says what schema a file has when it is not want.
func schemaText(got, want string) string {
	if got == "" {
		return fmt.Sprintf("no schema, want %q", want)
	}
	return fmt.Sprintf("schema %q, want %q", got, want)
}

// readHead reads the top-level schema of a JSON record under root and,
// when scenario is set, its feature, line and name, stopping once it has
// them: no link is followed, only a regular file is read, and no more of
// it than report.MaxRecordSize.
func readHead(root *os.Root, name string, scenario bool) (recordHead, error) {
	var h recordHead
	st, err := root.Lstat(filepath.FromSlash(name))
	if err != nil {
		return h, err
	}
	if !st.Mode().IsRegular() {
		return h, errors.New("not a regular file")
	}
	f, err := root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return h, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return h, errors.Join(err, errors.New("not a regular file"))
	}
	dec := json.NewDecoder(io.LimitReader(f, report.MaxRecordSize))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return h, errors.New("not a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return h, errors.New("not a JSON object")
		}
		var v any = &json.RawMessage{}
		switch t {
		case "schema":
			v = &h.Schema
		case "feature":
			v = &h.Feature
		case "name":
			v = &h.Name
		case "line":
			v = &h.Line
		}
		if err := dec.Decode(v); err != nil {
			return h, fmt.Errorf("%v: %w", t, err)
		}
		if h.Schema != "" && (!scenario || h.Feature != "" && h.Name != "" && h.Line != 0) {
			break
		}
	}
	return h, nil
}

// firstLineOf reads the first line of a regular file under root, without
// following a link and reading no more than a line may hold.
func firstLineOf(root *os.Root, name string) (string, error) {
	f, err := root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "", errors.Join(err, errors.New("not a regular file"))
	}
	buf := make([]byte, 64<<10)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	return line, nil
}

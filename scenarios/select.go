package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing/fstest"

	gherkin "github.com/cucumber/gherkin/go/v42"
	messages "github.com/cucumber/messages/go/v34"

	"github.com/rehearse/rehearse/harness/report"
)

// maxFeatureSize bounds what Select reads of one feature file.
const maxFeatureSize = 8 << 20

// Shard is one of N disjoint parts of a run; the zero value is the whole run.
type Shard struct{ Index, Count int } // 1-based Index

// ParseShard parses "I/N" with 1 <= I <= N (report.ParseShard, which
// reads run records, is the one parser).
func ParseShard(s string) (Shard, error) {
	i, n, err := report.ParseShard(s)
	if err != nil {
		return Shard{}, fmt.Errorf("%w, such as 2/3", err)
	}
	return Shard{Index: i, Count: n}, nil
}

// digits reports whether s is a non-empty run of ASCII digits.
func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// String is "I/N", or "" for the whole run.
func (s Shard) String() string {
	if s.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Pickle is one runnable scenario: a plain scenario or an outline's example row.
type Pickle struct {
	File string   // the feature file as given (cleaned, slash-separated relative to cwd when possible)
	Line int      // scenario keyword line, or the example row's line
	Name string   //
	Tags []string // with their @, the feature's, rule's and examples' too, as godog's tag filter sees them

	feature string // the Feature: title
	steps   int    // pickle steps, backgrounds' included
}

// Key is File:Line, what shards and reproduce commands name a pickle by.
func (p Pickle) Key() string { return p.File + ":" + strconv.Itoa(p.Line) }

// LineError is a FILE:LINE argument whose line selects nothing.
type LineError struct {
	File   string
	Line   int
	Reason string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason) }

// Selection is what a run will execute.
type Selection struct {
	FS       fs.FS           // what godog reads (godog.Options.FS), unselected scenarios commented out
	Paths    []string        // godog.Options.Paths: names in FS of the files that have a selected pickle; empty means nothing to run
	All      []Pickle        // every pickle of the given paths (after FILE:LINE narrowing and tags), before sharding, in file/line order
	Selected []Pickle        // this shard's pickles, in file/line order
	Shard    Shard           // the shard Selected is
	Errors   []*FeatureError // feature files that could not be read or parsed; they are left out

	real map[string]string // FS name -> Pickle.File
}

// RealPath turns a name in FS (godog's Scenario.Uri) back into the feature
// file as given (Pickle.File). Other names come back unchanged.
func (s *Selection) RealPath(fsName string) string {
	if p, ok := s.real[fsName]; ok {
		return p
	}
	return fsName
}

// Digest identifies the set of pickles the shards split: sha256 hex of the
// sorted keys of All, newline-joined (report.Digest). Shards of one run
// share it.
func (s *Selection) Digest() string {
	keys := make([]string, len(s.All))
	for i, p := range s.All {
		keys[i] = p.Key()
	}
	return report.Digest(keys)
}

// Select resolves the arguments of rehearse run (feature files, directories,
// FILE:LINE and FILE:LINE:LINE; default "features") into the pickles to run,
// keeps those that match the tag expression tags (godog's syntax, see
// MatchTags; "" keeps all), and of those the ones of shard. A line selects
// the scenario or example row there; any line inside a scenario selects the
// scenario, a line of an Examples block outside its rows selects all its
// rows. Tags apply before sharding, so that the shards of a tagged run are
// even and share its digest.
func Select(args []string, shard Shard, tags string) (*Selection, error) {
	if len(args) == 0 {
		args = []string{"features"}
	}
	if shard.Count != 0 && (shard.Index < 1 || shard.Index > shard.Count) {
		return nil, fmt.Errorf("shard %d/%d: want 1 <= I <= N", shard.Index, shard.Count)
	}
	if err := CheckTags(tags); err != nil {
		return nil, err
	}
	// Files by Pickle.File; nil lines means the whole file.
	want := map[string]map[int]bool{}
	var order []string
	for _, arg := range args {
		path, lines, err := splitLines(arg)
		if err != nil {
			return nil, err
		}
		files, err := ExpandPaths([]string{path})
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			name := displayPath(f)
			cur, seen := want[name]
			if !seen {
				order = append(order, name)
			}
			switch {
			case lines == nil || (seen && cur == nil):
				want[name] = nil
			default:
				if cur == nil {
					cur = map[int]bool{}
				}
				for _, l := range lines {
					cur[l] = true
				}
				want[name] = cur
			}
		}
	}
	sort.Strings(order)

	sel := &Selection{Shard: shard, real: map[string]string{}}
	parsed := map[string]*featureIndex{}
	var lineErrs []error
	for _, name := range order {
		fx, ferr := indexFeature(name)
		if ferr != nil {
			sel.Errors = append(sel.Errors, ferr)
			continue
		}
		parsed[name] = fx
		lines := want[name]
		if lines == nil {
			sel.All = append(sel.All, fx.pickles...)
			continue
		}
		chosen := map[int]bool{}
		for _, l := range sortedLines(lines) {
			got, err := fx.resolve(l)
			if err != nil {
				lineErrs = append(lineErrs, err)
				continue
			}
			for _, g := range got {
				chosen[g] = true
			}
		}
		for _, p := range fx.pickles {
			if chosen[p.Line] {
				sel.All = append(sel.All, p)
			}
		}
	}
	if len(lineErrs) > 0 {
		return nil, errors.Join(lineErrs...)
	}
	if tags != "" {
		var kept []Pickle
		for _, p := range sel.All {
			if MatchTags(tags, p.Tags) {
				kept = append(kept, p)
			}
		}
		sel.All = kept
	}

	sel.Selected = shardOf(sel.All, shard)
	byFile := map[string]map[int]bool{}
	for _, p := range sel.Selected {
		if byFile[p.File] == nil {
			byFile[p.File] = map[int]bool{}
		}
		byFile[p.File][p.Line] = true
	}
	mfs := fstest.MapFS{}
	for _, name := range order {
		keep := byFile[name]
		if keep == nil {
			continue
		}
		content, err := parsed[name].rewrite(keep)
		if err != nil {
			return nil, err
		}
		fsName := fsNameFor(name, mfs)
		mfs[fsName] = &fstest.MapFile{Data: content, Mode: 0o444}
		sel.real[fsName] = name
		sel.Paths = append(sel.Paths, fsName)
	}
	sel.FS = mfs
	return sel, nil
}

// splitLines splits "FILE:LINE:LINE" into the file and its lines; a path
// that exists as given has no lines.
func splitLines(arg string) (string, []int, error) {
	if _, err := os.Stat(arg); err == nil {
		return arg, nil, nil
	}
	path, lines := arg, []int(nil)
	for {
		i := strings.LastIndexByte(path, ':')
		if i < 0 || !digits(path[i+1:]) {
			break
		}
		n, err := strconv.Atoi(path[i+1:])
		if err != nil { // more digits than an int holds
			return "", nil, fmt.Errorf("%s: line past the end of the file", arg)
		}
		lines = append([]int{n}, lines...)
		path = path[:i]
	}
	if lines == nil {
		return arg, nil, nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return "", nil, fmt.Errorf("%s: a line number needs a feature file, not a directory", arg)
	}
	return path, lines, nil
}

func sortedLines(m map[int]bool) []int {
	var ls []int
	for l := range m {
		ls = append(ls, l)
	}
	sort.Ints(ls)
	return ls
}

// displayPath is a file as Pickle.File names it: cleaned, slash-separated,
// relative to the working directory when it lies below it.
func displayPath(p string) string {
	p = filepath.Clean(p)
	if filepath.IsAbs(p) {
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				p = rel
			}
		}
	}
	return filepath.ToSlash(p)
}

// fsNameFor is the name of a feature file in the FS godog reads: the file
// itself when it is a valid fs.FS name (so godog prints what the user typed),
// else a name under "_ext/" (absolute paths, paths above the working directory).
func fsNameFor(file string, taken fstest.MapFS) string {
	if fs.ValidPath(file) && !strings.HasPrefix(file, "_ext/") {
		if _, dup := taken[file]; !dup {
			return file
		}
	}
	var parts []string
	for _, el := range strings.Split(file, "/") {
		switch el {
		case "", ".":
		case "..":
			parts = append(parts, "__")
		default:
			parts = append(parts, el)
		}
	}
	base := strings.Join(parts, "/")
	for n := 1; ; n++ {
		name := "_ext/" + base
		if n > 1 {
			name = fmt.Sprintf("_ext/%d/%s", n, base)
		}
		if _, dup := taken[name]; !dup && fs.ValidPath(name) {
			return name
		}
	}
}

// shardOf deals pickles round-robin in the order of the FNV-1a 64 hash of
// their keys (ties by key), and keeps shard's deal in file/line order.
func shardOf(all []Pickle, shard Shard) []Pickle {
	if shard.Count == 0 {
		return append([]Pickle(nil), all...)
	}
	type hashed struct {
		h   uint64
		key string
		i   int
	}
	hs := make([]hashed, len(all))
	for i, p := range all {
		f := fnv.New64a()
		io.WriteString(f, p.Key())
		hs[i] = hashed{f.Sum64(), p.Key(), i}
	}
	sort.Slice(hs, func(a, b int) bool {
		if hs[a].h != hs[b].h {
			return hs[a].h < hs[b].h
		}
		return hs[a].key < hs[b].key
	})
	mine := make([]bool, len(all))
	for i, h := range hs {
		if i%shard.Count+1 == shard.Index {
			mine[h.i] = true
		}
	}
	var out []Pickle
	for i, p := range all {
		if mine[i] {
			out = append(out, p)
		}
	}
	return out
}

// featureIndex is a parsed feature file with the line spans of its scenarios.
type featureIndex struct {
	file      string
	lines     []string
	pickles   []Pickle // in line order
	scenarios []*scenarioSpan
}

// scenarioSpan is a scenario's lines, from its first tag to its last
// non-blank, non-comment line.
type scenarioSpan struct {
	start, end, keyword int
	examples            []examplesSpan
	pickles             []int // lines of its pickles
}

// examplesSpan is an Examples block's lines, from its first tag to its last row.
type examplesSpan struct{ start, end int }

func indexFeature(file string) (*featureIndex, *FeatureError) {
	data, err := readLimited(filepath.FromSlash(file))
	if err != nil {
		return nil, &FeatureError{File: file, Err: err}
	}
	doc, err := gherkin.ParseGherkinDocument(bytes.NewReader(data), (&messages.Incrementing{}).NewId)
	if err != nil {
		// Let parseFeature word the syntax error the way the run always has.
		if _, perr := parseFeature(filepath.FromSlash(file)); perr != nil {
			if fe, ok := perr.(*FeatureError); ok {
				fe.File = file
				return nil, fe
			}
		}
		return nil, &FeatureError{File: file, Err: fmt.Errorf("gherkin syntax error: %w", err)}
	}
	fx := &featureIndex{file: file, lines: strings.Split(string(data), "\n")}
	fx.index(doc)
	return fx, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFeatureSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFeatureSize {
		return nil, fmt.Errorf("larger than %d MiB, not a feature file", maxFeatureSize>>20)
	}
	return data, nil
}

// index records the pickles and scenario spans of doc.
func (fx *featureIndex) index(doc *messages.GherkinDocument) {
	if doc.Feature == nil {
		return
	}
	// Every block (background, scenario, rule) starts at its first tag or
	// keyword; a scenario ends before the next block starts.
	var starts []int
	byID := map[string]*scenarioSpan{}
	blockStart := func(loc *messages.Location, tags []*messages.Tag) int {
		s := int(loc.Line)
		for _, t := range tags {
			s = min(s, int(t.Location.Line))
		}
		starts = append(starts, s)
		return s
	}
	var walk func([]*messages.FeatureChild)
	walk = func(children []*messages.FeatureChild) {
		for _, c := range children {
			switch {
			case c.Background != nil:
				blockStart(c.Background.Location, nil)
			case c.Rule != nil:
				blockStart(c.Rule.Location, c.Rule.Tags)
				var rc []*messages.FeatureChild
				for _, r := range c.Rule.Children {
					rc = append(rc, &messages.FeatureChild{Background: r.Background, Scenario: r.Scenario})
				}
				walk(rc)
			case c.Scenario != nil:
				sc := c.Scenario
				sp := &scenarioSpan{start: blockStart(sc.Location, sc.Tags), keyword: int(sc.Location.Line)}
				for _, ex := range sc.Examples {
					es := examplesSpan{start: int(ex.Location.Line), end: int(ex.Location.Line)}
					for _, t := range ex.Tags {
						es.start = min(es.start, int(t.Location.Line))
					}
					if ex.TableHeader != nil {
						es.end = int(ex.TableHeader.Location.Line)
					}
					for _, row := range ex.TableBody {
						es.end = max(es.end, int(row.Location.Line))
					}
					sp.examples = append(sp.examples, es)
				}
				byID[sc.Id] = sp
				fx.scenarios = append(fx.scenarios, sp)
			}
		}
	}
	walk(doc.Feature.Children)
	sort.Ints(starts)
	for _, sp := range fx.scenarios {
		next := len(fx.lines) + 1
		if i := sort.SearchInts(starts, sp.keyword+1); i < len(starts) {
			next = starts[i]
		}
		sp.end = sp.keyword
		for l := next - 1; l > sp.keyword; l-- {
			if t := strings.TrimSpace(fx.lines[l-1]); t != "" && !strings.HasPrefix(t, "#") {
				sp.end = l
				break
			}
		}
	}
	for _, p := range gherkin.Pickles(*doc, fx.file, (&messages.Incrementing{}).NewId) {
		line := int(p.Location.Line)
		pk := Pickle{File: fx.file, Line: line, Name: p.Name, feature: doc.Feature.Name, steps: len(p.Steps)}
		for _, t := range p.Tags {
			pk.Tags = append(pk.Tags, t.Name)
		}
		fx.pickles = append(fx.pickles, pk)
		if sp := byID[p.AstNodeIds[0]]; sp != nil {
			sp.pickles = append(sp.pickles, line)
		}
	}
	sort.SliceStable(fx.pickles, func(a, b int) bool { return fx.pickles[a].Line < fx.pickles[b].Line })
}

// resolve returns the lines of the pickles that line selects.
func (fx *featureIndex) resolve(line int) ([]int, error) {
	none := &LineError{File: fx.file, Line: line, Reason: "no scenario or example row at this line"}
	for _, sp := range fx.scenarios {
		if line < sp.start || line > sp.end {
			continue
		}
		got := sp.pickles
		for _, ex := range sp.examples {
			if line < ex.start || line > ex.end {
				continue
			}
			got = nil
			for _, p := range sp.pickles {
				if p == line {
					return []int{line}, nil
				}
				if p >= ex.start && p <= ex.end {
					got = append(got, p)
				}
			}
		}
		if len(got) == 0 {
			none.Reason = "no example rows to run at this line"
			return nil, none
		}
		return got, nil
	}
	return nil, none
}

// rewrite returns the file with every scenario and example row whose pickle
// is not in keep turned into comments, line for line, and checks that gherkin
// finds exactly the kept pickles in it.
func (fx *featureIndex) rewrite(keep map[int]bool) ([]byte, error) {
	comment := map[int]bool{}
	for _, sp := range fx.scenarios {
		kept := 0
		for _, p := range sp.pickles {
			if keep[p] {
				kept++
			}
		}
		switch {
		case kept == 0:
			for l := sp.start; l <= sp.end; l++ {
				comment[l] = true
			}
		case len(sp.examples) > 0:
			for _, p := range sp.pickles {
				if !keep[p] {
					comment[p] = true
				}
			}
		}
	}
	out := make([]string, len(fx.lines))
	for i, l := range fx.lines {
		if comment[i+1] {
			l = "#" + l
		}
		out[i] = l
	}
	content := []byte(strings.Join(out, "\n"))

	doc, err := gherkin.ParseGherkinDocument(bytes.NewReader(content), (&messages.Incrementing{}).NewId)
	if err != nil {
		return nil, fmt.Errorf("select scenarios of %s: the file with unselected scenarios commented out does not parse: %w", fx.file, err)
	}
	var got []int
	for _, p := range gherkin.Pickles(*doc, fx.file, (&messages.Incrementing{}).NewId) {
		got = append(got, int(p.Location.Line))
	}
	sort.Ints(got)
	if want := sortedLines(keep); fmt.Sprint(got) != fmt.Sprint(want) {
		return nil, fmt.Errorf("select scenarios of %s: the file with unselected scenarios commented out has pickles at lines %v, want %v", fx.file, got, want)
	}
	return content, nil
}

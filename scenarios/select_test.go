package scenarios

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	gherkin "github.com/cucumber/gherkin/go/v42"
	"github.com/cucumber/godog"
	messages "github.com/cucumber/messages/go/v34"
)

const mixed = "testdata/select/mixed.feature"

// mixedPickles are the pickles of testdata/select/mixed.feature by line.
var mixedPickles = []int{9, 28, 30, 35, 37, 44, 52, 53}

func lines(ps []Pickle) []int {
	var ls []int
	for _, p := range ps {
		ls = append(ls, p.Line)
	}
	return ls
}

func keys(ps []Pickle) []string {
	var ks []string
	for _, p := range ps {
		ks = append(ks, p.Key())
	}
	return ks
}

func TestSelectByLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []int
	}{
		{"the whole file", []string{mixed}, mixedPickles},
		{"a plain scenario's keyword line", []string{mixed + ":9"}, []int{9}},
		{"a scenario's tag line", []string{mixed + ":8"}, []int{9}},
		{"a scenario's description", []string{mixed + ":10"}, []int{9}},
		{"a step line", []string{mixed + ":11"}, []int{9}},
		{"a docstring line", []string{mixed + ":14"}, []int{9}},
		{"a docstring's closing line", []string{mixed + ":16"}, []int{9}},
		{"an outline's keyword line: every row", []string{mixed + ":20"}, []int{28, 30, 35}},
		{"a step table row of an outline", []string{mixed + ":24"}, []int{28, 30, 35}},
		{"a blank line inside an outline", []string{mixed + ":25"}, []int{28, 30, 35}},
		{"an example row", []string{mixed + ":28"}, []int{28}},
		{"an example row after a comment in the table", []string{mixed + ":30"}, []int{30}},
		{"an Examples keyword line: its rows", []string{mixed + ":26"}, []int{28, 30}},
		{"an Examples header line: its rows", []string{mixed + ":27"}, []int{28, 30}},
		{"a comment inside an Examples table: its rows", []string{mixed + ":29"}, []int{28, 30}},
		{"an Examples tag line: its rows", []string{mixed + ":32"}, []int{35}},
		{"an Examples header in a second block", []string{mixed + ":34"}, []int{35}},
		{"a scenario without steps", []string{mixed + ":37"}, []int{37}},
		{"a step of a scenario in a rule", []string{mixed + ":45"}, []int{44}},
		{"an outline row in a rule", []string{mixed + ":53"}, []int{53}},
		{"an outline in a rule: every row", []string{mixed + ":47"}, []int{52, 53}},
		{"several lines of one file", []string{mixed + ":53:9:30"}, []int{9, 30, 53}},
		{"several FILE:LINE arguments", []string{mixed + ":52", mixed + ":9"}, []int{9, 52}},
		{"the same line twice", []string{mixed + ":9", mixed + ":11"}, []int{9}},
		{"a whole file and one of its lines", []string{mixed + ":9", mixed}, mixedPickles},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := Select(tt.args, Shard{}, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := lines(sel.Selected); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("selected lines %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(sel.All, sel.Selected) {
				t.Errorf("without a shard All %v and Selected %v differ", keys(sel.All), keys(sel.Selected))
			}
			if !reflect.DeepEqual(sel.Paths, []string{mixed}) {
				t.Errorf("paths %v, want [%s]", sel.Paths, mixed)
			}
			checkCommented(t, sel, mixed, tt.want)
		})
	}
}

func TestSelectBadLine(t *testing.T) {
	for _, line := range []int{0, 1, 2, 3, 5, 6, 7, 17, 18, 19, 36, 38, 39, 40, 41, 42, 46, 54, 999} {
		t.Run(fmt.Sprint(line), func(t *testing.T) {
			sel, err := Select([]string{fmt.Sprintf("%s:%d", mixed, line)}, Shard{}, "")
			want := fmt.Sprintf("%s:%d: no scenario or example row at this line", mixed, line)
			if err == nil || err.Error() != want {
				t.Fatalf("error %v, want %q", err, want)
			}
			if sel != nil {
				t.Errorf("a bad line returned a selection")
			}
		})
	}
	// Every bad line is named, and a good one does not hide them.
	_, err := Select([]string{mixed + ":3:9:41"}, Shard{}, "")
	want := mixed + ":3: no scenario or example row at this line\n" + mixed + ":41: no scenario or example row at this line"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestSelectArgumentErrors(t *testing.T) {
	for _, tt := range []struct{ arg, want string }{
		{"testdata/select:3", "testdata/select:3: a line number needs a feature file, not a directory"},
		{"testdata/select/missing.feature:3", "testdata/select/missing.feature: stat testdata/select/missing.feature: no such file or directory"},
	} {
		if _, err := Select([]string{tt.arg}, Shard{}, ""); err == nil || err.Error() != tt.want {
			t.Errorf("%s: error %v, want %q", tt.arg, err, tt.want)
		}
	}
	if _, err := Select(nil, Shard{Index: 4, Count: 3}, ""); err == nil || !strings.Contains(err.Error(), "4/3") {
		t.Errorf("shard 4/3: error %v", err)
	}
}

// checkCommented checks that the file in sel.FS keeps every line of the
// original, commented or not, and that gherkin finds exactly want in it with
// the pickles' original names and steps.
func checkCommented(t *testing.T, sel *Selection, file string, want []int) {
	t.Helper()
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var fsName string
	for _, p := range sel.Paths {
		if sel.RealPath(p) == file {
			fsName = p
		}
	}
	got, err := fs.ReadFile(sel.FS, fsName)
	if err != nil {
		t.Fatalf("%s (as %q) not in the selection's FS: %v", file, fsName, err)
	}
	ol, gl := strings.Split(string(orig), "\n"), strings.Split(string(got), "\n")
	if len(ol) != len(gl) {
		t.Fatalf("%d lines, want %d", len(gl), len(ol))
	}
	for i := range ol {
		if gl[i] != ol[i] && gl[i] != "#"+ol[i] {
			t.Errorf("line %d: %q is neither %q nor its comment", i+1, gl[i], ol[i])
		}
	}
	all := picklesOf(t, orig)
	kept := picklesOf(t, got)
	if l := pickleLines(kept); !reflect.DeepEqual(l, want) {
		t.Fatalf("the commented file has pickles at %v, want %v:\n%s", l, want, got)
	}
	for _, k := range kept {
		o := all[int(k.Location.Line)]
		if k.Name != o.Name || fmt.Sprint(stepTexts(k)) != fmt.Sprint(stepTexts(o)) || fmt.Sprint(tagNames(k)) != fmt.Sprint(tagNames(o)) {
			t.Errorf("line %d: pickle %q %v %v, want %q %v %v", k.Location.Line, k.Name, stepTexts(k), tagNames(k), o.Name, stepTexts(o), tagNames(o))
		}
	}
}

func picklesOf(t *testing.T, content []byte) map[int]*messages.Pickle {
	t.Helper()
	doc, err := gherkin.ParseGherkinDocument(bytes.NewReader(content), (&messages.Incrementing{}).NewId)
	if err != nil {
		t.Fatalf("does not parse: %v\n%s", err, content)
	}
	m := map[int]*messages.Pickle{}
	for _, p := range gherkin.Pickles(*doc, "x", (&messages.Incrementing{}).NewId) {
		m[int(p.Location.Line)] = p
	}
	return m
}

func pickleLines(m map[int]*messages.Pickle) []int {
	var ls []int
	for l := range m {
		ls = append(ls, l)
	}
	sort.Ints(ls)
	return ls
}

func stepTexts(p *messages.Pickle) []string {
	var s []string
	for _, st := range p.Steps {
		s = append(s, st.Text)
		if a := st.Argument; a != nil && a.DocString != nil {
			s = append(s, a.DocString.Content)
		}
	}
	return s
}

func tagNames(p *messages.Pickle) []string {
	var s []string
	for _, tg := range p.Tags {
		s = append(s, tg.Name)
	}
	return s
}

// The commented-out file keeps backgrounds (the feature's and a rule's), a
// selected scenario's docstring and tags, and Gherkin accepts what the
// rewrite relies on: comments inside Examples tables, a commented docstring,
// an Examples block whose rows are all comments.
func TestSelectKeepsBackgroundsTagsAndDocstrings(t *testing.T) {
	sel, err := Select([]string{mixed + ":53:35"}, Shard{}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Rows 28 and 30 are all the rows of "Examples: small": it stays, empty.
	checkCommented(t, sel, mixed, []int{35, 53})
	got, err := fs.ReadFile(sel.FS, mixed)
	if err != nil {
		t.Fatal(err)
	}
	ps := picklesOf(t, got)
	if want := []string{`the step "background"`, `the step "rule background"`, `the step "rule row 5"`}; fmt.Sprint(stepTexts(ps[53])) != fmt.Sprint(want) {
		t.Errorf("rule row steps %q, want %q", stepTexts(ps[53]), want)
	}
	if want := []string{"@feature-tag", "@big"}; fmt.Sprint(tagNames(ps[35])) != fmt.Sprint(want) {
		t.Errorf("row tags %v, want %v", tagNames(ps[35]), want)
	}
	fl := strings.Split(string(got), "\n")
	for _, l := range []int{8, 9, 13, 14, 15, 16, 28, 30, 37, 44, 45, 52} {
		if !strings.HasPrefix(fl[l-1], "#") {
			t.Errorf("line %d not commented out: %q", l, fl[l-1])
		}
	}
	for _, l := range []int{5, 6, 20, 26, 27, 29, 32, 33, 35, 39, 40, 41, 42, 47, 53} {
		if fl[l-1] != strings.Split(readFile(t, mixed), "\n")[l-1] {
			t.Errorf("line %d changed: %q", l, fl[l-1])
		}
	}

	sel, err = Select([]string{mixed + ":9"}, Shard{}, "")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = fs.ReadFile(sel.FS, mixed)
	ps = picklesOf(t, got)
	if want := []string{`the step "background"`, `the step "plain"`, "the text:", "Scenario: not a scenario, a docstring line\n@not-a-tag"}; fmt.Sprint(stepTexts(ps[9])) != fmt.Sprint(want) {
		t.Errorf("plain scenario steps %q, want %q", stepTexts(ps[9]), want)
	}
	if want := []string{"@feature-tag", "@plain", "@second-tag"}; fmt.Sprint(tagNames(ps[9])) != fmt.Sprint(want) {
		t.Errorf("plain scenario tags %v, want %v", tagNames(ps[9]), want)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSelectDirectoryAndFilesWithoutSelection(t *testing.T) {
	sel, err := Select([]string{"testdata/select"}, Shard{}, "")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range mixedPickles {
		want = append(want, fmt.Sprintf("%s:%d", mixed, l))
	}
	want = append(want, "testdata/select/other.feature:3")
	if got := keys(sel.All); !reflect.DeepEqual(got, want) {
		t.Errorf("all %v, want %v", got, want)
	}
	if got := sel.All[len(sel.All)-1].Name; got != "The only scenario of another file" {
		t.Errorf("name %q", got)
	}
	if want := []string{mixed, "testdata/select/other.feature"}; !reflect.DeepEqual(sel.Paths, want) {
		t.Errorf("paths %v, want %v", sel.Paths, want)
	}

	// A file with no selected pickle is not in the run at all.
	sel, err = Select([]string{"testdata/select", mixed + ":9"}, Shard{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.All) != len(mixedPickles)+1 {
		t.Errorf("a directory and a line of one of its files: %v", keys(sel.All))
	}
	sel, err = Select([]string{mixed + ":9"}, Shard{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(sel.FS, "testdata/select/other.feature"); err == nil {
		t.Errorf("a file without selected scenarios is in the FS")
	}
}

// Feature files that cannot be read or parsed are reported and left out;
// the others are selected.
func TestSelectFeatureErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a-good.feature"), []byte("Feature: good\n  Scenario: fine\n    Given the step \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b-syntax.feature"), []byte("Feature: bad\n  Scenario: s\n    Given the step \"x\"\n  not gherkin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := append([]byte("Feature: big\n"), bytes.Repeat([]byte("# padding\n"), maxFeatureSize/10+1)...)
	if err := os.WriteFile(filepath.Join(dir, "c-big.feature"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	sel, err := Select([]string{dir}, Shard{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.All) != 1 || sel.All[0].Name != "fine" {
		t.Errorf("all %v, want the one good scenario", sel.All)
	}
	if len(sel.Errors) != 2 {
		t.Fatalf("errors %v, want 2", sel.Errors)
	}
	if e := sel.Errors[0].Error(); !strings.Contains(e, "b-syntax.feature:4: expected:") {
		t.Errorf("syntax error %q does not name its line", e)
	}
	if e := sel.Errors[1].Error(); !strings.HasSuffix(e, "c-big.feature: larger than 8 MiB, not a feature file") {
		t.Errorf("size error %q", e)
	}
}

// Paths outside the working directory get valid fs.FS names that RealPath
// maps back to the path as given.
func TestSelectPathsOutsideTheWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "outside.feature")
	if err := os.WriteFile(abs, []byte("Feature: outside\n  Scenario: far\n    Given the step \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	here, err := filepath.Abs("testdata/select/other.feature")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ arg, file string }{
		{abs + ":2", filepath.ToSlash(abs)},
		{"../scenarios/testdata/select/other.feature", "../scenarios/testdata/select/other.feature"},
		{"./testdata/select/../select/other.feature:3", "testdata/select/other.feature"},
		{here, "testdata/select/other.feature"},
	} {
		sel, err := Select([]string{tt.arg}, Shard{}, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(sel.Selected) != 1 || sel.Selected[0].File != tt.file {
			t.Fatalf("%s: selected %v, want one pickle of %s", tt.arg, sel.Selected, tt.file)
		}
		if len(sel.Paths) != 1 || !fs.ValidPath(sel.Paths[0]) {
			t.Fatalf("%s: paths %q", tt.arg, sel.Paths)
		}
		if got := sel.RealPath(sel.Paths[0]); got != tt.file {
			t.Errorf("%s: RealPath(%q) = %q, want %q", tt.arg, sel.Paths[0], got, tt.file)
		}
		if _, err := fs.ReadFile(sel.FS, sel.Paths[0]); err != nil {
			t.Errorf("%s: %v", tt.arg, err)
		}
	}
}

func ExampleSelect() {
	sel, err := Select([]string{"testdata/select/mixed.feature:30:44", "testdata/select/other.feature"}, Shard{}, "")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range sel.Selected {
		fmt.Printf("%s %q\n", p.Key(), p.Name)
	}
	fmt.Println(sel.Paths)
	// Output:
	// testdata/select/mixed.feature:30 "An outline row 2"
	// testdata/select/mixed.feature:44 "A scenario in a rule"
	// testdata/select/other.feature:3 "The only scenario of another file"
	// [testdata/select/mixed.feature testdata/select/other.feature]
}

func ExampleParseShard() {
	s, err := ParseShard("2/3")
	fmt.Println(s.Index, s.Count, s, err)
	_, err = ParseShard("4/3")
	fmt.Println(err)
	// Output:
	// 2 3 2/3 <nil>
	// shard "4/3": want I/N with 1 <= I <= N, such as 2/3
}

func TestParseShard(t *testing.T) {
	for _, s := range []string{"1/1", "1/3", "3/3", "12/40"} {
		sh, err := ParseShard(s)
		if err != nil || sh.String() != s {
			t.Errorf("ParseShard(%q) = %v, %v", s, sh, err)
		}
	}
	for _, s := range []string{"0/3", "4/3", "a/b", "3", "", "1/0", "0/0", "-1/3", "+1/3", "1/3/5", " 1/3", "1/ 3", "1.0/3", "1/99999999999999999999"} {
		sh, err := ParseShard(s)
		want := fmt.Sprintf("shard %q: want I/N with 1 <= I <= N, such as 2/3", s)
		if len(s) > 12 {
			want = fmt.Sprintf("shard %q: N has 20 digits, more than the 9 a shard number may have, such as 2/3", s)
		}
		if err == nil || err.Error() != want {
			t.Errorf("ParseShard(%q) = %v, %v; want error %q", s, sh, err, want)
		}
	}
	if (Shard{}).String() != "" {
		t.Errorf("the whole run is %q", Shard{}.String())
	}
}

// Three shards of the bundled features are disjoint, together are every
// scenario, and differ in size by at most one.
func TestShardBundledFeatures(t *testing.T) {
	t.Chdir("..")
	whole, err := Select(nil, Shard{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.All) < 3 {
		t.Fatalf("only %d bundled scenarios", len(whole.All))
	}
	seen := map[string]int{}
	var sizes []int
	for i := 1; i <= 3; i++ {
		sel, err := Select(nil, Shard{Index: i, Count: 3}, "")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sel.All, whole.All) || sel.Digest() != whole.Digest() {
			t.Errorf("shard %d/3 splits another set", i)
		}
		for _, p := range sel.Selected {
			if !strings.HasPrefix(p.Key(), "features/") {
				t.Errorf("key %q is not relative to the working directory", p.Key())
			}
			if s, dup := seen[p.Key()]; dup {
				t.Errorf("%s in shards %d and %d", p.Key(), s, i)
			}
			seen[p.Key()] = i
		}
		// The FS holds exactly this shard's scenarios.
		var inFS []string
		for _, name := range sel.Paths {
			b, err := fs.ReadFile(sel.FS, name)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range pickleLines(picklesOf(t, b)) {
				inFS = append(inFS, fmt.Sprintf("%s:%d", sel.RealPath(name), l))
			}
		}
		if !reflect.DeepEqual(inFS, keys(sel.Selected)) {
			t.Errorf("shard %d/3: the FS runs %v, want %v", i, inFS, keys(sel.Selected))
		}
		sizes = append(sizes, len(sel.Selected))
	}
	if len(seen) != len(whole.All) {
		t.Errorf("the shards cover %d of %d scenarios", len(seen), len(whole.All))
	}
	sort.Ints(sizes)
	if sizes[2]-sizes[0] > 1 {
		t.Errorf("shard sizes %v differ by more than one", sizes)
	}
}

// The assignment is pinned: a change in the hash, the key or the deal moves
// scenarios between the shards of CI workers built from different versions.
// The expectation was computed apart from this code: keys in order of their
// FNV-1a 64 hash (other.feature:3 0x80601029b32061d4 first, mixed.feature:52
// 0xdeb79650bd7d63d7 last), dealt to shards 1, 2, 3, 1, ...
func TestShardAssignmentIsPinned(t *testing.T) {
	want := map[int][]string{
		1: {mixed + ":30", mixed + ":44", "testdata/select/other.feature:3"},
		2: {mixed + ":9", mixed + ":35", mixed + ":53"},
		3: {mixed + ":28", mixed + ":37", mixed + ":52"},
	}
	for i := 1; i <= 3; i++ {
		sel, err := Select([]string{"testdata/select"}, Shard{Index: i, Count: 3}, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(sel.Selected); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("shard %d/3: %q, want %q", i, got, want[i])
		}
	}
}

func TestSelectDigest(t *testing.T) {
	sel, err := Select([]string{"testdata/select"}, Shard{Index: 2, Count: 3}, "")
	if err != nil {
		t.Fatal(err)
	}
	ks := keys(sel.All)
	sort.Strings(ks)
	sum := sha256.Sum256([]byte(strings.Join(ks, "\n")))
	if got, want := sel.Digest(), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("digest %s, want %s", got, want)
	}
	one, err := Select([]string{mixed + ":9"}, Shard{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if one.Digest() == sel.Digest() {
		t.Errorf("another set has the same digest")
	}
}

// godog, given the selection's FS and paths, runs exactly the selected
// example row, with its backgrounds, and reports the file under a name that
// RealPath maps back.
func TestSelectRunsOneRowWithGodog(t *testing.T) {
	const above = "../scenarios/" + mixed // an fs.FS name cannot say ".."
	for _, tt := range []struct {
		arg   string
		want  []string
		lines []string // FILE:LINE of the pickles godog ran, after RealPath
	}{
		{mixed + ":30", []string{"background", "row 2"}, []string{mixed + ":30"}},
		{mixed + ":52", []string{"background", "rule background", "rule row 4"}, []string{mixed + ":52"}},
		{mixed + ":35:44", []string{"background", "row 3", "background", "rule background", "in rule"}, []string{mixed + ":35", mixed + ":44"}},
		{above + ":28", []string{"background", "row 1"}, []string{above + ":28"}},
	} {
		t.Run(tt.arg, func(t *testing.T) {
			sel, err := Select([]string{tt.arg}, Shard{}, "")
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var ran, uris []string
			var out bytes.Buffer
			suite := godog.TestSuite{
				Name: "select",
				ScenarioInitializer: func(sc *godog.ScenarioContext) {
					sc.Before(func(ctx context.Context, s *godog.Scenario) (context.Context, error) {
						mu.Lock()
						defer mu.Unlock()
						uris = append(uris, fmt.Sprintf("%s:%d", sel.RealPath(s.Uri), s.Location.Line))
						return ctx, nil
					})
					sc.Step(`^the step "([^"]*)"$`, func(s string) {
						mu.Lock()
						defer mu.Unlock()
						ran = append(ran, s)
					})
					sc.Step(`^the text:$`, func(*godog.DocString) {})
					sc.Step(`^the table:$`, func(*godog.Table) {})
				},
				Options: &godog.Options{Format: "progress", FS: sel.FS, Paths: sel.Paths, Output: &out, Strict: true, NoColors: true},
			}
			if status := suite.Run(); status != 0 {
				t.Fatalf("status %d:\n%s", status, out.String())
			}
			if !reflect.DeepEqual(ran, tt.want) {
				t.Errorf("ran %q, want %q", ran, tt.want)
			}
			if !reflect.DeepEqual(uris, tt.lines) || !reflect.DeepEqual(uris, keys(sel.Selected)) {
				t.Errorf("godog ran %q, want %q (selected %q)", uris, tt.lines, keys(sel.Selected))
			}
		})
	}
}

// godogRuns returns the lines of the pickles godog runs of a feature file
// with a tag expression (godog's own filter).
func godogRuns(t *testing.T, file, tags string) []int {
	t.Helper()
	var mu sync.Mutex
	var ran []int
	var out bytes.Buffer
	suite := godog.TestSuite{
		Name: "tags",
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			sc.Before(func(ctx context.Context, s *godog.Scenario) (context.Context, error) {
				mu.Lock()
				defer mu.Unlock()
				ran = append(ran, int(s.Location.Line))
				return ctx, nil
			})
			sc.Step(`^the step "([^"]*)"$`, func(string) {})
		},
		Options: &godog.Options{Format: "progress", Paths: []string{file}, Tags: tags, Output: &out, Strict: true, NoColors: true},
	}
	if status := suite.Run(); status != 0 {
		t.Fatalf("godog --tags %q: status %d:\n%s", tags, status, out.String())
	}
	sort.Ints(ran)
	return ran
}

// Select's tag filter keeps exactly the pickles godog's does, with tags
// inherited from the feature, a rule, a scenario and an Examples block,
// and applies before sharding: the shards of a tagged run split only what
// it runs, and its digest is of that.
func TestSelectTagsAsGodog(t *testing.T) {
	const file = "testdata/report/tags.feature"
	for _, tt := range []struct {
		tags string
		want []int
	}{
		{"", []int{5, 8, 17, 18, 23, 28, 38, 43}},
		{"@feature-tag", []int{5, 8, 17, 18, 23, 28, 38, 43}},
		{"@slow", []int{5, 23, 43}},
		{"~@slow", []int{8, 17, 18, 28, 38}},
		{"@rule-tag", []int{28, 38}},
		{"@rule-tag && ~@wip", []int{28}},
		{"@outline && ~@big", []int{17, 18}},
		{"@nightly,@plain", []int{5, 38}},
		{"@big,@wip && @nightly", []int{23, 38}},
		{"slow && ~rule-tag", []int{5, 23, 43}}, // godog ignores every @
		{"@none", nil},
	} {
		sel, err := Select([]string{file}, Shard{}, tt.tags)
		if err != nil {
			t.Fatal(err)
		}
		if got := lines(sel.Selected); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("--tags %q: selected %v, want %v", tt.tags, got, tt.want)
		}
		if tt.want == nil {
			continue
		}
		if got := godogRuns(t, file, tt.tags); !reflect.DeepEqual(got, lines(sel.Selected)) {
			t.Errorf("--tags %q: godog runs %v, Select selects %v", tt.tags, got, lines(sel.Selected))
		}
	}

	// Tags before shards: two shards of "@slow" split its three scenarios.
	var split []int
	whole, err := Select([]string{file}, Shard{}, "@slow")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		sel, err := Select([]string{file}, Shard{Index: i, Count: 2}, "@slow")
		if err != nil {
			t.Fatal(err)
		}
		if len(sel.All) != 3 || sel.Digest() != whole.Digest() {
			t.Errorf("shard %d/2 of @slow splits %v (digest %s, want %s)", i, keys(sel.All), sel.Digest(), whole.Digest())
		}
		split = append(split, lines(sel.Selected)...)
	}
	sort.Ints(split)
	if !reflect.DeepEqual(split, []int{5, 23, 43}) {
		t.Errorf("the shards of @slow run %v", split)
	}
	if all, _ := Select([]string{file}, Shard{}, ""); all.Digest() == whole.Digest() {
		t.Errorf("a tagged run has the digest of the untagged one")
	}

	for _, bad := range []string{"@a &&", "@a,", "&&", ",@a"} {
		if _, err := Select([]string{file}, Shard{}, bad); err == nil || !strings.Contains(err.Error(), "empty tag") {
			t.Errorf("--tags %q: error %v, want one about an empty tag", bad, err)
		}
	}
}

// A line past the end of the file, however long, is a line that selects
// nothing, not a file that does not exist.
func TestSelectLinePastTheEnd(t *testing.T) {
	for _, tt := range []struct{ arg, want string }{
		{mixed + ":9999999999", mixed + ":9999999999: no scenario or example row at this line"},
		{mixed + ":99999999999999999999999", mixed + ":99999999999999999999999: line past the end of the file"},
	} {
		if _, err := Select([]string{tt.arg}, Shard{}, ""); err == nil || err.Error() != tt.want {
			t.Errorf("%s: error %v, want %q", tt.arg, err, tt.want)
		}
	}
}

package scenarios

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cucumber/godog"
	"github.com/cucumber/godog/formatters"
	messages "github.com/cucumber/messages/go/v34"
)

// locator places godog's pickles in their feature files through their AST
// node ids: a pickle names its scenario (and, from a Scenario Outline, its
// example row), a pickle step names its step. The ids are those of godog's
// own parse, which godog hands to formatters; Config.Format's formatter
// records the line (and a step's keyword) of every node by id.
type locator struct {
	mu       sync.Mutex
	nodes    map[string]map[string]astNode // feature uri -> AST node id -> where it is
	features map[string]string             // feature uri -> its Feature: title
}

// astNode is a scenario, example row or step of a parsed feature.
type astNode struct {
	line    int
	keyword string // a step's, such as "Given "
}

// add records the line of every scenario, example row and step of a parsed
// feature.
func (l *locator) add(uri string, doc *messages.GherkinDocument) {
	if doc == nil || doc.Feature == nil {
		return
	}
	ids := map[string]astNode{}
	steps := func(s []*messages.Step) {
		for _, st := range s {
			ids[st.Id] = astNode{line: int(st.Location.Line), keyword: st.Keyword}
		}
	}
	var children func([]*messages.FeatureChild)
	children = func(cs []*messages.FeatureChild) {
		for _, c := range cs {
			switch {
			case c.Background != nil:
				steps(c.Background.Steps)
			case c.Scenario != nil:
				ids[c.Scenario.Id] = astNode{line: int(c.Scenario.Location.Line)}
				steps(c.Scenario.Steps)
				for _, ex := range c.Scenario.Examples {
					for _, row := range ex.TableBody {
						ids[row.Id] = astNode{line: int(row.Location.Line)}
					}
				}
			case c.Rule != nil:
				var rc []*messages.FeatureChild
				for _, r := range c.Rule.Children {
					rc = append(rc, &messages.FeatureChild{Background: r.Background, Scenario: r.Scenario})
				}
				children(rc)
			}
		}
	}
	children(doc.Feature.Children)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nodes == nil {
		l.nodes = map[string]map[string]astNode{}
		l.features = map[string]string{}
	}
	l.nodes[uri] = ids
	l.features[uri] = doc.Feature.Name
}

// node returns what the locator knows of an AST node of a feature.
func (l *locator) node(uri, id string) (astNode, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, ok := l.nodes[uri][id]
	return n, ok
}

// featureName returns the Feature: title of a parsed feature.
func (l *locator) featureName(uri string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.features[uri]
}

// locate returns the line a pickle is reported at. A pickle from a Scenario
// Outline is its example row (the outline's steps are the same for every
// example, the row says which one failed); any other pickle is its failed
// step, or the scenario when no step failed. Without godog's parse of the
// feature it falls back on the pickle's own location.
func (l *locator) locate(p *godog.Scenario, failed *godog.Step) int {
	fallback := 0
	if p.Location != nil {
		fallback = int(p.Location.Line)
	}
	if len(p.AstNodeIds) == 0 {
		return fallback
	}
	if len(p.AstNodeIds) > 1 { // scenario, example row
		if n, ok := l.node(p.Uri, p.AstNodeIds[len(p.AstNodeIds)-1]); ok {
			return n.line
		}
	}
	if failed != nil && len(failed.AstNodeIds) > 0 {
		if n, ok := l.node(p.Uri, failed.AstNodeIds[0]); ok {
			return n.line
		}
	}
	if n, ok := l.node(p.Uri, p.AstNodeIds[0]); ok {
		return n.line
	}
	return fallback
}

var formatSeq atomic.Int64

// Format returns the name of a godog formatter that tells this Config where
// each scenario and step is in its feature file, and prints each failed
// scenario's failure block (see FailureBlocks); it prints nothing else. Add
// it last to godog.Options.Format ("pretty," + cfg.Format()) so that
// failures name the failing step's line, or an outline example's row, and
// records have their steps' lines and keywords; without it failures name
// the scenario's (or the row's) line.
func (c *Config) Format() string {
	c.formatOnce.Do(func() {
		c.formatName = fmt.Sprintf("rehearse-locations-%d", formatSeq.Add(1))
		godog.Format(c.formatName, "records where scenarios and steps are; prints failure blocks",
			func(_ string, w io.Writer) godog.Formatter { return &locations{c: c, out: w} })
	})
	return c.formatName
}

// FailureBlocks says where Config.Format's formatter prints the failure
// block of each failed scenario: its error, each container's log tail, its
// output, and the command that reproduces it, last.
type FailureBlocks int

const (
	// BlocksUnderScenario prints the block under the scenario, after its
	// last step (for the pretty format). The default.
	BlocksUnderScenario FailureBlocks = iota
	// BlocksAtEnd prints every block after godog's summary (for the
	// progress format, which prints nothing per scenario).
	BlocksAtEnd
	// BlocksOff prints none (when the formatter's output is a machine-read
	// format: junit, cucumber).
	BlocksOff
)

// locations is the formatter behind Config.Format. It listens for godog's
// parsed features, which godog hands over before their scenarios run, and
// prints failure blocks. godog calls a formatter's methods in order for one
// scenario, after the scenario's hooks: by a scenario's last step, its
// World has finished. When scenarios run concurrently, godog replays each
// scenario's calls when it ends, on its own goroutine: several scenarios'
// at once, hence mu.
type locations struct {
	c   *Config
	out io.Writer

	mu   sync.Mutex
	owed []string // pickles whose last step was reported before their block was ready
}

func (f *locations) Feature(doc *messages.GherkinDocument, uri string, _ []byte) {
	f.c.lines.add(uri, doc)
}

func (f *locations) Pickle(*godog.Scenario) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.payOwed()
}

func (f *locations) Summary() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.payOwed()
	if f.c.FailureBlocks == BlocksAtEnd {
		for _, b := range f.c.takeBlocks() {
			f.print(b)
		}
	}
}

// stepDone prints the scenario's failure block after its last step. An
// undefined step is reported before the scenario's hooks run: its block
// comes with the next scenario, or the summary.
func (f *locations) stepDone(p *godog.Scenario, st *godog.Step) {
	if f.c.FailureBlocks != BlocksUnderScenario || len(p.Steps) == 0 || p.Steps[len(p.Steps)-1].Id != st.Id {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.c.takeBlock(p.Id); ok {
		f.print(b)
		return
	}
	f.owed = append(f.owed, p.Id)
}

// payOwed prints the blocks owed that are ready; f.mu is held.
func (f *locations) payOwed() {
	owed := f.owed
	f.owed = nil
	for _, id := range owed {
		if b, ok := f.c.takeBlock(id); ok {
			f.print(b)
		}
	}
}

// print writes a block indented under the steps, one blank line before
// it; f.mu is held.
func (f *locations) print(block string) {
	var b strings.Builder
	b.WriteString("\n")
	for _, l := range strings.Split(block, "\n") {
		if l == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString("    " + l + "\n")
	}
	io.WriteString(f.out, b.String())
}

func (*locations) TestRunStarted()                                                  {}
func (*locations) Defined(*godog.Scenario, *godog.Step, *formatters.StepDefinition) {}
func (f *locations) Failed(p *godog.Scenario, st *godog.Step, _ *formatters.StepDefinition, _ error) {
	f.stepDone(p, st)
}
func (f *locations) Passed(p *godog.Scenario, st *godog.Step, _ *formatters.StepDefinition) {
	f.stepDone(p, st)
}
func (f *locations) Skipped(p *godog.Scenario, st *godog.Step, _ *formatters.StepDefinition) {
	f.stepDone(p, st)
}
func (f *locations) Undefined(p *godog.Scenario, st *godog.Step, _ *formatters.StepDefinition) {
	f.stepDone(p, st)
}
func (f *locations) Pending(p *godog.Scenario, st *godog.Step, _ *formatters.StepDefinition) {
	f.stepDone(p, st)
}
func (f *locations) Ambiguous(p *godog.Scenario, st *godog.Step, _ *formatters.StepDefinition, _ error) {
	f.stepDone(p, st)
}

package scenarios

import (
	"fmt"
	"io"
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
// records the line of every node by id.
type locator struct {
	mu    sync.Mutex
	lines map[string]map[string]int // feature uri -> AST node id -> line
}

// add records the line of every scenario, example row and step of a parsed
// feature.
func (l *locator) add(uri string, doc *messages.GherkinDocument) {
	if doc == nil || doc.Feature == nil {
		return
	}
	ids := map[string]int{}
	steps := func(s []*messages.Step) {
		for _, st := range s {
			ids[st.Id] = int(st.Location.Line)
		}
	}
	var children func([]*messages.FeatureChild)
	children = func(cs []*messages.FeatureChild) {
		for _, c := range cs {
			switch {
			case c.Background != nil:
				steps(c.Background.Steps)
			case c.Scenario != nil:
				ids[c.Scenario.Id] = int(c.Scenario.Location.Line)
				steps(c.Scenario.Steps)
				for _, ex := range c.Scenario.Examples {
					for _, row := range ex.TableBody {
						ids[row.Id] = int(row.Location.Line)
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
	if l.lines == nil {
		l.lines = map[string]map[string]int{}
	}
	l.lines[uri] = ids
}

// locate returns the line a pickle is reported at. A pickle from a Scenario
// Outline is its example row (the outline's steps are the same for every
// example, the row says which one failed); any other pickle is its failed
// step, or the scenario when no step failed. Without godog's parse of the
// feature it falls back on the pickle's own location.
func (l *locator) locate(p *godog.Scenario, failed *godog.Step) int {
	l.mu.Lock()
	ids := l.lines[p.Uri]
	l.mu.Unlock()
	fallback := 0
	if p.Location != nil {
		fallback = int(p.Location.Line)
	}
	if ids == nil || len(p.AstNodeIds) == 0 {
		return fallback
	}
	if len(p.AstNodeIds) > 1 { // scenario, example row
		if line, ok := ids[p.AstNodeIds[len(p.AstNodeIds)-1]]; ok {
			return line
		}
	}
	if failed != nil && len(failed.AstNodeIds) > 0 {
		if line, ok := ids[failed.AstNodeIds[0]]; ok {
			return line
		}
	}
	if line, ok := ids[p.AstNodeIds[0]]; ok {
		return line
	}
	return fallback
}

var formatSeq atomic.Int64

// Format returns the name of a godog formatter that tells this Config where
// each scenario and step is in its feature file; it prints nothing. Add it
// to godog.Options.Format ("pretty," + cfg.Format()) so that failures name
// the failing step's line, or an outline example's row; without it they
// name the scenario's (or the row's) line.
func (c *Config) Format() string {
	c.formatOnce.Do(func() {
		c.formatName = fmt.Sprintf("rehearse-locations-%d", formatSeq.Add(1))
		godog.Format(c.formatName, "records where scenarios and steps are (prints nothing)",
			func(string, io.Writer) godog.Formatter { return &locations{l: &c.lines} })
	})
	return c.formatName
}

// locations is the formatter behind Config.Format: it only listens for
// godog's parsed features, which godog hands over before their scenarios run.
type locations struct{ l *locator }

func (f *locations) Feature(doc *messages.GherkinDocument, uri string, _ []byte) { f.l.add(uri, doc) }

func (*locations) TestRunStarted()                                                           {}
func (*locations) Pickle(*godog.Scenario)                                                    {}
func (*locations) Defined(*godog.Scenario, *godog.Step, *formatters.StepDefinition)          {}
func (*locations) Failed(*godog.Scenario, *godog.Step, *formatters.StepDefinition, error)    {}
func (*locations) Passed(*godog.Scenario, *godog.Step, *formatters.StepDefinition)           {}
func (*locations) Skipped(*godog.Scenario, *godog.Step, *formatters.StepDefinition)          {}
func (*locations) Undefined(*godog.Scenario, *godog.Step, *formatters.StepDefinition)        {}
func (*locations) Pending(*godog.Scenario, *godog.Step, *formatters.StepDefinition)          {}
func (*locations) Ambiguous(*godog.Scenario, *godog.Step, *formatters.StepDefinition, error) {}
func (*locations) Summary()                                                                  {}

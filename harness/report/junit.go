package report

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
)

// JUnit XML, as CI test views read it (the Jenkins/Surefire dialect most
// of them share). Exported so tests and callers can read a file back.
type (
	// JUnitSuites is the root element.
	JUnitSuites struct {
		XMLName  xml.Name     `xml:"testsuites"`
		Name     string       `xml:"name,attr"`
		Tests    int          `xml:"tests,attr"`
		Failures int          `xml:"failures,attr"`
		Errors   int          `xml:"errors,attr"`
		Skipped  int          `xml:"skipped,attr"`
		Time     string       `xml:"time,attr"`
		Suites   []JUnitSuite `xml:"testsuite"`
	}
	// JUnitSuite is one feature.
	JUnitSuite struct {
		Name      string      `xml:"name,attr"`
		File      string      `xml:"file,attr,omitempty"`
		Tests     int         `xml:"tests,attr"`
		Failures  int         `xml:"failures,attr"`
		Errors    int         `xml:"errors,attr"`
		Skipped   int         `xml:"skipped,attr"`
		Time      string      `xml:"time,attr"`
		Timestamp string      `xml:"timestamp,attr,omitempty"`
		Cases     []JUnitCase `xml:"testcase"`
	}
	// JUnitCase is one scenario (one example row of an outline).
	JUnitCase struct {
		Name      string        `xml:"name,attr"`
		Classname string        `xml:"classname,attr"`
		Time      string        `xml:"time,attr"`
		File      string        `xml:"file,attr,omitempty"`
		Line      int           `xml:"line,attr,omitempty"`
		Failure   *JUnitFailure `xml:"failure"`
		Error     *JUnitFailure `xml:"error"`
		Skipped   *JUnitSkipped `xml:"skipped"`
		SystemOut *JUnitText    `xml:"system-out"`
	}
	// JUnitFailure is a failure or an error: the error's first line as its
	// message and the whole story (error, log tails, reproduce command) as
	// its text.
	JUnitFailure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",cdata"` // CDATA keeps the lines readable in the file itself
	}
	// JUnitText is an element's text, as CDATA.
	JUnitText struct {
		Text string `xml:",cdata"`
	}
	// JUnitSkipped marks a skipped scenario.
	JUnitSkipped struct {
		Message string `xml:"message,attr"`
	}
)

// JUnit writes the report as JUnit XML: one testsuite per feature, one
// testcase per scenario with its timeline as system-out. A failed
// scenario's failure holds its error, log tails and reproduce command;
// undefined and pending scenarios are errors ("undefined step: ...", the
// same text in the body), as godog's own JUnit counts them; skipped ones
// are skipped. Feature files the runs could not read or parse come first,
// in a testsuite "feature files", one testcase with an error each, named
// by the file (and line, when the message gives one).
func JUnit(w io.Writer, r *Report) error {
	return writeJUnit(context.Background(), w, r)
}

// writeJUnit is JUnit that stops, with ctx's error, when ctx is done: it
// checks before each scenario and on every write.
func writeJUnit(ctx context.Context, w io.Writer, r *Report) error {
	out := JUnitSuites{Name: "rehearse"}
	if errs := r.Errors(); len(errs) > 0 {
		suite := errorsSuiteOf(errs)
		out.Tests += suite.Tests
		out.Errors += suite.Errors
		out.Suites = append(out.Suites, suite)
	}
	var total time.Duration
	for _, group := range byFeature(r.Scenarios) {
		first := group[0]
		name := first.FeatureName
		if name == "" {
			name = first.Feature
		}
		suite := JUnitSuite{Name: clean(name), File: clean(first.Feature)}
		var d time.Duration
		var start time.Time
		names := map[string]int{}
		for _, s := range group {
			names[s.Name]++
		}
		for _, s := range group {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("junit: %w", err)
			}
			c := junitCase(s, suite.Name)
			if names[s.Name] > 1 {
				// An outline's rows share its name; CI views would fold them into one.
				c.Name = clean(fmt.Sprintf("%s (line %d)", s.Name, s.Line))
			}
			suite.Tests++
			switch {
			case c.Failure != nil:
				suite.Failures++
			case c.Error != nil:
				suite.Errors++
			case c.Skipped != nil:
				suite.Skipped++
			}
			d += s.Duration()
			if !s.Start.IsZero() && (start.IsZero() || s.Start.Before(start)) {
				start = s.Start
			}
			suite.Cases = append(suite.Cases, c)
		}
		suite.Time = seconds(d)
		if !start.IsZero() {
			suite.Timestamp = start.UTC().Format(time.RFC3339)
		}
		out.Tests += suite.Tests
		out.Failures += suite.Failures
		out.Errors += suite.Errors
		out.Skipped += suite.Skipped
		total += d
		out.Suites = append(out.Suites, suite)
	}
	out.Time = seconds(total)
	w = ctxWriter{ctx, w}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	return nil
}

// errorsSuiteOf is the testsuite of the feature files the runs could not
// read or parse: one testcase each, named and placed by the file and
// line the message starts with ("FILE[:LINE]: message"), the message in
// its error. The suite's file is theirs when they share one.
func errorsSuiteOf(errs []string) JUnitSuite {
	suite := JUnitSuite{Name: errorsSuite, Time: seconds(0)}
	files := map[string]bool{}
	for _, e := range errs {
		e = clean(e)
		file, line := errorPlace(e)
		name := file
		if line > 0 {
			name += ":" + strconv.Itoa(line)
		}
		if file == "" {
			name = firstLine(e)
		}
		files[file] = true
		suite.Cases = append(suite.Cases, JUnitCase{
			Name: name, Classname: errorsSuite, Time: seconds(0), File: file, Line: line,
			Error: &JUnitFailure{Message: firstLine(e), Type: "parse", Text: e + "\n"},
		})
		suite.Tests++
		suite.Errors++
	}
	if len(files) == 1 {
		suite.File = suite.Cases[0].File
	}
	return suite
}

// errorPlace is the file and line a feature file's error names in front,
// "FILE:LINE: message" or "FILE: message" (line 0); "" when it names none.
func errorPlace(e string) (file string, line int) {
	head, _, ok := strings.Cut(firstLine(e), ": ")
	if !ok || head == "" {
		return "", 0
	}
	if i := strings.LastIndexByte(head, ':'); i > 0 {
		if n, err := strconv.Atoi(head[i+1:]); err == nil && n > 0 && decimal(head[i+1:]) {
			return head[:i], n
		}
	}
	return head, 0
}

func junitCase(s Scenario, classname string) JUnitCase {
	c := JUnitCase{
		Name:      clean(s.Name),
		Classname: classname,
		Time:      seconds(s.Duration()),
		File:      clean(s.Feature),
		Line:      s.Line,
		SystemOut: &JUnitText{Text: scenarioText(s)},
	}
	switch s.Status {
	case StatusFailed:
		c.Failure = &JUnitFailure{Message: why(s), Type: StatusFailed, Text: failureText(s)}
	case StatusSkipped:
		c.Skipped = &JUnitSkipped{Message: "skipped"}
	case StatusUndefined, StatusPending:
		msg := why(s)
		if !strings.HasPrefix(msg, s.Status) {
			msg = s.Status + ": " + msg
		}
		c.Error = &JUnitFailure{Message: msg, Type: s.Status, Text: failureText(s)}
	}
	return c
}

// errorsSuite names the JUnit testsuite of the feature files that could
// not be read or parsed.
const errorsSuite = "feature files"

// scenarioText is a scenario as text: where, its steps with their
// status, and its timeline.
func scenarioText(s Scenario) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s %s (%s", s.Location(), s.Name, s.Status)
	if s.RunID != "" {
		fmt.Fprintf(&b, ", run %s", s.RunID)
	}
	if s.Shard != "" {
		fmt.Fprintf(&b, ", shard %s", s.Shard)
	}
	b.WriteString(")\n")
	if len(s.Tags) > 0 {
		fmt.Fprintf(&b, "tags: %s\n", strings.Join(s.Tags, " "))
	}
	if len(s.Steps) > 0 {
		b.WriteString("\nsteps:\n")
		for _, st := range s.Steps {
			fmt.Fprintf(&b, "  %-9s %s%s (line %d)\n", st.Status, st.Keyword, st.Text, st.Line)
		}
	}
	if len(s.Events) > 0 {
		b.WriteString("\ntimeline:\n")
		timeline.WriteEvents(&b, textEvents(s.Events)) // a strings.Builder does not fail
	}
	return clean(b.String())
}

// maxTextEvents bounds the events of a scenario's text timeline (JUnit's
// system-out), which CI test views show whole.
const maxTextEvents = 2000

// textEvents is events, or past maxTextEvents the first and last
// maxTextEvents/2 of them in time order with an event between that says
// how many are left out (WriteEvents keeps it there: it sorts stably).
func textEvents(events []timeline.Event) []timeline.Event {
	if len(events) <= maxTextEvents {
		return events
	}
	idx := make([]int, len(events))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return events[a].Start.Compare(events[b].Start) })
	half := maxTextEvents / 2
	out := make([]timeline.Event, 0, maxTextEvents+1)
	for _, i := range idx[:half] {
		out = append(out, events[i])
	}
	at := events[idx[half]].Start
	out = append(out, timeline.Event{Kind: "…", Actor: "report", Start: at, End: at,
		Name: fmt.Sprintf("%d events not shown: report.html and the record (timelines/*.json) have them all", len(events)-2*half)})
	for _, i := range idx[len(idx)-half:] {
		out = append(out, events[i])
	}
	return out
}

// byFeature groups sorted scenarios by feature file.
func byFeature(ss []Scenario) [][]Scenario {
	sorted := append([]Scenario(nil), ss...)
	sortScenarios(sorted)
	var groups [][]Scenario
	for i, s := range sorted {
		if i == 0 || s.Feature != sorted[i-1].Feature {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], s)
	}
	return groups
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

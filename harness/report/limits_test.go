package report

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/rehearse/rehearse/harness/timeline"
)

// bigScenario is a hostile record of n events: a probe, an upgrade step
// and an unknown kind per event, each with a name of its own (a lane each
// if nothing bounded them), and one upgrade step with n output lines.
func bigScenario(n int) Scenario {
	t0 := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := Scenario{Schema: Schema, Feature: "features/big.feature", Line: 3, Name: "big", Status: StatusFailed,
		Start: at(0), End: at(n), Error: "boom"}
	s.Events = append(s.Events,
		timeline.Event{Kind: kindStep, Actor: "billing", Name: "migrate", Start: at(0), End: at(n), Fields: map[string]string{"exit": "1"}},
		timeline.Event{Kind: kindFault, Actor: "db", Name: "pause db", Start: at(n / 4), End: at(n / 2)},
	)
	for i := range n {
		var e timeline.Event
		switch i % 4 {
		case 0:
			e = timeline.Event{Kind: kindProbe, Actor: "p" + strconv.Itoa(i), Name: "down", Start: at(i), End: at(i)}
		case 1:
			e = timeline.Event{Kind: kindStep, Actor: "svc", Name: "step-" + strconv.Itoa(i), Start: at(i), End: at(i + 1), Fields: map[string]string{"exit": "0"}}
		case 2:
			e = timeline.Event{Kind: "kind-" + strconv.Itoa(i), Actor: "x", Name: "y", Start: at(i), End: at(i)}
		case 3:
			e = timeline.Event{Kind: kindStepOutput, Actor: "migrate", Name: fmt.Sprintf("output line %d", i), Start: at(i), End: at(i)}
		}
		s.Events = append(s.Events, e)
	}
	return s
}

func elements(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	return out
}

func attrOf(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

func hasClassOf(n *html.Node, class string) bool {
	return slices.Contains(strings.Fields(attrOf(n, "class")), class)
}

// TestHTMLBounds: the largest record Load accepts, every event on a lane
// of its own, makes a page of at most maxLanes lanes and maxBars bars,
// the upgrade steps table and each step's output bounded too, each saying
// what it leaves out. (Before the bounds: 100,000 lanes and an 80 MB page.)
func TestHTMLBounds(t *testing.T) {
	s := bigScenario(MaxEvents - 2)
	lanes := map[string]bool{}
	for _, e := range s.Events {
		switch e.Kind {
		case kindProbe:
			lanes["probe:"+e.Actor] = true
		case kindStep:
			lanes["step:"+e.Actor+"/"+e.Name] = true
		case kindStepOutput:
		default:
			lanes[e.Kind] = true
		}
	}
	var buf bytes.Buffer
	if err := HTML(&buf, []Scenario{s}, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 2<<20 {
		t.Errorf("the page of %d events is %d bytes, want at most 2 MiB", len(s.Events), buf.Len())
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}

	got := elements(doc, func(n *html.Node) bool { return attrOf(n, "data-lane") != "" })
	if len(got) != maxLanes {
		t.Fatalf("%d lanes, want %d", len(got), maxLanes)
	}
	// The faults and the failed step first, then steps (and probes),
	// then one lane for the rest.
	if attrOf(got[0], "data-lane") != "faults" || attrOf(got[1], "data-lane") != "step:billing/migrate" {
		t.Errorf("first lanes %q, %q", attrOf(got[0], "data-lane"), attrOf(got[1], "data-lane"))
	}
	more := got[len(got)-1]
	if want := fmt.Sprintf("%d more lanes", len(lanes)-(maxLanes-1)); attrOf(more, "data-lane") != moreLanes || !strings.HasPrefix(strings.TrimSpace(textOf(more)), want) {
		t.Errorf("last lane %q reads %.80q, want %q", attrOf(more, "data-lane"), textOf(more), want)
	}
	bars := elements(doc, func(n *html.Node) bool { return n.Data == "rect" && hasClassOf(n, "bar") })
	if len(bars) > maxBars || len(bars) < maxBars/2 {
		t.Errorf("%d bars, want at most %d (and most of them used)", len(bars), maxBars)
	}
	merged := elements(more, func(n *html.Node) bool { return n.Data == "rect" && hasClassOf(n, "merged") })
	if len(merged) == 0 || !regexp.MustCompile(`^\d+ events from \S+ to \S+, drawn as one bar:\n· `).MatchString(textOf(merged[0])) {
		t.Errorf("%d merged bars in the last lane; the first's title: %q", len(merged), textOf(merged[0]))
	}
	if bands := elements(doc, func(n *html.Node) bool { return attrOf(n, "data-kind") == "fault-band" }); len(bands) != 1 || attrOf(bands[0], "x") != pct(int64(len(s.Events)-2)/4, int64(len(s.Events)-2)) {
		t.Errorf("fault bands: %d, want one at 25%%", len(bands))
	}

	rows := elements(doc, func(n *html.Node) bool {
		return n.Data == "tr" && n.Parent != nil && n.Parent.Parent != nil && hasClassOf(n.Parent.Parent, "upgrade-steps") && n.Parent.Data == "tbody"
	})
	steps := 0
	for _, e := range s.Events {
		if e.Kind == kindStep {
			steps++
		}
	}
	if len(rows) != maxUpgradeRows+1 || !strings.Contains(textOf(rows[len(rows)-1]), fmt.Sprintf("… %d more upgrade steps not shown", steps-maxUpgradeRows)) {
		t.Errorf("%d upgrade step rows, the last %q", len(rows), textOf(rows[len(rows)-1]))
	}
	var outputs int
	var lastOutput string
	for _, e := range s.Events {
		if e.Kind == kindStepOutput {
			outputs++
			lastOutput = e.Name
		}
	}
	failed := rows[0]
	if !hasClassOf(failed, "fail") || !strings.HasPrefix(textOf(failed), "migrate") {
		t.Fatalf("first row %q, want the failed step", textOf(failed))
	}
	pre := elements(failed, func(n *html.Node) bool { return n.Data == "pre" })
	if len(pre) != 1 {
		t.Fatalf("%d output blocks", len(pre))
	}
	lines := strings.Split(strings.TrimSuffix(textOf(pre[0]), "\n"), "\n")
	if len(lines) != maxOutputLines+1 || lines[0] != fmt.Sprintf("… %d earlier lines not shown", outputs-maxOutputLines) || lines[len(lines)-1] != lastOutput {
		t.Errorf("%d output lines: %q … %q", len(lines), lines[0], lines[len(lines)-1])
	}
	if !strings.Contains(textOf(failed), fmt.Sprintf("%d lines", outputs)) {
		t.Errorf("the step's output does not say it has %d lines", outputs)
	}
}

// TestHTMLMergesCloseBars: a lane of more events than the chart may draw
// draws those close together as one bar, in the colour of what matters
// most among them (here an outage among 'down' marks).
func TestHTMLMergesCloseBars(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := Scenario{Schema: Schema, Feature: "f.feature", Line: 1, Name: "flappy", Status: StatusPassed, Start: at(0), End: at(10_000)}
	for i := range 5000 {
		s.Events = append(s.Events, timeline.Event{Kind: kindProbe, Actor: "api", Name: "down", Start: at(i * 2), End: at(i * 2)})
	}
	s.Events = append(s.Events, timeline.Event{Kind: kindProbe, Actor: "api", Name: probeOutage, Start: at(5000), End: at(5001)})
	c := buildChart(s)
	if len(c.Lanes) != 1 || len(c.Lanes[0].Bars) > maxBars {
		t.Fatalf("%d lanes, %d bars", len(c.Lanes), len(c.Lanes[0].Bars))
	}
	bars := c.Lanes[0].Bars
	if bars[0].Kind != "baseline" || bars[0].StartMS != 0 || bars[0].EndMS != 10_000 {
		t.Errorf("first bar %+v, want the probe's baseline", bars[0])
	}
	var outage *bar
	for i, b := range bars {
		if b.Kind == probeOutage {
			outage = &bars[i]
		}
	}
	if outage == nil || outage.Class != "outage merged" || outage.StartMS > 5000 || outage.EndMS < 5001 ||
		!regexp.MustCompile(`^\d+ events from \S+ to \S+, drawn as one bar:\n`).MatchString(outage.Title) || !strings.Contains(outage.Title, "\n· api down: outage at 5s for 1ms") {
		t.Errorf("the outage's bar: %+v", outage)
	}
}

func TestShares(t *testing.T) {
	for _, tt := range []struct {
		counts []int
		budget int
		want   []int
	}{
		{[]int{1, 2, 3}, 100, []int{1, 2, 3}},
		{[]int{1000, 1, 1000}, 101, []int{50, 1, 50}},
		{[]int{0, 10, 5000, 30}, 2000, []int{0, 10, 1960, 30}},
	} {
		if got := shares(tt.counts, tt.budget); !slices.Equal(got, tt.want) {
			t.Errorf("shares(%v, %d) = %v, want %v", tt.counts, tt.budget, got, tt.want)
		}
	}
}

// TestLoadSizeBound: what Load may read, held in memory up to about six
// times once decoded, fits a CI worker.
func TestLoadSizeBound(t *testing.T) {
	if MaxLoadSize > 256<<20 {
		t.Errorf("MaxLoadSize is %s: a report of that takes up to six times as much memory", sizeText(MaxLoadSize))
	}
	if MaxRecordSize > MaxLoadSize {
		t.Errorf("MaxRecordSize %s is more than MaxLoadSize %s", sizeText(MaxRecordSize), sizeText(MaxLoadSize))
	}
}

// TestJUnitTimelineBounded: a scenario's text timeline in system-out
// keeps its first and last events, and says how many it leaves out.
func TestJUnitTimelineBounded(t *testing.T) {
	s := bigScenario(5000)
	r := &Report{Scenarios: []Scenario{s}}
	var b bytes.Buffer
	if err := JUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	var got JUnitSuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	out := got.Suites[0].Cases[0].SystemOut.Text
	_, tl, _ := strings.Cut(out, "\ntimeline:\n")
	lines := strings.Split(strings.TrimSuffix(tl, "\n"), "\n")
	if len(lines) != maxTextEvents+1 {
		t.Errorf("%d timeline lines, want %d", len(lines), maxTextEvents+1)
	}
	want := fmt.Sprintf("%d events not shown: report.html and the record (timelines/*.json) have them all", len(s.Events)-maxTextEvents)
	if mid := lines[maxTextEvents/2]; !strings.Contains(mid, want) {
		t.Errorf("line %d is %q, want it to say %q", maxTextEvents/2, mid, want)
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, s.Events[len(s.Events)-1].Name) {
		t.Errorf("the last line %q is not the last event's", last)
	}
}

// cancelAfter is a context whose Err is nil n times, then Canceled: one
// cancelled in the middle of a rendering.
type cancelAfter struct {
	context.Context
	n *int
}

func (c cancelAfter) Err() error {
	if *c.n <= 0 {
		return context.Canceled
	}
	*c.n--
	return nil
}

// TestRenderStopsWhenCancelled: an interrupted rehearse report stops in
// the middle of the HTML or JUnit of many scenarios, not after it.
func TestRenderStopsWhenCancelled(t *testing.T) {
	var many []Scenario
	for i := range 50 {
		s := bigScenario(20)
		s.Line = i + 1
		many = append(many, s)
	}
	r := &Report{Scenarios: many}
	for _, tt := range []struct {
		name   string
		render func(context.Context, *bytes.Buffer) error
	}{
		{"html", func(ctx context.Context, b *bytes.Buffer) error { return writeHTML(ctx, b, many, HTMLOptions{}) }},
		{"junit", func(ctx context.Context, b *bytes.Buffer) error { return writeJUnit(ctx, b, r) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := 10
			var b bytes.Buffer
			if err := tt.render(cancelAfter{context.Background(), &n}, &b); !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled after 10 checks: %v, want context.Canceled", err)
			}
			b.Reset()
			if err := tt.render(context.Background(), &b); err != nil || b.Len() == 0 {
				t.Errorf("not cancelled: %v, %d bytes", err, b.Len())
			}
		})
	}
	// Through Write: the renderer stops, and nothing is written.
	out := filepath.Join(t.TempDir(), "out")
	n := 1 // Write's own check before the HTML passes
	err := Write(out, r, WithContext(cancelAfter{context.Background(), &n}), WithFormats(FormatHTML))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "write HTML report") {
		t.Errorf("Write: %v, want the HTML's rendering cancelled", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a cancelled Write left the output directory")
	}
}

// BenchmarkReportBig loads and writes (as rehearse report does) a run of
// one record of MaxEvents events, and reports the record's size and the
// reports'.
func BenchmarkReportBig(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "run")
	s := bigScenario(MaxEvents - 2)
	data, err := json.Marshal(s)
	if err != nil {
		b.Fatal(err)
	}
	run, _ := json.Marshal(Run{Schema: RunSchema, Selected: []string{s.Location()}, Start: s.Start, End: s.End})
	if err := os.MkdirAll(filepath.Join(dir, TimelinesDir), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := errors.Join(
		os.WriteFile(filepath.Join(dir, RunFile), run, 0o644),
		os.WriteFile(filepath.Join(dir, TimelinesDir, RecordName(s.Feature, s.Line, s.Name)+timelineExt), data, 0o644),
	); err != nil {
		b.Fatal(err)
	}
	s, data = Scenario{}, nil // only what Load reads stays
	b.ReportAllocs()
	for b.Loop() {
		r, err := Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		if err := Write(dir, r); err != nil {
			b.Fatal(err)
		}
	}
	var out int64
	for _, f := range []string{HTMLFile, JUnitFile, MarkdownFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil {
			out += st.Size()
		}
	}
	st, _ := os.Stat(filepath.Join(dir, TimelinesDir, RecordName("features/big.feature", 3, "big")+timelineExt))
	b.ReportMetric(float64(st.Size()), "record-bytes")
	b.ReportMetric(float64(out), "report-bytes")
}

// BenchmarkHTMLBig renders the largest record Load accepts; it reports
// the page's size.
func BenchmarkHTMLBig(b *testing.B) {
	s := bigScenario(MaxEvents - 2)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		var buf bytes.Buffer
		if err := HTML(&buf, []Scenario{s}, HTMLOptions{}); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "page-bytes")
}

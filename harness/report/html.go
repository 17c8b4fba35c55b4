package report

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
)

// The event kinds the chart knows beside timeline's own. They are the
// packages' constants, repeated here so report imports none of them.
const (
	kindFault        = "fault"          // harness/fault: a span per fault; a mark with actor "armed"
	kindStep         = "upgrade-step"   // harness/upgrade: a span per step
	kindStepOutput   = "upgrade-output" // harness/upgrade: a mark per output line
	kindProbe        = "probe"          // harness/probe: "up"/"down" marks, "outage" spans
	kindSnapshot     = "snapshot"       // scenarios: take, restore, diff, ...
	kindUpgrade      = "upgrade"        // scenarios: package open, signature verdict
	actorArmed       = "armed"
	phaseRollback    = "rollback"
	probeOutage      = "outage"
	snapshotRestore  = "restore"
	defaultHTMLTitle = "rehearse report"
)

//go:embed assets/report.html.tmpl assets/report.css assets/report.js
var assets embed.FS

var (
	reportCSS  = mustAsset("assets/report.css")
	reportJS   = mustAsset("assets/report.js")
	reportTmpl = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
		"statusMark": statusMark,
	}).ParseFS(assets, "assets/report.html.tmpl"))
	// The page's Content-Security-Policy: nothing may be loaded, only
	// its own style sheet and script (by hash) run, images only inline.
	reportCSP = "default-src 'none'; style-src " + cspHash(reportCSS) + "; script-src " + cspHash(reportJS) +
		"; img-src data:; base-uri 'none'; form-action 'none'"
)

func mustAsset(name string) string {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// HTMLOptions says what the HTML report shows beside its scenarios.
type HTMLOptions struct {
	// Title is the page's title and heading; "rehearse report" when empty.
	Title string
	// Runs are the runs (one per shard) the scenarios came from, shown in
	// the header, their Errors in a banner above it; none is fine.
	Runs []Run
}

// HTML writes one self-contained HTML page: status counts, an index of the
// scenarios (failed first) that filters by status, tag and text, and per
// scenario a timeline chart (one lane per dataset, upgrade step and probe;
// faults as bands across the lanes), its steps, the failing step's error,
// the containers' log tails and the command that reproduces it. The page
// loads nothing: its style sheet and script are inline and allowed by
// hash in its Content-Security-Policy, and it reads well with scripts off.
func HTML(w io.Writer, scenarios []Scenario, opts HTMLOptions) error {
	if err := reportTmpl.Execute(w, buildPage(scenarios, opts)); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}

// page is what the template renders.
type page struct {
	Title     string
	CSP       string
	CSS       template.CSS
	JS        template.JS
	Counts    []statusCount
	Total     int
	Errors    []string // feature files the runs could not read
	Runs      []runView
	Tags      []string
	Scenarios []scenarioView
	Index     []indexEntry // the script's data, as JSON
}

type statusCount struct {
	Status string
	N      int
}

type runView struct {
	Shard    string
	Selected int
	Total    int
	Start    string
	Duration string
	Args     string
}

// indexEntry is one scenario as the page's script sees it.
type indexEntry struct {
	ID       string   `json:"id"`
	Status   string   `json:"status"`
	Tags     []string `json:"tags"`
	Location string   `json:"location"`
	Search   string   `json:"search"` // lower-cased text the search box matches
}

type scenarioView struct {
	ID         string
	S          Scenario
	Location   string
	Duration   string
	ErrorFirst string
	Open       bool
	Chart      *chart
	Steps      []stepView
	Upgrade    []upgradeStepView
}

type stepView struct {
	Step
	Duration  string
	Failed    bool
	ShowError bool // the step's error, unless it is the scenario's, shown below the steps
}

type upgradeStepView struct {
	Name     string
	Service  string
	User     string
	Rollback bool
	Exit     string
	OK       bool
	Duration string
	Error    string
	Output   []string
	Lines    string // "3 lines"
}

// chart is one scenario's timeline: lanes of bars on a time axis from
// the scenario's Start (0%) to its End (100%).
type chart struct {
	TotalMS int64
	Ticks   []tick
	Lanes   []lane
	Bands   []bar // faults, drawn across every lane
}

type tick struct {
	X      string
	Label  string
	Anchor string // SVG text-anchor
}

type lane struct {
	ID    string // data-lane
	Kind  string // data-lane-kind: the events' kind
	Label string
	Sub   string
	Bars  []bar
}

type bar struct {
	Kind     string // data-kind: the event's kind, or "outage", "baseline"
	Class    string
	StartMS  int64
	EndMS    int64
	X, W     string // percentages of the axis
	Instant  bool
	Title    string
	Label    string
	LabelX   string
	LabelEnd bool // the label ends at LabelX (a bar near the right edge)
}

// statusOrder is the order of the status counts.
var statusOrder = []string{StatusFailed, StatusUndefined, StatusPending, StatusPassed, StatusSkipped}

// rank puts failed scenarios first, then the ones that did not run for
// want of a step, then the rest, each in the order given.
func rank(status string) int {
	switch status {
	case StatusFailed:
		return 0
	case StatusPassed, StatusSkipped:
		return 2
	}
	return 1
}

func buildPage(scenarios []Scenario, opts HTMLOptions) page {
	p := page{Title: opts.Title, CSP: reportCSP, CSS: template.CSS(reportCSS), JS: template.JS(reportJS), Total: len(scenarios)}
	if p.Title == "" {
		p.Title = defaultHTMLTitle
	}
	for _, r := range opts.Runs {
		p.Runs = append(p.Runs, runView{
			Shard: r.Shard, Selected: len(r.Selected), Total: r.Total,
			Start: r.Start.UTC().Format("2006-01-02 15:04:05 UTC"), Duration: fmtDuration(r.End.Sub(r.Start)),
			Args: clean(strings.Join(r.Args, " ")),
		})
	}
	p.Errors = cleanAll((&Report{Runs: opts.Runs}).Errors())
	// Every text shown is cleaned of terminal escapes and control
	// characters, as in JUnit and Markdown.
	sorted := make([]Scenario, len(scenarios))
	for i, s := range scenarios {
		sorted[i] = cleanScenario(s)
	}
	slices.SortStableFunc(sorted, func(a, b Scenario) int { return rank(a.Status) - rank(b.Status) })
	counts := map[string]int{}
	tags := map[string]bool{}
	ids := map[string]int{}
	for _, s := range sorted {
		counts[s.Status]++
		for _, t := range s.Tags {
			tags[t] = true
		}
		v := viewScenario(s, uniqueID(ids, s))
		p.Scenarios = append(p.Scenarios, v)
		p.Index = append(p.Index, indexEntry{
			ID: v.ID, Status: s.Status, Tags: nonNil(s.Tags), Location: v.Location,
			Search: strings.ToLower(strings.Join([]string{s.Name, v.Location, s.FeatureName, strings.Join(s.Tags, " "), s.Error}, "\n")),
		})
	}
	for _, st := range statusOrder {
		p.Counts = append(p.Counts, statusCount{st, counts[st]})
		delete(counts, st)
	}
	for _, st := range sortedKeys(counts) {
		p.Counts = append(p.Counts, statusCount{st, counts[st]})
	}
	for t := range tags {
		p.Tags = append(p.Tags, t)
	}
	slices.Sort(p.Tags)
	return p
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// uniqueID is a scenario's anchor: its location, made safe for a URL
// fragment, numbered when two scenarios share it.
func uniqueID(seen map[string]int, s Scenario) string {
	var b strings.Builder
	b.WriteString("s-")
	for _, r := range s.Location() {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	id := b.String()
	seen[id]++
	if n := seen[id]; n > 1 {
		id += "-" + strconv.Itoa(n)
	}
	return id
}

func viewScenario(s Scenario, id string) scenarioView {
	v := scenarioView{ID: id, S: s, Location: s.Location(), Duration: fmtDuration(s.Duration()), Open: s.Status == StatusFailed}
	v.ErrorFirst, _, _ = strings.Cut(strings.TrimSpace(s.Error), "\n")
	for _, st := range s.Steps {
		sv := stepView{
			Step:      st,
			Failed:    st.Status == StatusFailed || (s.FailedLine != 0 && st.Line == s.FailedLine && st.Status != StatusPassed),
			ShowError: st.Error != "" && strings.TrimSpace(st.Error) != strings.TrimSpace(s.Error),
		}
		if !st.Start.IsZero() && !st.End.IsZero() {
			sv.Duration = fmtDuration(st.End.Sub(st.Start))
		}
		v.Steps = append(v.Steps, sv)
	}
	v.Upgrade = upgradeSteps(s.Events)
	v.Chart = buildChart(s)
	return v
}

// upgradeSteps lists the upgrade's steps with their output lines.
func upgradeSteps(events []timeline.Event) []upgradeStepView {
	var out []upgradeStepView
	outputs := stepOutputs(events)
	for i, e := range events {
		if e.Kind != kindStep {
			continue
		}
		u := upgradeStepView{
			Name: e.Name, Service: e.Actor, User: e.Fields["user"], Rollback: e.Fields["phase"] == phaseRollback,
			Exit: e.Fields["exit"], Duration: fmtDuration(e.Duration()), Error: e.Err, Output: outputs[i],
		}
		u.OK = stepOK(e)
		u.Lines = strconv.Itoa(len(u.Output)) + " lines"
		if len(u.Output) == 1 {
			u.Lines = "1 line"
		}
		out = append(out, u)
	}
	return out
}

// stepOutputs gives each upgrade step (by its index in events) its output
// lines: the output marks of the same step name (their actor) and phase
// from its start to its end, in time order. The events are grouped by
// step and phase once and each group swept in time order, so the work is
// O(n log n), not steps times outputs; an output line goes to one step
// only, the first to start of those it falls within.
func stepOutputs(events []timeline.Event) map[int][]string {
	type key struct{ name, phase string }
	type group struct{ steps, outputs []int }
	groups := map[key]*group{}
	get := func(k key) *group {
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
		}
		return g
	}
	for i, e := range events {
		switch e.Kind {
		case kindStep:
			g := get(key{e.Name, e.Fields["phase"]})
			g.steps = append(g.steps, i)
		case kindStepOutput:
			g := get(key{e.Actor, e.Fields["phase"]})
			g.outputs = append(g.outputs, i)
		}
	}
	out := map[int][]string{}
	byStart := func(a, b int) int { return events[a].Start.Compare(events[b].Start) }
	for _, g := range groups {
		if len(g.steps) == 0 || len(g.outputs) == 0 {
			continue
		}
		slices.SortStableFunc(g.steps, byStart)
		slices.SortStableFunc(g.outputs, byStart)
		next := 0
		for _, si := range g.steps {
			s := events[si]
			for next < len(g.outputs) && events[g.outputs[next]].Start.Before(s.Start) {
				next++ // before this step, so before every later one too
			}
			for next < len(g.outputs) && !events[g.outputs[next]].Start.After(s.End) {
				out[si] = append(out[si], events[g.outputs[next]].Name)
				next++
			}
		}
	}
	return out
}

func stepOK(e timeline.Event) bool {
	return e.Err == "" && (e.Fields["exit"] == "" || e.Fields["exit"] == "0")
}

// buildChart lays the scenario's events out on lanes; nil when there is
// no time axis (a scenario skipped before it started).
func buildChart(s Scenario) *chart {
	total := s.End.Sub(s.Start)
	if total <= 0 || len(s.Events) == 0 {
		return nil
	}
	c := &chart{TotalMS: total.Milliseconds(), Ticks: ticks(total)}
	pos := func(kind, class string, e timeline.Event) bar {
		return place(s.Start, total, kind, class, e.Start, e.End)
	}
	lanes := map[string]*lane{}
	var order []string
	get := func(id, kind, label string) *lane {
		if l, ok := lanes[id]; ok {
			return l
		}
		lanes[id] = &lane{ID: id, Kind: kind, Label: label}
		order = append(order, id)
		return lanes[id]
	}
	// Lanes appear in a fixed order of kinds, then in order of first event.
	groups := map[string][]timeline.Event{}
	for _, e := range s.Events {
		groups[e.Kind] = append(groups[e.Kind], e)
	}
	for _, e := range groups[timeline.KindEnvironment] {
		l := get("environment", e.Kind, "environment")
		b := pos(e.Kind, "env", e)
		b.Title = eventTitle(e, s.Start)
		if e.Actor != "environment" {
			b.Title = e.Actor + " " + b.Title
		}
		l.Bars = append(l.Bars, b)
	}
	for _, e := range groups[timeline.KindDataset] {
		l := get("dataset:"+e.Actor, e.Kind, "dataset "+e.Actor)
		b := pos(e.Kind, "dataset", e)
		b.Title = eventTitle(e, s.Start)
		l.Bars = append(l.Bars, b)
	}
	for _, e := range groups[kindUpgrade] {
		l := get("package", e.Kind, "package")
		b := pos(e.Kind, "package", e)
		b.Title = eventTitle(e, s.Start)
		l.Bars = append(l.Bars, b)
	}
	for _, e := range groups[kindFault] {
		l := get("faults", e.Kind, "faults")
		if e.Actor == actorArmed {
			b := pos(e.Kind, "armed", e)
			b.Title = "armed: " + eventTitle(e, s.Start)
			l.Bars = append(l.Bars, b)
			continue
		}
		b := pos(e.Kind, "fault", e)
		b.Title = e.Actor + ": " + eventTitle(e, s.Start)
		b.Label = e.Name
		b.LabelX, b.LabelEnd = b.X, b.StartMS*10 > c.TotalMS*7
		if b.LabelEnd {
			b.LabelX = pct(b.EndMS, c.TotalMS)
		}
		l.Bars = append(l.Bars, b)
		band := b
		band.Class, band.Label = "band", ""
		c.Bands = append(c.Bands, band)
	}
	steps := map[string]int{}
	for _, e := range groups[kindStep] {
		id := "step:" + e.Actor + "/" + e.Name
		label := e.Name
		if e.Fields["phase"] == phaseRollback {
			id += "/rollback"
			label = "↩ " + label
		}
		steps[id]++
		if n := steps[id]; n > 1 {
			id += "#" + strconv.Itoa(n)
		}
		l := get(id, e.Kind, label)
		l.Sub = e.Actor
		if u := e.Fields["user"]; u != "" {
			l.Sub += " as " + u
		}
		class := "step ok"
		if !stepOK(e) {
			class = "step fail"
		}
		if e.Fields["phase"] == phaseRollback {
			class += " rollback"
			l.Sub = "rollback · " + l.Sub
		}
		b := pos(e.Kind, class, e)
		b.Title = eventTitle(e, s.Start)
		l.Bars = append(l.Bars, b)
	}
	stopped := map[string]time.Time{} // probe -> when it stopped sampling
	for _, e := range groups[kindProbe] {
		if e.Name == "stop" {
			stopped[e.Actor] = e.Start
		}
	}
	for _, e := range groups[kindProbe] {
		l := get("probe:"+e.Actor, e.Kind, "probe "+e.Actor)
		if len(l.Bars) == 0 {
			// Watched from its first sample until it stopped (the end of
			// the scenario when the record does not say).
			until, ok := stopped[e.Actor]
			if !ok || until.Before(e.Start) {
				until = s.End
			}
			b := place(s.Start, total, "baseline", "probe-up", e.Start, until)
			b.Title = e.Actor + " watched from " + fmtOffset(e.Start.Sub(s.Start))
			l.Bars = append(l.Bars, b)
		}
		if e.Name == probeOutage && e.End.After(e.Start) {
			b := pos(probeOutage, "outage", e)
			b.Title = e.Actor + " down: " + eventTitle(e, s.Start)
			if d := e.Fields["probe"]; d != "" {
				l.Sub = d
			}
			l.Bars = append(l.Bars, b)
		} else if e.Name == "down" || e.Name == "up" {
			b := pos(e.Kind, "probe-"+e.Name, e)
			b.Title = e.Actor + " " + eventTitle(e, s.Start)
			l.Bars = append(l.Bars, b)
		}
	}
	for _, e := range groups[kindSnapshot] {
		l := get("snapshots", e.Kind, "snapshots")
		class := "snapshot"
		if e.Name == snapshotRestore {
			class = "restore"
		}
		b := pos(e.Kind, class, e)
		b.Title = e.Actor + " " + eventTitle(e, s.Start)
		l.Bars = append(l.Bars, b)
	}
	known := []string{timeline.KindEnvironment, timeline.KindDataset, kindUpgrade, kindFault, kindStep, kindProbe, kindSnapshot, kindStepOutput}
	for _, k := range sortedKeys(groups) {
		if slices.Contains(known, k) {
			continue
		}
		for _, e := range groups[k] {
			l := get(k, k, k)
			b := pos(e.Kind, "other kind-"+cssIdent(k), e)
			b.Title = e.Actor + " " + eventTitle(e, s.Start)
			l.Bars = append(l.Bars, b)
		}
	}
	for _, id := range order {
		c.Lanes = append(c.Lanes, *lanes[id])
	}
	return c
}

// cssIdent keeps the letters, digits and dashes of s.
func cssIdent(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, strings.ToLower(s))
}

// place positions an interval on the axis [t0, t0+total], clamped to it.
func place(t0 time.Time, total time.Duration, kind, class string, start, end time.Time) bar {
	if end.Before(start) {
		end = start
	}
	ms := total.Milliseconds()
	clamp := func(t time.Time) int64 { return min(max(t.Sub(t0).Milliseconds(), 0), ms) }
	b := bar{Kind: kind, Class: class, StartMS: clamp(start), EndMS: clamp(end), Instant: !end.After(start)}
	b.X, b.W = pct(b.StartMS, ms), pct(b.EndMS-b.StartMS, ms)
	return b
}

// pct is part of whole as an SVG percentage.
func pct(part, whole int64) string {
	if whole <= 0 {
		return "0%"
	}
	return strconv.FormatFloat(float64(part)*100/float64(whole), 'f', 4, 64) + "%"
}

func eventTitle(e timeline.Event, t0 time.Time) string {
	var b strings.Builder
	b.WriteString(e.Name)
	b.WriteString(" at ")
	b.WriteString(fmtOffset(e.Start.Sub(t0)))
	if d := e.Duration(); d > 0 {
		b.WriteString(" for ")
		b.WriteString(fmtDuration(d))
	}
	for _, k := range sortedKeys(e.Fields) {
		b.WriteString("\n" + k + "=" + e.Fields[k])
	}
	if e.Err != "" {
		b.WriteString("\nerror: " + e.Err)
	}
	return b.String()
}

// ticks marks the axis at a round interval, at most about ten of them.
func ticks(total time.Duration) []tick {
	steps := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if total/s <= 10 {
			step = s
			break
		}
	}
	// Doubling stops at total/10 (not step*10 < total, which overflows for
	// the longest durations and never ends).
	for step < total/10 {
		step *= 2
	}
	var out []tick
	for t := time.Duration(0); len(out) <= maxTicks; t += step {
		anchor := "middle"
		if t == 0 {
			anchor = "start"
		} else if total-t < step/3 {
			anchor = "end"
		}
		out = append(out, tick{X: pct(t.Milliseconds(), total.Milliseconds()), Label: fmtOffset(t), Anchor: anchor})
		if t > total-step { // the next would pass the end (or overflow)
			break
		}
	}
	return out
}

// maxTicks bounds the ticks of an axis, whatever its length.
const maxTicks = 20

// fmtOffset is a point on the axis: 0s, 500ms, 12s, 1m30s.
func fmtOffset(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
	default:
		return d.Truncate(time.Second).String()
	}
}

// fmtDuration is a length of time, rounded to what a reader cares for.
func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	default:
		return d.Round(time.Second).String()
	}
}

func statusMark(status string) string {
	switch status {
	case StatusPassed:
		return "✓"
	case StatusFailed:
		return "✗"
	case StatusSkipped:
		return "–"
	default:
		return "?"
	}
}

package report

import (
	"context"
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
//
// A record of many events is drawn within bounds: at most maxLanes lanes
// and maxBars bars per chart, maxOutputLines output lines per upgrade
// step and maxUpgradeRows upgrade steps per scenario, each saying what it
// leaves out.
func HTML(w io.Writer, scenarios []Scenario, opts HTMLOptions) error {
	return writeHTML(context.Background(), w, scenarios, opts)
}

// writeHTML is HTML that stops, with ctx's error, when ctx is done: it
// checks before each scenario and on every write.
func writeHTML(ctx context.Context, w io.Writer, scenarios []Scenario, opts HTMLOptions) error {
	p, err := buildPage(ctx, scenarios, opts)
	if err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	if err := reportTmpl.Execute(ctxWriter{ctx, w}, p); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("write HTML report: %w", ctx.Err())
		}
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
	// UpgradeMore is how many upgrade steps are left out of Upgrade
	// (past maxUpgradeRows).
	UpgradeMore int
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
	Output   []string // the last maxOutputLines lines
	Omitted  string   // "… 9800 earlier lines not shown", when there were more
	Lines    string   // "3 lines": all of them
}

// Bounds on a scenario's upgrade steps table (see maxLanes for why).
const (
	// maxUpgradeRows is the most upgrade steps the table lists: the
	// failed ones first, then the others, in the order they ran.
	maxUpgradeRows = 200
	// maxOutputLines is the most output lines shown per upgrade step: the
	// last ones, after a line saying how many are left out.
	maxOutputLines = 200
)

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

func buildPage(ctx context.Context, scenarios []Scenario, opts HTMLOptions) (page, error) {
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
		if err := ctx.Err(); err != nil {
			return p, err
		}
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
	return p, nil
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
	v.Upgrade, v.UpgradeMore = upgradeSteps(s.Events)
	v.Chart = buildChart(s)
	v.S.Events = nil // drawn; the template does not read them
	return v
}

// upgradeSteps lists the upgrade's steps with their output lines, at most
// maxUpgradeRows of them (the failed ones first), and says how many it
// leaves out. The texts are cleaned for display.
func upgradeSteps(events []timeline.Event) ([]upgradeStepView, int) {
	var steps, failed []int
	for i, e := range events {
		if e.Kind == kindStep {
			steps = append(steps, i)
			if !stepOK(e) {
				failed = append(failed, i)
			}
		}
	}
	shown := steps
	if len(steps) > maxUpgradeRows {
		keep := map[int]bool{}
		for _, i := range failed[:min(len(failed), maxUpgradeRows)] {
			keep[i] = true
		}
		for _, i := range steps {
			if len(keep) == maxUpgradeRows {
				break
			}
			keep[i] = true
		}
		shown = nil
		for _, i := range steps {
			if keep[i] {
				shown = append(shown, i)
			}
		}
	}
	var out []upgradeStepView
	outputs := stepOutputs(events)
	for _, i := range shown {
		e := events[i]
		lines := outputs[i]
		u := upgradeStepView{
			Name: clean(e.Name), Service: clean(e.Actor), User: clean(e.Fields["user"]), Rollback: e.Fields["phase"] == phaseRollback,
			Exit: clean(e.Fields["exit"]), Duration: fmtDuration(e.Duration()), Error: clean(e.Err),
		}
		u.OK = stepOK(e)
		u.Lines = strconv.Itoa(len(lines)) + " lines"
		if len(lines) == 1 {
			u.Lines = "1 line"
		}
		if n := len(lines) - maxOutputLines; n > 0 {
			u.Omitted = fmt.Sprintf("… %d earlier %s not shown", n, plural(n, "line"))
			lines = lines[n:]
		}
		u.Output = cleanAll(lines)
		out = append(out, u)
	}
	return out, len(steps) - len(shown)
}

// stepOutputs gives each upgrade step (by its index in events) its output
// lines: the output marks of the same step name (their actor) and phase,
// compared as displayed (cleaned), from its start to its end, in time
// order. The events are grouped by
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
			g := get(key{clean(e.Name), clean(e.Fields["phase"])})
			g.steps = append(g.steps, i)
		case kindStepOutput:
			g := get(key{clean(e.Actor), clean(e.Fields["phase"])})
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

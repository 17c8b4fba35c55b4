package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
)

// Bounds on what one scenario's chart draws. A record may hold MaxEvents
// events, each of a probe, upgrade step or kind of its own: a chart of a
// hundred thousand lanes helps nobody and takes a browser down. A real
// rehearsal is far below them, and then everything is drawn as recorded.
const (
	// maxLanes is the most lanes a chart has. Past it the last lane folds
	// the rest ("N more lanes"); the lanes kept are the environment,
	// package, faults and snapshots, then upgrade steps and probes, then
	// datasets, then kinds the chart does not know, each in chart order.
	maxLanes = 40
	// maxBars is the most bars a chart draws. A lane with more events than
	// its share draws those that start close together (within 1/share of
	// the axis) as one bar, whose hover text says how many it holds.
	maxBars = 2000
	// moreLanes is the data-lane of the lane that folds the rest.
	moreLanes = "(more lanes)"
)

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

	prio  int    // lanePrio*: which lanes a full chart keeps
	marks []mark // the lane's events, before the chart's bounds
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

	band bool // a fault: also drawn as a band across the lanes
}

// Lane priorities, lowest kept first when a chart has too many lanes.
const (
	lanePrioFixed     = iota // environment, package, faults, snapshots: one lane each
	lanePrioStepProbe        // an upgrade step's or a probe's
	lanePrioDataset
	lanePrioOther // a kind the chart does not know
)

// titleStyle is how a bar's hover text begins.
type titleStyle uint8

const (
	titlePlain      titleStyle = iota // "migrate at 3s for 2s"
	titleEnv                          // the actor first, unless it is the environment
	titleActor                        // "db restore at 3s"
	titleActorColon                   // "db: pause db at 3s"
	titleArmed                        // "armed: pause db at 1s"
	titleDown                         // "api down: outage at 3s"
	titleBaseline                     // "api watched from 2s": a probe's lane from its first sample
)

// mark is one bar to be. Its text is made only when it is drawn, so a
// record of many events costs little more than the events.
type mark struct {
	ev          int // the event's index in the scenario
	kind, class string
	style       titleStyle
	start, end  int64 // milliseconds on the axis, clamped to it
	instant     bool
	fault       bool // a fault's span: labelled, and a band across the lanes
}

// chartBuilder lays out one scenario's chart.
type chartBuilder struct {
	s     Scenario
	total time.Duration
	ms    int64
	lanes map[string]*lane
	order []*lane // in order of creation
}

// buildChart lays the scenario's events out on lanes, within maxLanes and
// maxBars; nil when there is no time axis (a scenario skipped before it
// started).
func buildChart(s Scenario) *chart {
	total := s.End.Sub(s.Start)
	if total <= 0 || len(s.Events) == 0 {
		return nil
	}
	cb := &chartBuilder{s: s, total: total, ms: total.Milliseconds(), lanes: map[string]*lane{}}
	cb.collect()
	lanes := cb.fold()
	counts := make([]int, len(lanes))
	for i, l := range lanes {
		counts[i] = len(l.marks)
	}
	c := &chart{TotalMS: cb.ms, Ticks: ticks(total)}
	for i, share := range shares(counts, maxBars) {
		l := lanes[i]
		l.Bars, l.marks = cb.draw(l.marks, share), nil
		for _, b := range l.Bars {
			if b.band {
				band := b
				band.Class, band.Label = "band", ""
				c.Bands = append(c.Bands, band)
			}
		}
		c.Lanes = append(c.Lanes, *l)
	}
	return c
}

// lane is the lane id, made when first asked for.
func (cb *chartBuilder) lane(id, kind, label string, prio int) *lane {
	if l, ok := cb.lanes[id]; ok {
		return l
	}
	l := &lane{ID: id, Kind: kind, Label: label, prio: prio}
	cb.lanes[id] = l
	cb.order = append(cb.order, l)
	return l
}

// add puts event i on lane l, from start to end.
func (cb *chartBuilder) add(l *lane, i int, start, end time.Time, kind, class string, style titleStyle) *mark {
	if end.Before(start) {
		end = start
	}
	at := func(t time.Time) int64 { return min(max(t.Sub(cb.s.Start).Milliseconds(), 0), cb.ms) }
	l.marks = append(l.marks, mark{ev: i, kind: kind, class: class, style: style, start: at(start), end: at(end), instant: !end.After(start)})
	return &l.marks[len(l.marks)-1]
}

// addEvent puts event i on lane l over its own span.
func (cb *chartBuilder) addEvent(l *lane, i int, kind, class string, style titleStyle) *mark {
	e := &cb.s.Events[i]
	return cb.add(l, i, e.Start, e.End, kind, class, style)
}

// collect puts every event on its lane. Lanes appear in a fixed order of
// kinds, then in order of first event.
func (cb *chartBuilder) collect() {
	events := cb.s.Events
	groups := map[string][]int{} // kind -> event indices
	for i, e := range events {
		groups[e.Kind] = append(groups[e.Kind], i)
	}
	for _, i := range groups[timeline.KindEnvironment] {
		l := cb.lane("environment", timeline.KindEnvironment, "environment", lanePrioFixed)
		cb.addEvent(l, i, timeline.KindEnvironment, "env", titleEnv)
	}
	for _, i := range groups[timeline.KindDataset] {
		e := &events[i]
		l := cb.lane("dataset:"+e.Actor, e.Kind, "dataset "+e.Actor, lanePrioDataset)
		cb.addEvent(l, i, e.Kind, "dataset", titlePlain)
	}
	for _, i := range groups[kindUpgrade] {
		cb.addEvent(cb.lane("package", kindUpgrade, "package", lanePrioFixed), i, kindUpgrade, "package", titlePlain)
	}
	for _, i := range groups[kindFault] {
		l := cb.lane("faults", kindFault, "faults", lanePrioFixed)
		if events[i].Actor == actorArmed {
			cb.addEvent(l, i, kindFault, "armed", titleArmed)
			continue
		}
		cb.addEvent(l, i, kindFault, "fault", titleActorColon).fault = true
	}
	steps := map[string]int{}
	for _, i := range groups[kindStep] {
		e := &events[i]
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
		l := cb.lane(id, e.Kind, label, lanePrioStepProbe)
		l.Sub = e.Actor
		if u := e.Fields["user"]; u != "" {
			l.Sub += " as " + u
		}
		class := "step ok"
		if !stepOK(*e) {
			class = "step fail"
		}
		if e.Fields["phase"] == phaseRollback {
			class += " rollback"
			l.Sub = "rollback · " + l.Sub
		}
		cb.addEvent(l, i, e.Kind, class, titlePlain)
	}
	stopped := map[string]time.Time{} // probe -> when it stopped sampling
	for _, i := range groups[kindProbe] {
		if e := &events[i]; e.Name == "stop" {
			stopped[e.Actor] = e.Start
		}
	}
	for _, i := range groups[kindProbe] {
		e := &events[i]
		l := cb.lane("probe:"+e.Actor, e.Kind, "probe "+e.Actor, lanePrioStepProbe)
		if len(l.marks) == 0 {
			// Watched from its first sample until it stopped (the end of
			// the scenario when the record does not say).
			until, ok := stopped[e.Actor]
			if !ok || until.Before(e.Start) {
				until = cb.s.End
			}
			cb.add(l, i, e.Start, until, "baseline", "probe-up", titleBaseline)
		}
		if e.Name == probeOutage && e.End.After(e.Start) {
			cb.addEvent(l, i, probeOutage, "outage", titleDown)
			if d := e.Fields["probe"]; d != "" {
				l.Sub = d
			}
		} else if e.Name == "down" || e.Name == "up" {
			cb.addEvent(l, i, e.Kind, "probe-"+e.Name, titleActor)
		}
	}
	for _, i := range groups[kindSnapshot] {
		class := "snapshot"
		if events[i].Name == snapshotRestore {
			class = "restore"
		}
		cb.addEvent(cb.lane("snapshots", kindSnapshot, "snapshots", lanePrioFixed), i, kindSnapshot, class, titleActor)
	}
	known := []string{timeline.KindEnvironment, timeline.KindDataset, kindUpgrade, kindFault, kindStep, kindProbe, kindSnapshot, kindStepOutput}
	for _, k := range sortedKeys(groups) {
		if slices.Contains(known, k) {
			continue
		}
		l := cb.lane(k, k, k, lanePrioOther)
		class := "other kind-" + cssIdent(k)
		for _, i := range groups[k] {
			cb.addEvent(l, i, k, class, titleActor)
		}
	}
}

// fold keeps at most maxLanes lanes: past it, the last folds the events
// of the lanes left out (their probes' baselines aside). The texts of the
// lanes kept are cleaned for display.
func (cb *chartBuilder) fold() []*lane {
	lanes := cb.order
	if len(lanes) > maxLanes {
		byPrio := make([]int, len(lanes))
		for i := range byPrio {
			byPrio[i] = i
		}
		slices.SortStableFunc(byPrio, func(a, b int) int { return lanes[a].prio - lanes[b].prio })
		keep := make([]bool, len(lanes))
		for _, i := range byPrio[:maxLanes-1] {
			keep[i] = true
		}
		more := &lane{ID: moreLanes, Kind: moreLanes, prio: lanePrioOther}
		folded := 0
		for i, l := range lanes {
			if !keep[i] {
				folded += len(l.marks)
			}
		}
		more.marks = make([]mark, 0, folded)
		var kept []*lane
		var names []string
		n := 0
		for i, l := range lanes {
			if keep[i] {
				kept = append(kept, l)
				continue
			}
			n++
			if len(names) < 3 {
				names = append(names, l.Label)
			}
			for _, m := range l.marks {
				if m.style != titleBaseline {
					more.marks = append(more.marks, m)
				}
			}
		}
		if n > len(names) {
			names = append(names, "…")
		}
		more.Label, more.Sub = fmt.Sprintf("%d more lanes", n), strings.Join(names, ", ")
		lanes = append(kept, more)
	}
	for _, l := range lanes {
		l.ID, l.Kind, l.Label, l.Sub = clean(l.ID), clean(l.Kind), clean(l.Label), clean(l.Sub)
	}
	return lanes
}

// shares divides budget among lanes that want counts[i] bars each: a lane
// that wants less than an even share gets what it wants, and the others
// split what is left evenly; every lane gets at least one.
func shares(counts []int, budget int) []int {
	idx := make([]int, len(counts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return counts[a] - counts[b] })
	out := make([]int, len(counts))
	for k, i := range idx {
		out[i] = min(counts[i], max(budget/(len(idx)-k), 1))
		budget -= out[i]
	}
	return out
}

// draw makes the bars of a lane's marks, at most share of them (a probe's
// baseline aside): past it, marks that start within the same 1/share of
// the axis are drawn as one bar. It reorders marks.
func (cb *chartBuilder) draw(marks []mark, share int) []bar {
	if len(marks) <= share {
		bars := make([]bar, len(marks))
		for i, m := range marks {
			bars[i] = cb.bar(m)
		}
		return bars
	}
	var bars []bar
	rest := marks[:0]
	for _, m := range marks {
		if m.style == titleBaseline {
			bars = append(bars, cb.bar(m))
		} else {
			rest = append(rest, m)
		}
	}
	k := max(share-len(bars), 1)
	bucket := func(ms int64) int {
		if cb.ms <= 0 {
			return 0
		}
		return min(int(float64(ms)/float64(cb.ms)*float64(k)), k-1)
	}
	slices.SortStableFunc(rest, func(a, b mark) int { return cmp.Compare(a.start, b.start) })
	for i := 0; i < len(rest); {
		j := i + 1
		for j < len(rest) && bucket(rest[j].start) == bucket(rest[i].start) {
			j++
		}
		if j-i == 1 {
			bars = append(bars, cb.bar(rest[i]))
		} else {
			bars = append(bars, cb.merged(rest[i:j]))
		}
		i = j
	}
	return bars
}

// bar draws one mark.
func (cb *chartBuilder) bar(m mark) bar {
	b := bar{Kind: clean(m.kind), Class: m.class, StartMS: m.start, EndMS: m.end, Instant: m.instant, Title: cb.title(m), band: m.fault}
	b.X, b.W = pct(b.StartMS, cb.ms), pct(b.EndMS-b.StartMS, cb.ms)
	if m.fault {
		cb.label(&b, clean(cb.s.Events[m.ev].Name))
	}
	return b
}

// merged draws several marks as one bar, in the colour of the one that
// matters most (a failure, an outage, a fault), its hover text saying how
// many and the first few.
func (cb *chartBuilder) merged(group []mark) bar {
	const named = 3
	rep, end, faults := group[0], group[0].end, 0
	for _, m := range group {
		if weight(m) > weight(rep) {
			rep = m
		}
		end = max(end, m.end)
		if m.fault {
			faults++
		}
	}
	b := bar{Kind: clean(rep.kind), Class: rep.class + " merged", StartMS: group[0].start, EndMS: end, Instant: end == group[0].start, band: rep.fault}
	b.X, b.W = pct(b.StartMS, cb.ms), pct(b.EndMS-b.StartMS, cb.ms)
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	var t strings.Builder
	fmt.Fprintf(&t, "%d events from %s to %s, drawn as one bar:", len(group), fmtOffset(ms(b.StartMS)), fmtOffset(ms(b.EndMS)))
	for _, m := range group[:min(len(group), named)] {
		t.WriteString("\n· " + firstLine(cb.title(m)))
	}
	if len(group) > named {
		fmt.Fprintf(&t, "\n… and %d more", len(group)-named)
	}
	b.Title = t.String()
	if rep.fault {
		cb.label(&b, fmt.Sprintf("%d faults", faults))
	}
	return b
}

// weight is how much a mark matters when several are drawn as one.
func weight(m mark) int {
	switch {
	case strings.Contains(m.class, "fail"):
		return 3
	case m.class == "outage":
		return 2
	case m.fault:
		return 1
	}
	return 0
}

// label puts text beside a bar: after its start, or before its end near
// the right edge.
func (cb *chartBuilder) label(b *bar, text string) {
	b.Label = text
	b.LabelX, b.LabelEnd = b.X, b.StartMS*10 > cb.ms*7
	if b.LabelEnd {
		b.LabelX = pct(b.EndMS, cb.ms)
	}
}

// title is a mark's hover text, cleaned.
func (cb *chartBuilder) title(m mark) string {
	e := cb.s.Events[m.ev]
	t := eventTitle(e, cb.s.Start, cb.total)
	switch m.style {
	case titleEnv:
		if e.Actor != "environment" {
			t = e.Actor + " " + t
		}
	case titleActor:
		t = e.Actor + " " + t
	case titleActorColon:
		t = e.Actor + ": " + t
	case titleArmed:
		t = "armed: " + t
	case titleDown:
		t = e.Actor + " down: " + t
	case titleBaseline:
		t = e.Actor + " watched from " + fmtOffset(min(max(e.Start.Sub(cb.s.Start), 0), cb.total))
	}
	return clean(t)
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

// pct is part of whole as an SVG percentage.
func pct(part, whole int64) string {
	if whole <= 0 {
		return "0%"
	}
	return strconv.FormatFloat(float64(part)*100/float64(whole), 'f', 4, 64) + "%"
}

// eventTitle is an event as hover text: what, when and for how long on
// the axis [t0, t0+total] (clamped to it, saying so when the event lies
// outside), its fields and its error.
func eventTitle(e timeline.Event, t0 time.Time, total time.Duration) string {
	start, end := e.Start.Sub(t0), e.End.Sub(t0)
	if e.End.Before(e.Start) {
		end = start
	}
	cs, ce := min(max(start, 0), total), min(max(end, 0), total)
	var b strings.Builder
	b.WriteString(e.Name)
	b.WriteString(" at ")
	b.WriteString(fmtOffset(cs))
	if ce > cs {
		b.WriteString(" for ")
		b.WriteString(fmtDuration(ce - cs))
	}
	switch {
	case start > total:
		b.WriteString(" (after the scenario's end)")
	case end < 0:
		b.WriteString(" (before the scenario's start)")
	case start < 0 && end > total:
		b.WriteString(" (from before the scenario's start to after its end)")
	case start < 0:
		b.WriteString(" (from before the scenario's start)")
	case end > total:
		b.WriteString(" (until after the scenario's end)")
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

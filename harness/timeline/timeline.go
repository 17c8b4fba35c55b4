// Package timeline is the event log of one rehearsal: every actor
// (environment, commands, datasets, upgrade steps, faults, probes) appends
// timestamped events; assertions and reports only read it.
package timeline

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kinds of events.
const (
	KindEnvironment = "environment"
	KindCommand     = "command"
	KindDataset     = "dataset"
	KindLog         = "log"
	KindWarning     = "warning" // something a rehearsal allowed that it should not rely on, such as an unsigned package
)

// Event is one thing that happened. Instant events have End == Start.
type Event struct {
	Seq    int               `json:"seq"`
	Kind   string            `json:"kind"`
	Actor  string            `json:"actor"` // who did it: a service, "environment", a dataset
	Name   string            `json:"name"`  // what: "start", a command line, a table
	Start  time.Time         `json:"start"`
	End    time.Time         `json:"end"`
	Err    string            `json:"error,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}

// Duration is how long the event lasted.
func (e Event) Duration() time.Duration { return e.End.Sub(e.Start) }

// Timeline is safe for concurrent use.
type Timeline struct {
	mu     sync.Mutex
	events []Event
	now    func() time.Time
}

// New returns an empty timeline.
func New() *Timeline { return &Timeline{now: time.Now} }

// Span is an event that is still going on.
type Span struct {
	tl *Timeline
	ev Event
}

// Begin starts an event with a duration; call End on the span.
func (t *Timeline) Begin(kind, actor, name string) *Span {
	return &Span{tl: t, ev: Event{Kind: kind, Actor: actor, Name: name, Start: t.now(), Fields: map[string]string{}}}
}

// Set records a field on the span.
func (s *Span) Set(key string, value any) *Span {
	s.ev.Fields[key] = fmt.Sprint(value)
	return s
}

// End closes the span (err may be nil) and appends it.
func (s *Span) End(err error) Event {
	s.ev.End = s.tl.now()
	if err != nil {
		s.ev.Err = err.Error()
	}
	return s.tl.append(s.ev)
}

// Mark appends an instant event.
func (t *Timeline) Mark(kind, actor, name string, fields map[string]string) Event {
	now := t.now()
	return t.append(Event{Kind: kind, Actor: actor, Name: name, Start: now, End: now, Fields: fields})
}

func (t *Timeline) append(e Event) Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.Seq = len(t.events) + 1
	t.events = append(t.events, e)
	return e
}

// Events returns a copy of the events ordered by start time.
func (t *Timeline) Events() []Event {
	t.mu.Lock()
	out := make([]Event, len(t.events))
	copy(out, t.events)
	t.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Filter returns the events of one kind (all kinds when kind is "").
func (t *Timeline) Filter(kind string) []Event {
	var out []Event
	for _, e := range t.Events() {
		if kind == "" || e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// WriteText writes the timeline as one line per event, times relative to
// the first event.
func (t *Timeline) WriteText(w io.Writer) error {
	return WriteEvents(w, t.Events())
}

// WriteEvents writes events as WriteText does: one line per event ordered
// by start time (events starting together keep their order), times
// relative to the first. It does not modify events.
func WriteEvents(w io.Writer, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	events = slices.Clone(events)
	sort.SliceStable(events, func(i, j int) bool { return events[i].Start.Before(events[j].Start) })
	t0 := events[0].Start
	for _, e := range events {
		line := fmt.Sprintf("%8.3fs %7.3fs  %-11s %-12s %s", e.Start.Sub(t0).Seconds(), e.Duration().Seconds(), e.Kind, e.Actor, e.Name)
		if len(e.Fields) > 0 {
			keys := make([]string, 0, len(e.Fields))
			for k := range e.Fields {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var kv []string
			for _, k := range keys {
				kv = append(kv, k+"="+e.Fields[k])
			}
			line += "  " + strings.Join(kv, " ")
		}
		if e.Err != "" {
			line += "  error: " + strings.ReplaceAll(e.Err, "\n", " ")
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

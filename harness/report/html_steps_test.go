package report

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
)

// TestStepOutputs: each upgrade step gets the output lines of its name and
// phase within its span, whatever the events' order, and a line goes to
// one step only.
func TestStepOutputs(t *testing.T) {
	t0 := time.Date(2025, 6, 3, 2, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	step := func(name, phase string, from, to int) timeline.Event {
		return timeline.Event{Kind: kindStep, Actor: "billing", Name: name, Start: at(from), End: at(to), Fields: map[string]string{"phase": phase}}
	}
	out := func(step, phase string, s int, text string) timeline.Event {
		return timeline.Event{Kind: kindStepOutput, Actor: step, Name: text, Start: at(s), End: at(s), Fields: map[string]string{"phase": phase}}
	}
	events := []timeline.Event{
		out("install", "upgrade", 3, "unpacking"), // before its step in the slice
		step("install", "upgrade", 2, 5),          // 1
		out("install", "upgrade", 2, "reading"),   // at its start
		out("install", "upgrade", 5, "done"),      // at its end
		out("install", "upgrade", 6, "late"),      // after it: no step's
		out("install", "rollback", 4, "rb line"),  // another phase
		out("restart", "upgrade", 4, "other step"),
		step("install", "rollback", 3, 9),  // 7
		step("restart", "upgrade", 10, 11), // 8: its line is outside its span
		step("install", "upgrade", 4, 8),   // 9: overlaps 1; gets what 1 did not take
		out("install", "upgrade", 7, "second run"),
		{Kind: timeline.KindCommand, Actor: "install", Name: "not output", Start: at(3), End: at(3)},
	}
	got := stepOutputs(events)
	want := map[int][]string{
		1: {"reading", "unpacking", "done"},
		7: {"rb line"},
		9: {"late", "second run"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stepOutputs:\n%v\nwant\n%v", got, want)
	}
}

// TestStepOutputsMany: many steps and many lines of one name come out
// whole; the grouping is tested by its output, not its time.
func TestStepOutputsMany(t *testing.T) {
	t0 := time.Date(2025, 6, 3, 2, 0, 0, 0, time.UTC)
	var events []timeline.Event
	const steps, lines = 200, 50
	for i := range steps {
		s := t0.Add(time.Duration(i) * time.Minute)
		events = append(events, timeline.Event{Kind: kindStep, Actor: "svc", Name: fmt.Sprintf("s%d", i%3), Start: s, End: s.Add(55 * time.Second)})
		for j := range lines {
			events = append(events, timeline.Event{Kind: kindStepOutput, Actor: fmt.Sprintf("s%d", i%3), Name: fmt.Sprint(i, ".", j), Start: s.Add(time.Duration(j) * time.Second)})
		}
	}
	got := stepOutputs(events)
	if len(got) != steps {
		t.Fatalf("%d steps with output, want %d", len(got), steps)
	}
	for i, e := range events {
		if e.Kind != kindStep {
			continue
		}
		n := i / (lines + 1)
		if len(got[i]) != lines || got[i][0] != fmt.Sprint(n, ".0") || got[i][lines-1] != fmt.Sprint(n, ".", lines-1) {
			t.Fatalf("step %d: %d lines %q", n, len(got[i]), got[i])
		}
	}
}

package timeline

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake clock advancing one second per reading.
func clock() func() time.Time {
	t := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

func TestSpansAndMarks(t *testing.T) {
	tl := New()
	tl.now = clock()
	s := tl.Begin(KindCommand, "billing", "systemctl restart billing.service").Set("user", "deploy")
	tl.Mark(KindLog, "db", "checkpoint", nil)
	ev := s.End(errors.New("exit 5"))
	if ev.Duration() != 2*time.Second || ev.Err != "exit 5" || ev.Fields["user"] != "deploy" {
		t.Errorf("span event %+v", ev)
	}
	events := tl.Events()
	if len(events) != 2 || events[0].Kind != KindCommand || events[1].Name != "checkpoint" {
		t.Errorf("events not ordered by start: %+v", events)
	}
	if got := tl.Filter(KindLog); len(got) != 1 {
		t.Errorf("filter: %+v", got)
	}
	var b strings.Builder
	if err := tl.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := "   0.000s   2.000s  command     billing      systemctl restart billing.service  user=deploy  error: exit 5\n" +
		"   1.000s   0.000s  log         db           checkpoint\n"
	if b.String() != want {
		t.Errorf("text:\n%q\nwant\n%q", b.String(), want)
	}
}

func TestWriteEvents(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	events := []Event{
		{Seq: 1, Kind: KindLog, Actor: "db", Name: "late", Start: t0.Add(3 * time.Second), End: t0.Add(3 * time.Second)},
		{Seq: 2, Kind: KindCommand, Actor: "app", Name: "first", Start: t0, End: t0.Add(time.Second), Err: "exit 1\nmore",
			Fields: map[string]string{"b": "2", "a": "1"}},
		{Seq: 3, Kind: KindLog, Actor: "db", Name: "also first", Start: t0, End: t0},
	}
	var b strings.Builder
	if err := WriteEvents(&b, events); err != nil {
		t.Fatal(err)
	}
	want := "   0.000s   1.000s  command     app          first  a=1 b=2  error: exit 1 more\n" +
		"   0.000s   0.000s  log         db           also first\n" +
		"   3.000s   0.000s  log         db           late\n"
	if b.String() != want {
		t.Errorf("text:\n%q\nwant\n%q", b.String(), want)
	}
	if events[0].Name != "late" {
		t.Error("WriteEvents reordered its argument")
	}
	b.Reset()
	if err := WriteEvents(&b, nil); err != nil || b.Len() != 0 {
		t.Errorf("no events: %q, %v", b.String(), err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	tl := New()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tl.Begin(KindCommand, "svc", "x").End(nil)
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, e := range tl.Events() {
		seen[e.Seq] = true
	}
	if len(seen) != 50 {
		t.Errorf("%d distinct sequence numbers, want 50", len(seen))
	}
}

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

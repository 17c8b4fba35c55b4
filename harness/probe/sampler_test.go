package probe

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
)

// fake is a Checker whose answer is a function of the check's number.
type fake struct {
	n      atomic.Int64
	answer func(ctx context.Context, n int) error
	closed atomic.Bool
}

func (f *fake) Check(ctx context.Context) error { return f.answer(ctx, int(f.n.Add(1))) }
func (f *fake) Close() error                    { f.closed.Store(true); return nil }
func (f *fake) String() string                  { return "fake" }

func okAlways(context.Context, int) error { return nil }

// waitFor polls cond until it holds, failing after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * ms) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func run(t *testing.T, c Checker, d time.Duration, opts ...Option) ([]Sample, *Sampler) {
	t.Helper()
	s, err := NewSampler(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	return s.Stop(), s
}

func TestSamplerOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []Option
		interval time.Duration
		timeout  time.Duration
		err      string
	}{
		{"defaults", nil, 100 * ms, 100 * ms, ""},
		{"timeout follows the interval", []Option{WithInterval(50 * ms)}, 50 * ms, 50 * ms, ""},
		{"timeout capped at 1s", []Option{WithInterval(5 * time.Second)}, 5 * time.Second, time.Second, ""},
		{"explicit timeout", []Option{WithInterval(20 * ms), WithTimeout(300 * ms)}, 20 * ms, 300 * ms, ""},
		{"interval below 20ms", []Option{WithInterval(10 * ms)}, 0, 0, "below the minimum of 20ms"},
		{"zero timeout", []Option{WithTimeout(0)}, 0, 0, "want more than 0"},
		{"timeout above 1s", []Option{WithTimeout(2 * time.Second)}, 0, 0, "at most 1s"},
		{"empty name", []Option{WithName("")}, 0, 0, "probe name: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSampler(&fake{answer: okAlways}, tc.opts...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Interval() != tc.interval || s.Timeout() != tc.timeout {
				t.Errorf("interval %v timeout %v, want %v and %v", s.Interval(), s.Timeout(), tc.interval, tc.timeout)
			}
		})
	}
	if _, err := NewSampler(nil); err == nil {
		t.Error("a sampler without a checker")
	}
}

func TestSamplerSchedule(t *testing.T) {
	f := &fake{answer: okAlways}
	samples, _ := run(t, f, 500*ms, WithInterval(20*ms))
	if n := len(samples); n < 10 || n > 27 { // fewer when the machine is busy, never a burst
		t.Errorf("%d samples in 500ms at 20ms, want about 25", n)
	}
	for i := 1; i < len(samples); i++ {
		if !samples[i].At.After(samples[i-1].At) {
			t.Fatalf("sample %d starts at %v, not after %v", i, samples[i].At, samples[i-1].At)
		}
	}
	if !f.closed.Load() {
		t.Error("Stop did not close the checker")
	}
	if a := Availability(samples); a != 1 {
		t.Errorf("availability %v, want 1", a)
	}
}

// A check that hangs must not hold up the next one: the schedule, and so
// the gaps, only measure the machine.
func TestSamplerHangingCheck(t *testing.T) {
	f := &fake{answer: func(ctx context.Context, n int) error { <-ctx.Done(); return ctx.Err() }}
	samples, _ := run(t, f, 500*ms, WithInterval(20*ms), WithTimeout(200*ms))
	if n := len(samples); n < 10 {
		t.Fatalf("%d samples in 500ms at 20ms while each check hangs 200ms, want about 25", n)
	}
	for _, s := range samples {
		if !errors.Is(s.Err, ErrTimeout) || !errors.Is(s.Err, context.DeadlineExceeded) {
			t.Fatalf("sample error %v, want a timeout", s.Err)
		}
	}
	if g := MaxGap(samples); g >= 200*ms {
		t.Errorf("largest gap %v at a 20ms interval: the next check waited for the hanging one", g)
	}
}

// A check that ignores its context and answers late has failed all the same.
func TestSamplerLateAnswer(t *testing.T) {
	f := &fake{answer: func(context.Context, int) error { time.Sleep(60 * ms); return nil }}
	samples, _ := run(t, f, 100*ms, WithInterval(20*ms), WithTimeout(30*ms))
	if len(samples) == 0 {
		t.Fatal("no samples")
	}
	for _, s := range samples {
		if !errors.Is(s.Err, ErrTimeout) {
			t.Fatalf("sample error %v, want a timeout", s.Err)
		}
	}
}

// The timeline gets state changes and one span per outage, not every sample.
func TestSamplerTimeline(t *testing.T) {
	boom := errors.New("boom")
	f := &fake{answer: func(_ context.Context, n int) error {
		if n >= 5 && n < 10 || n >= 15 {
			return boom
		}
		return nil
	}}
	tl := timeline.New()
	s, err := NewSampler(f, WithInterval(20*ms), WithTimeline(tl), WithName("web"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "17 checks", func() bool { return f.n.Load() >= 17 })
	samples := s.Stop()
	var names []string
	var spans []timeline.Event
	for _, e := range tl.Filter(Kind) {
		if e.Actor != "web" {
			t.Errorf("event %s by %q, want actor web", e.Name, e.Actor)
		}
		names = append(names, e.Name)
		if e.Name == "outage" {
			spans = append(spans, e)
		}
	}
	if got, want := strings.Join(names, " "), "start up down outage up down outage stop"; got != want {
		t.Errorf("timeline %q, want %q", got, want)
	}
	if len(spans) != 2 {
		t.Fatalf("%d outage spans", len(spans))
	}
	if s := spans[0]; s.Fields["failed_samples"] != "5" || s.Fields["first_error"] != "boom" || s.Err != "boom" || s.Fields["probe"] != "fake" {
		t.Errorf("first outage %+v", s)
	}
	if s := spans[1]; !strings.Contains(s.Err, "still down when probing stopped: boom") {
		t.Errorf("open outage ended with %q", s.Err)
	}
	if os := Outages(samples); len(os) != 2 || os[0].Failed != 5 || !os[1].Open {
		t.Errorf("outages %+v", os)
	}
}

// A sample cut short because the caller gave up says nothing about the
// service: it is dropped, not counted as a failure.
func TestSamplerCancelled(t *testing.T) {
	var mu sync.Mutex
	started := 0
	f := &fake{answer: func(ctx context.Context, n int) error {
		mu.Lock()
		started++
		mu.Unlock()
		if n > 3 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}}
	s, err := NewSampler(f, WithInterval(20*ms), WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 checks", func() bool { mu.Lock(); defer mu.Unlock(); return started >= 5 })
	cancel()
	samples := s.Stop()
	if len(samples) != 3 || Availability(samples) != 1 {
		t.Errorf("%d samples (availability %v), want the 3 that finished", len(samples), Availability(samples))
	}
}

func TestSamplerLifecycle(t *testing.T) {
	s, err := NewSampler(&fake{answer: okAlways}, WithInterval(20*ms))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Stop(); len(got) != 0 {
		t.Errorf("Stop before Start returned %d samples", len(got))
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("a stopped sampler started")
	}

	s, _ = NewSampler(&fake{answer: okAlways}, WithInterval(20*ms))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("a sampler started twice")
	}
	time.Sleep(100 * ms)
	first := s.Stop()
	if len(first) == 0 || len(s.Stop()) != len(first) || len(s.Samples()) != len(first) {
		t.Errorf("Stop twice: %d then %d samples", len(first), len(s.Stop()))
	}
}

// Checks that overlap finish out of order; the timeline still follows the
// order in which they started, so one outage is one down and one up.
func TestSamplerOutOfOrder(t *testing.T) {
	boom := errors.New("boom")
	f := &fake{answer: func(_ context.Context, n int) error {
		if n%2 == 0 {
			time.Sleep(70 * ms) // even checks answer after the next odd one
		}
		if n >= 8 && n < 14 {
			return boom
		}
		return nil
	}}
	tl := timeline.New()
	s, err := NewSampler(f, WithInterval(20*ms), WithTimeout(500*ms), WithTimeline(tl))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "20 checks", func() bool { return f.n.Load() >= 20 })
	s.Stop()
	var names []string
	for _, e := range tl.Filter(Kind) {
		names = append(names, e.Name)
	}
	if got, want := strings.Join(names, " "), "start up down outage up stop"; got != want {
		t.Errorf("timeline %q, want %q", got, want)
	}
}

package progress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for a board.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestBoard() (*Board, *clock) {
	c := &clock{t: time.Date(2025, 5, 20, 9, 0, 0, 0, time.UTC)}
	b := NewBoard("images")
	b.now = c.now
	return b, c
}

func TestLine(t *testing.T) {
	b, c := newTestBoard()
	deb := b.Add("debian:bookworm-slim")
	api := b.Add("rehearse/billing:2.3")
	done := b.Add("rehearse/payments:1")
	b.Add("rehearse/gateway:1")
	failed := b.Add("rehearse/broken:1")
	deb.Run("bootstrapping")
	done.Run("packing")
	c.advance(19 * time.Second)
	done.Finish("built")
	api.Run("building")
	api.Step(4, 9)
	failed.Fail(errors.New("boom\nmore"))
	c.advance(42 * time.Second)
	want := "images: 2/5 done (1 failed), bootstrapping debian:bookworm-slim (1m01s), building rehearse/billing:2.3 (step 4/9, 42s), 1 waiting"
	if got := b.Line(); got != want {
		t.Errorf("Line() =\n %s\nwant\n %s", got, want)
	}
	s := b.Snapshot()
	if got := s[2].Text(); got != "built in 19s" {
		t.Errorf("finished task text %q", got)
	}
	if got := s[4].Text(); got != "failed: boom" {
		t.Errorf("failed task text %q", got)
	}
	if got := s[3].Text(); got != "queued" {
		t.Errorf("pending task text %q", got)
	}
}

// The waiting time before a task's first Run is not its own time.
func TestTaskTimeStartsAtRun(t *testing.T) {
	b, c := newTestBoard()
	task := b.Add("x")
	task.Wait("for debian:bookworm-slim")
	c.advance(time.Minute)
	if got := b.Line(); got != "images: 0/1 done, 1 waiting" {
		t.Errorf("waiting: %q", got)
	}
	task.Run("building")
	c.advance(3 * time.Second)
	task.Run("writing") // a later phase keeps the start
	c.advance(2 * time.Second)
	if took := task.Finish("built"); took != 5*time.Second {
		t.Errorf("took %v, want 5s", took)
	}
}

// A task's own time is the sum of the times it ran: a wait between two
// runs (for a build slot) pauses its clock.
func TestTaskTimeIsItsRunningTime(t *testing.T) {
	b, c := newTestBoard()
	task := b.Add("x")
	task.Run("checking")
	c.advance(3 * time.Second)
	task.Wait("for a build slot")
	c.advance(time.Minute)
	if got := b.Snapshot()[0].Elapsed; got != 3*time.Second {
		t.Errorf("own time while waiting %v, want 3s", got)
	}
	task.Run("building")
	c.advance(2 * time.Second)
	if got := b.Snapshot()[0].Elapsed; got != 5*time.Second {
		t.Errorf("own time while running again %v, want 5s", got)
	}
	c.advance(4 * time.Second)
	if took := task.Finish("built"); took != 9*time.Second {
		t.Errorf("took %v, want 9s (3s + 6s, not the minute it waited)", took)
	}
	c.advance(time.Minute)
	if got := b.Snapshot()[0].Elapsed; got != 9*time.Second {
		t.Errorf("own time after the end %v, want 9s", got)
	}
}

// A task of no board has its own lock: goroutines may share it (run with
// -race).
func TestBoardlessTaskConcurrent(t *testing.T) {
	task := (*Board)(nil).Add("x")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			task.Run("building")
			task.Step(i, 4)
			task.Wait("for a build slot")
			task.Count(int64(i), 4, "MB")
		})
	}
	wg.Wait()
	if task.Ended() {
		t.Error("ended before Finish")
	}
	task.Finish("built")
	if !task.Ended() {
		t.Error("not ended after Finish")
	}
}

// An ended context cancels a task (not made), any other error fails it.
func TestFailCancelled(t *testing.T) {
	b, _ := newTestBoard()
	b.Add("a").Fail(errors.New("apt-get failed"))
	b.Add("b").Fail(fmt.Errorf("build: %w", context.Canceled))
	b.Add("c").Fail(context.DeadlineExceeded)
	b.Add("d").Cancel("base image a not made")
	b.Add("e")
	s := b.Snapshot()
	want := []struct {
		status Status
		text   string
	}{
		{Failed, "failed: apt-get failed"},
		{Cancelled, "not made: interrupted"},
		{Cancelled, "not made: timed out"},
		{Cancelled, "not made: base image a not made"},
	}
	for i, w := range want {
		if s[i].Status != w.status || s[i].Text() != w.text {
			t.Errorf("task %s: status %d %q, want %d %q", s[i].Name, s[i].Status, s[i].Text(), w.status, w.text)
		}
	}
	if got, want := b.Line(), "images: 4/5 done (1 failed, 3 not made), 1 waiting"; got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
}

func TestEmptyBoardLine(t *testing.T) {
	b, _ := newTestBoard()
	if got := b.Line(); got != "images: planning" {
		t.Errorf("Line() of an empty board = %q", got)
	}
}

func TestNilTaskAndBoard(t *testing.T) {
	var b *Board
	task := b.Add("x")
	task.Run("building")
	task.Step(1, 2)
	task.Finish("built")
	var nilTask *Task
	nilTask.Run("building")
	nilTask.Fail(errors.New("x"))
	if b.Snapshot() != nil {
		t.Error("a nil board has tasks")
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                     "0s",
		850 * time.Millisecond:                "850ms",
		42*time.Second + 400*time.Millisecond: "42s",
		3*time.Minute + 12*time.Second:        "3m12s",
		61 * time.Second:                      "1m01s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

// The plain reporter's cadence: a line at once, then one when a task
// finishes or when Every has passed, and nothing in between.
func TestPlainCadence(t *testing.T) {
	b, c := newTestBoard()
	a := b.Add("a")
	b.Add("b")
	var buf bytes.Buffer
	p := &plain{w: &buf, b: b}
	lines := func() int { return strings.Count(buf.String(), "\n") }
	p.print(b.Snapshot())
	if lines() != 1 {
		t.Fatalf("no first line: %q", buf.String())
	}
	a.Run("building")
	for range Every/time.Second - 1 {
		c.advance(time.Second)
		p.tick()
	}
	if lines() != 1 {
		t.Fatalf("a line before Every passed:\n%s", buf.String())
	}
	c.advance(time.Second)
	p.tick()
	if lines() != 2 {
		t.Fatalf("no line after Every (%v):\n%s", Every, buf.String())
	}
	c.advance(time.Second)
	a.Finish("built")
	p.tick()
	if lines() != 3 || !strings.HasSuffix(buf.String(), "images: 1/2 done, 1 waiting\n") {
		t.Fatalf("no line when a task finished:\n%s", buf.String())
	}
	c.advance(time.Second)
	p.tick()
	if lines() != 3 {
		t.Fatalf("a line with nothing new:\n%s", buf.String())
	}
	b.Add("c") // the board grew (planned after the first line)
	p.tick()
	if lines() != 4 || !strings.HasSuffix(buf.String(), "images: 1/3 done, 2 waiting\n") {
		t.Fatalf("no line when a task was added:\n%s", buf.String())
	}
}

// A plain reporter promises a line at least every 10 s while work goes on.
func TestPlainCadenceWithinTenSeconds(t *testing.T) {
	if Every+Tick > 10*time.Second {
		t.Errorf("Every %v + Tick %v: lines up to %v apart, want at most 10s", Every, Tick, Every+Tick)
	}
	if QuietFor+Tick > 10*time.Second {
		t.Errorf("QuietFor %v + Tick %v: the first quiet line after up to %v, want at most 10s", QuietFor, Tick, QuietFor+Tick)
	}
}

// fakeTicker replaces newTicker for a test: it records the interval asked
// for and hands out a channel the test ticks.
func fakeTicker(t *testing.T) (ticks chan time.Time, interval *time.Duration) {
	ticks, interval = make(chan time.Time), new(time.Duration)
	old := newTicker
	newTicker = func(d time.Duration) (<-chan time.Time, func()) {
		*interval = d
		return ticks, func() {}
	}
	t.Cleanup(func() { newTicker = old })
	return ticks, interval
}

// Lines ticks every Tick: a tick after Every writes a line.
func TestLinesTicks(t *testing.T) {
	ticks, interval := fakeTicker(t)
	b, c := newTestBoard()
	task := b.Add("debian:bookworm-slim")
	w := &chanWriter{lines: make(chan string, 10)}
	stop := Lines(w, b)
	defer stop()
	if *interval != Tick {
		t.Fatalf("Lines ticks every %v, want Tick (%v)", *interval, Tick)
	}
	if got := w.next(t); got != "images: 0/1 done, 1 waiting\n" {
		t.Errorf("first line %q", got)
	}
	task.Run("bootstrapping")
	c.advance(Every)
	ticks <- c.now()
	if got := w.next(t); got != "images: 0/1 done, bootstrapping debian:bookworm-slim (8s)\n" {
		t.Errorf("line after Every: %q", got)
	}
}

// Quiet writes nothing for work that ends within QuietFor; longer work
// gets a line once QuietFor has passed, then as Plain, and a last line.
func TestQuiet(t *testing.T) {
	ticks, interval := fakeTicker(t)
	b, c := newTestBoard()
	fast := b.Add("rehearse/gateway:1")
	w := &chanWriter{lines: make(chan string, 10)}
	stop := Quiet(w, b)
	if *interval != Tick {
		t.Fatalf("Quiet ticks every %v, want Tick (%v)", *interval, Tick)
	}
	fast.Run("checking")
	c.advance(time.Second)
	ticks <- c.now()
	fast.Finish("cached")
	c.advance(QuietFor)
	ticks <- c.now() // nothing unfinished: still silent
	stop()
	select {
	case l := <-w.lines:
		t.Fatalf("quick work wrote %q", l)
	default:
	}

	slow := b.Add("rehearse/netfilter:1")
	stop = Quiet(w, b)
	defer stop()
	slow.Run("building")
	c.advance(QuietFor - time.Second)
	ticks <- c.now()
	c.advance(time.Second)
	ticks <- c.now()
	if got := w.next(t); got != "images: 1/2 done, building rehearse/netfilter:1 (3s)\n" {
		t.Errorf("first quiet line %q", got)
	}
	slow.Finish("built")
	ticks <- c.now()
	if got := w.next(t); got != "images: 2/2 done\n" {
		t.Errorf("line after the end %q", got)
	}
	stop()
	if got := w.next(t); got != "images: 2/2 done\n" {
		t.Errorf("last line %q", got)
	}
}

// Plain itself: the first line is written before it returns, a tick
// after Every writes one, and stop writes the last.
func TestPlainLoop(t *testing.T) {
	b, c := newTestBoard()
	task := b.Add("debian:bookworm-slim")
	w := &chanWriter{lines: make(chan string, 10)}
	ticks := make(chan time.Time)
	stop := Plain(w, b, ticks)
	select {
	case got := <-w.lines:
		if got != "images: 0/1 done, 1 waiting\n" {
			t.Errorf("first line %q", got)
		}
	default:
		t.Fatal("no line when Plain returned")
	}
	task.Run("bootstrapping")
	c.advance(Every)
	ticks <- c.now()
	if got := w.next(t); got != "images: 0/1 done, bootstrapping debian:bookworm-slim (8s)\n" {
		t.Errorf("line after Every: %q", got)
	}
	task.Finish("built")
	stop()
	if got := w.next(t); got != "images: 1/1 done\n" {
		t.Errorf("last line %q", got)
	}
	stop() // a second stop is harmless
	select {
	case l := <-w.lines:
		t.Errorf("written after stop: %q", l)
	default:
	}
}

type chanWriter struct{ lines chan string }

// next is the next line written; a minute without one fails the test
// (a guard against hanging, not a measure of time).
func (w *chanWriter) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-w.lines:
		return l
	case <-time.After(time.Minute):
		t.Fatal("no line written")
		return ""
	}
}

func (w *chanWriter) Write(p []byte) (int, error) {
	w.lines <- string(p)
	return len(p), nil
}

// Bars draws each task's name and, once it is done, how it ended.
func TestBars(t *testing.T) {
	b, _ := newTestBoard()
	var buf syncBuffer
	stop := Bars(&buf, b)
	b.Add("rehearse/gateway:1").Finish("cached")
	b.Add("rehearse/billing:2.3").Fail(errors.New("apt-get failed"))
	b.Add("rehearse/payments:1").Fail(context.Canceled)
	stop()
	out := buf.String()
	for _, want := range []string{"rehearse/gateway:1", "cached", "rehearse/billing:2.3", "failed: apt-get failed",
		"rehearse/payments:1", "not made: interrupted"} {
		if !strings.Contains(out, want) {
			t.Errorf("bars output lacks %q:\n%s", want, out)
		}
	}
	// The last frame: the failed and the interrupted task show ✗, not a
	// frozen spinner.
	for _, name := range []string{"rehearse/billing:2.3", "rehearse/payments:1"} {
		i := strings.LastIndex(out, name)
		if i < 0 {
			continue
		}
		if l, _, _ := strings.Cut(out[i:], "\n"); !strings.Contains(l, "✗") {
			t.Errorf("%s's last line has no ✗: %q", name, l)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

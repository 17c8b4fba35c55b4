// Package progress shows how far long work has come: what is being done
// (a Board of Tasks: building an image, loading a dataset), shown as one
// spinner per task on a terminal (Bars) or as a plain status line at a
// steady cadence elsewhere, such as a CI log (Plain). Show picks one.
//
// A task is pending until it waits or runs. Its own time is the sum of the
// times it ran: Wait pauses its clock and Run restarts it, so waiting for
// another task or a free slot is not part of it.
package progress

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Board is a set of tasks under one title ("images").
type Board struct {
	title string
	now   func() time.Time
	mu    sync.Mutex
	tasks []*Task
}

// NewBoard returns an empty board.
func NewBoard(title string) *Board {
	return &Board{title: title, now: time.Now}
}

// NewBoardClock returns an empty board whose times are read from now
// instead of the wall clock (for tests of what keeps a board).
func NewBoardClock(title string, now func() time.Time) *Board {
	return &Board{title: title, now: now}
}

// Title is the board's title.
func (b *Board) Title() string { return b.title }

// Add registers a task, pending until it waits or runs. A nil board
// returns a task of its own that keeps its time and shows nothing.
func (b *Board) Add(name string) *Task {
	if b == nil {
		t := &Task{name: name}
		t.mu = &t.own
		return t
	}
	t := &Task{b: b, name: name, mu: &b.mu}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tasks = append(b.tasks, t)
	return t
}

// Status is what a task is doing.
type Status int

// Statuses.
const (
	Pending Status = iota
	Waiting
	Running
	Done
	Failed
	// Cancelled: not made, because the work was interrupted (its context
	// ended) or what it needed was not made.
	Cancelled
)

// ended reports whether s is an end: Done, Failed or Cancelled.
func (s Status) ended() bool { return s >= Done }

// Task is one thing a board shows. Its methods may be called from any
// goroutine; a nil *Task ignores them.
type Task struct {
	b      *Board
	mu     *sync.Mutex // the board's, or own for a task without a board
	own    sync.Mutex
	name   string
	status Status
	phase  string // a verb, "building", or what it waits for, "for debian:bookworm-slim"
	step   int
	steps  int
	count  int64
	total  int64
	unit   string
	ran    time.Duration // the closed running intervals
	since  time.Time     // when the current running interval began; zero when not running
	note   string
}

// now is the board's clock (t.mu held).
func (t *Task) now() time.Time {
	if t.b == nil {
		return time.Now()
	}
	return t.b.now()
}

func (t *Task) update(f func()) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f()
}

// pause closes the running interval, if any (t.mu held).
func (t *Task) pause() {
	if !t.since.IsZero() {
		t.ran += t.now().Sub(t.since)
		t.since = time.Time{}
	}
}

// elapsed is the task's own time at now (t.mu held).
func (t *Task) elapsed(now time.Time) time.Duration {
	if t.since.IsZero() {
		return t.ran
	}
	return t.ran + now.Sub(t.since)
}

// Wait says the task waits (why: "for debian:bookworm-slim"); its clock
// stops until the next Run.
func (t *Task) Wait(why string) {
	t.update(func() {
		t.pause()
		t.status, t.phase = Waiting, why
	})
}

// Run says the task works, in a phase named by a verb ("building",
// "bootstrapping"), and clears its step and count. Its clock runs
// (again) from now.
func (t *Task) Run(phase string) {
	t.update(func() {
		if t.since.IsZero() {
			t.since = t.now()
		}
		t.status, t.phase = Running, phase
		t.step, t.steps, t.count, t.total, t.unit = 0, 0, 0, 0, ""
	})
}

// Step says the task is at step k of n.
func (t *Task) Step(k, n int) {
	t.update(func() { t.step, t.steps = k, n })
}

// Count says how much of a total the task has done (total 0: unknown),
// in unit ("rows", "MB").
func (t *Task) Count(done, total int64, unit string) {
	t.update(func() { t.count, t.total, t.unit = done, total, unit })
}

// Finish says the task is done; note says how ("built", "cached"). It
// returns the task's own time: the sum of the times it ran (0 if it
// never ran).
func (t *Task) Finish(note string) time.Duration {
	return t.end(Done, note)
}

// Fail says the task failed with err. An error of an ended context
// (context.Canceled, context.DeadlineExceeded) is no failure of the
// task: it is cancelled instead ("interrupted", "timed out").
func (t *Task) Fail(err error) {
	switch {
	case errors.Is(err, context.Canceled):
		t.Cancel("interrupted")
	case errors.Is(err, context.DeadlineExceeded):
		t.Cancel("timed out")
	default:
		t.end(Failed, fmt.Sprint(err))
	}
}

// Cancel says the task was not made, and why ("interrupted", "base
// image debian:bookworm-slim not made").
func (t *Task) Cancel(why string) {
	t.end(Cancelled, why)
}

// Ended reports whether the task is done, failed or cancelled (a nil
// task: false).
func (t *Task) Ended() bool {
	var ended bool
	t.update(func() { ended = t.status.ended() })
	return ended
}

func (t *Task) end(s Status, note string) time.Duration {
	var took time.Duration
	t.update(func() {
		t.pause()
		t.status, t.note = s, note
		took = t.ran
	})
	return took
}

// State is a task as a board's Snapshot sees it.
type State struct {
	Name    string
	Status  Status
	Phase   string
	Step    int
	Steps   int
	Count   int64
	Total   int64
	Unit    string
	Elapsed time.Duration // own time (the sum of the times it ran) so far, or in all once ended
	Note    string
}

// Snapshot is every task's state, in the order they were added.
func (b *Board) Snapshot() []State {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	out := make([]State, len(b.tasks))
	for i, t := range b.tasks {
		out[i] = State{Name: t.name, Status: t.status, Phase: t.phase, Step: t.step, Steps: t.steps,
			Count: t.count, Total: t.total, Unit: t.unit, Note: t.note, Elapsed: t.elapsed(now)}
	}
	return out
}

// Line is the board in one line: "images: 3/7 done, building
// rehearse/billing:2.3 (step 4/9, 42s), bootstrapping debian:bookworm-slim
// (1m01s), 2 waiting"; before any task is added, "images: planning".
func (b *Board) Line() string {
	return line(b.title, b.Snapshot())
}

func line(title string, states []State) string {
	if len(states) == 0 {
		return title + ": planning"
	}
	var ended, failed, cancelled, waiting int
	var running []string
	for _, s := range states {
		switch s.Status {
		case Done:
			ended++
		case Failed:
			ended++
			failed++
		case Cancelled:
			ended++
			cancelled++
		case Waiting, Pending:
			waiting++
		case Running:
			running = append(running, s.Phase+" "+s.Name+" ("+s.Detail()+")")
		}
	}
	parts := []string{fmt.Sprintf("%d/%d done", ended, len(states))}
	var bad []string
	if failed > 0 {
		bad = append(bad, fmt.Sprintf("%d failed", failed))
	}
	if cancelled > 0 {
		bad = append(bad, fmt.Sprintf("%d not made", cancelled))
	}
	if len(bad) > 0 {
		parts[0] += " (" + strings.Join(bad, ", ") + ")"
	}
	parts = append(parts, running...)
	if waiting > 0 {
		parts = append(parts, fmt.Sprintf("%d waiting", waiting))
	}
	return title + ": " + strings.Join(parts, ", ")
}

// Detail is a running task's step or count and its time: "step 4/9, 42s".
func (s State) Detail() string {
	var parts []string
	switch {
	case s.Steps > 0:
		parts = append(parts, fmt.Sprintf("step %d/%d", s.Step, s.Steps))
	case s.Total > 0:
		parts = append(parts, fmt.Sprintf("%d/%d %s", s.Count, s.Total, s.Unit))
	case s.Count > 0:
		parts = append(parts, fmt.Sprintf("%d %s", s.Count, s.Unit))
	}
	return strings.Join(append(parts, Duration(s.Elapsed)), ", ")
}

// Text is what a bar shows after a task's name: "building (step 4/9,
// 42s)", "waiting for debian:bookworm-slim", "built in 1m02s", "not
// made: interrupted".
func (s State) Text() string {
	switch s.Status {
	case Pending:
		return "queued"
	case Waiting:
		return "waiting " + s.Phase
	case Running:
		return s.Phase + " (" + s.Detail() + ")"
	case Failed:
		return "failed: " + firstLine(s.Note)
	case Cancelled:
		return "not made: " + s.Note
	default:
		if s.Elapsed < time.Millisecond { // "present", not "present in 0s"
			return s.Note
		}
		return s.Note + " in " + Duration(s.Elapsed)
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// Duration is d for people: "850ms", "42s", "3m12s".
func Duration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	default:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
}

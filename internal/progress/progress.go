// Package progress shows how far long work has come: what is being done
// (a Board of Tasks: building an image, loading a dataset), shown as one
// spinner per task on a terminal (Bars) or as a plain status line at a
// steady cadence elsewhere, such as a CI log (Plain). Show picks one.
//
// A task is pending until it waits or runs; its time is counted from the
// first Run, so waiting for another task or a free slot is not part of it.
package progress

import (
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

// Title is the board's title.
func (b *Board) Title() string { return b.title }

// Add registers a task, pending until it waits or runs.
func (b *Board) Add(name string) *Task {
	t := &Task{b: b, name: name}
	if b == nil {
		return t // a nil board takes tasks and shows nothing
	}
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
)

// Task is one thing a board shows. Its methods may be called from any
// goroutine; a nil *Task ignores them.
type Task struct {
	b      *Board
	name   string
	status Status
	phase  string // a verb, "building", or what it waits for, "for debian:bookworm-slim"
	step   int
	steps  int
	count  int64
	total  int64
	unit   string
	start  time.Time // first Run
	end    time.Time
	note   string
}

func (t *Task) update(f func()) {
	if t == nil {
		return
	}
	if t.b == nil {
		f()
		return
	}
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	f()
}

func (t *Task) now() time.Time {
	if t.b == nil {
		return time.Now()
	}
	return t.b.now()
}

// Wait says the task waits (why: "for debian:bookworm-slim").
func (t *Task) Wait(why string) {
	t.update(func() { t.status, t.phase = Waiting, why })
}

// Run says the task works, in a phase named by a verb ("building",
// "bootstrapping"), and clears its step and count.
func (t *Task) Run(phase string) {
	t.update(func() {
		if t.start.IsZero() {
			t.start = t.now()
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
// returns the task's own time (from its first Run; 0 if it never ran).
func (t *Task) Finish(note string) time.Duration {
	return t.end1(Done, note)
}

// Fail says the task failed.
func (t *Task) Fail(err error) {
	t.end1(Failed, fmt.Sprint(err))
}

func (t *Task) end1(s Status, note string) time.Duration {
	var took time.Duration
	t.update(func() {
		t.status, t.note, t.end = s, note, t.now()
		if !t.start.IsZero() {
			took = t.end.Sub(t.start)
		}
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
	Elapsed time.Duration // own time so far, or in all once done
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
		s := State{Name: t.name, Status: t.status, Phase: t.phase, Step: t.step, Steps: t.steps,
			Count: t.count, Total: t.total, Unit: t.unit, Note: t.note}
		switch {
		case t.start.IsZero():
		case !t.end.IsZero():
			s.Elapsed = t.end.Sub(t.start)
		default:
			s.Elapsed = now.Sub(t.start)
		}
		out[i] = s
	}
	return out
}

// Line is the board in one line: "images: 3/7 done, building
// rehearse/billing:2.3 (step 4/9, 42s), bootstrapping debian:bookworm-slim
// (1m01s), 2 waiting".
func (b *Board) Line() string {
	return line(b.title, b.Snapshot())
}

func line(title string, states []State) string {
	var finished, failed, waiting int
	var running []string
	for _, s := range states {
		switch s.Status {
		case Done:
			finished++
		case Failed:
			finished++
			failed++
		case Waiting, Pending:
			waiting++
		case Running:
			running = append(running, s.Phase+" "+s.Name+" ("+s.Detail()+")")
		}
	}
	parts := []string{fmt.Sprintf("%d/%d done", finished, len(states))}
	if failed > 0 {
		parts[0] += fmt.Sprintf(" (%d failed)", failed)
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
// 42s)", "waiting for debian:bookworm-slim", "built in 1m02s".
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
	default:
		if s.Elapsed == 0 {
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

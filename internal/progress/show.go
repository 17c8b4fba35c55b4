package progress

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/rehearse/rehearse/internal/term"
)

// Every is the longest a plain reporter stays silent while work goes on.
// It is checked every Tick, so lines come at most Every+Tick apart (at
// most 10 s: what a CI log reader is promised).
const Every = 8 * time.Second

// Tick is how often Lines and Quiet look at the board.
const Tick = time.Second

// QuietFor is how long work goes on before Quiet writes its first line.
const QuietFor = 3 * time.Second

// newTicker starts the ticker of Lines and Quiet (tests replace it).
var newTicker = func(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Show displays b on w until the returned stop is called: one spinner per
// task on a terminal (that knows its width), plain lines (Plain)
// otherwise. stop prints the final state and returns when nothing more is
// written.
func Show(w io.Writer, b *Board) (stop func()) {
	if term.IsTerminal(w) && columns(w) > 0 {
		return Bars(w, b)
	}
	return Lines(w, b)
}

// Lines writes plain lines of b to w (Plain, checked every Tick) until
// the returned stop is called.
func Lines(w io.Writer, b *Board) (stop func()) {
	ticks, stopTicker := newTicker(Tick)
	stopPlain := Plain(w, b, ticks)
	return func() {
		stopTicker()
		stopPlain()
	}
}

// Quiet writes plain lines of b to w, checked every Tick, only once work
// has gone on for QuietFor with a task of b unfinished: then as Plain
// does, and a last line when stop is called. Work that ends sooner
// (every image cached) writes nothing. For logs that other lines share.
func Quiet(w io.Writer, b *Board) (stop func()) {
	ticks, stopTicker := newTicker(Tick)
	p := &plain{w: w, b: b, quiet: QuietFor, start: b.now()}
	stopLoop := p.loop(ticks)
	return func() {
		stopTicker()
		stopLoop()
	}
}

// Plain writes b's Line to w at once, then on a tick of ticks whenever a
// task has been added or has ended since the last line, or Every has
// passed since it (by b's clock), and once more when stop is called.
func Plain(w io.Writer, b *Board, ticks <-chan time.Time) (stop func()) {
	p := &plain{w: w, b: b}
	p.print(b.Snapshot())
	return p.loop(ticks)
}

func (p *plain) loop(ticks <-chan time.Time) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ticks:
				p.tick()
			case <-quit:
				if p.quiet == 0 || p.written {
					p.print(p.b.Snapshot())
				}
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}

// plain is the state of a plain reporter between ticks.
type plain struct {
	w       io.Writer
	b       *Board
	quiet   time.Duration // Quiet: no line before work has gone on this long
	start   time.Time     // Quiet: when it began
	written bool          // a line was written
	last    time.Time     // when the last line was written
	ended   int           // tasks ended at the last line
	tasks   int           // tasks at the last line
}

// tick writes a line if a task has been added or has ended since the last
// one, or Every has passed; a quiet reporter stays silent until work has
// gone on for its quiet time with a task unfinished.
func (p *plain) tick() {
	states := p.b.Snapshot()
	if !p.written && p.quiet > 0 {
		if p.b.now().Sub(p.start) >= p.quiet && endedCount(states) < len(states) {
			p.print(states)
		}
		return
	}
	if p.b.now().Sub(p.last) >= Every || endedCount(states) != p.ended || len(states) != p.tasks {
		p.print(states)
	}
}

func (p *plain) print(states []State) {
	p.last, p.ended, p.tasks, p.written = p.b.now(), endedCount(states), len(states), true
	fmt.Fprintln(p.w, line(p.b.title, states))
}

func endedCount(states []State) int {
	n := 0
	for _, s := range states {
		if s.Status.ended() {
			n++
		}
	}
	return n
}

// Bars draws one spinner per task of b on w (a terminal) with mpb, each
// followed by what the task does, until stop is called. A task that
// failed or was not made shows ✗ where its spinner was.
func Bars(w io.Writer, b *Board) (stop func()) {
	p := mpb.New(mpb.WithOutput(w), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
	quit, done := make(chan struct{}), make(chan struct{})
	var bars []*mpb.Bar
	sync1 := func() {
		states := b.Snapshot()
		for i := len(bars); i < len(states); i++ {
			bars = append(bars, addBar(p, b, i, states[i].Name))
		}
		for i, s := range states {
			switch s.Status {
			case Done:
				bars[i].SetTotal(-1, true)
			case Failed, Cancelled:
				bars[i].Abort(false)
			}
		}
	}
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				sync1()
			case <-quit:
				sync1()
				for _, bar := range bars {
					bar.Abort(false) // a no-op on a completed bar
				}
				p.Wait()
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}

func addBar(p *mpb.Progress, b *Board, i int, name string) *mpb.Bar {
	text := func(decor.Statistics) string {
		states := b.Snapshot()
		if i >= len(states) {
			return ""
		}
		return states[i].Text()
	}
	return p.New(0, mpb.SpinnerStyle(),
		mpb.BarWidth(2),
		mpb.BarFillerClearOnComplete(),
		mpb.BarFillerOnAbort("✗"),
		mpb.PrependDecorators(decor.Name(name, decor.WC{C: decor.DSyncWidthR | decor.DextraSpace})),
		mpb.AppendDecorators(decor.Any(text)),
	)
}

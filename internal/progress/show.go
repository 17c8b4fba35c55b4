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
// It is checked once a second, so lines come at most Every+1s apart.
const Every = 8 * time.Second

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

// Lines writes plain lines of b to w (Plain, checked every second) until
// the returned stop is called.
func Lines(w io.Writer, b *Board) (stop func()) {
	t := time.NewTicker(time.Second)
	stopPlain := Plain(w, b, t.C)
	return func() {
		t.Stop()
		stopPlain()
	}
}

// Plain writes b's Line to w at once, then on a tick of ticks whenever a
// task has finished since the last line or Every has passed since it (by
// b's clock), and once more when stop is called.
func Plain(w io.Writer, b *Board, ticks <-chan time.Time) (stop func()) {
	p := &plain{w: w, b: b}
	p.print()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ticks:
				p.tick()
			case <-quit:
				p.print()
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
	w        io.Writer
	b        *Board
	last     time.Time // when the last line was written
	finished int       // tasks finished at the last line
}

// tick writes a line if a task has finished since the last one or Every
// has passed.
func (p *plain) tick() {
	if p.b.now().Sub(p.last) >= Every || finishedCount(p.b.Snapshot()) != p.finished {
		p.print()
	}
}

func (p *plain) print() {
	states := p.b.Snapshot()
	p.last, p.finished = p.b.now(), finishedCount(states)
	fmt.Fprintln(p.w, line(p.b.title, states))
}

func finishedCount(states []State) int {
	n := 0
	for _, s := range states {
		if s.Status == Done || s.Status == Failed {
			n++
		}
	}
	return n
}

// Bars draws one spinner per task of b on w (a terminal) with mpb, each
// followed by what the task does, until stop is called.
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
			case Failed:
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
		mpb.PrependDecorators(decor.Name(name, decor.WC{C: decor.DSyncWidthR | decor.DextraSpace})),
		mpb.AppendDecorators(decor.Any(text)),
	)
}

package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
)

// Sampler runs a Checker every interval and records the samples.
//
// Samples start on a fixed schedule whatever the service does: a check
// that hangs does not delay the next one (checks overlap, at most
// timeout/interval+1 at a time), so the time between sample starts
// measures only how busy the machine is. When the sampler itself falls
// behind (the process was not scheduled), it skips the slots already past
// rather than firing them in a burst; the gap shows in MaxGap.
type Sampler struct {
	check   Checker
	opts    options
	timeout time.Duration
	name    string
	desc    string

	mu       sync.Mutex
	slots    []slot // in start order
	next     int    // first slot not yet folded into the up/down state
	state    state
	failed   int // failed samples of the current outage
	firstErr error
	outage   *timeline.Span
	started  bool

	stop     chan struct{}
	loopDone chan struct{}
	inflight sync.WaitGroup
	once     sync.Once
	result   []Sample
}

type slot struct {
	s    Sample
	done bool
	drop bool // ended by the caller's context, not by the service
}

type state int

const (
	unknown state = iota
	up
	down
)

// NewSampler returns a sampler for c; Start begins sampling.
func NewSampler(c Checker, opts ...Option) (*Sampler, error) {
	if c == nil {
		return nil, errors.New("new probe sampler: no checker")
	}
	o := defaults()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("new probe sampler: %w", err)
		}
	}
	desc := "probe"
	if s, ok := c.(fmt.Stringer); ok {
		desc = s.String()
	}
	name := o.name
	if name == "" {
		name = desc
	}
	return &Sampler{check: c, opts: o, timeout: o.effectiveTimeout(), name: name, desc: desc,
		stop: make(chan struct{}), loopDone: make(chan struct{})}, nil
}

// Interval is the time between two sample starts.
func (s *Sampler) Interval() time.Duration { return s.opts.interval }

// Timeout is how long one sample waits for an answer.
func (s *Sampler) Timeout() time.Duration { return s.timeout }

// Start takes the first sample at once and one every interval after, until
// Stop or until ctx ends. A sample cut short by ctx ending is dropped: it
// says nothing about the service.
func (s *Sampler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("start probe %s: already started", s.name)
	}
	s.started = true
	s.mark("start", map[string]string{"probe": s.desc, "interval": s.opts.interval.String(), "timeout": s.timeout.String()})
	go s.loop(ctx)
	return nil
}

func (s *Sampler) loop(ctx context.Context) {
	defer close(s.loopDone)
	interval := s.opts.interval
	begin := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 0; ; {
		s.launch(ctx)
		k++
		next := begin.Add(time.Duration(k) * interval)
		if now := time.Now(); !next.After(now) {
			k = int(now.Sub(begin)/interval) + 1 // late: skip the slots already past
			next = begin.Add(time.Duration(k) * interval)
		}
		timer.Reset(time.Until(next))
		select {
		case <-s.stop:
			return
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// launch starts one sample in its own goroutine.
func (s *Sampler) launch(ctx context.Context) {
	at := time.Now()
	s.mu.Lock()
	i := len(s.slots)
	s.slots = append(s.slots, slot{s: Sample{At: at}})
	s.mu.Unlock()
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		err := s.check.Check(cctx)
		latency := time.Since(at)
		timedOut := errors.Is(cctx.Err(), context.DeadlineExceeded)
		cancel()
		drop := false
		switch {
		case err != nil && ctx.Err() != nil:
			drop = true
		case err != nil && timedOut && !errors.Is(err, ErrTimeout):
			err = fmt.Errorf("%w (%v): %w", ErrTimeout, s.timeout, err)
		case err == nil && latency > s.timeout:
			err = fmt.Errorf("%w: answered after %v, timeout %v", ErrTimeout, latency.Round(time.Millisecond), s.timeout)
		}
		s.complete(i, latency, err, drop)
	}()
}

// complete records a finished sample and folds every finished sample, in
// start order, into the up/down state.
func (s *Sampler) complete(i int, latency time.Duration, err error, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := &s.slots[i]
	sl.s.Latency, sl.s.Err, sl.done, sl.drop = latency, err, true, drop
	for s.next < len(s.slots) && s.slots[s.next].done {
		if sl := s.slots[s.next]; !sl.drop {
			s.observe(sl.s)
		}
		s.next++
	}
}

// observe moves the up/down state on one sample and records the changes.
func (s *Sampler) observe(sm Sample) {
	switch {
	case sm.OK() && s.state != up:
		if s.outage != nil {
			s.outage.Set("failed_samples", s.failed).End(s.firstErr)
			s.outage = nil
		}
		s.mark("up", nil)
		s.state = up
	case !sm.OK() && s.state != down:
		s.mark("down", map[string]string{"error": sm.Err.Error()})
		s.failed, s.firstErr = 0, sm.Err
		if s.opts.tl != nil {
			s.outage = s.opts.tl.Begin(Kind, s.name, "outage").Set("probe", s.desc).Set("first_error", sm.Err)
		}
		s.state = down
	}
	if !sm.OK() {
		s.failed++
	}
}

func (s *Sampler) mark(name string, fields map[string]string) {
	if s.opts.tl != nil {
		s.opts.tl.Mark(Kind, s.name, name, fields)
	}
}

// Samples returns the samples finished so far, in start order.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kept()
}

func (s *Sampler) kept() []Sample {
	out := make([]Sample, 0, len(s.slots))
	for _, sl := range s.slots {
		if sl.done && !sl.drop {
			out = append(out, sl.s)
		}
	}
	return out
}

// Stop ends sampling, waits for the checks in flight (at most the
// timeout), closes the checker when it is an io.Closer, and returns every
// sample in start order. Calling it again returns the same samples.
func (s *Sampler) Stop() []Sample {
	s.once.Do(s.finish)
	return s.result
}

func (s *Sampler) finish() {
	s.mu.Lock()
	started := s.started
	s.started = true // a Start after Stop is refused
	s.mu.Unlock()
	if started {
		close(s.stop)
		<-s.loopDone
		s.inflight.Wait()
	}
	var closeErr error
	if c, ok := s.check.(io.Closer); ok {
		closeErr = c.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.result = s.kept()
	if !started {
		return
	}
	if s.outage != nil {
		s.outage.Set("failed_samples", s.failed).End(fmt.Errorf("still down when probing stopped: %w", s.firstErr))
		s.outage = nil
	}
	sum := Summarize(s.result, s.opts.interval)
	fields := map[string]string{
		"samples":      strconv.Itoa(len(s.result)),
		"availability": strconv.FormatFloat(sum.Availability*100, 'f', 2, 64) + "%",
		"outages":      strconv.Itoa(len(sum.Outages)),
		"max_gap":      strconv.FormatFloat(sum.GapRatio, 'f', 2, 64) + "x",
	}
	if closeErr != nil {
		fields["close_error"] = closeErr.Error()
	}
	s.mark("stop", fields)
}

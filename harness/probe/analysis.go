package probe

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Outage is a window in which the service did not answer as expected: it
// opens at the first failed sample after an ok one (or at the first
// sample) and closes at the next ok sample.
//
// Its edges are estimated from what the samples saw. An ok sample saw the
// service answer when it returned (Done); a failed sample saw no good
// answer from its start until it returned. So the outage began between the
// last ok answer before it and the start of its first failed sample, and
// ended between the return of its last failed sample and the first ok
// answer after it. Start and End are the midpoints of those two spans, so
// Duration is off by at most Uncertainty: half of both spans together,
// about one interval when the sampler kept its schedule (a 2.0 s pause
// probed every 50 ms measures 2.0 s ± 0.05 s). The answer time, not the
// start, marks the end because a request sent while a service is frozen is
// answered the moment it thaws, however long before it was sent.
type Outage struct {
	Start, End  time.Time
	FirstErr    error         // the error of the first failed sample
	Failed      int           // failed samples in the window
	Open        bool          // still failing at the last sample: End is that sample's return
	Uncertainty time.Duration // the most Duration can be off
	// MaxGap is the largest time between two sample starts from the last
	// ok sample before the outage to the first ok one after it. Well over
	// the interval, the sampler itself was held up while it saw the
	// outage: the machine was busy, and the outage may be its doing.
	MaxGap time.Duration
}

// Duration is the estimated length of the outage.
func (o Outage) Duration() time.Duration { return o.End.Sub(o.Start) }

// Outages returns the outage windows of samples, in time order. The
// samples need not be sorted.
func Outages(samples []Sample) []Outage {
	ss := byStart(samples)
	var out []Outage
	for i := 0; i < len(ss); {
		if ss[i].OK() {
			i++
			continue
		}
		j := i
		lastDown := ss[i].Done()
		for ; j < len(ss) && !ss[j].OK(); j++ {
			if d := ss[j].Done(); d.After(lastDown) {
				lastDown = d // checks overlap: a later start may return earlier
			}
		}
		o := Outage{FirstErr: ss[i].Err, Failed: j - i, Start: ss[i].At}
		var before, after time.Duration
		if i > 0 {
			lastUp := ss[i-1].Done()
			o.Start = midpoint(lastUp, ss[i].At)
			before = max(ss[i].At.Sub(lastUp), 0)
		}
		if j < len(ss) {
			firstUp := ss[j].Done()
			o.End = midpoint(lastDown, firstUp)
			after = max(firstUp.Sub(lastDown), 0)
		} else {
			o.End, o.Open = lastDown, true
		}
		if o.End.Before(o.Start) {
			o.End = o.Start
		}
		o.Uncertainty = (before + after) / 2
		o.MaxGap = MaxGap(ss[max(i-1, 0):min(j+1, len(ss))])
		out = append(out, o)
		i = j
	}
	return out
}

func midpoint(a, b time.Time) time.Time { return a.Add(b.Sub(a) / 2) }

func byStart(samples []Sample) []Sample {
	ss := slices.Clone(samples)
	slices.SortStableFunc(ss, func(a, b Sample) int { return a.At.Compare(b.At) })
	return ss
}

// Longest returns the longest outage, and false when there is none.
func Longest(outages []Outage) (Outage, bool) {
	if len(outages) == 0 {
		return Outage{}, false
	}
	return slices.MaxFunc(outages, func(a, b Outage) int { return cmp.Compare(a.Duration(), b.Duration()) }), true
}

// Downtime is the total duration of the outages.
func Downtime(outages []Outage) time.Duration {
	var d time.Duration
	for _, o := range outages {
		d += o.Duration()
	}
	return d
}

// Availability is the share of ok samples, from 0 to 1; 0 when there are
// no samples (nothing was seen answering).
func Availability(samples []Sample) float64 {
	if len(samples) == 0 {
		return 0
	}
	ok := 0
	for _, s := range samples {
		if s.OK() {
			ok++
		}
	}
	return float64(ok) / float64(len(samples))
}

// Percentiles are latencies at the 50th, 90th and 99th percentile.
type Percentiles struct {
	P50, P90, P99 time.Duration
}

// Latencies returns the latency percentiles of the ok samples (a failed
// sample's latency is its timeout or a quick refusal, not the service's
// speed), by nearest rank; zero when no sample was ok.
func Latencies(samples []Sample) Percentiles {
	var ls []time.Duration
	for _, s := range samples {
		if s.OK() {
			ls = append(ls, s.Latency)
		}
	}
	if len(ls) == 0 {
		return Percentiles{}
	}
	slices.Sort(ls)
	rank := func(p float64) time.Duration {
		return ls[max(int(math.Ceil(p*float64(len(ls))))-1, 0)]
	}
	return Percentiles{P50: rank(0.50), P90: rank(0.90), P99: rank(0.99)}
}

// MaxGap is the largest time between the starts of two consecutive
// samples. Well above the interval, it says the sampler itself was not
// scheduled in time (a busy machine), which is not an outage.
func MaxGap(samples []Sample) time.Duration {
	ss := byStart(samples)
	var g time.Duration
	for i := 1; i < len(ss); i++ {
		g = max(g, ss[i].At.Sub(ss[i-1].At))
	}
	return g
}

// Summary is everything the samples of one probe say.
type Summary struct {
	From         time.Time // the start of the first sample
	Samples      int
	Failed       int
	Availability float64 // 0 to 1
	Outages      []Outage
	Latency      Percentiles
	MaxGap       time.Duration
	GapRatio     float64 // MaxGap over the interval; 1 is a perfect schedule
}

// Summarize analyses samples taken every interval.
func Summarize(samples []Sample, interval time.Duration) Summary {
	s := Summary{Samples: len(samples), Availability: Availability(samples), Outages: Outages(samples),
		Latency: Latencies(samples), MaxGap: MaxGap(samples)}
	for i, sm := range samples {
		if !sm.OK() {
			s.Failed++
		}
		if i == 0 || sm.At.Before(s.From) {
			s.From = sm.At
		}
	}
	if interval > 0 {
		s.GapRatio = float64(s.MaxGap) / float64(interval)
	}
	return s
}

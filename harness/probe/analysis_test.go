package probe

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var (
	t0      = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	errDown = errors.New("down")
	ms      = time.Millisecond
)

// at builds a sample started at offset off (ms), taking lat (ms), ok or not.
func at(off, lat int, ok bool) Sample {
	s := Sample{At: t0.Add(time.Duration(off) * ms), Latency: time.Duration(lat) * ms}
	if !ok {
		s.Err = fmt.Errorf("sample at %dms: %w", off, errDown)
	}
	return s
}

// series samples every 50 ms from 0 to end (exclusive), each taking 1 ms,
// failing from fail[0] to fail[1], fail[2] to fail[3], ...
func series(end int, fail ...int) []Sample {
	var ss []Sample
	for off := 0; off < end; off += 50 {
		ok := true
		for i := 0; i+1 < len(fail); i += 2 {
			if off >= fail[i] && off < fail[i+1] {
				ok = false
			}
		}
		ss = append(ss, at(off, 1, ok))
	}
	return ss
}

func TestOutages(t *testing.T) {
	type want struct {
		start, end int // ms from t0
		failed     int
		open       bool
		uncert     int // ms
	}
	for _, tc := range []struct {
		name    string
		samples []Sample
		want    []want
	}{
		{"no samples", nil, nil},
		{"all ok", series(500), nil},
		// last ok answered at 101, first failure at 150: start 125.5;
		// last failure returned at 251, first ok answered at 301: end 276
		{"one outage", series(500, 150, 300), []want{{125, 276, 3, false, 49}}},
		{"one failed sample lasts about an interval", series(300, 100, 150), []want{{75, 126, 1, false, 49}}},
		{"down from the start", series(300, 0, 100), []want{{0, 76, 2, false, 25}}},
		{"still down at the end", series(300, 200, 300), []want{{175, 251, 2, true, 24}}},
		{"two outages", series(1000, 100, 200, 600, 650), []want{{75, 176, 2, false, 49}, {575, 626, 1, false, 49}}},
		{"unsorted input", []Sample{at(100, 1, true), at(0, 1, true), at(50, 1, false)}, []want{{25, 76, 1, false, 49}}},
		// overlapping checks: the failure started at 50 returned last (at
		// 150), after the one started at 100 (at 101)
		{"overlapping checks", []Sample{at(0, 1, true), at(50, 100, false), at(100, 1, false), at(150, 2, true)},
			[]want{{25, 151, 2, false, 25}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Outages(tc.samples)
			if len(got) != len(tc.want) {
				t.Fatalf("%d outages, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				gs, ge := g.Start.Sub(t0).Milliseconds(), g.End.Sub(t0).Milliseconds()
				if gs != int64(w.start) || ge != int64(w.end) || g.Failed != w.failed || g.Open != w.open || g.Uncertainty.Milliseconds() != int64(w.uncert) {
					t.Errorf("outage %d: start %d end %d failed %d open %v ±%v, want start %d end %d failed %d open %v ±%dms",
						i, gs, ge, g.Failed, g.Open, g.Uncertainty, w.start, w.end, w.failed, w.open, w.uncert)
				}
				if !errors.Is(g.FirstErr, errDown) {
					t.Errorf("outage %d: first error %v", i, g.FirstErr)
				}
			}
		})
	}
}

// frozen simulates probing a service frozen from p0 to p1 (ms): a request
// made while it is frozen is answered the moment it thaws, if the client
// still waits; otherwise after lat.
func frozen(p0, p1, interval, timeout, phase, lat int) []Sample {
	var ss []Sample
	for off := phase; off < p1+1000; off += interval {
		answer := off + lat
		if answer > p0 && off < p1 {
			answer = max(off, p1) + lat
		}
		if answer-off > timeout {
			ss = append(ss, at(off, timeout, false))
		} else {
			ss = append(ss, at(off, answer-off, true))
		}
	}
	return ss
}

// refused simulates a service that is gone from p0 to p1 (ms): requests
// made then fail at once.
func refused(p0, p1, interval, phase int) []Sample {
	var ss []Sample
	for off := phase; off < p1+1000; off += interval {
		ss = append(ss, at(off, 1, off < p0 || off >= p1))
	}
	return ss
}

// TestEstimator checks the documented accuracy against simulated ground
// truth: every pause and every phase of the schedule, several timeouts.
func TestEstimator(t *testing.T) {
	for _, interval := range []int{20, 50, 100} {
		for _, timeout := range []int{interval, 2 * interval, 5 * interval} {
			for _, pause := range []int{300, 2000} {
				for phase := 0; phase < interval; phase += 7 {
					for _, kind := range []string{"frozen", "refused"} {
						name := fmt.Sprintf("%s %dms every %dms timeout %dms phase %d", kind, pause, interval, timeout, phase)
						ss := refused(1000, 1000+pause, interval, phase)
						if kind == "frozen" {
							ss = frozen(1000, 1000+pause, interval, timeout, phase, 1)
						}
						os := Outages(ss)
						if kind == "frozen" && pause <= timeout {
							if len(os) != 0 {
								t.Errorf("%s: a pause no longer than the timeout is slowness, got outages %+v", name, os)
							}
							continue
						}
						if len(os) != 1 {
							t.Errorf("%s: %d outages, want 1", name, len(os))
							continue
						}
						o := os[0]
						err := (o.Duration() - time.Duration(pause)*ms).Abs()
						if err > o.Uncertainty+2*ms || o.Uncertainty > time.Duration(interval)*ms {
							t.Errorf("%s: measured %v ±%v, truth %dms", name, o.Duration(), o.Uncertainty, pause)
						}
						if err > time.Duration(interval/2+2)*ms {
							t.Errorf("%s: measured %v, truth %dms: off by more than half an interval", name, o.Duration(), pause)
						}
					}
				}
			}
		}
	}
}

func TestAvailability(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []Sample
		want    float64
	}{
		{"none", nil, 0},
		{"all ok", series(500), 1},
		{"one in ten failed", series(500, 100, 150), 0.9},
		{"all failed", series(200, 0, 200), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Availability(tc.samples); got != tc.want {
				t.Errorf("availability %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLatencies(t *testing.T) {
	var ss []Sample
	for i := 1; i <= 100; i++ {
		ss = append(ss, at(i*50, i, true))
	}
	ss = append(ss, at(6000, 1000, false)) // a failure's latency is not counted
	for _, tc := range []struct {
		name    string
		samples []Sample
		want    Percentiles
	}{
		{"none", nil, Percentiles{}},
		{"only failures", []Sample{at(0, 50, false)}, Percentiles{}},
		{"one", []Sample{at(0, 7, true)}, Percentiles{7 * ms, 7 * ms, 7 * ms}},
		{"1 to 100 ms", ss, Percentiles{50 * ms, 90 * ms, 99 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Latencies(tc.samples); got != tc.want {
				t.Errorf("percentiles %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGapsAndSummary(t *testing.T) {
	ss := append(series(500, 200, 250), at(800, 1, true)) // the sampler lost 250 to 750
	sum := Summarize(ss, 50*ms)
	if sum.MaxGap != 350*ms || sum.GapRatio != 7 {
		t.Errorf("gap %v ratio %v, want 350ms and 7", sum.MaxGap, sum.GapRatio)
	}
	if sum.Samples != 11 || sum.Failed != 1 || len(sum.Outages) != 1 {
		t.Errorf("summary %+v", sum)
	}
	// an outage seen across a stall of the sampler says so
	stalled := Outages([]Sample{at(0, 1, true), at(50, 1, false), at(400, 1, false), at(450, 1, true)})
	if len(stalled) != 1 || stalled[0].MaxGap != 350*ms || sum.Outages[0].MaxGap != 50*ms {
		t.Errorf("outage gaps: %+v and %v, want 350ms and 50ms", stalled, sum.Outages[0].MaxGap)
	}
	if g := MaxGap(nil); g != 0 {
		t.Errorf("gap of no samples %v", g)
	}
}

func TestLongestAndDowntime(t *testing.T) {
	os := Outages(series(2000, 100, 200, 500, 900, 1200, 1250))
	long, ok := Longest(os)
	if !ok || long.Failed != 8 {
		t.Errorf("longest %+v %v, want the one of 8 failed samples", long, ok)
	}
	// each outage is its failed samples' span plus the 1 ms answer time, halved at both edges
	if got, want := Downtime(os), 100*ms+400*ms+50*ms+3*ms/2; got != want {
		t.Errorf("downtime %v, want %v", got, want)
	}
	if _, ok := Longest(nil); ok {
		t.Error("a longest outage among none")
	}
}

package probe

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/internal/envtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// Limits past which the machine, not the probe, is the problem: the test
// fails saying so rather than reporting a number it cannot trust.
const (
	busyGapRatio    = 4.0                    // the sampler missed three slots in a row
	busyUncertainty = 100 * time.Millisecond // the outage's edges were seen this loosely
	busyAPICall     = 150 * time.Millisecond // a pause or unpause call took this long
)

// pause freezes svc for d by the test's own clock and returns the window
// between the two API calls' returns, which is the ground truth the probe
// must measure, and how long the slower call took.
func pause(t *testing.T, svc *env.Service, d time.Duration) (window, slowest time.Duration) {
	t.Helper()
	ctx := context.Background()
	c := svc.Container()
	called := time.Now()
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	time.Sleep(time.Until(paused.Add(d)))
	thawing := time.Now()
	if err := c.Unpause(ctx); err != nil {
		t.Fatal(err)
	}
	thawed := time.Now()
	return thawed.Sub(paused), max(paused.Sub(called), thawed.Sub(thawing))
}

// sample probes url every 50 ms around fn and returns the samples.
func sample(t *testing.T, url string, tl *timeline.Timeline, fn func()) ([]Sample, *Sampler) {
	t.Helper()
	c, err := HTTP(url)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSampler(c, WithInterval(50*time.Millisecond), WithTimeline(tl), WithName("web"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	fn()
	time.Sleep(500 * time.Millisecond)
	return s.Stop(), s
}

func describe(sum Summary) string {
	s := fmt.Sprintf("%d samples, %d failed, latency p50 %v p90 %v p99 %v, largest gap %v (%.1fx the interval)",
		sum.Samples, sum.Failed, sum.Latency.P50, sum.Latency.P90, sum.Latency.P99, sum.MaxGap, sum.GapRatio)
	for _, o := range sum.Outages {
		s += fmt.Sprintf("\n  outage %v ±%v (%d failed samples): %v", o.Duration(), o.Uncertainty, o.Failed, o.FirstErr)
	}
	return s
}

// tooBusy fails the test when the sampler could not keep its schedule.
func tooBusy(t *testing.T, sum Summary) {
	t.Helper()
	if sum.GapRatio > busyGapRatio {
		t.Fatalf("machine too busy to calibrate: the sampler's largest gap was %v, %.1fx the interval (limit %.0fx)\n%s",
			sum.MaxGap, sum.GapRatio, busyGapRatio, describe(sum))
	}
}

func TestCalibration(t *testing.T) {
	e := envtest.Start(t, filepath.Join("testdata", "compose.yaml"))
	web := e.Service("web")
	ep, err := web.Endpoint("8080")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ep + "/health"

	for _, d := range []time.Duration{2 * time.Second, 300 * time.Millisecond} {
		t.Run(fmt.Sprintf("pause %v", d), func(t *testing.T) {
			tl := timeline.New()
			var window, slowest time.Duration
			samples, _ := sample(t, url, tl, func() { window, slowest = pause(t, web, d) })
			sum := Summarize(samples, 50*time.Millisecond)
			t.Logf("pause window %v (slowest API call %v)\n%s", window, slowest, describe(sum))
			tooBusy(t, sum)
			if slowest > busyAPICall {
				t.Fatalf("machine too busy to calibrate: a pause API call took %v (limit %v), so the window is not known", slowest, busyAPICall)
			}
			if len(sum.Outages) != 1 {
				t.Fatalf("%d outages, want 1\n%s", len(sum.Outages), describe(sum))
			}
			o := sum.Outages[0]
			if o.Uncertainty > busyUncertainty {
				t.Fatalf("machine too busy to calibrate: the outage's edges are uncertain by %v (limit %v)\n%s", o.Uncertainty, busyUncertainty, describe(sum))
			}
			if o.Open {
				t.Errorf("outage still open after the unpause")
			}
			if diff := (o.Duration() - window).Abs(); diff > 150*time.Millisecond {
				t.Errorf("outage %v, pause window %v: off by %v, want at most 150ms", o.Duration(), window, diff)
			}
			if spans := outageSpans(tl); len(spans) != 1 {
				t.Errorf("timeline has %d outage spans, want 1:\n%v", len(spans), spans)
			}
		})
	}

	t.Run("healthy for 30s", func(t *testing.T) {
		samples, _ := sample(t, url, nil, func() { time.Sleep(29 * time.Second) })
		sum := Summarize(samples, 50*time.Millisecond)
		t.Log(describe(sum))
		tooBusy(t, sum)
		if len(sum.Outages) > 0 {
			t.Errorf("a healthy service had outages:\n%s", describe(sum))
		}
		if sum.Samples < 500 {
			t.Errorf("%d samples in 30s at 50ms, want about 600", sum.Samples)
		}
	})
}

func outageSpans(tl *timeline.Timeline) []timeline.Event {
	var out []timeline.Event
	for _, e := range tl.Filter(Kind) {
		if e.Name == "outage" {
			out = append(out, e)
		}
	}
	return out
}

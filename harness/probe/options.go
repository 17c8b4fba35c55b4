package probe

import (
	"fmt"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
)

// Limits on the sampling interval and the per-sample timeout.
const (
	DefaultInterval = 100 * time.Millisecond
	MinInterval     = 20 * time.Millisecond
	MaxTimeout      = time.Second
)

// Option configures a Sampler.
type Option func(*options) error

type options struct {
	interval time.Duration
	timeout  time.Duration // 0: the interval, at most MaxTimeout
	tl       *timeline.Timeline
	name     string
}

// defaults are the one place a Sampler's defaults live.
func defaults() options { return options{interval: DefaultInterval} }

// WithInterval sets the time between the starts of two samples. Default:
// 100 ms; at least 20 ms.
func WithInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < MinInterval {
			return fmt.Errorf("probe interval %v: below the minimum of %v", d, MinInterval)
		}
		o.interval = d
		return nil
	}
}

// WithTimeout sets how long one sample waits for an answer before it
// counts as failed. Default: the interval, at most 1 s; at most 1 s.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 || d > MaxTimeout {
			return fmt.Errorf("probe timeout %v: want more than 0 and at most %v", d, MaxTimeout)
		}
		o.timeout = d
		return nil
	}
}

// WithTimeline records the probe on a timeline as it runs: its start and
// stop, every change between up and down, and each outage as a span.
// Default: no timeline.
func WithTimeline(tl *timeline.Timeline) Option {
	return func(o *options) error { o.tl = tl; return nil }
}

// WithName names the probe on the timeline (the actor of its events),
// usually the service it watches. Default: the checker's String(), or
// "probe".
func WithName(name string) Option {
	return func(o *options) error {
		if name == "" {
			return fmt.Errorf("probe name: empty")
		}
		o.name = name
		return nil
	}
}

// effectiveTimeout is the per-sample timeout after defaults.
func (o options) effectiveTimeout() time.Duration {
	if o.timeout > 0 {
		return o.timeout
	}
	return min(o.interval, MaxTimeout)
}

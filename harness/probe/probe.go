// Package probe watches a service while a rehearsal breaks things: a
// Checker asks the service one question (an HTTP request, a TCP connect, an
// SQL query, a command), a Sampler asks it every interval and records the
// answers, and pure functions turn the samples into availability, outage
// windows and latency percentiles.
package probe

import (
	"context"
	"errors"
	"time"
)

// Kind is the timeline kind of every event a Sampler records.
const Kind = "probe"

// Checker asks a service one question. It returns nil when the service
// answered as expected, and must return promptly once ctx ends.
type Checker interface {
	Check(ctx context.Context) error
}

// Sample is one check: when it started, how long it took and what went
// wrong (nil when the service answered as expected).
type Sample struct {
	At      time.Time
	Latency time.Duration
	Err     error
}

// OK reports whether the check succeeded.
func (s Sample) OK() bool { return s.Err == nil }

// Done is when the check returned: an ok sample saw the service answer
// then, a failed one had seen no good answer from At until then.
func (s Sample) Done() time.Time { return s.At.Add(s.Latency) }

// Outcomes a caller may branch on; the checkers wrap them with details.
var (
	// ErrTimeout: no answer within the sample's timeout.
	ErrTimeout = errors.New("no answer in time")
	// ErrStatus: an HTTP status other than the expected ones.
	ErrStatus = errors.New("unexpected status")
	// ErrBody: the HTTP body lacks the expected text.
	ErrBody = errors.New("body does not match")
	// ErrSlow: an answer that came, but later than the latency bound.
	ErrSlow = errors.New("answer too slow")
	// ErrExit: a command that exited non-zero.
	ErrExit = errors.New("command failed")
)

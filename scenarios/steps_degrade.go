package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/fault"
)

// The faults that degrade a service rather than stop it: latency and
// bandwidth between two services (Toxiproxy, only the first service's
// traffic to the second), and a full disk.
var degradeSteps = []Step{
	{`When DURATION latency is added between "A" and "B"`, `^(\S+) latency is added between "([^"]*)" and "([^"]*)"$`, `When 500ms latency is added between "invoicing" and "db"`,
		"A's requests to B's ports wait DURATION longer for each answer (through a proxy; a third service is not slowed); until the network between them is restored", latencyAdded},
	{`When DURATION latency with DURATION jitter is added between "A" and "B"`, `^(\S+) latency with (\S+) jitter is added between "([^"]*)" and "([^"]*)"$`, `When 200ms latency with 50ms jitter is added between "invoicing" and "db"`,
		"the same, each delay give or take up to the jitter", latencyJitterAdded},
	{`When the bandwidth between "A" and "B" is limited to RATE`, `^the bandwidth between "([^"]*)" and "([^"]*)" is limited to (\S+)$`, `When the bandwidth between "invoicing" and "db" is limited to 100KB/s`,
		"A's traffic with B's ports flows at RATE each way (KB/s, MB/s, MiB/s, kbit/s, Mbit/s); until the network between them is restored", bandwidthLimited},
	{`When the disk of "SVC" is full`, `^the disk of "([^"]*)" is full$`, `When the disk of "db" is full`,
		"fill the service's x-rehearse disk to the last block: its writes there fail with \"No space left on device\"", diskFull},
	{`When the disk of "SVC" has room again`, `^the disk of "([^"]*)" has room again$`, `When the disk of "db" has room again`,
		"delete what filled the disk; what the service wrote stays", diskHasRoom},
}

// target checks that svc is a service of the running environment, which it
// returns.
func (w *World) target(svc string) (*env.Environment, error) {
	e, err := w.environment()
	if err != nil {
		return nil, err
	}
	if _, err := w.service(svc); err != nil {
		return nil, err
	}
	return e, nil
}

// pair checks that a and b are two services of the running environment.
func (w *World) pair(a, b string) (*env.Environment, error) {
	e, err := w.target(a)
	if err != nil {
		return nil, err
	}
	if _, err := w.service(b); err != nil {
		return nil, err
	}
	if a == b {
		return nil, fmt.Errorf("the network between %q and itself: name two services", a)
	}
	return e, nil
}

func latencyAdded(ctx context.Context, dur, a, b string) error {
	return addLatency(ctx, dur, "", a, b)
}

func latencyJitterAdded(ctx context.Context, dur, jitter, a, b string) error {
	return addLatency(ctx, dur, jitter, a, b)
}

func addLatency(ctx context.Context, dur, jitter, a, b string) error {
	w := WorldFrom(ctx)
	d, err := parseDuration(dur)
	if err != nil {
		return err
	}
	var j time.Duration
	if jitter != "" {
		if j, err = parseDuration(jitter); err != nil {
			return fmt.Errorf("jitter: %w", err)
		}
	}
	e, err := w.pair(a, b)
	if err != nil {
		return err
	}
	f, err := fault.NewLatency(e, a, b, d, j)
	if err != nil {
		return err
	}
	return w.inject(ctx, f, 0)
}

func bandwidthLimited(ctx context.Context, a, b, rate string) error {
	w := WorldFrom(ctx)
	kb, err := fault.ParseRate(rate)
	if err != nil {
		return err
	}
	e, err := w.pair(a, b)
	if err != nil {
		return err
	}
	f, err := fault.NewBandwidth(e, a, b, kb)
	if err != nil {
		return err
	}
	return w.inject(ctx, f, 0)
}

func diskFull(ctx context.Context, svc string) error {
	w := WorldFrom(ctx)
	e, err := w.target(svc)
	if err != nil {
		return err
	}
	f, err := fault.NewDiskFull(e, svc)
	if err != nil {
		return err
	}
	return w.inject(ctx, f, 0)
}

func diskHasRoom(ctx context.Context, svc string) error {
	w := WorldFrom(ctx)
	if _, err := w.service(svc); err != nil {
		return err
	}
	n, err := w.healMatching(ctx, func(f fault.Fault) bool {
		d, ok := f.(*fault.DiskFull)
		return ok && targets(d)[0] == svc
	})
	if n == 0 && err == nil {
		return fmt.Errorf("the disk of %q is not full: use When the disk of %q is full", svc, svc)
	}
	return err
}

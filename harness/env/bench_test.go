package env

import (
	"context"
	"testing"
	"time"

	"github.com/rehearse/rehearse/internal/enginetest"
)

// criticalPath sums each service's own start-to-ready time along the
// longest depends_on chain: the floor for bringing the plan up.
func criticalPath(p *Plan, tm map[string]Timing) time.Duration {
	memo := map[string]time.Duration{}
	var path func(name string) time.Duration
	path = func(name string) time.Duration {
		if d, ok := memo[name]; ok {
			return d
		}
		var longest time.Duration
		for dep := range p.Service(name).DependsOn {
			longest = max(longest, path(dep))
		}
		t := tm[name]
		memo[name] = longest + t.Ready.Sub(t.Start)
		return memo[name]
	}
	var cp time.Duration
	for _, s := range p.Services {
		cp = max(cp, path(s.Name))
	}
	return cp
}

func TestCriticalPath(t *testing.T) {
	p, err := loadPlan(t, "testdata/sleepers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(0, 0)
	at := func(s, r int) Timing {
		return Timing{Start: t0.Add(time.Duration(s) * time.Second), Ready: t0.Add(time.Duration(r) * time.Second)}
	}
	tm := map[string]Timing{"left": at(0, 3), "right": at(0, 5), "top": at(5, 6)}
	if got := criticalPath(p, tm); got != 6*time.Second {
		t.Errorf("critical path = %s, want 6s (right 5s + top 1s)", got)
	}
}

// BenchmarkBillingUp brings the bundled world up with images cached and
// reports the time against its critical path measured in the same run
// (target: at most 1.25), and the teardown time.
func BenchmarkBillingUp(b *testing.B) {
	cli := enginetest.Connect(b)
	plan, err := loadPlan(b, billingCompose)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// Warm: images exist and the build cache is hot before timing.
	if e, err := Start(ctx, plan, WithClient(cli)); err != nil {
		b.Fatal(err)
	} else if err := e.Down(ctx); err != nil {
		b.Fatal(err)
	}
	var up, cp, down time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		e, err := Start(ctx, plan, WithClient(cli))
		if err != nil {
			b.Fatal(err)
		}
		up += time.Since(t0)
		cp += criticalPath(plan, e.Timings())
		t1 := time.Now()
		if err := e.Down(ctx); err != nil {
			b.Fatal(err)
		}
		down += time.Since(t1)
	}
	n := float64(b.N)
	b.ReportMetric(up.Seconds()/n, "up-s")
	b.ReportMetric(cp.Seconds()/n, "critical-path-s")
	b.ReportMetric(float64(up)/float64(cp), "up/critical-path")
	b.ReportMetric(down.Seconds()/n, "teardown-s")
}

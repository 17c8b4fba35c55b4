package snapshot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/envtest"
)

// BenchmarkSeedCache measures what the cache of seeded states saves: at
// each scale the bundled features load (5,000, 20,000 and 400,000
// invoices), the billing dataset is loaded from scratch into one world
// (and stored), then restored from the cache into another world at its
// starting point (stop, copy back, start, every service ready, row
// counts). restore/scratch is the restore's time over the load's at
// 400,000; load-N-s and restore-N-s are the figures at each scale. The
// worlds go back to their starting point between scales by a snapshot.
// The measurement takes minutes: it runs once, before the benchmark
// loop, whatever -benchtime says, and ns/op is suppressed.
func BenchmarkSeedCache(b *testing.B) {
	ctx := context.Background()
	var e1, e2 *env.Environment
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e1 = envtest.Start(b, billingCompose) }()
	go func() { defer wg.Done(); e2 = envtest.Start(b, billingCompose) }()
	wg.Wait()
	if e1 == nil || e2 == nil {
		b.FailNow()
	}
	spec := seedTestDataset(b, "")
	salt := runs.NewID()
	var p1, p2 *Snapshot
	var err1, err2 error
	wg.Add(2)
	go func() { defer wg.Done(); p1, err1 = Take(ctx, e1, "pristine") }()
	go func() { defer wg.Done(); p2, err2 = Take(ctx, e2, "pristine") }()
	wg.Wait()
	if err1 != nil || err2 != nil {
		b.Fatal(err1, err2)
	}
	var lines []string
	var ratio float64
	for i, scale := range []int64{5_000, 20_000, 400_000} {
		if i > 0 {
			wg.Add(2)
			go func() { defer wg.Done(); err1 = p1.Restore(ctx) }()
			go func() { defer wg.Done(); err2 = p2.Restore(ctx) }()
			wg.Wait()
			if err1 != nil || err2 != nil {
				b.Fatal(err1, err2)
			}
		}
		stored, err := Seed(ctx, e1, spec, scale, WithSeedKeySalt(salt), WithSeedMinLoad(0))
		if err != nil || stored.Cache != SeedStored {
			b.Fatalf("scale %d: store: %s %v", scale, stored.Cache, err)
		}
		hit, err := Seed(ctx, e2, spec, scale, WithSeedKeySalt(salt), WithSeedMinLoad(0))
		if err != nil || hit.Cache != SeedHit {
			b.Fatalf("scale %d: restore: %s %v (%s)", scale, hit.Cache, err, hit.Reason)
		}
		var restore time.Duration
		var ph []string
		for _, p := range hit.Phases {
			ph = append(ph, p.Name+" "+p.Duration.Round(time.Millisecond).String())
			if p.Name != "key" {
				restore += p.Duration
			}
		}
		var storePh []string
		for _, p := range stored.Phases {
			storePh = append(storePh, p.Name+" "+p.Duration.Round(time.Millisecond).String())
		}
		b.ReportMetric(stored.Load.Seconds(), fmt.Sprintf("load-%d-s", scale))
		b.ReportMetric(hit.Duration.Seconds(), fmt.Sprintf("restore-%d-s", scale))
		lines = append(lines, fmt.Sprintf("scale %d: load %s; store %s (%s); hit %s: %s",
			scale, stored.Load.Round(time.Millisecond), (stored.Duration-stored.Load).Round(time.Millisecond), strings.Join(storePh, ", "),
			hit.Duration.Round(time.Millisecond), strings.Join(ph, ", ")))
		ratio = hit.Duration.Seconds() / stored.Load.Seconds()
	}
	for b.Loop() {
		// The measurement above is the benchmark (see the comment).
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ratio, "restore/scratch")
	for _, l := range lines {
		b.Log(l)
	}
}

// BenchmarkSeedKey measures a key on a fresh bundled world (nothing
// loaded): every database's fingerprint and catalog queries, the
// cluster's queries, the plan and its bind sources. key-s is the mean.
func BenchmarkSeedKey(b *testing.B) {
	ctx := context.Background()
	e := envtest.Start(b, billingCompose)
	spec := seedTestDataset(b, "")
	var n int
	var total time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := seedKey(ctx, e, spec, seedTestScale, "bench"); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		n++
	}
	b.ReportMetric(total.Seconds()/float64(n), "key-s")
}

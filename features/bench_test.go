package features

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/scenarios"
)

// BenchmarkFeatures runs the bundled features at concurrency 1 and at the
// default (scenarios.AutoConcurrency, from the engine's cores and memory),
// and reports both wall times, the default chosen and the speed-up. Every
// scenario must pass at both: a default that fails rehearsals oversubscribes
// the machine. Minutes per iteration: make bench runs it once.
func BenchmarkFeatures(b *testing.B) {
	if testing.Short() {
		b.Skip("minutes of rehearsals")
	}
	enginetest.Connect(b)
	// From the repository root, as TestFeatures runs them.
	b.Chdir("..")
	if _, err := os.Stat(filepath.Join("out", "packages", "billing-3.0-rehearsed.zip.p7s")); err != nil {
		b.Fatalf("the upgrade packages are missing (make packages): %v", err)
	}
	sel, err := scenarios.Select([]string{"features"}, scenarios.Shard{}, "")
	if err != nil {
		b.Fatal(err)
	}
	capacity := scenarios.FindCapacity(b.Context())
	auto := min(capacity.Concurrency(), len(sel.Selected))
	b.Logf("%d scenarios; the default is %d at a time, from %s", len(sel.Selected), auto, capacity)

	run := func(concurrency int) time.Duration {
		var console bytes.Buffer
		o := scenarios.RunOptions{Paths: []string{"features"}, Concurrency: concurrency, OutDir: b.TempDir(),
			Format: "progress", Command: "go run ./cmd/rehearse", Stdout: &console, Stderr: &console,
			Capacity: func(context.Context) scenarios.Capacity { return capacity }}
		start := time.Now()
		sum, err := scenarios.Run(b.Context(), o)
		took := time.Since(start)
		if err != nil {
			b.Fatalf("concurrency %d: %v", concurrency, err)
		}
		if !sum.Passed() {
			var s bytes.Buffer
			sum.WriteSummary(&s)
			b.Errorf("concurrency %d: the features failed (godog exited %d):\n%s\n%s", concurrency, sum.GodogStatus, s.String(), console.String())
		}
		b.Logf("concurrency %d: %.1f s", concurrency, took.Seconds())
		return took
	}

	var one, def time.Duration
	b.ResetTimer()
	for i := range b.N {
		// The default first in the first iteration: a cold seeded-state
		// cache is then paid by the default, which does not flatter it.
		if i%2 == 0 {
			def += run(scenarios.AutoConcurrency)
			one += run(1)
		} else {
			one += run(1)
			def += run(scenarios.AutoConcurrency)
		}
	}
	n := float64(b.N)
	b.ReportMetric(one.Seconds()/n, "wall-c1-s")
	b.ReportMetric(def.Seconds()/n, "wall-default-s")
	b.ReportMetric(float64(auto), "default")
	b.ReportMetric(one.Seconds()/def.Seconds(), "c1/default")
}

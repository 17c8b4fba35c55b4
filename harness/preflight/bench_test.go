package preflight

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/upgrade"
)

// largeTarget is issue 10's target for the generated package.
const largeTarget = 2 * time.Second

// BenchmarkPreflight: preflight of the bundled as-shipped package and of
// a generated one of 500 migrations and 200 scripts, each opened as the
// CLI opens a directory (copied into a workspace) and checked; the large
// one also as a ratio of its 2 s target (below 1 meets it).
func BenchmarkPreflight(b *testing.B) {
	m, err := LoadMatrix("../../fixtures/billing/deprecations.yaml")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := gitleaksDetector(); err != nil { // once per process, measured apart
		b.Fatal(err)
	}
	large := b.TempDir()
	generatePackage(b, large, 500, 200)
	for _, c := range []struct{ name, dir string }{
		{"bundled", "../../fixtures/billing/packages/billing-3.0/as-shipped"},
		{"large", large},
	} {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				p, err := upgrade.Open(c.dir)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Check(context.Background(), p, WithMatrix(m)); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				p.Close()
			}
			s := total.Seconds() / float64(b.N)
			b.ReportMetric(s, "s/preflight")
			if c.name == "large" {
				b.ReportMetric(s/largeTarget.Seconds(), "x-target-2s")
			}
		})
	}
}

// BenchmarkGitleaksInit: building gitleaks' detector, which Check does
// once per process.
func BenchmarkGitleaksInit(b *testing.B) {
	for b.Loop() {
		if _, err := newDetectorUncached(); err != nil {
			b.Fatal(err)
		}
	}
}

// generatePackage writes a package of n migrations and k scripts, each
// with the hazards the rules look for, and a manifest that runs them.
func generatePackage(tb testing.TB, dir string, n, k int) {
	tb.Helper()
	write := func(name, text string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	manifest := "name: billing\nversion: \"3.0\"\nupgrades_from: [\"2.3\"]\nservice: billing\nsteps:\n"
	for i := range n {
		write(fmt.Sprintf("migrations/%03d_change.sql", i), fmt.Sprintf(
			"SET lock_timeout = '1s';\nALTER TABLE t%d ADD COLUMN c%d bigint;\nCREATE INDEX i%d ON t%d (c%d);\nUPDATE t%d SET c%d = 0 WHERE id < 1000;\n", i, i, i, i, i, i, i))
	}
	for i := range k {
		write(fmt.Sprintf("scripts/step%03d.sh", i), fmt.Sprintf(
			"#!/bin/sh\nset -eu\nlog() { echo \"$@\" >&2; }\nfor f in /etc/billing/*.conf; do\n  log \"checking $f\"\n  grep -q listen \"$f\" || exit 1\ndone\nsystemctl restart billing-api.service\ncurl -fsS http://billing:8080/health\n# step %d\n", i))
		manifest += fmt.Sprintf("  - name: s%d\n    command: sh scripts/step%03d.sh\n", i, i)
	}
	write("upgrade.yaml", manifest)
	write("config/billing.conf.tmpl", "listen = :8080\ninvoice_batch_size = 500\n")
}

package preflight

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// genScripts makes n deterministic upgrade scripts of 50 to 300 lines, in
// the shape vendors ship: functions, conditionals, loops, pipelines,
// heredocs, bash -c strings, service restarts, health checks, and here
// and there a hazard.
func genScripts(n int) [][]byte {
	r := rand.New(rand.NewPCG(10, 2026))
	blocks := []func(i int) string{
		func(i int) string {
			return fmt.Sprintf("log() {\n  printf '%%s %%s\\n' \"$(date -u +%%FT%%TZ)\" \"$*\" >&2\n}\nlog \"step %d\"\n", i)
		},
		func(i int) string {
			return fmt.Sprintf("if [ -f /opt/billing/etc/billing.conf ]; then\n  cp /opt/billing/etc/billing.conf /opt/billing/etc/billing.conf.%d\nelse\n  log \"no config\"\nfi\n", i)
		},
		func(i int) string {
			return fmt.Sprintf("for f in /opt/billing/lib/*.jar; do\n  sha256sum \"$f\" | awk '{print $1}' >> /tmp/sums.%d\ndone\n", i)
		},
		func(i int) string {
			return "case \"$(uname -m)\" in\n  x86_64) ARCH=amd64 ;;\n  aarch64) ARCH=arm64 ;;\n  *) log \"unsupported\"; exit 1 ;;\nesac\n"
		},
		func(i int) string {
			return fmt.Sprintf("until curl -fsS --max-time 2 http://billing:8080/health >/dev/null; do\n  sleep 0.%d\ndone\n", i%10)
		},
		func(i int) string {
			return "systemctl restart billing-api.service && systemctl is-active --quiet billing-api\n"
		},
		func(i int) string {
			return fmt.Sprintf("cat > /opt/billing/etc/extra-%d.conf <<EOF\nport = 8080\nworkers = %d\nlog_level = info\nEOF\n", i, i%8+1)
		},
		func(i int) string {
			return fmt.Sprintf("bash -c 'set -e; cd /opt/billing && ./bin/billing-api -check-config etc/billing.conf | grep -q ok' || exit %d\n", i%5+1)
		},
		func(i int) string {
			return fmt.Sprintf("psql -v ON_ERROR_STOP=1 -h db -d billing -c \"select count(*) from invoices where id > %d\" | tail -n 1\n", i)
		},
		func(i int) string {
			return "find /var/log/billing -name '*.gz' -mtime +30 -exec rm -f {} \\;\n"
		},
		func(i int) string {
			return fmt.Sprintf("VERSION=$(/opt/billing/bin/billing-api -version 2>/dev/null || echo unknown)\n[ \"$VERSION\" = \"2.%d\" ] || log \"found $VERSION\"\n", i%4)
		},
		func(i int) string { // a hazard, now and then
			switch i % 7 {
			case 0:
				return "sudo systemctl restart billing.service\n"
			case 1:
				return "curl -fsS -X POST https://hooks.vendor.example/upgraded -d \"v=$VERSION\"\n"
			case 2:
				return "echo '0 3 * * * deploy /opt/billing/bin/cleanup' > /etc/cron.d/billing-cleanup\n"
			case 3:
				return "$HOOK \"$VERSION\"\n"
			}
			return "# nothing to see\n"
		},
	}
	out := make([][]byte, n)
	for s := range out {
		var b strings.Builder
		b.WriteString("#!/bin/bash\nset -euo pipefail\nexport LANG=C\n")
		target := 50 + r.IntN(251)
		for i := 0; strings.Count(b.String(), "\n") < target; i++ {
			b.WriteString(blocks[r.IntN(len(blocks))](i))
		}
		out[s] = []byte(b.String())
	}
	return out
}

func TestGenScripts(t *testing.T) {
	scripts := genScripts(200)
	lines := 0
	for i, s := range scripts {
		n := strings.Count(string(s), "\n")
		if n < 50 || n > 320 {
			t.Errorf("script %d has %d lines, want 50 to 300 (a block may overrun)", i, n)
		}
		lines += n
		for _, f := range CheckScript(fmt.Sprintf("s%d.sh", i), 1, s, billingEnv) {
			if f.Rule == RuleParseError {
				t.Fatalf("generated script %d does not parse: %v", i, f)
			}
		}
	}
	t.Logf("%d scripts, %d lines", len(scripts), lines)
}

// BenchmarkCheckScript checks 200 generated scripts per iteration: ns/op
// is the total for all 200 (issue 10: all of preflight for 500 migrations
// and 200 scripts under 2 s).
func BenchmarkCheckScript(b *testing.B) {
	scripts := genScripts(200)
	lines := 0
	for _, s := range scripts {
		lines += strings.Count(string(s), "\n")
	}
	findings := 0
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		findings = 0
		for i, s := range scripts {
			findings += len(CheckScript(fmt.Sprintf("s%d.sh", i), 1, s, billingEnv))
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/200scripts")
	b.ReportMetric(float64(lines)*float64(b.N)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(findings), "findings")
}

package snapshot

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/internal/envtest"
)

// The benchmark's setting: the bundled world with 1,000,000 invoices
// (about 4.1 million rows in four tables). Targets: the data fingerprint
// of every table, and a restore, each take at most a fifth of bringing
// the world up and seeding it from scratch.
const (
	benchScale       = 1_000_000
	benchRatioTarget = 0.2
)

// BenchmarkSnapshot brings the bundled world up and seeds it with
// 1,000,000 invoices, once (from scratch: the baseline, what a rehearsal
// does instead of restoring a snapshot), then measures on that world, in
// this order:
//
//   - the data fingerprint of every table with the keys kept, as a
//     rehearsal takes it before an upgrade (fp-s); without keys, counts
//     and checksums only, read-only (fp-nokeys-s); DiffData of the
//     untouched world against the print, what a rehearsal does after the
//     upgrade (diff-s), and after one invoice changed, a second pass over
//     invoices that names it (diff1-s). The print is then forgotten, so
//     that its kept hashes are not part of what follows.
//   - the template database, the alternative considered for PostgreSQL:
//     CREATE DATABASE ... TEMPLATE billing with connections to billing
//     refused and ended meanwhile, in PostgreSQL 15's two strategies
//     (WAL_LOG, the default, and FILE_COPY), and its restore (DROP
//     DATABASE billing WITH (FORCE); CREATE DATABASE billing TEMPLATE
//     snap STRATEGY FILE_COPY).
//   - Take (snapshot-s), then Restore twice (restore-s, restore2-s), each
//     after one invoice and billing.conf changed: the data directory copied
//     by a helper with the service stopped and copied back, plus the
//     files, units and in-memory services, and the fingerprints with which
//     Restore checks itself. The log gives each one's phases.
//
// fp/scratch and restore/scratch are the fingerprint's (with keys) and
// the first Restore's time over up+seed's; target at most 0.2 each
// (fp-target-met and restore-target-met are 1 when it held).
//
// The measurement takes minutes: it runs once, before the benchmark loop,
// whatever -benchtime says, and ns/op is suppressed.
func BenchmarkSnapshot(b *testing.B) {
	ctx := context.Background()
	spec, err := dataset.Find("billing", "../../fixtures/billing")
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	e := envtest.Start(b, billingCompose)
	up := time.Since(t0)
	res, err := dataset.Load(ctx, e, spec, benchScale)
	if err != nil {
		b.Fatal(err)
	}
	scratch := time.Since(t0)
	if res.Rows["invoices"] != benchScale {
		b.Fatalf("seeded %d invoices, want %d", res.Rows["invoices"], benchScale)
	}
	size, err := dataset.QueryValue(ctx, e, "db", `SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database`)
	if err != nil {
		b.Fatal(err)
	}
	wal, err := dataset.QueryValue(ctx, e, "db", `SELECT pg_size_pretty(sum(size)) || ' in ' || count(*) || ' files' FROM pg_ls_waldir()`)
	if err != nil {
		b.Fatal(err)
	}
	timed := func(fn func() error) time.Duration {
		b.Helper()
		t := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	// change alters one invoice and, with conf, billing.conf: what the
	// diff and the restores have to find and put back.
	change := func(conf bool) {
		b.Helper()
		c, err := dataset.Connect(ctx, e, "db", "")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `UPDATE invoices SET amount_cents = amount_cents + 1 WHERE id = 500000`); err != nil {
			b.Fatal(err)
		}
		if !conf {
			return
		}
		r, err := e.Service("billing").Exec(ctx, []string{"sh", "-c", `echo "# changed" >>/etc/billing/billing.conf`})
		if err != nil || r.ExitCode != 0 {
			b.Fatalf("change billing.conf: %v %s", err, r.Stderr)
		}
	}

	// The data fingerprint.
	var p *DataPrint
	fp := timed(func() (err error) { p, err = Data(ctx, e, "db"); return err })
	noKeys := timed(func() error { _, err := Data(ctx, e, "db", DataWithoutKeys()); return err })
	var d DataDiff
	diff := timed(func() (err error) { d, err = DiffData(ctx, e, "db", p); return err })
	if !d.Empty() {
		b.Fatalf("the untouched world differs:\n%s", d)
	}
	change(false)
	diff1 := timed(func() (err error) { d, err = DiffData(ctx, e, "db", p); return err })
	if want := "invoices: rows: 1 changed (id=500000)\n"; d.String() != want {
		b.Fatalf("after changing one invoice the diff is:\n%s\nwant:\n%s", d, want)
	}
	forget := timed(func() error { return p.Forget(ctx) })
	var rows int64
	for _, t := range p.Tables {
		rows += t.Rows
	}

	// The template database, measured on a connection to "postgres".
	conn, err := dataset.Connect(ctx, e, "db", "postgres")
	if err != nil {
		b.Fatal(err)
	}
	exec := func(qs ...string) error {
		for _, q := range qs {
			if _, err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}
	// copyOf makes snap from billing while billing refuses connections
	// (the outage dependents see): the time is that outage.
	copyOf := func(strategy string) func() error {
		return func() error {
			return exec(`ALTER DATABASE billing ALLOW_CONNECTIONS false`,
				`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'billing' AND pid <> pg_backend_pid()`,
				`CREATE DATABASE snap TEMPLATE billing STRATEGY `+strategy,
				`ALTER DATABASE billing ALLOW_CONNECTIONS true`)
		}
	}
	tmplWAL := timed(copyOf("WAL_LOG"))
	timed(func() error { return exec(`DROP DATABASE snap`) })
	tmplFile := timed(copyOf("FILE_COPY"))
	tmplRestore := timed(func() error {
		return exec(`DROP DATABASE billing WITH (FORCE)`, `CREATE DATABASE billing TEMPLATE snap STRATEGY FILE_COPY`)
	})
	timed(func() error { return exec(`DROP DATABASE snap`) })
	conn.Close(ctx)

	// What Take and Restore do.
	var snap *Snapshot
	take := timed(func() (err error) { snap, err = Take(ctx, e, "bench"); return err })
	takePhases := snap.Phases()
	b.Cleanup(func() { snap.Drop(context.Background()) })
	change(true)
	restore := timed(func() error { return snap.Restore(ctx) })
	restorePhases := snap.Phases()
	change(true)
	restore2 := timed(func() error { return snap.Restore(ctx) })
	restore2Phases := snap.Phases()
	for b.Loop() {
		// The measurement above is the benchmark (see the comment).
	}

	target := func(ratio float64) (float64, string) {
		if ratio <= benchRatioTarget {
			return 1, "held"
		}
		return 0, "MISSED"
	}
	fpRatio := fp.Seconds() / scratch.Seconds()
	fpMet, fpVerdict := target(fpRatio)
	restoreRatio := restore.Seconds() / scratch.Seconds()
	restoreMet, restoreVerdict := target(restoreRatio)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(up.Seconds(), "up-s")
	b.ReportMetric(scratch.Seconds(), "scratch-s")
	b.ReportMetric(fp.Seconds(), "fp-s")
	b.ReportMetric(noKeys.Seconds(), "fp-nokeys-s")
	b.ReportMetric(diff.Seconds(), "diff-s")
	b.ReportMetric(diff1.Seconds(), "diff1-s")
	b.ReportMetric(take.Seconds(), "snapshot-s")
	b.ReportMetric(restore.Seconds(), "restore-s")
	b.ReportMetric(restore2.Seconds(), "restore2-s")
	b.ReportMetric(tmplWAL.Seconds(), "tmpl-wal-s")
	b.ReportMetric(tmplFile.Seconds(), "tmpl-file-s")
	b.ReportMetric(tmplRestore.Seconds(), "tmpl-restore-s")
	b.ReportMetric(fpRatio, "fp/scratch")
	b.ReportMetric(fpMet, "fp-target-met")
	b.ReportMetric(restoreRatio, "restore/scratch")
	b.ReportMetric(restoreMet, "restore-target-met")
	phases := func(ps []RestorePhase) string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name+" "+p.Duration.Round(time.Millisecond).String())
		}
		return strings.Join(out, ", ")
	}
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	b.Logf("from scratch: up %s, up+seed of %d invoices %s; databases %s, WAL %s", ms(up), benchScale, ms(scratch), size, wal)
	b.Logf("data fingerprint of %d tables, %d rows: %s with keys, %s without; diff %s untouched, %s after one change; forget %s",
		len(p.Tables), rows, ms(fp), ms(noKeys), ms(diff), ms(diff1), ms(forget))
	b.Logf("template database: create WAL_LOG %s, FILE_COPY %s (each an outage of billing), restore by drop+create %s",
		ms(tmplWAL), ms(tmplFile), ms(tmplRestore))
	b.Logf("Take %s: %s", ms(take), phases(takePhases))
	b.Logf("Restore %s: %s", ms(restore), phases(restorePhases))
	b.Logf("Restore again %s: %s", ms(restore2), phases(restore2Phases))
	b.Logf("target fp/scratch <= %.1f %s: %.3f", benchRatioTarget, fpVerdict, fpRatio)
	b.Logf("target restore/scratch <= %.1f %s: %.3f", benchRatioTarget, restoreVerdict, restoreRatio)
}

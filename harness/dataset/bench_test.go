package dataset

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchmarkLoadRestoreOrder loads the billing dataset at 1,000,000 invoices
// (100,000 customers, about 3,000,000 invoice lines) with Load and, in the
// same run, the same rows from CSV files written beforehand with one psql
// session in pg_restore's order (-j 1): pg_dump's pre-data section of the
// schema's tables (no keys, no indexes), \copy each table, pg_dump's
// post-data section (primary keys, indexes, then foreign keys), sync the
// sequences, ANALYZE. Generation
// is not timed for the baseline. Both start from the same empty database
// (the tables dropped, a CHECKPOINT). Target: load/restore-order at most
// 1.0. load-inline-s is Load generating rows in the COPY's goroutine
// instead of one of their own.
func BenchmarkLoadRestoreOrder(b *testing.B) {
	const scale = 1_000_000
	psql, err := exec.LookPath("psql")
	if err != nil {
		b.Fatal("the baseline needs psql on this host (apt-get install postgresql-client)")
	}
	e := startDB(b)
	ctx := context.Background()
	s := billingSpec(b)
	dsn, err := DSN(e, s.Service, s.Database)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := Connect(ctx, e, s.Service, s.Database)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var names []string
	for _, t := range s.Tables {
		names = append(names, pgx.Identifier{t.Name}.Sanitize())
	}
	reset := func() {
		b.Helper()
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+strings.Join(names, ", ")+" CASCADE; CHECKPOINT"); err != nil {
			b.Fatal(err)
		}
	}

	// The baseline's script is pg_dump's: the schema applied, its tables'
	// pre-data section (the tables, without keys or indexes) and post-data
	// section (primary keys, indexes, foreign keys), as pg_restore runs
	// them around the data. None of Load's own catalog reading is used.
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		b.Fatal("the baseline needs pg_dump on this host (apt-get install postgresql-client)")
	}
	schema, err := s.readFile(s.Schema, true)
	if err != nil {
		b.Fatal(err)
	}
	reset()
	if _, err := conn.Exec(ctx, string(schema)); err != nil {
		b.Fatal(err)
	}
	section := func(name string) string {
		args := []string{"-d", dsn, "--schema-only", "--no-owner", "--no-privileges", "--section=" + name}
		for _, t := range s.Tables {
			args = append(args, "--table=public."+t.Name)
		}
		out, err := exec.Command(pgDump, args...).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			b.Fatalf("pg_dump --section=%s: %v\n%s", name, err, stderr)
		}
		return string(out)
	}
	pre, post := section("pre-data"), section("post-data")
	if !strings.Contains(post, "PRIMARY KEY") || !strings.Contains(post, "FOREIGN KEY") || strings.Contains(pre, "PRIMARY KEY") {
		b.Fatalf("pg_dump's sections are not pg_restore's order:\npre-data:\n%s\npost-data:\n%s", pre, post)
	}
	var script strings.Builder
	script.WriteString(pre)
	script.WriteString("\nSET search_path = public;\n")
	dir := b.TempDir()
	for _, t := range s.Tables {
		p := filepath.Join(dir, t.Name+".csv")
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := WriteCSV(f, s, t.Name, scale, nil); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&script, "\\copy %s (%s) FROM '%s' CSV\n", pgx.Identifier{t.Name}.Sanitize(), strings.Join(s.Columns(t.Name), ", "), p)
	}
	script.WriteString(post)
	script.WriteString("\nSET search_path = public;\n")
	for _, t := range s.Tables {
		for _, c := range t.columns {
			if _, ok := c.gen.(seqGen); ok {
				n, col := pgx.Identifier{t.Name}.Sanitize(), pgx.Identifier{c.name}.Sanitize()
				fmt.Fprintf(&script, "SELECT setval(pg_get_serial_sequence('%s', '%s'), GREATEST((SELECT max(%s) FROM %s), 1));\n", n, c.name, col, n)
			}
		}
	}
	script.WriteString("ANALYZE " + strings.Join(names, ", ") + ";\n")
	scriptPath := filepath.Join(dir, "restore.sql")
	if err := os.WriteFile(scriptPath, []byte(script.String()), 0o644); err != nil {
		b.Fatal(err)
	}

	baseline := func() time.Duration {
		reset()
		t0 := time.Now()
		out, err := exec.Command(psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", scriptPath).CombinedOutput()
		if err != nil {
			b.Fatalf("psql: %v\n%s", err, out)
		}
		return time.Since(t0)
	}
	load := func(opts ...Option) time.Duration {
		reset()
		var mu sync.Mutex
		phases := map[string]time.Duration{}
		opts = append(opts, withTrace(func(p string, d time.Duration) { mu.Lock(); phases[p] = d; mu.Unlock() }))
		t0 := time.Now()
		res, err := Load(ctx, e, s, scale, opts...)
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		if res.Rows["invoices"] != scale || res.InPlace != "" {
			b.Fatalf("loaded %d invoices (in place: %q)", res.Rows["invoices"], res.InPlace)
		}
		var ps []string
		for p, d := range phases {
			ps = append(ps, fmt.Sprintf("%s %.2fs", p, d.Seconds()))
		}
		sort.Strings(ps)
		b.Logf("load %.2fs: %s", d.Seconds(), strings.Join(ps, ", "))
		return d
	}
	var ours, inline, floor time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate who goes first, so neither always meets the other's
		// leftovers (dirty buffers, autovacuum).
		if i%2 == 0 {
			floor += baseline()
			ours += load()
		} else {
			ours += load()
			floor += baseline()
		}
		inline += load(withInline())
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "load-s")
	b.ReportMetric(inline.Seconds()/n, "load-inline-s")
	b.ReportMetric(floor.Seconds()/n, "restore-order-s")
	b.ReportMetric(float64(ours)/float64(floor), "load/restore-order")
}

package dataset

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkLoadInvoices loads 1,000,000 invoices with Load and, in the same
// run, the same rows from a CSV file with psql's \copy (COPY is the floor).
// Target: load/psql-copy at most 1.2.
func BenchmarkLoadInvoices(b *testing.B) {
	const scale = 1_000_000
	psql, err := exec.LookPath("psql")
	if err != nil {
		b.Fatal("the baseline needs psql on this host (apt-get install postgresql-client)")
	}
	e := startDB(b)
	ctx := context.Background()
	s := billingSpec(b)
	// Customers once: invoices reference them.
	if _, err := Load(ctx, e, s, scale, WithTables("feature_flags", "customers")); err != nil {
		b.Fatal(err)
	}
	csvPath := filepath.Join(b.TempDir(), "invoices.csv")
	f, err := os.Create(csvPath)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := WriteCSV(f, s, "invoices", scale, nil); err != nil {
		b.Fatal(err)
	}
	f.Close()
	dsn, err := DSN(e, "db", "")
	if err != nil {
		b.Fatal(err)
	}
	truncate := func() {
		conn, err := Connect(ctx, e, "db", "")
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "TRUNCATE invoices CASCADE"); err != nil {
			b.Fatal(err)
		}
	}
	copyCmd := `\copy invoices (` + strings.Join(s.Columns("invoices"), ", ") + `) FROM '` + csvPath + `' CSV`
	var ours, floor time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		truncate()
		b.StartTimer()
		t0 := time.Now()
		out, err := exec.Command(psql, dsn, "-v", "ON_ERROR_STOP=1", "-c", copyCmd).CombinedOutput()
		if err != nil {
			b.Fatalf("psql: %v\n%s", err, out)
		}
		floor += time.Since(t0)

		t1 := time.Now()
		res, err := Load(ctx, e, s, scale, WithTables("invoices"))
		if err != nil {
			b.Fatal(err)
		}
		ours += time.Since(t1)
		if res.Rows["invoices"] != scale {
			b.Fatalf("loaded %d invoices", res.Rows["invoices"])
		}
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "load-s")
	b.ReportMetric(floor.Seconds()/n, "psql-copy-s")
	b.ReportMetric(float64(ours)/float64(floor), "load/psql-copy")
}

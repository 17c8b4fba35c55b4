package dataset

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/internal/envtest"
)

var billingDir = filepath.Join("..", "..", "fixtures", "billing")

func billingSpec(t testing.TB) *Spec {
	t.Helper()
	s, err := Find("billing", billingDir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFindAndParseErrors(t *testing.T) {
	if _, err := Find("no-such", billingDir); err == nil || !strings.Contains(err.Error(), `"no-such"`) {
		t.Errorf("missing dataset: %v", err)
	}
	tests := map[string]string{
		"bad-generator": `testdata/bad-generator/dataset.yaml:7: table t, column amount: "10..1": use MIN..MAX`,
		"bad-ref":       `testdata/bad-ref/dataset.yaml:6: table child, column parent_id: ref "parent" must name a table listed before it`,
	}
	for name, want := range tests {
		_, err := Find(filepath.Join("testdata", name))
		if err == nil || err.Error() != want {
			t.Errorf("%s:\n got %v\nwant %s", name, err, want)
		}
	}
}

func TestRowCount(t *testing.T) {
	for expr, want := range map[string]int64{"7": 7, "scale": 1000, "scale/10": 100, "scale * 3": 3000, "scale/5000": 1} {
		if got, err := rowCount(expr, 1000); err != nil || got != want {
			t.Errorf("rowCount(%q) = %d, %v; want %d", expr, got, err, want)
		}
	}
	for _, bad := range []string{"scale/0", "half", "scale+1"} {
		if _, err := rowCount(bad, 1000); err == nil {
			t.Errorf("rowCount(%q) accepted", bad)
		}
	}
}

// Same seed, same rows; the scale changes the main table's row count.
func TestGeneratorsAreDeterministic(t *testing.T) {
	s := billingSpec(t)
	csv := func(table string, scale int64) (string, int64) {
		var b bytes.Buffer
		n, err := WriteCSV(&b, s, table, scale, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b.String(), n
	}
	a, n := csv("invoices", 500)
	b, _ := csv("invoices", 500)
	if a != b || n != 500 {
		t.Errorf("two generations differ or wrong count (%d)", n)
	}
	first := strings.SplitN(a, "\n", 2)[0]
	if !strings.HasPrefix(first, "1,") || !strings.Contains(first, ",INV-00000001,") {
		t.Errorf("first invoice %q", first)
	}
	lines, n := csv("invoice_lines", 500)
	if n < 500 || n > 2500 {
		t.Errorf("%d invoice lines for 500 invoices, want 1 to 5 each", n)
	}
	if strings.Count(lines, "\n") != int(n) {
		t.Errorf("csv has %d lines for %d rows", strings.Count(lines, "\n"), n)
	}
	s.Seed++
	if c, _ := csv("invoices", 500); c == a {
		t.Error("another seed gave the same rows")
	}
}

// startDB starts the bundled world's PostgreSQL alone, building its image
// from the bundled compose file when it is missing or stale.
func startDB(t testing.TB) *env.Environment {
	t.Helper()
	envtest.EnsureImages(t, filepath.Join(billingDir, "compose.yaml"), "db")
	return envtest.Start(t, filepath.Join("testdata", "pg", "compose.yaml"))
}

func count(t testing.TB, e *env.Environment, sql string) int64 {
	t.Helper()
	conn, err := Connect(context.Background(), e, "db", "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestLoadIntoPostgreSQL(t *testing.T) {
	e := startDB(t)
	ctx := context.Background()
	s := billingSpec(t)
	var reports []Progress
	res, err := Load(ctx, e, s, 3000, WithBatchSize(1000), WithProgress(func(p Progress) { reports = append(reports, p) }))
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows["invoices"] != 3000 || res.Rows["customers"] != 300 || res.Rows["feature_flags"] != 6 {
		t.Errorf("rows %v", res.Rows)
	}
	for table, want := range res.Rows {
		if got := count(t, e, "SELECT count(*) FROM "+table); got != want {
			t.Errorf("%s has %d rows, load said %d", table, got, want)
		}
	}
	if n := count(t, e, "SELECT count(*) FROM invoices i LEFT JOIN customers c ON c.id = i.customer_id WHERE c.id IS NULL"); n != 0 {
		t.Errorf("%d invoices reference missing customers", n)
	}
	invoiceBatches := 0
	for _, p := range reports {
		if p.Table == "invoices" {
			invoiceBatches++
		}
	}
	if invoiceBatches != 3 {
		t.Errorf("%d progress reports for 3000 invoices in batches of 1000", invoiceBatches)
	}
	// Identity sequences move past the loaded ids, so the application's own
	// inserts work.
	if n := count(t, e, "WITH x AS (INSERT INTO customers (name, email, country) VALUES ('n', 'e', 'DE') RETURNING id) SELECT id FROM x"); n != 301 {
		t.Errorf("new customer got id %d, want 301", n)
	}
	// Loading again at another scale replaces the rows, deterministically.
	fp := func() int64 {
		return count(t, e, "SELECT sum(hashtext(number || amount_cents::text)::bigint) FROM invoices")
	}
	before := fp()
	if _, err := Load(ctx, e, s, 1000); err != nil {
		t.Fatal(err)
	}
	if got := count(t, e, "SELECT count(*) FROM invoices"); got != 1000 {
		t.Errorf("reload at scale 1000 left %d invoices", got)
	}
	if _, err := Load(ctx, e, s, 3000); err != nil {
		t.Fatal(err)
	}
	if after := fp(); after != before {
		t.Errorf("same seed and scale gave different invoices")
	}

	// A plain gzipped dump, run by psql inside the service.
	dump, err := Find("dump", filepath.Join("testdata", "pg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, e, dump, 0); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e, "SELECT count(*) FROM feature_flags WHERE name LIKE 'from_dump_%'"); n != 2 {
		t.Errorf("dump loaded %d flags, want 2", n)
	}
}

// A dump or schema the dataset names is read through its own directory:
// `..` and links that lead outside are refused, and nothing of the outside
// file reaches the error.
func TestDatasetFilesStayInside(t *testing.T) {
	host, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"file-outside", "link-outside"} {
		_, err := Find(filepath.Join("testdata", name))
		if err == nil {
			t.Errorf("%s: a file outside the dataset was accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), "escapes") {
			t.Errorf("%s: %v, want a refusal for escaping the dataset's directory", name, err)
		}
		if h := strings.TrimSpace(string(host)); h != "" && strings.Contains(err.Error(), h) {
			t.Errorf("%s: the error shows the outside file's content: %v", name, err)
		}
	}
}

func TestLoadOptionErrors(t *testing.T) {
	if _, err := Load(context.Background(), nil, &Spec{Name: "d"}, 1, WithBatchSize(0)); err == nil || !strings.Contains(err.Error(), "batch size 0") {
		t.Errorf("WithBatchSize(0): %v, want a batch size error", err)
	}
}

// A dump that is a fifo is refused when the dataset is read, instead of
// hanging the load on a read nobody answers.
func TestDatasetFifoRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dataset.yaml"), []byte("service: db\nfiles: [dump.sql]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "dump.sql"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Find(dir)
	if err == nil || !strings.Contains(err.Error(), "dump.sql: not a regular file") {
		t.Errorf("a fifo dump: %v, want it refused as not a regular file", err)
	}
}

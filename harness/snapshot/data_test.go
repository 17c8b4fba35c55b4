package snapshot

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/internal/envtest"
)

const billingCompose = "../../fixtures/billing/compose.yaml"

// dataScale is the invoices the correctness tests seed: enough rows that
// one change among them is a needle (60,000 invoice lines), small enough
// to seed in seconds.
const dataScale = 20_000

// startBilling brings the bundled world up and seeds it.
func startBilling(t testing.TB, scale int64) *env.Environment {
	t.Helper()
	e := envtest.Start(t, billingCompose)
	spec, err := dataset.Find("billing", "../../fixtures/billing")
	if err != nil {
		t.Fatal(err)
	}
	res, err := dataset.Load(context.Background(), e, spec, scale)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows["invoices"] != scale {
		t.Fatalf("seeded %d invoices, want %d", res.Rows["invoices"], scale)
	}
	return e
}

func execSQL(t testing.TB, e *env.Environment, sql string) {
	t.Helper()
	execIn(t, e, "", sql)
}

// execIn runs statements, in order, in one database (the service's default
// for "") of the bundled world's db service.
func execIn(t testing.TB, e *env.Environment, db string, qs ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := dataset.Connect(ctx, e, "db", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range qs {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func queryInt(t testing.TB, e *env.Environment, sql string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := dataset.Connect(ctx, e, "db", "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// lockWatch records the lock modes that fingerprint sessions hold on
// relations outside their private schemas, polling pg_locks.
type lockWatch struct {
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	modes map[string]int // "relation mode" -> times seen
}

func watchLocks(t *testing.T, e *env.Environment) *lockWatch {
	ctx := context.Background()
	conn, err := dataset.Connect(ctx, e, "db", "")
	if err != nil {
		t.Fatal(err)
	}
	w := &lockWatch{stop: make(chan struct{}), done: make(chan struct{}), modes: map[string]int{}}
	go func() {
		defer close(w.done)
		defer conn.Close(ctx)
		for {
			rows, err := conn.Query(ctx, `
SELECT c.relname::text || ' ' || l.mode
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.application_name = 'rehearse snapshot' AND n.nspname NOT LIKE 'rehearse\_fp\_%' AND n.nspname <> 'pg_catalog'`)
			if err == nil {
				for rows.Next() {
					var s string
					if rows.Scan(&s) == nil {
						w.mu.Lock()
						w.modes[s]++
						w.mu.Unlock()
					}
				}
				rows.Close()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *lockWatch) finish() map[string]int {
	close(w.stop)
	<-w.done
	return w.modes
}

// TestDataFingerprint is the ground truth of the data fingerprint on the
// bundled world: an untouched database diffs empty, twice, while
// invoicing queries it; each kind of change is found and named; the
// fingerprint holds no lock stronger than ACCESS SHARE on a user table and
// leaves nothing behind once forgotten.
func TestDataFingerprint(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the bundled world")
	}
	e := startBilling(t, dataScale)
	ctx := context.Background()
	// Beyond the bundled schema: a table without a primary key, one with
	// a two-column key and a column named t (a row's alias in the
	// fingerprint's own SQL), and a check constraint to change.
	execSQL(t, e, `
CREATE TABLE audit_log (msg text);
INSERT INTO audit_log VALUES ('a'), ('b'), ('b');
CREATE TABLE tags (invoice_id bigint, t text, weight int, PRIMARY KEY (invoice_id, t));
INSERT INTO tags SELECT i, 'tag' || (i % 3), i FROM generate_series(1, 1000) i;
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_check CHECK (amount_cents >= 0);`)

	locks := watchLocks(t, e)
	before, err := Data(ctx, e, "db")
	modes := locks.finish()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fingerprint of %d tables in %s; locks seen: %v", len(before.Tables), before.Duration.Round(time.Millisecond), modes)
	for m := range modes {
		if !strings.HasSuffix(m, " AccessShareLock") {
			t.Errorf("the fingerprint held %s", m)
		}
	}
	if before.KeySchema == "" {
		t.Fatal("no private schema for the keys")
	}
	names := map[string]DataTable{}
	for _, tb := range before.Tables {
		names[dataName(tb.Schema, tb.Name)] = tb
	}
	if got := names["invoices"]; got.Rows != dataScale || !slices.Equal(got.Key, []string{"id"}) || got.KeyTable == "" {
		t.Errorf("invoices: %d rows, key %v, key table %q", got.Rows, got.Key, got.KeyTable)
	}
	if got := names["audit_log"]; got.Rows != 3 || got.Key != nil || got.KeyTable != "" {
		t.Errorf("audit_log: %d rows, key %v, key table %q", got.Rows, got.Key, got.KeyTable)
	}
	if len(names) != 6 {
		t.Errorf("fingerprinted %d tables, want the 6 of the world: %v", len(names), before.Tables)
	}

	t.Run("untouched", func(t *testing.T) {
		// invoicing answers throughout, and queries invoices all along.
		addr, err := e.Service("invoicing").Endpoint("8081")
		if err != nil {
			t.Fatal(err)
		}
		var served, failed atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, path := range []string{"/health", "/invoices/summary"} {
					resp, err := c.Get("http://" + addr + path)
					if err != nil || resp.StatusCode != 200 {
						failed.Add(1)
					} else {
						served.Add(1)
					}
					if resp != nil {
						resp.Body.Close()
					}
				}
			}
		}()
		for i := range 2 {
			d, err := DiffData(ctx, e, "db", before)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Empty() {
				t.Errorf("diff %d of an untouched database:\n%s", i+1, d)
			}
		}
		// A second print, taken while the first's hashes are in the
		// database, does not fingerprint them.
		again, err := Data(ctx, e, "db", DataSeedOf(before))
		if err != nil {
			t.Fatal(err)
		}
		if d := before.Diff(again); !d.Empty() {
			t.Errorf("a second print differs from the first:\n%s", d)
		}
		if err := again.Forget(ctx); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		if served.Load() == 0 || failed.Load() != 0 {
			t.Errorf("invoicing answered %d requests and failed %d during the diffs", served.Load(), failed.Load())
		}
	})

	t.Run("changes", func(t *testing.T) {
		execSQL(t, e, `
UPDATE invoices SET amount_cents = amount_cents + 1 WHERE id = 777;
DELETE FROM invoice_lines WHERE id = 4242;
INSERT INTO customers (id, name, email, country) VALUES (999999, 'New', 'new@example.com', 'DE');
ALTER TABLE customers ALTER COLUMN created_at DROP DEFAULT;
DROP INDEX invoice_lines_invoice_id;
ALTER TABLE invoices DROP CONSTRAINT invoices_amount_check, ADD CONSTRAINT invoices_amount_check CHECK (amount_cents > 0) NOT VALID;
UPDATE tags SET weight = -1 WHERE invoice_id = 5;
INSERT INTO audit_log VALUES ('c');
SELECT nextval('invoices_id_seq');`)
		d, err := DiffData(ctx, e, "db", before)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`audit_log: rows: 3 -> 4 (no primary key: rows not named)
customers: rows: 1 added (id=999999)
customers: column created_at: default now() -> none
invoice_lines: rows: 1 deleted (id=4242)
invoice_lines: index invoice_lines_invoice_id dropped
invoices: rows: 1 changed (id=777)
invoices: constraint invoices_amount_check: CHECK ((amount_cents >= 0)) -> CHECK ((amount_cents > 0)) NOT VALID
tags: rows: 1 changed ((invoice_id,t)=(5,tag2))
invoices_id_seq: sequence: next value %d -> %d
`, dataScale+1, dataScale+2)
		if d.String() != want {
			t.Errorf("diff:\n%s\nwant:\n%s", d, want)
		}
		// Without the database, the same tables differ, unnamed.
		now, err := Data(ctx, e, "db", DataWithoutKeys(), DataSeedOf(before))
		if err != nil {
			t.Fatal(err)
		}
		if now.KeySchema != "" {
			t.Errorf("a print without keys has the private schema %s", now.KeySchema)
		}
		var rowLines []string
		for _, f := range before.Diff(now).Findings {
			if f.Kind == "rows" {
				rowLines = append(rowLines, f.String())
			}
		}
		wantRows := []string{
			"audit_log: rows: 3 -> 4 (no primary key: rows not named)",
			"customers: rows: 2000 -> 2001 (compared without the database: rows not named)",
			"invoice_lines: rows: " + fmt.Sprint(names["invoice_lines"].Rows) + " -> " + fmt.Sprint(names["invoice_lines"].Rows-1) + " (compared without the database: rows not named)",
			"invoices: rows: 20000, contents differ (compared without the database: rows not named)",
			"tags: rows: 1000, contents differ (compared without the database: rows not named)",
		}
		if !slices.Equal(rowLines, wantRows) {
			t.Errorf("rows compared without the database:\n%s\nwant:\n%s", strings.Join(rowLines, "\n"), strings.Join(wantRows, "\n"))
		}
	})

	t.Run("forget", func(t *testing.T) {
		if err := before.Forget(ctx); err != nil {
			t.Fatal(err)
		}
		if n := queryInt(t, e, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rehearse\_fp\_%'`); n != 0 {
			t.Errorf("%d private schemas left after Forget", n)
		}
		// The print still compares, by count and checksum.
		d, err := DiffData(ctx, e, "db", before)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(d.String(), "invoices: rows: 20000, contents differ (no keys kept: rows not named)") {
			t.Errorf("diff after Forget:\n%s", d)
		}
		// ForgetData drops what a process left behind.
		left, err := Data(ctx, e, "db")
		if err != nil {
			t.Fatal(err)
		}
		if n := queryInt(t, e, `SELECT count(*) FROM pg_namespace WHERE nspname = '`+left.KeySchema+`'`); n != 1 {
			t.Fatalf("private schema %s not there", left.KeySchema)
		}
		if err := ForgetData(ctx, e, "db", ""); err != nil {
			t.Fatal(err)
		}
		if n := queryInt(t, e, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rehearse\_fp\_%'`); n != 0 {
			t.Errorf("%d private schemas left after ForgetData", n)
		}
		// No session of a fingerprint stays, nor its locks.
		enginetest.Eventually(t, 10*time.Second, 100*time.Millisecond, func() string {
			if n := queryInt(t, e, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = 'rehearse snapshot'`); n != 0 {
				return fmt.Sprintf("fingerprint sessions still hold %d locks", n)
			}
			if n := queryInt(t, e, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rehearse snapshot'`); n != 0 {
				return fmt.Sprintf("%d fingerprint sessions still open", n)
			}
			return ""
		})
	})

	t.Run("errors", func(t *testing.T) {
		_, err := Data(ctx, e, "nope")
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("Data of a service that is not running: %v", err)
		}
		_, err = Data(ctx, e, "db", DataDatabase("missing"))
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "db") || !strings.Contains(err.Error(), "missing") {
			t.Errorf("Data of a missing database: %v", err)
		}
		if n := queryInt(t, e, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rehearse\_fp\_%'`); n != 0 {
			t.Errorf("%d private schemas left after failed prints", n)
		}
	})
}

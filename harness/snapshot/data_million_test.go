package snapshot

import (
	"context"
	"slices"
	"testing"
	"time"
)

// millionScale is the invoices TestDataMillionRows seeds: the bundled world
// around the table it adds, seeded in seconds.
const millionScale = 1_000

// TestDataMillionRows is issue 9's needle in a haystack: in a table of
// 1,000,000 rows (made by generate_series, in seconds, beside the bundled
// world), one changed row, one deleted, one added, a changed column
// default and a dropped index are each found and named by DiffData, and
// the untouched table diffs empty twice in a row first. (One changed byte
// of a config file: TestConfigFingerprint, "one byte of a config file".)
func TestDataMillionRows(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the bundled world")
	}
	e := startBilling(t, millionScale)
	ctx := context.Background()
	execSQL(t, e, `
CREATE TABLE million (id bigint PRIMARY KEY, v integer NOT NULL DEFAULT 7, note text);
INSERT INTO million (id, v, note) SELECT i, i % 1000, 'row ' || i FROM generate_series(1, 1000000) i;
CREATE INDEX million_v ON million (v);
ANALYZE million;`)

	before, err := Data(ctx, e, "db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { before.Forget(context.Background()) })
	var million *DataTable
	for i := range before.Tables {
		if tb := &before.Tables[i]; tb.Schema == "public" && tb.Name == "million" {
			million = tb
		}
	}
	if million == nil || million.Rows != 1_000_000 || !slices.Equal(million.Key, []string{"id"}) || million.KeyTable == "" {
		t.Fatalf("the print's million table: %+v", million)
	}
	t.Logf("fingerprint of %d tables (million: 1,000,000 rows) in %s", len(before.Tables), before.Duration.Round(time.Millisecond))

	for i := range 2 {
		start := time.Now()
		d, err := DiffData(ctx, e, "db", before)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("untouched diff %d in %s", i+1, time.Since(start).Round(time.Millisecond))
		if !d.Empty() {
			t.Errorf("diff %d of the untouched database:\n%s", i+1, d)
		}
	}

	// One of each change, the rows far apart in the table.
	execSQL(t, e, `
UPDATE million SET note = 'changed' WHERE id = 500000;
DELETE FROM million WHERE id = 999999;
INSERT INTO million (id, v, note) VALUES (1000001, 1, 'added');
ALTER TABLE million ALTER COLUMN v SET DEFAULT 8;
DROP INDEX million_v;`)
	start := time.Now()
	d, err := DiffData(ctx, e, "db", before)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("diff after the changes in %s:\n%s", time.Since(start).Round(time.Millisecond), d)
	want := `million: rows: 1 changed (id=500000), 1 added (id=1000001), 1 deleted (id=999999)
million: column v: default 7 -> 8
million: index million_v dropped
`
	if d.String() != want {
		t.Errorf("diff:\n%s\nwant:\n%s", d, want)
	}
	// The same, by field: what a report reads.
	var rows *DataRowChange
	kinds := map[string]string{}
	for _, f := range d.Findings {
		if f.Object != "million" {
			t.Errorf("a finding on %s: %s", f.Object, f)
			continue
		}
		kinds[f.Kind] = f.Name
		if f.Kind == "rows" {
			rows = f.Rows
		}
	}
	if rows == nil || !rows.Named || rows.Before != 1_000_000 || rows.After != 1_000_000 ||
		!slices.Equal(rows.ChangedKeys, []string{"id=500000"}) ||
		!slices.Equal(rows.DeletedKeys, []string{"id=999999"}) ||
		!slices.Equal(rows.AddedKeys, []string{"id=1000001"}) {
		t.Errorf("row change: %+v", rows)
	}
	if kinds["column"] != "v" || kinds["index"] != "million_v" {
		t.Errorf("the column and index findings name %q and %q", kinds["column"], kinds["index"])
	}
}

package snapshot

import (
	"strings"
	"testing"
)

func dataFixture() *DataPrint {
	last := int64(100)
	return &DataPrint{
		Tables: []DataTable{
			{Schema: "billing", Name: "events", Rows: 5, Checksum: "9", Columns: []DataColumn{{Name: "msg", Type: "text"}}},
			{Schema: "public", Name: "invoices", Rows: 100, Checksum: "12345", Key: []string{"id"}, KeyTypes: []string{"bigint"},
				Columns: []DataColumn{
					{Name: "id", Type: "bigint", NotNull: true, Identity: "d"},
					{Name: "total_cents", Type: "bigint", NotNull: true, Default: "0"},
					{Name: "status", Type: "text"},
				},
				Indexes: map[string]string{
					"invoices_pkey":       "CREATE UNIQUE INDEX invoices_pkey ON public.invoices USING btree (id)",
					"invoices_status_idx": "CREATE INDEX invoices_status_idx ON public.invoices USING btree (status)",
				},
				Constraints: map[string]string{"invoices_pkey": "PRIMARY KEY (id)"},
			},
		},
		Sequences: []DataSequence{{Schema: "public", Name: "invoices_id_seq", Type: "bigint", Start: 1, Increment: 1, Min: 1, Max: 1 << 62, LastValue: &last, Called: true}},
	}
}

func TestDataDiffFormatting(t *testing.T) {
	before, after := dataFixture(), dataFixture()
	if d := before.Diff(after); !d.Empty() || d.String() != "" {
		t.Fatalf("equal prints differ:\n%s", d)
	}

	inv := &after.Tables[1]
	inv.Columns[1].Default = ""     // default dropped
	inv.Columns[2].NotNull = true   // made not null
	inv.Columns[0].Type = "integer" // type changed
	inv.Columns = append(inv.Columns, DataColumn{Name: "due", Type: "date", NotNull: true, Default: "CURRENT_DATE"})
	delete(inv.Indexes, "invoices_status_idx") // index dropped
	inv.Constraints["invoices_total_check"] = "CHECK ((total_cents >= 0))"
	inv.Checksum = "999"
	after.Tables[0].Columns = nil // events: column dropped
	after.Tables = append(after.Tables, DataTable{Schema: "public", Name: "refunds", Rows: 3})
	v := int64(101)
	after.Sequences[0].LastValue = &v

	rows := map[[2]string]*DataRowChange{
		{"public", "invoices"}: {Before: 100, After: 100, Named: true, Changed: 7, ChangedKeys: []string{"id=1", "id=2"}, Added: 1, AddedKeys: []string{"id=101"}},
	}
	got := diffData(before, after, rows).String()
	want := `billing.events: column msg dropped
invoices: rows: 7 changed (id=1, id=2, …), 1 added (id=101)
invoices: column id: type bigint -> integer
invoices: column total_cents: default 0 -> none
invoices: column status: nullable -> not null
invoices: column due added (date not null default CURRENT_DATE)
invoices: index invoices_status_idx dropped
invoices: constraint invoices_total_check added: CHECK ((total_cents >= 0))
refunds: table added (3 rows)
invoices_id_seq: sequence: next value 101 -> 102
`
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}

	// The findings carry what they are about.
	d := diffData(before, after, rows)
	var kinds []string
	for _, f := range d.Findings {
		kinds = append(kinds, f.Kind+":"+f.Name)
	}
	if k := strings.Join(kinds, " "); k != "column:msg rows: column:id column:total_cents column:status column:due index:invoices_status_idx constraint:invoices_total_check table: sequence:" {
		t.Errorf("kinds: %s", k)
	}
	if d.Findings[1].Rows == nil || d.Findings[1].Rows.Changed != 7 {
		t.Errorf("rows finding: %+v", d.Findings[1])
	}
}

func TestDataRowChangeString(t *testing.T) {
	for _, c := range []struct {
		r    DataRowChange
		want string
	}{
		{DataRowChange{Before: 10, After: 11, Named: true, Added: 1, AddedKeys: []string{"id=11"}}, "rows: 1 added (id=11)"},
		{DataRowChange{Before: 10, After: 9, Named: true, Deleted: 1, DeletedKeys: []string{"(a,b)=(1,x)"}}, "rows: 1 deleted ((a,b)=(1,x))"},
		{DataRowChange{Before: 10, After: 10, Named: true, Changed: 3}, "rows: 3 changed"},
		{DataRowChange{Before: 10, After: 12, Unnamed: "no primary key"}, "rows: 10 -> 12 (no primary key: rows not named)"},
		{DataRowChange{Before: 10, After: 10, Unnamed: "no keys kept"}, "rows: 10, contents differ (no keys kept: rows not named)"},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
}

func TestDataRemovedTableAndSequence(t *testing.T) {
	before, after := dataFixture(), dataFixture()
	after.Tables = after.Tables[1:]
	after.Sequences = nil
	want := "billing.events: table dropped (had 5 rows)\ninvoices_id_seq: sequence dropped\n"
	if got := before.Diff(after).String(); got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	// Without the database, a changed keyed table is named by counts only.
	after = dataFixture()
	after.Tables[1].Rows = 101
	if got := before.Diff(after).String(); got != "invoices: rows: 100 -> 101 (compared without the database: rows not named)\n" {
		t.Errorf("diff: %s", got)
	}
}

// TestDataSettingsFixLiteralParsing: a database cannot choose how the
// fingerprint's sessions parse a string literal, and a snapshot id that is
// not the server's never goes into a statement.
func TestDataSettingsFixLiteralParsing(t *testing.T) {
	for k, v := range map[string]string{"standard_conforming_strings": "on", "client_encoding": "UTF8", "backslash_quote": "safe_encoding"} {
		if dataSettings[k] != v {
			t.Errorf("dataSettings[%s] = %q, want %q", k, dataSettings[k], v)
		}
	}
	for id, ok := range map[string]bool{"00000003-0000001B-1": true, "00000003-0000001B": true, "": false, "1' ; DROP TABLE x; --": false, "0000\\'-1": false} {
		if dataSnapshotID.MatchString(id) != ok {
			t.Errorf("snapshot id %q accepted: %v", id, !ok)
		}
	}
}

// TestDataDiffSeeds: checksums of prints with different seeds are not
// compared (they always differ), counts are.
func TestDataDiffSeeds(t *testing.T) {
	before, after := dataFixture(), dataFixture()
	before.Seed, after.Seed = 1, 2
	after.Tables[1].Checksum = "other"
	if d := before.Diff(after); !d.Empty() {
		t.Errorf("prints of different seeds differ by checksum:\n%s", d)
	}
	after.Tables[1].Rows = 101
	if got := before.Diff(after).String(); got != "invoices: rows: 100 -> 101 (compared without the database: rows not named)\n" {
		t.Errorf("diff: %s", got)
	}
	after.Seed = 1
	after.Tables[1].Rows = 100
	if got := before.Diff(after).String(); got != "invoices: rows: 100, contents differ (compared without the database: rows not named)\n" {
		t.Errorf("diff under one seed: %s", got)
	}
	if dataRandomSeed() == dataRandomSeed() {
		t.Error("two seeds alike")
	}
}

// TestDataExcluded: what a print leaves out is the key tables this
// process kept for that database, and the earlier print's; never nil (a
// nil array would be NULL in the catalog query, and leave out everything).
func TestDataExcluded(t *testing.T) {
	k := dataKeptKey{"run-excluded", "db", "billing"}
	if got := dataExcluded(k, nil); got == nil || len(got) != 0 {
		t.Errorf("nothing kept: %#v", got)
	}
	dataKeep(k, 42)
	dataKeep(dataKeptKey{"run-excluded", "db", "other"}, 7)
	before := &DataPrint{Tables: []DataTable{{KeyOID: 43}, {}, {KeyOID: 42}}}
	if got := dataExcluded(k, before); len(got) != 2 || got[0] != 42 || got[1] != 43 {
		t.Errorf("excluded: %v", got)
	}
}

// TestDataSequenceNextValue: the state a diff compares is what the next
// nextval gives, is_called included: setval(s, 5000, false) on an
// untouched sequence (both is_called false, pg_sequences' last_value NULL
// for both) is a change.
func TestDataSequenceNextValue(t *testing.T) {
	v := func(n int64) *int64 { return &n }
	seq := DataSequence{Schema: "public", Name: "s", Type: "bigint", Start: 1, Increment: 1, Min: 1, Max: 10}
	for _, tc := range []struct {
		name   string
		last   *int64
		called bool
		cycle  bool
		inc    int64
		want   string
	}{
		{"untouched", v(1), false, false, 1, "1"},
		{"setval false", v(5000), false, false, 1, "5000"},
		{"called", v(5), true, false, 1, "6"},
		{"exhausted", v(10), true, false, 1, "none"},
		{"cycles", v(10), true, true, 1, "1"},
		{"descending cycles", v(1), true, true, -1, "10"},
		{"no privilege", nil, false, false, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := seq
			s.LastValue, s.Called, s.Cycle, s.Increment = tc.last, tc.called, tc.cycle, tc.inc
			if got := s.NextValue(); got != tc.want {
				t.Errorf("NextValue = %q, want %q", got, tc.want)
			}
		})
	}

	before := &DataPrint{Sequences: []DataSequence{seq}}
	before.Sequences[0].LastValue = v(1)
	after := &DataPrint{Sequences: []DataSequence{seq}}
	after.Sequences[0].LastValue = v(5000)
	if got, want := diffData(before, after, nil).String(), "s: sequence: next value 1 -> 5000\n"; got != want {
		t.Errorf("diff after setval(s, 5000, false):\n%s\nwant:\n%s", got, want)
	}
}

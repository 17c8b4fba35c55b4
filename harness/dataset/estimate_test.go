package dataset

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestEstimateRows(t *testing.T) {
	spec, err := Find("billing", "../../fixtures/billing")
	if err != nil {
		t.Fatal(err)
	}
	// feature_flags 6, customers scale/10, invoices scale, invoice_lines
	// 1..5 per invoice (mean 3).
	for scale, want := range map[int64]int64{5000: 6 + 500 + 5000 + 15000, 400_000: 6 + 40_000 + 400_000 + 1_200_000} {
		got, known := spec.EstimateRows(scale)
		if !known || got != want {
			t.Errorf("EstimateRows(%d) = %d, %v; want %d, true", scale, got, known, want)
		}
	}

	dir := t.TempDir()
	file := filepath.Join(dir, FileName)
	if err := os.WriteFile(filepath.Join(dir, "seed.sql"), []byte("SELECT 1;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("service: db\nfiles: [seed.sql]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dump, err := Parse(file, "dump")
	if err != nil {
		t.Fatal(err)
	}
	if n, known := dump.EstimateRows(10); known {
		t.Errorf("a dump's rows are not known before it runs; EstimateRows = %d, true", n)
	}

	for _, scale := range []int64{0, -1, math.MinInt64} {
		if n, known := spec.EstimateRows(scale); known {
			t.Errorf("scale %d: EstimateRows = %d, true; want unknown", scale, n)
		}
	}

	parse := func(t *testing.T, def, schema string) *Spec {
		t.Helper()
		dir := t.TempDir()
		if schema != "" {
			if err := os.WriteFile(filepath.Join(dir, "schema.sql"), []byte(schema), 0o644); err != nil {
				t.Fatal(err)
			}
			def = "schema: schema.sql\n" + def
		}
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte("service: db\n"+def), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Parse(filepath.Join(dir, FileName), "x")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const parents = "tables:\n  - name: a\n    rows: scale\n    columns: {id: seq}\n"
	const lines = "  - name: b\n    per: a 1..5\n    columns: {a_id: parent}\n"
	// Parse refuses a parent outside the dataset; a spec made otherwise
	// (a parent the database holds) has no estimate.
	outside := &Spec{Name: "x", Tables: []TableSpec{{Name: "b", Per: "accounts 1..5"}}}
	if n, known := outside.EstimateRows(10); known {
		t.Errorf("per parent outside the dataset: EstimateRows = %d, true; want unknown", n)
	}
	for _, tc := range []struct {
		name, def, schema string
		scale             int64
		want              int64
		known             bool
	}{
		{"per parent in the dataset", parents + lines, "", 10, 10 + 30, true},
		{"rows overflow", "tables:\n  - name: a\n    rows: scale*4\n    columns: {id: seq}\n", "", math.MaxInt64 / 2, 0, false},
		{"per-parent rows overflow", parents + lines, "", math.MaxInt64 / 2, 0, false},
		{"the sum overflows", parents + "  - name: c\n    rows: scale\n    columns: {id: seq}\n", "", math.MaxInt64/2 + 1, 0, false},
		{"the largest that fits", parents, "", math.MaxInt64, math.MaxInt64, true},
		{"a schema without rows", parents, "CREATE TABLE a (id bigint PRIMARY KEY);\n", 10, 10, true},
		{"a schema with INSERT", parents, "CREATE TABLE a (id bigint PRIMARY KEY);\ninsert into a values (1);\n", 10, 0, false},
		{"a schema with COPY", parents, "CREATE TABLE a (id bigint PRIMARY KEY);\nCOPY a FROM stdin;\n1\n\\.\n", 10, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, known := parse(t, tc.def, tc.schema).EstimateRows(tc.scale)
			if got != tc.want || known != tc.known {
				t.Errorf("EstimateRows(%d) = %d, %v; want %d, %v", tc.scale, got, known, tc.want, tc.known)
			}
		})
	}
}

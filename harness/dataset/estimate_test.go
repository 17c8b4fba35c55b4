package dataset

import (
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
}

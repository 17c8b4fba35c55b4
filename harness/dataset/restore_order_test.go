package dataset_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/snapshot"
	"github.com/rehearse/rehearse/internal/envtest"
)

// Restore order leaves what the old order left: the same rows, columns,
// indexes and constraints (by name, as the catalog prints them, foreign
// keys validated) and sequences, by the data fingerprint of
// harness/snapshot.
func TestRestoreOrderSameAsInPlace(t *testing.T) {
	billing := filepath.Join("..", "..", "fixtures", "billing")
	envtest.EnsureImages(t, filepath.Join(billing, "compose.yaml"), "db")
	e := envtest.Start(t, filepath.Join("testdata", "pg", "compose.yaml"))
	ctx := context.Background()
	s, err := dataset.Find("billing", billing)
	if err != nil {
		t.Fatal(err)
	}
	const scale = 3000
	if _, err := dataset.Load(ctx, e, s, scale, dataset.WithInPlaceForTest()); err != nil {
		t.Fatal(err)
	}
	before, err := snapshot.Data(ctx, e, "db", snapshot.DataWithoutKeys())
	if err != nil {
		t.Fatal(err)
	}
	res, err := dataset.Load(ctx, e, s, scale)
	if err != nil {
		t.Fatal(err)
	}
	if res.InPlace != "" {
		t.Fatalf("loaded in place: %s", res.InPlace)
	}
	after, err := snapshot.Data(ctx, e, "db", snapshot.DataWithoutKeys(), snapshot.DataSeedOf(before))
	if err != nil {
		t.Fatal(err)
	}
	if d := before.Diff(after); !d.Empty() {
		t.Errorf("restore order differs from the old order:\n%s", d)
	}
	var indexes, constraints int
	for _, tb := range after.Tables {
		indexes += len(tb.Indexes)
		constraints += len(tb.Constraints)
		if tb.Rows == 0 {
			t.Errorf("%s is empty", tb.Name)
		}
	}
	// 4 primary keys and 2 more indexes; 4 primary keys, 2 foreign keys and
	// the NOT NULLs' none (pg_constraint has no NOT NULL rows in 15).
	if indexes != 6 || constraints != 6 {
		t.Errorf("the fingerprint sees %d indexes and %d constraints, want 6 and 6", indexes, constraints)
	}
}

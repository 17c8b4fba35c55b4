package snapshot

import (
	"context"
	"testing"

	"github.com/rehearse/rehearse/internal/envtest"
)

// TestDataSequenceState: a sequence's state is read from the sequence
// itself, so setval(s, v, false) on an untouched sequence (pg_sequences
// shows last_value NULL for both) is named in the diff by its next value,
// a quoted name included; a setval that leaves the next value as it was
// is no change.
func TestDataSequenceState(t *testing.T) {
	ctx := context.Background()
	e := envtest.Start(t, billingCompose)
	execSQL(t, e, `CREATE SEQUENCE seq_fresh; CREATE SEQUENCE seq_used; SELECT nextval('seq_used'); CREATE SEQUENCE "Odd ""name""";`)
	before, err := Data(ctx, e, "db", DataWithoutKeys())
	if err != nil {
		t.Fatal(err)
	}
	again, err := Data(ctx, e, "db", DataWithoutKeys(), DataSeedOf(before))
	if err != nil {
		t.Fatal(err)
	}
	if d := before.Diff(again); !d.Empty() {
		t.Fatalf("untouched sequences differ:\n%s", d)
	}
	execSQL(t, e, `SELECT setval('seq_fresh', 5000, false); SELECT setval('seq_used', 2, false); SELECT setval('"Odd ""name"""', 7, false);`)
	after, err := Data(ctx, e, "db", DataWithoutKeys(), DataSeedOf(before))
	if err != nil {
		t.Fatal(err)
	}
	want := `Odd "name": sequence: next value 1 -> 7
seq_fresh: sequence: next value 1 -> 5000
`
	if got := before.Diff(after).String(); got != want {
		t.Errorf("diff after setval(..., false):\n%s\nwant:\n%s", got, want)
	}
}

package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/internal/envtest"
)

// seedTestScale is the invoices the cache tests seed.
const seedTestScale = 20_000

// seedTestDataset copies the billing dataset into a directory of the
// test's own, optionally changing its seed; cache volumes are labelled
// with that directory, so the test removes exactly its own entries.
func seedTestDataset(t testing.TB, seed string) *dataset.Spec {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"dataset.yaml", "schema.sql"} {
		b, err := os.ReadFile(filepath.Join("../../fixtures/billing/datasets/billing", f))
		if err != nil {
			t.Fatal(err)
		}
		if seed != "" && f == "dataset.yaml" {
			b = []byte(strings.Replace(string(b), "seed: 2026", "seed: "+seed, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := dataset.Find(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seedTestCleanup(t, spec) })
	return spec
}

// seedTestCleanup removes the cache volumes made for a test's dataset.
func seedTestCleanup(t testing.TB, spec *dataset.Spec) {
	t.Helper()
	cli := enginetest.Connect(t)
	dir, _ := filepath.Abs(spec.Dir)
	_, inUse, err := env.RemoveCacheVolumes(context.Background(), cli, seedKind, map[string]string{"dataset.dir": dir})
	if err != nil || len(inUse) > 0 {
		t.Errorf("remove the test's cache volumes: %v (in use: %v)", err, inUse)
	}
}

func seedTestVolumes(t *testing.T, e *env.Environment, spec *dataset.Spec) []env.CacheVolume {
	t.Helper()
	dir, _ := filepath.Abs(spec.Dir)
	vs, err := e.CacheVolumes(context.Background(), seedKind, map[string]string{"dataset.dir": dir})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func seedLog(t *testing.T, what string, r SeedResult) {
	t.Helper()
	var ph []string
	for _, p := range r.Phases {
		ph = append(ph, p.Name+" "+p.Duration.Round(time.Millisecond).String())
	}
	t.Logf("%s: cache %s key %s in %s (load %s) %s; reason %q; phases: %s", what, r.Cache, r.Key, r.Duration.Round(time.Millisecond),
		r.Load.Round(time.Millisecond), r.Volume, r.Reason, strings.Join(ph, ", "))
}

// TestSeedCache stores a seeded state from one environment and restores it
// into another: the second's data fingerprint equals the first's; checks
// that the key follows the dataset, the scale and the database's state
// before the load; that a damaged entry and an incomplete one are passed
// over (the damaged removed) and the load runs; that fresh does not
// restore and replaces the entries of its key; and that removing the cache
// volumes removes them.
func TestSeedCache(t *testing.T) {
	ctx := context.Background()
	salt := runs.NewID() // this test's keys are its own
	var e1, e2 *env.Environment
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e1 = envtest.Start(t, billingCompose) }()
	go func() { defer wg.Done(); e2 = envtest.Start(t, billingCompose) }()
	wg.Wait()
	if e1 == nil || e2 == nil {
		t.FailNow()
	}
	spec := seedTestDataset(t, "")
	opts := []SeedOption{WithSeedKeySalt(salt), WithSeedMinLoad(0)}

	// e1 at its starting point, to come back to between cases.
	pristine, err := Take(ctx, e1, "pristine")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pristine.Drop(context.Background()) })
	backToPristine := func(t *testing.T) {
		t.Helper()
		if err := pristine.Restore(ctx); err != nil {
			t.Fatal(err)
		}
	}

	r1, err := Seed(ctx, e1, spec, seedTestScale, opts...)
	seedLog(t, "first", r1)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Cache != SeedStored || r1.Rows["invoices"] != seedTestScale || len(r1.Key) != seedShortKey {
		t.Fatalf("first seed: cache %s, %d invoices, key %q; want stored, %d, a key", r1.Cache, r1.Rows["invoices"], r1.Key, seedTestScale)
	}
	vols := seedTestVolumes(t, e1, spec)
	if len(vols) != 1 || vols[0].Name != r1.Volume {
		t.Fatalf("cache volumes after the store: %v, want just %s", vols, r1.Volume)
	}
	if l := vols[0].Labels; l[runs.LabelRun] != "" || l[env.LabelCachePrefix+"scale"] != "20000" || l[env.LabelCachePrefix+"service"] != "db" || l[runs.LabelOwner] == "" {
		t.Errorf("the cache volume's labels: %v, want no run, scale 20000, service db, an owner", l)
	}
	p1, err := Data(ctx, e1, "db", DataWithoutKeys())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the key follows the dataset, the scale and the state before the load", func(t *testing.T) {
		key := func(t *testing.T, s *dataset.Spec, scale int64) string {
			t.Helper()
			in, err := seedKey(ctx, e2, s, scale, salt)
			if err != nil {
				t.Fatal(err)
			}
			return in.key
		}
		t0 := time.Now()
		base := key(t, spec, seedTestScale)
		t.Logf("key (with the state before the load) of a fresh world: %s", time.Since(t0).Round(time.Millisecond))
		if base[:seedShortKey] != r1.Key {
			t.Fatalf("a fresh world's key %s, want the stored one %s", base[:seedShortKey], r1.Key)
		}
		if k := key(t, seedTestDataset(t, "2027"), seedTestScale); k == base {
			t.Error("another seed gives the same key")
		}
		if k := key(t, spec, seedTestScale+1); k == base {
			t.Error("another scale gives the same key")
		}
		conn, err := dataset.Connect(ctx, e2, "db", "")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, q := range []string{`CREATE TABLE before_load (id int)`, `CREATE ROLE before_load`} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
			if k := key(t, spec, seedTestScale); k == base {
				t.Errorf("after %s the key is the same", q)
			}
			drop := strings.Replace(q, "CREATE", "DROP", 1)
			drop = strings.TrimSuffix(drop, " (id int)")
			if _, err := conn.Exec(ctx, drop); err != nil {
				t.Fatal(err)
			}
		}
		if k := key(t, spec, seedTestScale); k != base {
			t.Error("the key did not come back with the state it was made of")
		}
	})

	t.Run("another environment restores the stored state", func(t *testing.T) {
		r2, err := Seed(ctx, e2, spec, seedTestScale, opts...)
		seedLog(t, "second", r2)
		if err != nil {
			t.Fatal(err)
		}
		if r2.Cache != SeedHit || r2.Volume != r1.Volume || r2.Key != r1.Key {
			t.Fatalf("second seed: cache %s from %q key %s, want a hit from %s key %s", r2.Cache, r2.Volume, r2.Key, r1.Volume, r1.Key)
		}
		for table, n := range r1.Rows {
			if r2.Rows[table] != n {
				t.Errorf("%s: %d rows on the hit, %d loaded", table, r2.Rows[table], n)
			}
			got, err := dataset.RowCount(ctx, e2, "db", table)
			if err != nil || got != n {
				t.Errorf("%s holds %d rows after the restore (%v), want %d", table, got, err, n)
			}
		}
		p2, err := Data(ctx, e2, "db", DataWithoutKeys(), DataSeedOf(p1))
		if err != nil {
			t.Fatal(err)
		}
		if d := p1.Diff(p2); !d.Empty() {
			t.Errorf("the restored data differs from the loaded:\n%s", d)
		}
		for _, s := range e2.Services() {
			if st, err := s.State(ctx); err != nil || !st.Healthy() {
				t.Errorf("%s after the restore: %+v %v", s.Name, st, err)
			}
		}
	})

	damage := func(t *testing.T, vol, file string) {
		t.Helper()
		v, err := e1.OpenCacheVolume(ctx, vol, seedKind, vols[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e1.Service("db").Container().RunWithVolumes(ctx, image.DebianBase, []string{"rm", "--", env.HelperSparePath + "/" + file}, restoreCapabilities, v)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("damage the entry: %v, exit %d, %s", err, res.ExitCode, res.Stderr)
		}
	}

	t.Run("a damaged entry is removed and the load runs", func(t *testing.T) {
		backToPristine(t)
		damage(t, r1.Volume, "data/global/pg_control")
		r, err := Seed(ctx, e1, spec, seedTestScale, opts...)
		seedLog(t, "damaged", r)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cache != SeedStored || !strings.Contains(r.Reason, "passed over") || !strings.Contains(r.Reason, "pg_control") || !strings.Contains(r.Reason, "(removed)") {
			t.Errorf("seed over a damaged entry: cache %s, reason %q; want stored, the entry named as passed over and removed", r.Cache, r.Reason)
		}
		vs := seedTestVolumes(t, e1, spec)
		if len(vs) != 1 || vs[0].Name != r.Volume {
			t.Errorf("cache volumes: %v, want just the new %s", vs, r.Volume)
		}
		if p, err := Data(ctx, e1, "db", DataWithoutKeys(), DataSeedOf(p1)); err != nil || !p1.Diff(p).Empty() {
			t.Errorf("after the fresh load the data differs (%v): %s", err, p1.Diff(p))
		}
		r1 = r
	})

	t.Run("an incomplete entry is passed over and kept while its maker lives", func(t *testing.T) {
		backToPristine(t)
		damage(t, r1.Volume, "manifest")
		r, err := Seed(ctx, e1, spec, seedTestScale, opts...)
		seedLog(t, "incomplete", r)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cache != SeedStored || !strings.Contains(r.Reason, "no manifest") || strings.Contains(r.Reason, "(removed)") {
			t.Errorf("seed over an incomplete entry: cache %s, reason %q; want stored, the entry passed over for its manifest, not removed", r.Cache, r.Reason)
		}
		if vs := seedTestVolumes(t, e1, spec); len(vs) != 2 {
			t.Errorf("cache volumes: %v, want the incomplete one and the new one", vs)
		}
		backToPristine(t)
		r2, err := Seed(ctx, e1, spec, seedTestScale, opts...)
		seedLog(t, "after incomplete", r2)
		if err != nil {
			t.Fatal(err)
		}
		if r2.Cache != SeedHit || r2.Volume != r.Volume {
			t.Errorf("next seed: cache %s from %s, want a hit from %s past the incomplete one", r2.Cache, r2.Volume, r.Volume)
		}
		r1 = r
	})

	t.Run("fresh loads and replaces the key's entries", func(t *testing.T) {
		backToPristine(t)
		r, err := Seed(ctx, e1, spec, seedTestScale, append(opts, WithSeedFresh(true))...)
		seedLog(t, "fresh", r)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cache != SeedStored || r.Load == 0 || !strings.Contains(r.Reason, "fresh") {
			t.Errorf("fresh seed: cache %s, load %s, reason %q; want stored after a load", r.Cache, r.Load, r.Reason)
		}
		if vs := seedTestVolumes(t, e1, spec); len(vs) != 1 || vs[0].Name != r.Volume {
			t.Errorf("cache volumes after fresh: %v, want only %s", vs, r.Volume)
		}
	})

	t.Run("not worth it below the minimum load time", func(t *testing.T) {
		backToPristine(t)
		r, err := Seed(ctx, e1, spec, seedTestScale, WithSeedKeySalt(salt+"-min"), WithSeedMinLoad(time.Hour))
		seedLog(t, "min", r)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cache != SeedSkipped || !strings.Contains(r.Reason, "not worth it, load took") {
			t.Errorf("seed below the minimum: cache %s, reason %q; want skipped, not worth it", r.Cache, r.Reason)
		}
	})

	t.Run("removing the cache volumes", func(t *testing.T) {
		dir, _ := filepath.Abs(spec.Dir)
		removed, inUse, err := env.RemoveCacheVolumes(ctx, enginetest.Connect(t), seedKind, map[string]string{"dataset.dir": dir})
		if err != nil || len(removed) == 0 || len(inUse) > 0 {
			t.Errorf("remove: %d removed, in use %v, %v; want at least one removed", len(removed), inUse, err)
		}
		if vs := seedTestVolumes(t, e1, spec); len(vs) != 0 {
			t.Errorf("cache volumes left: %v", vs)
		}
	})
}

package snapshot

import (
	"context"
	"errors"
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
	dir := envtest.CopyDataset(t, "../../fixtures/billing/datasets/billing", "", seed)
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

// fullKey is the key of the test's dataset at seedTestScale in e's state
// now (e at its starting point).
func fullKey(t *testing.T, e *env.Environment, spec *dataset.Spec, salt string) string {
	t.Helper()
	in, err := seedKey(context.Background(), e, spec, seedTestScale, salt)
	if err != nil {
		t.Fatal(err)
	}
	return in.key
}

// r1Inputs is the inputs label of the test's entries.
func r1Inputs(t *testing.T, e *env.Environment, spec *dataset.Spec, salt string) string {
	t.Helper()
	in, err := seedKey(context.Background(), e, spec, seedTestScale, salt)
	if err != nil {
		t.Fatal(err)
	}
	return in.inputs
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

	// What the key of the first version missed: the cluster beyond the
	// loaded database's tables, which a hit swaps all the same. Each case
	// sets up (not compared), changes one thing, and is undone.
	t.Run("the key follows the whole cluster", func(t *testing.T) {
		key := func(t *testing.T) string {
			t.Helper()
			t0 := time.Now()
			in, err := seedKey(ctx, e2, spec, seedTestScale, salt)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("key: %s", time.Since(t0).Round(time.Millisecond))
			return in.key
		}
		base := key(t)
		for _, tc := range []struct {
			name                    string
			db                      string // of the change ("": the loaded one)
			setup, change, teardown []string
		}{
			{name: "another database's rows", db: "seed_other",
				setup:    []string{"CREATE DATABASE seed_other"},
				change:   []string{"CREATE TABLE IF NOT EXISTS ledger (id int)", "INSERT INTO ledger VALUES (1)"},
				teardown: []string{"DROP DATABASE seed_other"}},
			{name: "a trigger",
				setup:    []string{"CREATE TABLE seed_t (id int)", "CREATE FUNCTION seed_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$"},
				change:   []string{"CREATE TRIGGER seed_tr BEFORE INSERT ON seed_t FOR EACH ROW EXECUTE FUNCTION seed_f()"},
				teardown: []string{"DROP TABLE seed_t", "DROP FUNCTION seed_f()"}},
			{name: "a function's body",
				setup:    []string{"CREATE FUNCTION seed_g() RETURNS int LANGUAGE sql AS 'SELECT 1'"},
				change:   []string{"CREATE OR REPLACE FUNCTION seed_g() RETURNS int LANGUAGE sql AS 'SELECT 2'"},
				teardown: []string{"DROP FUNCTION seed_g()"}},
			{name: "a view's definition",
				setup:    []string{"CREATE VIEW seed_v AS SELECT 1 AS x"},
				change:   []string{"CREATE OR REPLACE VIEW seed_v AS SELECT 2 AS x"},
				teardown: []string{"DROP VIEW seed_v"}},
			{name: "a role's password",
				setup:    []string{"CREATE ROLE seed_r LOGIN PASSWORD 'one'"},
				change:   []string{"ALTER ROLE seed_r PASSWORD 'two'"},
				teardown: []string{"DROP ROLE seed_r"}},
			{name: "a grant",
				setup:    []string{"CREATE ROLE seed_r", "CREATE TABLE seed_t (id int)"},
				change:   []string{"GRANT SELECT ON seed_t TO seed_r"},
				teardown: []string{"DROP TABLE seed_t", "DROP ROLE seed_r"}},
			{name: "a policy",
				setup:    []string{"CREATE TABLE seed_t (id int)"},
				change:   []string{"CREATE POLICY seed_p ON seed_t USING (id > 0)"},
				teardown: []string{"DROP TABLE seed_t"}},
			{name: "a sequence set back (setval false)",
				setup:    []string{"CREATE SEQUENCE seed_s"},
				change:   []string{"SELECT setval('seed_s', 5000, false)"},
				teardown: []string{"DROP SEQUENCE seed_s"}},
			{name: "a large object's contents",
				setup:    []string{"SELECT lo_from_bytea(424242, 'one')"},
				change:   []string{"SELECT lo_put(424242, 0, 'two')"},
				teardown: []string{"SELECT lo_unlink(424242)"}},
			{name: "a large object's owner",
				setup:    []string{"CREATE ROLE seed_r", "SELECT lo_from_bytea(424243, 'one')"},
				change:   []string{"ALTER LARGE OBJECT 424243 OWNER TO seed_r"},
				teardown: []string{"SELECT lo_unlink(424243)", "DROP ROLE seed_r"}},
			{name: "a comment",
				setup:    []string{"CREATE TABLE seed_t (id int)"},
				change:   []string{"COMMENT ON COLUMN seed_t.id IS 'the id'"},
				teardown: []string{"DROP TABLE seed_t"}},
			{name: "a materialized view populated",
				setup:    []string{"CREATE MATERIALIZED VIEW seed_m AS SELECT 1 AS x WITH NO DATA"},
				change:   []string{"REFRESH MATERIALIZED VIEW seed_m"},
				teardown: []string{"DROP MATERIALIZED VIEW seed_m"}},
			{name: "a partition attached",
				setup:    []string{"CREATE TABLE seed_p (id int) PARTITION BY RANGE (id)", "CREATE TABLE seed_p1 (id int)"},
				change:   []string{"ALTER TABLE seed_p ATTACH PARTITION seed_p1 FOR VALUES FROM (0) TO (10)"},
				teardown: []string{"DROP TABLE seed_p"}},
			{name: "a table in a publication",
				setup:    []string{"CREATE TABLE seed_t (id int)", "CREATE PUBLICATION seed_pub"},
				change:   []string{"ALTER PUBLICATION seed_pub ADD TABLE seed_t"},
				teardown: []string{"DROP PUBLICATION seed_pub", "DROP TABLE seed_t"}},
			{name: "a column's collation",
				setup:    []string{"CREATE TABLE seed_t (x text)"},
				change:   []string{`ALTER TABLE seed_t ALTER COLUMN x TYPE text COLLATE "C"`},
				teardown: []string{"DROP TABLE seed_t"}},
			{name: "a user mapping",
				setup:    []string{"CREATE FOREIGN DATA WRAPPER seed_w", "CREATE SERVER seed_srv FOREIGN DATA WRAPPER seed_w"},
				change:   []string{"CREATE USER MAPPING FOR CURRENT_USER SERVER seed_srv OPTIONS (user 'x')"},
				teardown: []string{"DROP SERVER seed_srv CASCADE", "DROP FOREIGN DATA WRAPPER seed_w"}},
			{name: "a pending ALTER SYSTEM",
				change:   []string{"ALTER SYSTEM SET work_mem = '7MB'"},
				teardown: []string{"ALTER SYSTEM RESET work_mem"}},
			{name: "a replication slot",
				change:   []string{"SELECT pg_create_physical_replication_slot('seed_slot')"},
				teardown: []string{"SELECT pg_drop_replication_slot('seed_slot')"}},
			{name: "a subscription",
				change: []string{"CREATE SUBSCRIPTION seed_sub CONNECTION 'dbname=nowhere' PUBLICATION p WITH (connect = false)"},
				teardown: []string{"ALTER SUBSCRIPTION seed_sub DISABLE", "ALTER SUBSCRIPTION seed_sub SET (slot_name = NONE)",
					"DROP SUBSCRIPTION seed_sub"}},
			{name: "a database that refuses connections",
				setup:    []string{"CREATE DATABASE seed_closed", "ALTER DATABASE seed_closed ALLOW_CONNECTIONS false"},
				change:   []string{"ALTER DATABASE seed_closed CONNECTION LIMIT 3"},
				teardown: []string{"DROP DATABASE seed_closed"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				execIn(t, e2, "", tc.setup...)
				before := key(t)
				execIn(t, e2, tc.db, tc.change...)
				if key(t) == before {
					t.Errorf("after %s the key is the same", strings.Join(tc.change, "; "))
				}
				if tc.db != "" {
					// Rows of another database, once more: another key again.
					changed := key(t)
					execIn(t, e2, tc.db, tc.change[len(tc.change)-1])
					if key(t) == changed {
						t.Error("another row in another database left the key as it was")
					}
				}
				execIn(t, e2, "", tc.teardown...)
			})
		}
		if k := key(t); k != base {
			t.Error("the key did not come back with the cluster it was made of")
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
		for _, p := range r.Phases {
			if p.Name == "db: copy back" {
				t.Errorf("the incomplete entry was tried by stopping the database (phases %v): its manifest is read without", r.Phases)
			}
		}
		if vs := seedTestVolumes(t, e1, spec); len(vs) != 2 {
			t.Errorf("cache volumes: %v, want the incomplete one and the new one", vs)
		}
		// More incomplete entries of the key (stores under way) than
		// seedMaxTries: the complete one is still reached.
		backToPristine(t)
		labels := seedGroup(e1, spec, seedTestScale)
		labels["inputs"] = r1Inputs(t, e1, spec, salt)
		for range seedMaxTries {
			if _, err := e1.CreateCacheVolume(ctx, seedKind, fullKey(t, e1, spec, salt), labels); err != nil {
				t.Fatal(err)
			}
		}
		r2, err := Seed(ctx, e1, spec, seedTestScale, opts...)
		seedLog(t, "after incomplete", r2)
		if err != nil {
			t.Fatal(err)
		}
		if r2.Cache != SeedHit || r2.Volume != r.Volume {
			t.Errorf("next seed: cache %s from %s, want a hit from %s past %d incomplete ones", r2.Cache, r2.Volume, r.Volume, seedMaxTries+1)
		}
		r1 = r
	})

	t.Run("an entry removed while a helper mounts it is no entry", func(t *testing.T) {
		backToPristine(t)
		key := fullKey(t, e1, spec, salt)
		labels := seedGroup(e1, spec, seedTestScale)
		v, err := e1.CreateCacheVolume(ctx, seedKind, key, labels)
		if err != nil {
			t.Fatal(err)
		}
		// A restore's helper mounts the entry read-only; a helper whose
		// image is missing never ran, and says so.
		db := e1.Service("db").Container()
		if res, err := db.RunWithVolumes(ctx, restoreHelperImage, []string{"touch", env.HelperSparePath + "/x"}, nil, v.ReadOnly()); err != nil || res.ExitCode == 0 {
			t.Errorf("a write into the read-only entry: %v, exit %d; want it refused", err, res.ExitCode)
		}
		if _, err := db.RunWithVolumes(ctx, "rehearse-test/absent:never", []string{"true"}, nil, v.ReadOnly()); !errors.Is(err, env.ErrHelperNotRun) {
			t.Errorf("a helper of a missing image: %v, want env.ErrHelperNotRun", err)
		}
		if removed, err := e1.RemoveCacheVolume(ctx, v.Name); err != nil || !removed {
			t.Fatalf("remove the entry: %v %v", removed, err)
		}
		if removed, err := e1.RemoveCacheVolume(ctx, v.Name); err != nil || removed {
			t.Errorf("removing it again: removed %v, %v; want nothing removed, no error", removed, err)
		}
		// The helper mounts the name: the engine makes it again, empty.
		m, err := seedRead(ctx, e1.Service("db"), v, key)
		if err != nil || m != nil {
			t.Fatalf("read the removed entry: %v %v, want incomplete", m, err)
		}
		if _, err := e1.OpenCacheVolume(ctx, v.Name, seedKind, key); err == nil {
			t.Fatal("the recreated volume opens as an entry")
		}
		note := seedRecreatedNote(ctx, e1, v.Name)
		if !strings.Contains(note, "was removed") {
			t.Errorf("the recreated volume: %q, want it removed", note)
		}
		if removed, err := e1.RemoveRecreatedCacheVolume(ctx, v.Name); removed || err != nil {
			t.Errorf("the recreated volume is still there to remove: %v %v", removed, err)
		}
		// An entry proper is never taken for a recreated one.
		if removed, err := e1.RemoveRecreatedCacheVolume(ctx, r1.Volume); removed || err != nil {
			t.Errorf("a labelled entry: removed %v, %v; want it kept", removed, err)
		}
		if _, err := e1.OpenCacheVolume(ctx, r1.Volume, seedKind, key); err != nil {
			t.Errorf("the entry after RemoveRecreatedCacheVolume: %v", err)
		}
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

	t.Run("a restored state that does not check fails the step and goes", func(t *testing.T) {
		vs := seedTestVolumes(t, e1, spec)
		if len(vs) != 1 {
			t.Fatalf("cache volumes: %v, want one entry", vs)
		}
		// The invoices the manifest records differ from the copy's: the
		// copy and its copy manifest stay consistent, so the restore swaps
		// it in, and the check after the swap fails (as one changed row in
		// a copy whose copy manifest still matches would).
		v, err := e1.OpenCacheVolume(ctx, vs[0].Name, seedKind, vs[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e1.Service("db").Container().RunWithVolumes(ctx, image.DebianBase, []string{"sh", "-c",
			`sed -i 's/^\(table "[^"]*" "public" "invoices" [0-9]*\) -\{0,1\}[0-9]*$/\1 7/' "$1" && grep -q '"invoices" [0-9]* 7$' "$1"`,
			"sh", seedManifestFile}, restoreCapabilities, v)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("change the recorded fingerprint: %v, exit %d, %s", err, res.ExitCode, res.Stderr)
		}
		backToPristine(t)
		r, err := Seed(ctx, e1, spec, seedTestScale, opts...)
		seedLog(t, "hit-failed", r)
		if err == nil || r.Cache != SeedHitFailed || r.Volume != vs[0].Name {
			t.Fatalf("seed from an entry that does not check: cache %s, volume %s, %v; want hit-failed from %s and an error", r.Cache, r.Volume, err, vs[0].Name)
		}
		for _, want := range []string{"restore of cached state", "after the restore", "invoices", "(removed)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q: want it to say %q", err, want)
			}
		}
		if vs := seedTestVolumes(t, e1, spec); len(vs) != 0 {
			t.Errorf("cache volumes after a hit that failed: %v, want the entry removed", vs)
		}
		// Stored again, for the cases below.
		backToPristine(t)
		if r, err := Seed(ctx, e1, spec, seedTestScale, opts...); err != nil || r.Cache != SeedStored {
			t.Fatalf("store again: %s %v", r.Cache, err)
		}
	})

	t.Run("not worth it below the minimum load time", func(t *testing.T) {
		backToPristine(t)
		r, err := Seed(ctx, e1, spec, seedTestScale, WithSeedKeySalt(salt+"-min"), WithSeedMinLoad(time.Hour))
		seedLog(t, "min", r)
		if err != nil {
			t.Fatal(err)
		}
		// The estimate (about 82,000 rows) says so before any key is made.
		if r.Cache != SeedSkipped || !strings.Contains(r.Reason, "not worth it, about") || r.Key != "" {
			t.Errorf("seed below the minimum: cache %s, key %q, reason %q; want skipped, no key, not worth it", r.Cache, r.Key, r.Reason)
		}
	})

	t.Run("fresh removes the key's entries even when it stores nothing", func(t *testing.T) {
		backToPristine(t)
		if vs := seedTestVolumes(t, e1, spec); len(vs) == 0 {
			t.Fatal("no entry to remove")
		}
		r, err := Seed(ctx, e1, spec, seedTestScale, append(opts, WithSeedFresh(true), WithSeedMinLoad(time.Hour))...)
		seedLog(t, "fresh, not stored", r)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cache != SeedSkipped || !strings.Contains(r.Reason, "removed the key's entries") {
			t.Errorf("fresh seed below the minimum: cache %s, reason %q; want skipped, the key's entries removed", r.Cache, r.Reason)
		}
		if vs := seedTestVolumes(t, e1, spec); len(vs) != 0 {
			t.Errorf("cache volumes after fresh: %v, want none", vs)
		}
		// Stored again, for the removal below.
		backToPristine(t)
		if r, err := Seed(ctx, e1, spec, seedTestScale, opts...); err != nil || r.Cache != SeedStored {
			t.Fatalf("store again: %s %v", r.Cache, err)
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

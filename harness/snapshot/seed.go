package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
)

// SeedCache is what Seed did with the cache of seeded states.
type SeedCache string

// What Seed did with the cache.
const (
	SeedHit     SeedCache = "hit"     // restored from a cached state
	SeedStored  SeedCache = "stored"  // loaded, and the state stored for the next time
	SeedSkipped SeedCache = "skipped" // loaded; nothing stored (Reason says why)
	// SeedHitFailed is a restore from a cached state that failed after it
	// may have changed the live data: Seed's error says how.
	SeedHitFailed SeedCache = "hit-failed"
)

// SeedResult says what Seed did.
type SeedResult struct {
	// Rows are the generated rows per table: the load's, or on a hit those
	// recorded with the cached state (and checked after the restore).
	// Duration is the whole of Seed, key and store included.
	dataset.Result
	Cache SeedCache
	// Reason says why nothing was stored (SeedSkipped), or why a cached
	// state was passed over before a fresh load ("" when none was).
	Reason string
	Key    string        // the key's first 12 hex digits ("" when none was made)
	Volume string        // the cache volume restored from or stored into
	Load   time.Duration // the load's time: this one's, or on a hit the cached state's original
	Phases []RestorePhase
}

// SeedOption configures Seed.
type SeedOption func(*seedOptions) error

type seedOptions struct {
	fresh   bool
	noCache bool
	minLoad time.Duration
	salt    string
	load    []dataset.Option
}

// WithSeedFresh ignores cached states: the entries of the key are removed
// (those not in use), the dataset is loaded from scratch, and the state it
// makes is stored when worth it. Default: false.
func WithSeedFresh(fresh bool) SeedOption {
	return func(o *seedOptions) error { o.fresh = fresh; return nil }
}

// WithoutSeedCache loads without looking up or storing anything. Default:
// the cache is used.
func WithoutSeedCache() SeedOption {
	return func(o *seedOptions) error { o.noCache = true; return nil }
}

// WithSeedMinLoad stores a state only when its load took at least d: below
// it a restore (stop, copy back, start, every service ready) costs as much
// as the load. Default: SeedMinLoad.
func WithSeedMinLoad(d time.Duration) SeedOption {
	return func(o *seedOptions) error {
		if d < 0 {
			return fmt.Errorf("seed: minimum load time %s: must not be negative", d)
		}
		o.minLoad = d
		return nil
	}
}

// WithSeedKeySalt adds text to the key, so that a test's entries are its
// own. Default: none.
func WithSeedKeySalt(salt string) SeedOption {
	return func(o *seedOptions) error { o.salt = salt; return nil }
}

// WithSeedProgress reports the load's progress (dataset.WithProgress).
// Default: no reports.
func WithSeedProgress(fn func(dataset.Progress)) SeedOption {
	return func(o *seedOptions) error { o.load = append(o.load, dataset.WithProgress(fn)); return nil }
}

// SeedMinLoad is the load time below which Seed stores nothing: a restore
// of the bundled world costs about this much (see the package doc, "Seeded
// states").
const SeedMinLoad = 4 * time.Second

// seedRowsPerSecond is about how many generated rows a load writes per
// second on the 2-core machine the figures come from (the bundled world
// at 400,000 invoices: 1.64 million rows in 14s quiet, 22s busy). A
// dataset whose estimated rows load in under the minimum load time at
// that rate is loaded without a key or a store.
const seedRowsPerSecond = 100_000

// seedKind is the cache volumes' kind; seedKeyVersion changes when what
// goes into a key, or into a volume, changes.
const (
	seedKind       = "seed"
	seedKeyVersion = "rehearse seed cache v3"
	seedShortKey   = 12
	seedMaxTries   = 3 // complete cached states tried before a load
	seedKeep       = 3 // complete entries kept per group (seedGroup)
	// seedStaleIncomplete is the age past which an incomplete entry whose
	// maker this process cannot judge goes: no store takes that long.
	seedStaleIncomplete = time.Hour
)

// seedDamaged is a cached state that could not be restored while the live
// data stayed as it was: the entry is passed over, removed when it is
// damaged, and the load runs from scratch.
type seedDamaged struct {
	err    error
	remove bool // the entry is damaged (not merely being written now)
	// recreated: the helper's mount found the entry gone and the engine
	// made its name again, empty and unlabelled (exit 11 or 12).
	recreated bool
}

func (e *seedDamaged) Error() string { return e.err.Error() }
func (e *seedDamaged) Unwrap() error { return e.err }

// seedInputs is what a key covers.
type seedInputs struct {
	inputs string // the hex hash of everything but the cluster's state before the load
	key    string // inputs and that state
	pg     *restorePG
	db     string // the database loaded into
}

// Seed loads a dataset into its PostgreSQL service at a scale, or brings
// the state such a load made before back from a cache (see the package
// doc, "Seeded states"):
//
//   - the key (seedKey) is the sha256 of the images of every service
//     (their IDs, not tags), the plan of every service, the contents of
//     their bind mounts' sources, the dataset (Spec.Digest: definition,
//     generator version, schema, dump files), the service, database and
//     scale, and the state of the whole cluster before the load (every
//     database's data fingerprint and catalog, roles and their passwords,
//     settings, pg_hba), so that a scenario that changed anything a
//     restore would bring back never gets another's state;
//   - the key's entries are read without stopping anything (a helper that
//     mounts only the cache volume), incomplete ones passed over; on a
//     hit, the service is stopped, the cached copy of its data directory
//     staged, checked against the manifest stored with it and swapped in,
//     the service started, every service waited for, and the loaded
//     database's data fingerprint compared with the one recorded at the
//     store. A cached state that does not check before the swap leaves
//     the live data untouched: it is removed when damaged and the load
//     runs from scratch, the reason in Reason. A restore that may have
//     changed the live data and then failed (a half-swapped directory, a
//     service that does not come back, a fingerprint that differs) is an
//     error, and Cache says SeedHitFailed. A cached state refused with the
//     live data untouched after which the service does not come back (on
//     its own data) is an error too, with no Cache: no load runs against
//     a stopped database;
//   - on a miss, dataset.Load runs; when it took at least the minimum load
//     time (WithSeedMinLoad), the loaded database is fingerprinted, the
//     service stopped, its data directory copied into a new cache volume
//     (not a volume of the run: Down and gc of runs leave it,
//     env.RemoveCacheVolumes removes it) and checked, the manifest written
//     into the volume last, and the service started again. The group's
//     entries (same compose file, dataset, service and scale) are then
//     evicted (seedEvict).
//
// It returns once every service is ready.
func Seed(ctx context.Context, e *env.Environment, spec *dataset.Spec, scale int64, opts ...SeedOption) (res SeedResult, err error) {
	start := time.Now()
	o := seedOptions{minLoad: SeedMinLoad}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return res, fmt.Errorf("dataset %s: %w", spec.Name, err)
		}
	}
	s := &Snapshot{Name: "seed", e: e}
	defer func() {
		res.Phases = s.Phases()
		res.Duration = time.Since(start)
	}()
	load := func(reason string) (SeedResult, error) {
		var lres dataset.Result
		err := s.phase("load", func() (err error) {
			lres, err = dataset.Load(ctx, e, spec, scale, o.load...)
			return err
		})
		return SeedResult{Result: lres, Cache: SeedSkipped, Reason: reason, Load: lres.Duration}, err
	}
	sp, svc := e.Plan.Service(spec.Service), e.Service(spec.Service)
	switch {
	case o.noCache:
		return load("cache off")
	case sp == nil || svc == nil:
		return load("") // Load names the missing service
	case !IsPostgres(sp):
		return load(fmt.Sprintf("%s is not a PostgreSQL service that snapshots copy", spec.Service))
	}
	if rows, known := spec.EstimateRows(scale); known && !o.fresh && float64(rows) < o.minLoad.Seconds()*seedRowsPerSecond {
		// Not worth a key (about half a second: every database's
		// fingerprint and catalog): the load takes less than a restore.
		return load(fmt.Sprintf("not worth it, about %d rows load in under %s (a restore costs about that)", rows, o.minLoad))
	}
	var in *seedInputs
	if err := s.phase("key", func() (err error) { in, err = seedKey(ctx, e, spec, scale, o.salt); return err }); err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("dataset %s: %w", spec.Name, ctx.Err())
		}
		return load("no key: " + err.Error())
	}
	short := in.key[:seedShortKey]
	var passed string
	if o.fresh {
		passed = seedJoin("fresh: cached states ignored", seedRemoveKey(ctx, e, in.key))
	} else {
		hit, why, err := seedLookup(ctx, s, e, sp, svc, spec, in)
		passed = why
		var notBack *seedNotBack
		switch {
		case errors.As(err, &notBack):
			// Not a hit that failed: the live data was never the cached
			// state's.
			return SeedResult{Key: short, Volume: hit.Volume, Reason: passed}, fmt.Errorf("dataset %s: %w", spec.Name, err)
		case err != nil:
			return SeedResult{Cache: SeedHitFailed, Key: short, Volume: hit.Volume, Reason: passed},
				fmt.Errorf("dataset %s: restore of cached state %s (%s): %w", spec.Name, short, hit.Volume, err)
		case hit.Cache == SeedHit:
			hit.Key, hit.Reason = short, passed
			return hit, nil
		}
		if ctx.Err() != nil {
			return SeedResult{Key: short, Reason: passed}, fmt.Errorf("dataset %s: %w", spec.Name, ctx.Err())
		}
	}
	res, err = load("")
	res.Key, res.Reason = short, passed
	if err != nil {
		return res, err
	}
	if res.Load < o.minLoad {
		res.Reason = seedJoin(passed, fmt.Sprintf("not worth it, load took %s (a restore costs about %s)", res.Load.Round(100*time.Millisecond), o.minLoad))
		return res, nil
	}
	vol, err := seedStore(ctx, s, e, sp, svc, spec, scale, in, res)
	if err != nil {
		var fatal *seedStoreFatal
		switch {
		case errors.As(err, &fatal):
			return res, fmt.Errorf("dataset %s: store the seeded state: %w", spec.Name, err)
		case ctx.Err() != nil:
			// Cancelled: the step did not finish, whatever was loaded.
			return res, fmt.Errorf("dataset %s: store the seeded state: %w", spec.Name, ctx.Err())
		}
		res.Reason = seedJoin(passed, "store failed: "+err.Error())
		return res, nil
	}
	res.Cache, res.Volume = SeedStored, vol
	res.Reason = seedJoin(passed, seedEvict(ctx, s, e, svc, spec, scale, in, vol))
	return res, nil
}

func seedJoin(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

// seedLookup reads the key's entries and restores the newest complete one
// that checks (up to seedMaxTries). Incomplete entries are passed over
// (and removed when left over). A hit returns Cache SeedHit; an error is
// a restore that may have changed the live data, or a *seedNotBack (an
// entry refused, the data untouched, and the service not back).
func seedLookup(ctx context.Context, s *Snapshot, e *env.Environment, sp *env.ServicePlan, svc *env.Service, spec *dataset.Spec, in *seedInputs) (SeedResult, string, error) {
	vols, err := e.CacheVolumes(ctx, seedKind, map[string]string{"key": in.key})
	if err != nil {
		return SeedResult{}, err.Error(), nil
	}
	if len(vols) == 0 {
		return SeedResult{}, "", nil
	}
	var passed string
	if err := restoreEnsureHelper(ctx, e); err != nil {
		return SeedResult{}, "cached states not read: " + err.Error(), nil
	}
	var entries []seedEntry
	s.phase("read entries", func() error {
		var note string
		entries, note = seedEntries(ctx, e, svc, vols)
		passed = seedJoin(passed, note)
		return nil
	})
	tries := 0
	for _, en := range entries {
		v := en.vol
		if en.m == nil {
			why := fmt.Sprintf("cached state %s passed over: incomplete (no manifest: being stored, or its store did not finish)", v.Name)
			if seedIncompleteGoes(v, time.Now()) {
				why += seedRemoveNote(ctx, e, v.Name)
			}
			passed = seedJoin(passed, why)
			continue
		}
		if tries == seedMaxTries || ctx.Err() != nil {
			break
		}
		tries++
		m, err := seedRestore(ctx, s, e, sp, svc, spec, in, v, en.m)
		var dmg *seedDamaged
		switch {
		case err == nil:
			return SeedResult{Result: dataset.Result{Rows: m.rows}, Cache: SeedHit, Volume: v.Name, Load: m.load}, passed, nil
		case errors.As(err, &dmg):
			why := fmt.Sprintf("cached state %s passed over: %v", v.Name, err)
			switch {
			case dmg.recreated:
				why += seedRecreatedNote(ctx, e, v.Name)
			case dmg.remove:
				why += seedRemoveNote(ctx, e, v.Name)
			}
			passed = seedJoin(passed, why)
		default:
			return SeedResult{Volume: v.Name}, passed, err
		}
	}
	return SeedResult{}, passed, nil
}

// seedRestore brings a cached state back (see Seed) and returns its
// manifest. A *seedDamaged error left the live data as it was and the
// service running.
func seedRestore(ctx context.Context, s *Snapshot, e *env.Environment, sp *env.ServicePlan, svc *env.Service, spec *dataset.Spec, in *seedInputs, v env.CacheVolume, read *seedManifest) (*seedManifest, error) {
	vol, err := e.OpenCacheVolume(ctx, v.Name, seedKind, in.key)
	if err != nil {
		return nil, &seedDamaged{err: err}
	}
	// The helper's image first: a create that fails for want of it would
	// leave nothing to tell from a half-swapped directory.
	if err := restoreEnsureHelper(ctx, e); err != nil {
		return nil, &seedDamaged{err: fmt.Errorf("not run, entry kept, the data untouched: %w", err)}
	}
	pg := *in.pg
	pg.vol = vol.ReadOnly() // a restore only reads the entry
	var out string
	err = s.withStopped(ctx, sp, svc, func() error {
		return s.phase(sp.Name+": copy back", func() error {
			res, err := restoreRun(ctx, svc, &pg, false, seedBackScript, pg.helperDir(), env.HelperSparePath+"/data", restoreVolumeRoot, in.key)
			untouched := "(the data directory is untouched, the service started again)"
			switch {
			case err != nil && errors.Is(err, env.ErrHelperNotRun):
				return &seedDamaged{err: fmt.Errorf("%s: not run, entry kept, %s: %w", v.Name, untouched, err)}
			case err != nil:
				// The helper could not be waited for (or the wait was
				// cancelled): nothing says whether it swapped.
				return &restoreSwapFailed{err}
			case res.ExitCode == seedExitIncomplete || res.ExitCode == seedExitOtherKey:
				// The entry went since it was read, or changed: the engine
				// may have made its name again, empty, for the mount.
				_, oerr := e.OpenCacheVolume(context.WithoutCancel(ctx), v.Name, seedKind, in.key)
				return &seedDamaged{err: fmt.Errorf("%s: %s %s", v.Name, restoreTail(res.Stderr), untouched),
					remove: oerr == nil && res.ExitCode == seedExitOtherKey, recreated: oerr != nil}
			case res.ExitCode == restoreBackDamaged:
				return &seedDamaged{err: fmt.Errorf("%s: %s %s", v.Name, restoreTail(res.Stderr), untouched), remove: true}
			case res.ExitCode == restoreBackUntouched:
				return &seedDamaged{err: fmt.Errorf("%s: copy back refused, entry kept: %s %s", v.Name, restoreTail(res.Stderr), untouched)}
			case res.ExitCode != 0:
				return &restoreSwapFailed{fmt.Errorf("%s: copy back failed while swapping the copy in (exit %d): %s", svc.Name, res.ExitCode, restoreTail(res.Stderr))}
			}
			out = res.Stdout
			return nil
		})
	})
	if rerr, ok := seedRefused(svc.Name, v.Name, err, func() error {
		return s.phase("ready", func() error { return restoreAllReady(ctx, e) })
	}); ok {
		return nil, rerr
	}
	if err != nil {
		return nil, err
	}
	if err := s.phase("ready", func() error { return restoreAllReady(ctx, e) }); err != nil {
		return nil, err
	}
	m, err := seedParseManifest(out)
	if err == nil && m.key != in.key {
		err = fmt.Errorf("the restored manifest is for key %s", m.key)
	}
	if err == nil {
		err = s.phase("verify", func() error { return seedVerify(ctx, e, spec, in, m) })
	}
	if err != nil {
		// The live data is the cached state's, and it is wrong: the entry
		// goes, and the step fails (a load on top would start from a
		// state no one chose).
		return nil, fmt.Errorf("%w%s", err, seedRemoveNote(ctx, e, v.Name))
	}
	return m, nil
}

// seedNotBack is a cached state refused with the live data untouched
// (nothing was swapped), after which the service, or another, did not
// come back: the step fails, and no load runs against a stopped
// database. It hides the refusal's *seedDamaged, so that a lookup does
// not pass over to the next entry.
type seedNotBack struct{ err error }

func (e *seedNotBack) Error() string { return e.err.Error() }
func (e *seedNotBack) Unwrap() error { return e.err }

// seedRefused classifies what withStopped returned around a copy back:
// ok false when it was no refusal with the data untouched (a swap, an
// error that may have changed the data, or success). A refusal whose
// service came back (and every service is then ready: ready) is the
// *seedDamaged to pass over; one whose service did not (a stop that
// failed and a start that failed, a start or a ready that failed) is a
// *seedNotBack naming the service and the entry.
func seedRefused(service, entry string, err error, ready func() error) (_ error, ok bool) {
	var dmg *seedDamaged
	var stop *restoreStopFailed
	var notStarted *restoreNotStarted
	switch {
	case errors.As(err, &stop):
		dmg = &seedDamaged{err: fmt.Errorf("%s: not run, entry kept, the data untouched: %w", entry, stop)}
	case errors.As(err, &dmg):
	default:
		return nil, false
	}
	notBack := func(why error) error {
		return &seedNotBack{fmt.Errorf("%s: the service did not come back on its untouched data (cached state %s refused: %v): %v", service, entry, dmg, why)}
	}
	if errors.As(err, &notStarted) {
		return notBack(notStarted), true
	}
	if rerr := ready(); rerr != nil {
		return notBack(rerr), true
	}
	return dmg, true
}

// seedFingerprint is the loaded database's data fingerprint without keys
// under the fixed seed: what a store records and a hit compares.
func seedFingerprint(ctx context.Context, e *env.Environment, service, db string) ([]seedTableSum, error) {
	p, err := Data(ctx, e, service, DataWithoutKeys(), seedFixedSeedOption(), DataDatabase(db))
	if err != nil {
		return nil, err
	}
	return seedTableSums(p), nil
}

// seedVerify compares the restored database's fingerprint with the one
// the manifest recorded, naming each table that differs.
func seedVerify(ctx context.Context, e *env.Environment, spec *dataset.Spec, in *seedInputs, m *seedManifest) error {
	if len(m.tables) == 0 {
		return fmt.Errorf("%s after the restore: the cached state records no fingerprint", spec.Service)
	}
	got, err := seedFingerprint(ctx, e, spec.Service, in.db)
	if err != nil {
		return fmt.Errorf("%s after the restore: %w", spec.Service, err)
	}
	if bad := seedCompareSums(m.tables, got); len(bad) > 0 {
		return fmt.Errorf("%s after the restore: %s", spec.Service, strings.Join(bad, "; "))
	}
	return nil
}

// seedStoreFatal is a store that failed leaving a service not ready: the
// step fails.
type seedStoreFatal struct{ err error }

func (e *seedStoreFatal) Error() string { return e.err.Error() }
func (e *seedStoreFatal) Unwrap() error { return e.err }

// seedStore fingerprints the loaded database and copies the loaded state
// into a new cache volume (see Seed); it returns the volume's name. On
// error the volume is removed.
func seedStore(ctx context.Context, s *Snapshot, e *env.Environment, sp *env.ServicePlan, svc *env.Service, spec *dataset.Spec, scale int64, in *seedInputs, res SeedResult) (_ string, err error) {
	segSize, err := dataset.QueryValue(ctx, e, sp.Name, "SELECT pg_size_bytes(current_setting('wal_segment_size'))")
	if err != nil {
		return "", fmt.Errorf("%s: find the WAL segment size: %w", sp.Name, err)
	}
	if err := restoreEnsureHelper(ctx, e); err != nil {
		return "", err
	}
	m := &seedManifest{key: in.key, load: res.Load, rows: res.Rows}
	if err := s.phase("fingerprint", func() (err error) {
		m.tables, err = seedFingerprint(ctx, e, sp.Name, in.db)
		return err
	}); err != nil {
		return "", fmt.Errorf("%s: fingerprint the loaded database: %w", sp.Name, err)
	}
	labels := seedGroup(e, spec, scale)
	labels["dataset"] = spec.Name
	labels["database"] = in.db
	labels["inputs"] = in.inputs
	labels["created"] = time.Now().UTC().Format(time.RFC3339)
	labels["load"] = res.Load.Round(time.Millisecond).String()
	vol, err := e.CreateCacheVolume(ctx, seedKind, in.key, labels)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			if rerr := vol.Remove(context.WithoutCancel(ctx)); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	pg := *in.pg
	pg.vol = vol
	err = s.withStopped(ctx, sp, svc, func() error {
		return s.phase(sp.Name+": copy", func() error {
			out, err := restoreHelper(ctx, svc, &pg, true, restoreCopyScript, pg.helperDir(), env.HelperSparePath+"/data", segSize)
			if err != nil {
				return err
			}
			m.copy, err = restoreParseManifest(out)
			if err != nil {
				return fmt.Errorf("%s: copy helper: %w", sp.Name, err)
			}
			return nil
		})
	})
	if err != nil {
		if st, serr := svc.State(context.WithoutCancel(ctx)); serr != nil || !st.Healthy() {
			return "", &seedStoreFatal{err}
		}
		return "", err
	}
	// The dependents reconnect while the manifest is written.
	ready := make(chan error, 1)
	go func() { ready <- s.phase("ready", func() error { return restoreAllReady(ctx, e) }) }()
	err = s.phase("manifest", func() error {
		r, err := svc.Container().RunWithVolumes(ctx, restoreHelperImage,
			[]string{"sh", "-c", `printf '%s' "$1" >"$2.tmp" && sync "$2.tmp" && mv -- "$2.tmp" "$2"`, "sh", m.String(), seedManifestFile},
			nil, vol)
		if err == nil && r.ExitCode != 0 {
			err = fmt.Errorf("write the manifest into %s: exit %d: %s", vol.Name, r.ExitCode, restoreTail(r.Stderr))
		}
		return err
	})
	if rerr := <-ready; rerr != nil {
		return "", &seedStoreFatal{rerr}
	}
	if err != nil {
		return "", err
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	// A volume removed while its copy had not started (not yet in use) is
	// made again, empty and unlabelled, by the helper's mount: it is no
	// entry, and goes.
	if _, err := e.OpenCacheVolume(ctx, vol.Name, seedKind, in.key); err != nil {
		return "", fmt.Errorf("the entry was removed while it was stored: %w", err)
	}
	return vol.Name, nil
}

// seedGroup are the labels of the entries that one load replaces: the
// same compose file, dataset directory, service and scale.
func seedGroup(e *env.Environment, spec *dataset.Spec, scale int64) map[string]string {
	dir, _ := filepath.Abs(spec.Dir)
	compose, _ := filepath.Abs(e.Plan.File)
	return map[string]string{"compose": compose, "dataset.dir": dir, "service": spec.Service, "scale": strconv.FormatInt(scale, 10)}
}

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
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

// WithSeedFresh ignores cached states: the dataset is loaded from scratch,
// and the state it makes is stored (when worth it) in place of the entries
// of the same key, which are removed when not in use. Default: false.
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

// seedKind is the cache volumes' kind; seedKeyVersion changes when what
// goes into a key, or into a volume, changes.
const (
	seedKind       = "seed"
	seedKeyVersion = "rehearse seed cache v1"
	seedShortKey   = 12
	seedMaxTries   = 3 // cached states tried before a load
)

// seedDamaged is a cached state that could not be restored while the live
// data stayed as it was: the entry is passed over, removed when it is
// damaged, and the load runs from scratch.
type seedDamaged struct {
	err    error
	remove bool // the entry is damaged (not merely being written now)
}

func (e *seedDamaged) Error() string { return e.err.Error() }
func (e *seedDamaged) Unwrap() error { return e.err }

// seedInputs is what a key covers.
type seedInputs struct {
	inputs string // the hex hash of everything but the database's state before the load
	key    string // inputs and that state
	pg     *restorePG
	db     string // the database loaded into
}

// Seed loads a dataset into its PostgreSQL service at a scale, or brings
// the state such a load made before back from a cache (see the package
// doc, "Seeded states"):
//
//   - the key is the sha256 of the images of every service (their IDs, not
//     tags), the dataset (Spec.Digest: definition, seed, schema, dump
//     files), the service, database and scale, the service's environment
//     and command, and the state of the database before the load (its data
//     fingerprint without keys under a fixed seed, and the cluster's
//     databases, roles, memberships and settings), so that a scenario that
//     changed anything before loading never gets another's state;
//   - on a hit, the service is stopped, the cached copy of its data
//     directory staged, checked against the manifest stored with it and
//     swapped in, the service started, every service waited for, and the
//     recorded row counts checked. A cached state that is incomplete or
//     does not check leaves the live data untouched: it is removed (when
//     not in use) and the load runs from scratch, the reason in Reason. A
//     restore that may have changed the live data and then failed (a
//     half-swapped directory, a service that does not come back, counts
//     that differ) is an error;
//   - on a miss, dataset.Load runs; when it took at least the minimum load
//     time (WithSeedMinLoad), the service is stopped, its data directory
//     copied into a new cache volume (not a volume of the run: Down and gc
//     of runs leave it, env.RemoveCacheVolumes removes it) and checked,
//     the manifest and row counts written into the volume last, and the
//     service started again. Entries of the same compose file, dataset,
//     service and scale made from other images or another dataset are
//     then removed when not in use.
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
	var in *seedInputs
	if err := s.phase("key", func() (err error) { in, err = seedKey(ctx, e, spec, scale, o.salt); return err }); err != nil {
		return load("no key: " + err.Error())
	}
	short := in.key[:seedShortKey]
	var passed string
	if o.fresh {
		passed = "fresh: cached states ignored"
	} else {
		vols, err := e.CacheVolumes(ctx, seedKind, map[string]string{"key": in.key})
		if err != nil {
			return load(err.Error())
		}
		// Oldest first: the likeliest complete (a newer one may still be
		// being written). An entry passed over leaves the live data as it
		// was, so the next is tried, up to seedMaxTries.
		for i, v := range vols {
			if i == seedMaxTries {
				break
			}
			rows, recorded, err := seedRestore(ctx, s, e, sp, svc, spec, in, v)
			var dmg *seedDamaged
			switch {
			case err == nil:
				return SeedResult{Result: dataset.Result{Rows: rows}, Cache: SeedHit, Key: short, Volume: v.Name, Load: recorded, Reason: passed}, nil
			case errors.As(err, &dmg):
				why := fmt.Sprintf("cached state %s passed over: %v", v.Name, err)
				if dmg.remove {
					if rerr := e.RemoveCacheVolume(context.WithoutCancel(ctx), v.Name); rerr != nil {
						why += " (not removed: " + rerr.Error() + ")"
					} else {
						why += " (removed)"
					}
				}
				passed = seedJoin(passed, why)
			default:
				return SeedResult{Cache: SeedHit, Key: short, Volume: v.Name, Reason: passed},
					fmt.Errorf("dataset %s: restore of cached state %s (%s): %w", spec.Name, short, v.Name, err)
			}
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
		if errors.As(err, &fatal) {
			return res, fmt.Errorf("dataset %s: store the seeded state: %w", spec.Name, err)
		}
		res.Reason = seedJoin(passed, "store failed: "+err.Error())
		return res, nil
	}
	res.Cache, res.Volume = SeedStored, vol
	if ev := seedEvict(ctx, e, spec, scale, in, vol, o.fresh); ev != "" {
		res.Reason = seedJoin(passed, ev)
	}
	return res, nil
}

func seedJoin(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

// seedManifestFile is the manifest in a cache volume, as a helper sees it:
// written last, after the copy checked out. Its lines: "key HEX",
// "manifest ENTRIES BYTES SHA256" (as restoreCopyScript prints it),
// "load NANOSECONDS", "rows TABLE N" for each generated table.
const seedManifestFile = env.HelperSparePath + "/manifest"

// seedBackScript restores a cached state: it reads the volume's manifest
// (exit 11 when there is none, or it is for another key: the data
// directory untouched), prints it, and runs restoreBackScript with its
// figures. Arguments: the data directory, the cached copy, the data
// volume's root, the key.
const seedBackScript = `set -u
m=` + seedManifestFile + `
[ -f "$m" ] || { echo "incomplete: no manifest (the store that made it did not finish)" >&2; exit 11; }
k=$(sed -n 's/^key //p' "$m")
[ "$k" = "$4" ] || { echo "its manifest is for key $k" >&2; exit 12; }
l=$(sed -n 's/^manifest \([0-9][0-9]*\) \([0-9][0-9]*\) \([0-9a-f]\{64\}\)$/\1 \2 \3/p' "$m")
[ -n "$l" ] || { echo "its manifest has no copy manifest line" >&2; exit 12; }
cat "$m"
set -- "$1" "$2" "$3" $l
` + restoreBackScript

// seedRestore brings a cached state back (see Seed) and returns the rows
// and load time recorded with it. A *seedDamaged error left the live data
// as it was and the service running.
func seedRestore(ctx context.Context, s *Snapshot, e *env.Environment, sp *env.ServicePlan, svc *env.Service, spec *dataset.Spec, in *seedInputs, v env.CacheVolume) (map[string]int64, time.Duration, error) {
	vol, err := e.OpenCacheVolume(ctx, v.Name, seedKind, in.key)
	if err != nil {
		return nil, 0, &seedDamaged{err: err}
	}
	pg := *in.pg
	pg.vol = vol
	var out string
	err = s.withStopped(ctx, sp, svc, func() error {
		return s.phase(sp.Name+": copy back", func() error {
			res, err := restoreRun(ctx, svc, &pg, false, seedBackScript, pg.helperDir(), env.HelperSparePath+"/data", restoreVolumeRoot, in.key)
			switch {
			case err != nil && ctx.Err() == nil:
				// The helper could not run, or be waited for: nothing says
				// whether it swapped.
				return &restoreSwapFailed{err}
			case err != nil:
				return &restoreSwapFailed{err}
			case res.ExitCode == 11:
				return &seedDamaged{err: fmt.Errorf("%s: %s", v.Name, restoreTail(res.Stderr)), remove: v.OwnerGone()}
			case res.ExitCode == 10 || res.ExitCode == 12:
				return &seedDamaged{err: fmt.Errorf("%s: %s (the data directory is untouched)", v.Name, restoreTail(res.Stderr)), remove: true}
			case res.ExitCode != 0:
				return &restoreSwapFailed{fmt.Errorf("%s: copy back failed while swapping the copy in (exit %d): %s", svc.Name, res.ExitCode, restoreTail(res.Stderr))}
			}
			out = res.Stdout
			return nil
		})
	})
	var dmg *seedDamaged
	if errors.As(err, &dmg) {
		// withStopped started the service again on its untouched data;
		// a start that failed is joined in, and is no damage of the entry.
		if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 1 {
			return nil, 0, err
		}
		if err := s.phase("ready", func() error { return restoreAllReady(ctx, e) }); err != nil {
			return nil, 0, err
		}
		return nil, 0, dmg
	}
	if err != nil {
		return nil, 0, err
	}
	if err := s.phase("ready", func() error { return restoreAllReady(ctx, e) }); err != nil {
		return nil, 0, err
	}
	rows, recorded, err := seedParseManifest(out)
	if err != nil {
		return nil, 0, err
	}
	err = s.phase("verify rows", func() error { return seedCheckRows(ctx, e, spec, rows) })
	if err != nil {
		// The live data is the cached state's, and it is wrong: the entry
		// goes, and the step fails (a load on top would start from a
		// state no one chose).
		if rerr := e.RemoveCacheVolume(context.WithoutCancel(ctx), v.Name); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, 0, fmt.Errorf("%w (the cached state was removed)", err)
	}
	return rows, recorded, nil
}

// seedParseManifest reads the rows and the load time a manifest records.
func seedParseManifest(out string) (map[string]int64, time.Duration, error) {
	rows := map[string]int64{}
	var load time.Duration
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[0] == "rows":
			n, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("the cached state's manifest: %q: %w", l, err)
			}
			rows[f[1]] = n
		case len(f) == 2 && f[0] == "load":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			load = time.Duration(n)
		}
	}
	return rows, load, nil
}

// seedCheckRows compares each table's row count with the recorded one,
// naming the tables as Load does (the connection's default search_path).
func seedCheckRows(ctx context.Context, e *env.Environment, spec *dataset.Spec, rows map[string]int64) error {
	conn, err := dataset.Connect(ctx, e, spec.Service, spec.Database)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var bad []string
	for _, t := range slices.Sorted(maps.Keys(rows)) {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+dataIdent(t)).Scan(&n); err != nil {
			return fmt.Errorf("%s: count the rows of %s: %w", spec.Service, t, err)
		}
		if n != rows[t] {
			bad = append(bad, fmt.Sprintf("%s has %d rows, the cached state recorded %d", t, n, rows[t]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s after the restore: %s", spec.Service, strings.Join(bad, "; "))
	}
	return nil
}

// seedStoreFatal is a store that failed leaving a service not ready: the
// step fails.
type seedStoreFatal struct{ err error }

func (e *seedStoreFatal) Error() string { return e.err.Error() }
func (e *seedStoreFatal) Unwrap() error { return e.err }

// seedStore copies the loaded state into a new cache volume (see Seed)
// and returns its name. On error the volume is removed.
func seedStore(ctx context.Context, s *Snapshot, e *env.Environment, sp *env.ServicePlan, svc *env.Service, spec *dataset.Spec, scale int64, in *seedInputs, res SeedResult) (_ string, err error) {
	segSize, err := dataset.QueryValue(ctx, e, sp.Name, "SELECT pg_size_bytes(current_setting('wal_segment_size'))")
	if err != nil {
		return "", fmt.Errorf("%s: find the WAL segment size: %w", sp.Name, err)
	}
	if err := restoreEnsureHelper(ctx, e); err != nil {
		return "", err
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
	var m restoreManifest
	err = s.withStopped(ctx, sp, svc, func() error {
		return s.phase(sp.Name+": copy", func() error {
			out, err := restoreHelper(ctx, svc, &pg, true, restoreCopyScript, pg.helperDir(), env.HelperSparePath+"/data", segSize)
			if err != nil {
				return err
			}
			m, err = restoreParseManifest(out)
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
	var manifest strings.Builder
	fmt.Fprintf(&manifest, "key %s\nmanifest %d %d %s\nload %d\n", in.key, m.entries, m.bytes, m.control, res.Load)
	for _, t := range slices.Sorted(maps.Keys(res.Rows)) {
		fmt.Fprintf(&manifest, "rows %s %d\n", t, res.Rows[t])
	}
	// The dependents reconnect while the manifest is written.
	ready := make(chan error, 1)
	go func() { ready <- s.phase("ready", func() error { return restoreAllReady(ctx, e) }) }()
	err = s.phase("manifest", func() error {
		r, err := svc.Container().RunWithVolumes(ctx, restoreHelperImage,
			[]string{"sh", "-c", `printf '%s' "$1" >"$2.tmp" && sync "$2.tmp" && mv -- "$2.tmp" "$2"`, "sh", manifest.String(), seedManifestFile},
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

// seedEvict removes, when not in use, the entries of the same compose
// file, dataset, service and scale made from other inputs (other images,
// another dataset: stale), the entries of the same key made by a process
// that is gone (duplicates of concurrent stores), and with fresh every
// other entry of the key. It says what it removed.
func seedEvict(ctx context.Context, e *env.Environment, spec *dataset.Spec, scale int64, in *seedInputs, ours string, fresh bool) string {
	ctx = context.WithoutCancel(ctx)
	group, err := e.CacheVolumes(ctx, seedKind, seedGroup(e, spec, scale))
	if err != nil {
		return ""
	}
	var removed []string
	for _, c := range group {
		stale := c.Labels[env.LabelCachePrefix+"inputs"] != in.inputs
		dup := c.Key == in.key && (fresh || c.OwnerGone())
		if c.Name == ours || !(stale || dup) {
			continue
		}
		if e.RemoveCacheVolume(ctx, c.Name) == nil {
			removed = append(removed, c.Name)
		}
	}
	if len(removed) == 0 {
		return ""
	}
	return "removed older entries " + strings.Join(removed, ", ")
}

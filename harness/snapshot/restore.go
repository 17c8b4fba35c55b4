package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/image"
)

// Snapshot is a known point of a whole environment, to come back to: a
// copy of every PostgreSQL service's data directory (taken with the
// service stopped), an archive of every declared configuration path and
// crontab, the recorded state of the declared systemd units, the image
// each restored service ran, and the data (every database) and
// configuration fingerprints of that point, against which Restore checks
// itself. See the package documentation, "Snapshots".
type Snapshot struct {
	Name  string
	Taken time.Time

	e      *env.Environment
	config *ConfigPrint // ConfigAll at Take
	// data is, per PostgreSQL service, the print (without keys) of each
	// database that accepted connections at Take (templates left out).
	data map[string]map[string]*DataPrint
	// images is the image ID each service the snapshot restores (its
	// data, files or state in memory) ran at Take.
	images map[string]string
	pg     []*restorePG
	files  []*restoreFiles
	memory []string   // services restored by a restart (state in memory)
	mu     sync.Mutex // guards phases, and pg, data and files during Take
	phases []RestorePhase
	// dropped is set by Drop: the snapshot can no longer be restored.
	dropped bool
	// archived is the bytes of the files' archives held (restoreMaxArchives).
	archived int64
}

// RestorePhase is how long one part of the last Take or Restore took, for
// reports and the benchmark: "db: stop", "db: copy", "verify".
type RestorePhase struct {
	Name     string
	Duration time.Duration
}

// restorePG is one PostgreSQL service's copy.
type restorePG struct {
	service string
	dataDir string // as the server reports it (SHOW data_directory)
	volume  string // the plan's name of the volume holding it
	rel     string // the data directory relative to the volume's root ("" for the root)
	vol     *env.SpareVolume
	// The copy's manifest, recorded at Take: its entries (find | wc -l),
	// the bytes of its regular files, pg_control's sha256. Restore checks
	// its staged copy against it before it touches the live directory.
	manifest restoreManifest
}

// restoreHelperImage runs the copy helpers: the harness's own base image
// (sh, cp, find, od, sha256sum), never the service's image (the project's,
// untrusted, while the helper holds capabilities).
const restoreHelperImage = image.DebianBase

// restoreEnsureHelper makes the copy helpers' image exist (a no-op when
// it does, as it does once the run's images are made).
func restoreEnsureHelper(ctx context.Context, e *env.Environment) error {
	b := e.ImageBuilder()
	if b == nil {
		return fmt.Errorf("copy helper image %s: the environment has no image builder", restoreHelperImage)
	}
	_, err := b.Ensure(ctx, ImageSpecs()...)
	return err
}

// ImageSpecs are the images snapshots run (the copy helpers' base) as
// image.Specs, so that Builder.Ensure makes them along with other images
// (rehearse images does) instead of the first restore.
func ImageSpecs() []image.Spec {
	return []image.Spec{{Ref: restoreHelperImage, Origin: "rehearse snapshot copy helper"}}
}

// restoreVolumeRoot is where a copy helper mounts the volume that holds a
// data directory.
const restoreVolumeRoot = "/rehearse-data"

// restoreSwapFailed is a copy-back that failed while it swapped the staged
// copy in: the live directory may be neither the old nor the snapshot's,
// so the service is left stopped.
type restoreSwapFailed struct{ err error }

func (e *restoreSwapFailed) Error() string {
	return e.err.Error() + " (the data directory may be half-swapped: the service is left stopped)"
}
func (e *restoreSwapFailed) Unwrap() error { return e.err }

// RestoreMismatch is a restore that did not reach the snapshot: what the
// fingerprints taken after it still find different.
type RestoreMismatch struct {
	Snapshot string
	Config   ConfigDiff
	// Data holds the non-empty diffs by "SERVICE/DATABASE" (RestoreDataKey):
	// a table's changes, or, as a finding of Kind "database", a database
	// the snapshot had that is missing, or one created after the snapshot
	// that the restore left.
	Data map[string]DataDiff
}

// RestoreDataKey is how a RestoreMismatch names one database of a
// PostgreSQL service: "db/billing".
func RestoreDataKey(service, database string) string { return service + "/" + database }

func (m *RestoreMismatch) Error() string {
	var lines []string
	lines = append(lines, m.Config.Lines()...)
	for _, svc := range slices.Sorted(maps.Keys(m.Data)) {
		for _, f := range m.Data[svc].Findings {
			lines = append(lines, svc+": "+f.String())
		}
	}
	return fmt.Sprintf("restore of snapshot %q: still different after restoring: %s", m.Snapshot, strings.Join(lines, "; "))
}

// Bounds and waits of snapshots.
const (
	restoreStopTimeout  = 60 * time.Second // a service's stop, unless it declares stop_grace_period
	restoreReadyTimeout = 5 * time.Minute  // a service becoming ready again
	restoreCmdTimeout   = 2 * time.Minute  // one command in a service (systemctl, rm)
	restoreMaxName      = 40
)

// restoreNameRE is what a snapshot's name may be: it names volumes.
var restoreNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// restorePGPort is PostgreSQL's port.
const restorePGPort = 5432

// IsPostgres reports whether a service is a PostgreSQL service, for
// snapshots (whose data directory Take copies) and the scenarios' data
// prints alike: its x-rehearse config declares roles: or queries:, or it
// publishes container port 5432/tcp (as harness/dataset reaches
// PostgreSQL). A service that only exposes 5432 is not one: the harness
// cannot reach it.
func IsPostgres(sp *env.ServicePlan) bool {
	if c := sp.Ext.Config; c != nil && (c.Roles || len(c.Queries) > 0) {
		return true
	}
	for _, p := range sp.Ports {
		if p.Target == restorePGPort && (p.Protocol == "tcp" || p.Protocol == "") {
			return true
		}
	}
	return false
}

// Databases are the PostgreSQL services of a plan (IsPostgres), in plan
// order.
func Databases(p *env.Plan) []string {
	var out []string
	for _, sp := range p.Services {
		if IsPostgres(sp) {
			out = append(out, sp.Name)
		}
	}
	return out
}

// restoreInMemory reports whether a service keeps its declared state in
// memory: it declares HTTP lists and has no volume. Restarting it gives its
// initial state.
func restoreInMemory(sp *env.ServicePlan) bool {
	if sp.Ext.Config == nil || len(sp.Ext.Config.HTTP) == 0 || IsPostgres(sp) {
		return false
	}
	for _, m := range sp.Mounts {
		if m.Type == "volume" || m.Type == "bind" {
			return false
		}
	}
	return true
}

// Take snapshots the environment as it is now, under a name (letters,
// digits, '.', '_', '-'; it names the copies' volumes):
//
//   - each PostgreSQL service (IsPostgres): its data directory (SHOW
//     data_directory), which must lie on a named volume with no other
//     mount inside it (not a bind mount), with pg_wal no link and no
//     tablespace, is copied with the service stopped, by a helper
//     container of the harness's own image that mounts only that volume
//     (read-only) and a spare volume of the run; the copy is checked
//     against the directory and its manifest (entries, bytes, pg_control)
//     recorded; then the service starts again (its dependents see an
//     outage and reconnect);
//   - each service declaring config files: or crontab: an archive of those
//     paths as the engine reads them (owners, modes, links), in memory;
//   - once every service is ready again (the dependents of a restarted
//     database reconnected), the configuration fingerprint of every
//     declared service (units' states, roles, HTTP lists...) and the data
//     fingerprint (without keys) of every database of each PostgreSQL
//     service that accepts connections (templates left out), which
//     Restore checks itself against;
//   - the image ID each service it restores runs.
//
// A declared path that is or holds a mount point (the plan's, or a VOLUME
// of the service's image) is refused. It returns once every service is
// ready again. On error nothing of the
// snapshot is left (a stopped service is started again).
func Take(ctx context.Context, e *env.Environment, name string) (_ *Snapshot, err error) {
	if len(name) > restoreMaxName || !restoreNameRE.MatchString(name) {
		return nil, fmt.Errorf("snapshot %q: a name is 1-%d letters, digits, '.', '_' or '-', starting with a letter or digit", name, restoreMaxName)
	}
	s := &Snapshot{Name: name, Taken: time.Now().UTC(), e: e, data: map[string]map[string]*DataPrint{}, images: map[string]string{}}
	defer func() {
		if err != nil {
			s.Drop(context.WithoutCancel(ctx))
			err = fmt.Errorf("snapshot %q: %w", name, err)
		}
	}()
	// Services are taken in parallel: each PostgreSQL service's copy, each
	// service's archive.
	var work []func() error
	for _, sp := range e.Plan.Services {
		svc := e.Service(sp.Name)
		if svc == nil {
			return nil, fmt.Errorf("service %s is not running", sp.Name)
		}
		restored := true
		switch {
		case IsPostgres(sp):
			work = append(work, func() error { return s.takePG(ctx, sp, svc) })
		case restoreInMemory(sp):
			s.memory = append(s.memory, sp.Name)
		default:
			restored = false
		}
		if c := sp.Ext.Config; c != nil && (len(c.Files) > 0 || c.Crontab) {
			restored = true
			work = append(work, func() error { return s.takeFiles(ctx, sp, svc) })
		}
		if restored {
			id, err := svc.Container().ImageID(ctx)
			if err != nil {
				return nil, err
			}
			s.images[sp.Name] = id
		}
	}
	if err := restoreParallel(work); err != nil {
		return nil, err
	}
	// The fingerprints are taken once every service is ready, as Restore
	// checks: the dependents of a restarted database have reconnected,
	// and whatever they write then is in the print, not a mismatch.
	if err := s.phase("ready", func() error { return restoreAllReady(ctx, e) }); err != nil {
		return nil, err
	}
	work = []func() error{func() error {
		return s.phase("config fingerprint", func() (err error) {
			s.config, err = ConfigAll(ctx, e)
			return err
		})
	}}
	for _, pg := range s.pg {
		work = append(work, func() error { return s.takeData(ctx, pg.service) })
	}
	if err := restoreParallel(work); err != nil {
		return nil, err
	}
	return s, nil
}

// Phases are how long the parts of the last Take or Restore took.
func (s *Snapshot) Phases() []RestorePhase {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.phases)
}

// phase runs fn and records its time.
func (s *Snapshot) phase(name string, fn func() error) error {
	t := time.Now()
	err := fn()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phases = append(s.phases, RestorePhase{name, time.Since(t)})
	return err
}

// restoreRandom is 8 hex digits.
func restoreRandom() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// restoreCapabilities are what the copy helper needs to copy files of any
// owner keeping owners and modes (and to delete them).
var restoreCapabilities = []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"}

// takePG copies one PostgreSQL service's data directory, stopped.
func (s *Snapshot) takePG(ctx context.Context, sp *env.ServicePlan, svc *env.Service) error {
	dir, err := dataset.QueryValue(ctx, s.e, sp.Name, "SHOW data_directory")
	if err != nil {
		return fmt.Errorf("%s: find the data directory: %w", sp.Name, err)
	}
	segSize, err := dataset.QueryValue(ctx, s.e, sp.Name, "SELECT pg_size_bytes(current_setting('wal_segment_size'))")
	if err != nil {
		return fmt.Errorf("%s: find the WAL segment size: %w", sp.Name, err)
	}
	pg, err := restoreLocate(s.e.Plan.File, sp, path.Clean(dir))
	if err != nil {
		return err
	}
	if err := restoreEnsureHelper(ctx, s.e); err != nil {
		return err
	}
	vol, err := s.e.CreateSpareVolume(ctx, sp.Name+".snapshot-"+restoreRandom(), "snapshot "+s.Name+" of "+sp.Name)
	if err != nil {
		return err
	}
	pg.vol = vol
	s.mu.Lock()
	s.pg = append(s.pg, pg) // Drop removes the volume from here on
	s.mu.Unlock()
	err = s.withStopped(ctx, sp, svc, func() error {
		return s.phase(sp.Name+": copy", func() error {
			out, err := restoreHelper(ctx, svc, pg, true, restoreCopyScript, pg.helperDir(), env.HelperSparePath+"/data", segSize)
			if err != nil {
				return err
			}
			pg.manifest, err = restoreParseManifest(out)
			if err != nil {
				return fmt.Errorf("%s: copy helper: %w", sp.Name, err)
			}
			return nil
		})
	})
	return err
}

// takeData fingerprints (without keys) each database of a PostgreSQL
// service that accepts connections, templates left out: what Restore
// checks itself against.
func (s *Snapshot) takeData(ctx context.Context, service string) error {
	return s.phase(service+": data fingerprint", func() error {
		dbs, err := restoreDatabases(ctx, s.e, service)
		if err != nil {
			return err
		}
		prints := map[string]*DataPrint{}
		for _, db := range dbs {
			p, err := Data(ctx, s.e, service, DataWithoutKeys(), DataDatabase(db))
			if err != nil {
				return err
			}
			prints[db] = p
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.data[service] = prints
		return nil
	})
}

// restoreDatabases lists the databases of a PostgreSQL service that accept
// connections, templates left out (template1 is what CREATE DATABASE
// copies, not the service's data; template0 refuses connections), by name.
func restoreDatabases(ctx context.Context, e *env.Environment, service string) ([]string, error) {
	conn, err := dataConnect(ctx, e, service, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT datname::pg_catalog.text FROM pg_catalog.pg_database
WHERE datallowconn AND NOT datistemplate ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("%s: list databases: %w", service, err)
	}
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: list databases: %w", service, err)
	}
	return dbs, nil
}

// restoreDatabaseChanges compares the databases a snapshot printed (was)
// with those there now: each missing one, and each created since (a
// restore of the cluster removes it; one still there is named), is a
// finding of Kind "database", by RestoreDataKey.
func restoreDatabaseChanges(service string, was, now []string) map[string]DataDiff {
	out := map[string]DataDiff{}
	add := func(db, change string) {
		out[RestoreDataKey(service, db)] = DataDiff{Findings: []DataFinding{{Object: "database", Kind: "database", Change: change}}}
	}
	for _, db := range was {
		if !slices.Contains(now, db) {
			add(db, "in the snapshot, missing after the restore")
		}
	}
	for _, db := range now {
		if !slices.Contains(was, db) {
			add(db, "created after the snapshot, still there after the restore")
		}
	}
	return out
}

// restoreLocate finds the named volume that holds a service's data
// directory. A directory on a bind mount is refused (a helper would have
// to mount a host path the project controls), and so is one with another
// mount inside it (its own pg_wal volume, say: the copy would miss it).
func restoreLocate(file string, sp *env.ServicePlan, dir string) (*restorePG, error) {
	var holder *env.Mount
	under := func(p, root string) bool {
		return p == root || root == "/" || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/")
	}
	for i, m := range sp.Mounts {
		if under(dir, m.Target) && (holder == nil || len(m.Target) > len(holder.Target)) {
			holder = &sp.Mounts[i]
		}
	}
	for t := range sp.Tmpfs {
		if under(dir, t) && (holder == nil || len(t) > len(holder.Target)) {
			holder = &env.Mount{Type: "tmpfs", Target: t}
		}
	}
	switch {
	case holder == nil || holder.Type == "tmpfs":
		return nil, fmt.Errorf("%s: its data directory %s lies on no volume of %s: declare one there (volumes: [name:%s]) so that a helper can copy it while the service is stopped", sp.Name, dir, file, dir)
	case holder.Type != "volume":
		return nil, fmt.Errorf("%s: its data directory %s lies on a bind mount (%s) in %s: snapshots copy only a named volume; declare one there (volumes: [name:%s])", sp.Name, dir, holder.Source, file, dir)
	case holder.ReadOnly:
		return nil, fmt.Errorf("%s: its data directory %s lies on a read-only volume (%s) in %s", sp.Name, dir, holder.Source, file)
	}
	for _, m := range sp.Mounts {
		if m.Target != holder.Target && under(m.Target, dir) {
			return nil, fmt.Errorf("%s: its data directory %s has another mount inside it (%s at %s) in %s: not supported by snapshots", sp.Name, dir, m.Source, m.Target, file)
		}
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(dir, strings.TrimSuffix(holder.Target, "/")), "/")
	return &restorePG{service: sp.Name, dataDir: dir, volume: holder.Source, rel: rel}, nil
}

// helperDir is the data directory as a copy helper sees it.
func (pg *restorePG) helperDir() string { return path.Join(restoreVolumeRoot, pg.rel) }

// withStopped stops a service, runs fn, and starts the service again
// (whatever fn returned, unless a *restoreSwapFailed) and waits until it
// is ready. A stop that fails may still have stopped the container (an
// engine that timed out, a cancelled wait): the service is started again
// and fn does not run; the error is a *restoreStopFailed. A start (or
// wait) that fails is a *restoreNotStarted, joined to fn's error.
func (s *Snapshot) withStopped(ctx context.Context, sp *env.ServicePlan, svc *env.Service, fn func() error) error {
	timeout := restoreStopTimeout
	if sp.StopTimeout != nil {
		timeout = *sp.StopTimeout
	}
	c := svc.Container()
	start := func() error {
		sctx := context.WithoutCancel(ctx)
		err := s.phase(sp.Name+": start", func() error {
			if err := c.Start(sctx); err != nil {
				return err
			}
			rctx, cancel := context.WithTimeout(sctx, restoreReadyTimeout)
			defer cancel()
			return svc.WaitReady(rctx)
		})
		if err != nil {
			return &restoreNotStarted{fmt.Errorf("%s: start again: %w", sp.Name, err)}
		}
		return nil
	}
	if err := s.phase(sp.Name+": stop", func() error { return c.Stop(ctx, timeout) }); err != nil {
		return errors.Join(&restoreStopFailed{fmt.Errorf("%s: stop: %w", sp.Name, err)}, start())
	}
	err := fn()
	var swap *restoreSwapFailed
	if errors.As(err, &swap) {
		return err
	}
	return errors.Join(err, start())
}

// restoreStopFailed is a stop that failed: nothing was copied, and the
// service was started again (a *restoreNotStarted joined to it says it
// did not come back).
type restoreStopFailed struct{ err error }

func (e *restoreStopFailed) Error() string { return e.err.Error() }
func (e *restoreStopFailed) Unwrap() error { return e.err }

// restoreNotStarted is a service that withStopped could not start again,
// or that did not become ready.
type restoreNotStarted struct{ err error }

func (e *restoreNotStarted) Error() string { return e.err.Error() }
func (e *restoreNotStarted) Unwrap() error { return e.err }

// restoreHelper runs a shell script in a copy helper of a PostgreSQL
// service (the harness's image; the data directory's volume at
// restoreVolumeRoot, read-only if asked; the copy's volume at
// env.HelperSparePath) and fails unless it exits 0; it returns stdout.
func restoreHelper(ctx context.Context, svc *env.Service, pg *restorePG, readOnly bool, script string, args ...string) (string, error) {
	res, err := restoreRun(ctx, svc, pg, readOnly, script, args...)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("%s: copy helper exited %d: %s", svc.Name, res.ExitCode, restoreTail(res.Stderr))
	}
	return res.Stdout, nil
}

func restoreRun(ctx context.Context, svc *env.Service, pg *restorePG, readOnly bool, script string, args ...string) (env.ExecResult, error) {
	return svc.Container().RunWithVolumes(ctx, restoreHelperImage, append([]string{"sh", "-c", script, "sh"}, args...), restoreCapabilities, pg.vol,
		env.VolumeMount{Volume: pg.volume, Target: restoreVolumeRoot, ReadOnly: readOnly})
}

func restoreTail(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = "..." + s[len(s)-300:]
	}
	return s
}

// Restore brings the environment back to the snapshot, then checks itself:
//
//   - each PostgreSQL service is stopped; a helper copies the snapshot's
//     copy into a staging directory on the data directory's volume,
//     checks it against the manifest recorded at Take, and only then
//     swaps it in by renames; the service starts again (roles, every
//     database and the server's settings come back with it). A copy that
//     fails or does not check leaves the data directory untouched and the
//     service is started on it; a swap that fails half-way leaves the
//     service stopped (the error says so);
//   - each archived path is removed and put back from its archive, owners
//     and modes included (what an upgrade added under it goes);
//   - on a service declaring units: systemd reloads its units, and each
//     unit is started, stopped, enabled or disabled back to the state the
//     snapshot recorded; a unit that stays active is restarted when a path
//     it names (its unit file, drop-ins, executables and their arguments,
//     environment files) lies under a restored path that had changed, so
//     that it runs the restored program and configuration;
//   - a service whose declared state lives in memory (HTTP lists, no
//     volume) is restarted when its lists differ: it comes back in its
//     initial state, which is the snapshot's only if the snapshot was
//     taken before anything was registered there.
//
// Before anything, every service it restores must run the image it ran at
// Take: otherwise Restore refuses, having stopped nothing, naming each
// service and both images. After, every service must be ready (the
// dependents of a database reconnected), and then the configuration
// fingerprint and the data fingerprint of every database Take printed
// must equal the snapshot's, with no database added since: otherwise the
// error is a *RestoreMismatch naming each difference. Restoring twice is
// fine.
func (s *Snapshot) Restore(ctx context.Context) (err error) {
	s.mu.Lock()
	dropped := s.dropped
	s.phases = nil
	s.mu.Unlock()
	if dropped {
		return fmt.Errorf("restore of snapshot %q: it was dropped", s.Name)
	}
	defer func() {
		var mm *RestoreMismatch
		if err != nil && !errors.As(err, &mm) {
			err = fmt.Errorf("restore of snapshot %q: %w", s.Name, err)
		}
	}()
	e := s.e
	// Nothing is stopped before every restored service is known to run
	// the image it ran at Take.
	if err := s.phase("check images", func() error { return s.checkImages(ctx) }); err != nil {
		return err
	}
	// Services restore in parallel: each PostgreSQL service (stop, copy
	// back, start), each service's files and units, each in-memory
	// service.
	var work []func() error
	for _, pg := range s.pg {
		work = append(work, func() error {
			svc, sp := e.Service(pg.service), e.Plan.Service(pg.service)
			if svc == nil || sp == nil {
				return fmt.Errorf("service %s is not running", pg.service)
			}
			return s.withStopped(ctx, sp, svc, func() error {
				return s.phase(pg.service+": copy back", func() error { return s.copyBack(ctx, svc, pg) })
			})
		})
	}
	for _, f := range s.files {
		work = append(work, func() error {
			return s.phase(f.service+": files and units", func() error { return s.restoreFiles(ctx, f) })
		})
	}
	for _, name := range s.memory {
		work = append(work, func() error {
			return s.phase(name+": memory", func() error { return s.restoreMemory(ctx, name) })
		})
	}
	if err := restoreParallel(work); err != nil {
		return err
	}
	// The checks run once every service is ready: the dependents of a
	// restarted database have reconnected, and whatever they write then
	// is seen.
	if err := s.phase("ready", func() error { return restoreAllReady(ctx, e) }); err != nil {
		return err
	}
	return s.verify(ctx)
}

// checkImages refuses a restore when a service the snapshot restores runs
// another image than at Take (an upgrade that replaced it, a recreated
// container): a data directory written by one PostgreSQL may not be read
// by another, and declared files put back under another image's program
// would pass the configuration check while the service runs a mix of two
// versions. Every such service is named, with both image IDs.
func (s *Snapshot) checkImages(ctx context.Context) error {
	var msgs []string
	for _, name := range slices.Sorted(maps.Keys(s.images)) {
		svc, sp := s.e.Service(name), s.e.Plan.Service(name)
		if svc == nil || sp == nil {
			return fmt.Errorf("service %s is not running", name)
		}
		id, err := svc.Container().ImageID(ctx)
		if err != nil {
			return err
		}
		if want := s.images[name]; id != want {
			msgs = append(msgs, fmt.Sprintf("%s runs image %s (%s) now, %s at the snapshot", name, id, sp.Image.Ref, want))
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("refused, nothing was stopped or changed: %s; a snapshot is put back only under the images it was taken with (take another after the images change)", strings.Join(msgs, "; "))
	}
	return nil
}

// copyBack stages the snapshot's copy on the data directory's volume,
// checks it, and swaps it in (restoreBackScript).
func (s *Snapshot) copyBack(ctx context.Context, svc *env.Service, pg *restorePG) error {
	m := pg.manifest
	res, err := restoreRun(ctx, svc, pg, false, restoreBackScript, pg.helperDir(), env.HelperSparePath+"/data", restoreVolumeRoot,
		fmt.Sprint(m.entries), fmt.Sprint(m.bytes), m.control)
	return restoreBackOutcome(ctx, svc.Name, res, err)
}

// restoreBackOutcome judges a run of restoreBackScript: nil, an error
// (the data directory untouched: the service may start on it), or a
// *restoreSwapFailed. Only a helper that never ran (env.ErrHelperNotRun,
// the context still live) or a script that exited before the swap left
// the directory untouched: any other error (waiting for the helper, a
// cancelled context) leaves unknown whether it swapped.
func restoreBackOutcome(ctx context.Context, service string, res env.ExecResult, err error) error {
	switch {
	case err != nil && ctx.Err() == nil && errors.Is(err, env.ErrHelperNotRun):
		return err
	case err != nil:
		return &restoreSwapFailed{err}
	case res.ExitCode == restoreBackDamaged:
		return fmt.Errorf("%s: copy back refused, the snapshot's copy is damaged (the data directory is untouched): %s", service, restoreTail(res.Stderr))
	case res.ExitCode == restoreBackUntouched:
		return fmt.Errorf("%s: copy back failed before the swap, the copy not judged damaged (the data directory is untouched): %s", service, restoreTail(res.Stderr))
	case res.ExitCode != 0:
		return &restoreSwapFailed{fmt.Errorf("%s: copy back failed while swapping the copy in (exit %d): %s", service, res.ExitCode, restoreTail(res.Stderr))}
	}
	return nil
}

// restoreParallel runs fns at once and joins their errors.
func restoreParallel(fns []func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// restoreMemory restarts a service whose state is in memory when its
// declared lists differ from the snapshot's.
func (s *Snapshot) restoreMemory(ctx context.Context, name string) error {
	now, err := Config(ctx, s.e, name)
	if err != nil {
		return err
	}
	was := &ConfigPrint{}
	for _, it := range s.config.Items {
		if it.Service == name {
			was.Items = append(was.Items, it)
		}
	}
	if len(was.Diff(now)) == 0 {
		return nil
	}
	svc, sp := s.e.Service(name), s.e.Plan.Service(name)
	timeout := restoreStopTimeout
	if sp.StopTimeout != nil {
		timeout = *sp.StopTimeout
	}
	if err := svc.Container().Restart(ctx, timeout); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, restoreReadyTimeout)
	defer cancel()
	return svc.WaitReady(rctx)
}

// restoreAllReady waits until every service is ready (the dependents of a
// restarted database included).
func restoreAllReady(ctx context.Context, e *env.Environment) error {
	rctx, cancel := context.WithTimeout(ctx, restoreReadyTimeout)
	defer cancel()
	var errs []error
	for _, svc := range e.Services() {
		errs = append(errs, svc.WaitReady(rctx))
	}
	return errors.Join(errs...)
}

// verify checks the restore, every service being ready: the
// configuration fingerprint and each PostgreSQL service's databases
// (verifyData), at once, against the snapshot's.
func (s *Snapshot) verify(ctx context.Context) error {
	mm := &RestoreMismatch{Snapshot: s.Name, Data: map[string]DataDiff{}}
	var mu sync.Mutex
	work := []func() error{func() error {
		return s.phase("verify config", func() error {
			cfg, err := ConfigAll(ctx, s.e)
			if err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			mu.Lock()
			defer mu.Unlock()
			mm.Config = s.config.Diff(cfg)
			return nil
		})
	}}
	for _, pg := range s.pg {
		work = append(work, func() error {
			return s.phase(pg.service+": verify data", func() error {
				diffs, err := s.verifyData(ctx, pg.service)
				if err != nil {
					return fmt.Errorf("verify: %w", err)
				}
				mu.Lock()
				defer mu.Unlock()
				maps.Copy(mm.Data, diffs)
				return nil
			})
		})
	}
	if err := restoreParallel(work); err != nil {
		return err
	}
	if len(mm.Config) > 0 || len(mm.Data) > 0 {
		return mm
	}
	return nil
}

// verifyData diffs each database of a PostgreSQL service that the
// snapshot printed against its print, and names the databases missing or
// added since (restoreDatabaseChanges); only non-empty diffs, by
// RestoreDataKey.
func (s *Snapshot) verifyData(ctx context.Context, service string) (map[string]DataDiff, error) {
	now, err := restoreDatabases(ctx, s.e, service)
	if err != nil {
		return nil, err
	}
	was := s.data[service]
	names := slices.Sorted(maps.Keys(was))
	out := restoreDatabaseChanges(service, names, now)
	for _, db := range names {
		if !slices.Contains(now, db) {
			continue
		}
		d, err := DiffData(ctx, s.e, service, was[db])
		if err != nil {
			return nil, err
		}
		if !d.Empty() {
			out[RestoreDataKey(service, db)] = d
		}
	}
	return out, nil
}

// Drop removes what the snapshot keeps in the engine (the data copies'
// volumes) and lets go of its archives; the snapshot can no longer be
// restored. Dropping twice is fine. The run's removal (Down, gc) removes
// the volumes too, labelled as they are with the run.
func (s *Snapshot) Drop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	s.dropped = true
	pgs := slices.Clone(s.pg)
	s.files = nil
	s.mu.Unlock()
	var errs []error
	for _, pg := range pgs {
		if pg.vol != nil {
			errs = append(errs, pg.vol.Remove(ctx))
		}
	}
	return errors.Join(errs...)
}

package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// restoreManifest describes a copy of a data directory.
type restoreManifest struct {
	entries, bytes int64
	control        string // sha256 of global/pg_control
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
	_, err := b.Ensure(ctx, image.Spec{Ref: restoreHelperImage, Origin: "snapshot copy helper"})
	return err
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

// restoreFiles is one service's archived paths.
type restoreFiles struct {
	service string
	roots   []restoreRoot
	units   bool
}

// restoreRoot is one declared path: absent, or the engine's archive of it
// with names relative to the directory above it.
type restoreRoot struct {
	path    string
	absent  bool
	archive []byte
}

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

// The crontab paths a service declaring crontab: true has archived.
var restoreCronPaths = []string{configSystemCrontab, configCronD, configCronSpool}

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
//   - the configuration fingerprint of every declared service (units'
//     states, roles, HTTP lists...) and the data fingerprint (without
//     keys) of every database of each PostgreSQL service that accepts
//     connections (templates left out), which Restore checks itself
//     against;
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
	if err := s.phase("ready", func() error { return restoreAllReady(ctx, e) }); err != nil {
		return nil, err
	}
	if err := s.phase("config fingerprint", func() (err error) {
		s.config, err = ConfigAll(ctx, e)
		return err
	}); err != nil {
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
	if err != nil {
		return err
	}
	return s.phase(sp.Name+": data fingerprint", func() error {
		dbs, err := restoreDatabases(ctx, s.e, sp.Name)
		if err != nil {
			return err
		}
		prints := map[string]*DataPrint{}
		for _, db := range dbs {
			p, err := Data(ctx, s.e, sp.Name, DataWithoutKeys(), DataDatabase(db))
			if err != nil {
				return err
			}
			prints[db] = p
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.data[sp.Name] = prints
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
// is ready.
func (s *Snapshot) withStopped(ctx context.Context, sp *env.ServicePlan, svc *env.Service, fn func() error) error {
	timeout := restoreStopTimeout
	if sp.StopTimeout != nil {
		timeout = *sp.StopTimeout
	}
	c := svc.Container()
	if err := s.phase(sp.Name+": stop", func() error { return c.Stop(ctx, timeout) }); err != nil {
		return err
	}
	err := fn()
	var swap *restoreSwapFailed
	if errors.As(err, &swap) {
		return err
	}
	start := func() error {
		sctx := context.WithoutCancel(ctx)
		if err := c.Start(sctx); err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(sctx, restoreReadyTimeout)
		defer cancel()
		return svc.WaitReady(rctx)
	}
	return errors.Join(err, s.phase(sp.Name+": start", start))
}

// restoreManifestScript (a shell function) prints the manifest of a
// directory ($1): "manifest ENTRIES BYTES SHA256-OF-PG_CONTROL".
const restoreManifestScript = `manifest() {
	printf 'manifest %s %s %s\n' "$(find "$1" | wc -l)" \
		"$(find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')" \
		"$(sha256sum < "$1/global/pg_control" | cut -d' ' -f1)"
}
`

// restoreCopyScript copies a data directory ($1) to $2, which it creates;
// $3 is the server's WAL segment size in bytes. It refuses what a copy of
// the directory would not bring back whole: pg_wal as a link (WAL kept
// elsewhere, POSTGRES_INITDB_WALDIR) and tablespaces (links in
// pg_tblspc). After a clean shutdown (pg_control, PostgreSQL 11 or later,
// says "shut down") the server needs, of its WAL, only the segment holding
// the shutdown checkpoint's redo point (and the next, should the record
// cross into it): the other segments are old or recycled ahead of use,
// often hundreds of megabytes after a bulk load, and are left out. After
// anything else, with replication slots, or on doubt, everything is
// copied. The copy is then checked against the source (entries, bytes,
// pg_control) and its manifest printed.
const restoreCopyScript = `set -eu
export LC_ALL=C
` + restoreManifestScript + `src=$1 dst=$2 size=$3
[ -f "$src/PG_VERSION" ] && [ -f "$src/global/pg_control" ] || { echo "$src is not a PostgreSQL data directory (no PG_VERSION or global/pg_control)" >&2; exit 3; }
if [ -L "$src/pg_wal" ] || [ -L "$src/pg_xlog" ]; then echo "not supported: pg_wal is a link (WAL outside the data directory, initdb --waldir or POSTGRES_INITDB_WALDIR)" >&2; exit 3; fi
if [ -d "$src/pg_tblspc" ] && [ -n "$(ls -A "$src/pg_tblspc")" ]; then echo "not supported: tablespaces present (pg_tblspc is not empty)" >&2; exit 3; fi
mkdir "$dst"
num() { od -An -v -j "$1" -N "$2" -t "$3" "$src/global/pg_control" | tr -d ' \n'; }
version=$(num 8 4 u4) state=$(num 16 4 u4) redo=$(num 40 8 x8) tli=$(num 48 4 u4)
full=
case $size in ''|*[!0-9]*) full=1 ;; esac
if [ -z "$full" ]; then
	[ "$size" -ge 1048576 ] && [ "$size" -le 1073741824 ] && [ $((size & (size - 1))) -eq 0 ] || full=1
fi
[ "$version" -ge 1100 ] 2>/dev/null && [ "$state" = 1 ] && [ "$tli" -ge 1 ] 2>/dev/null && [ -n "$redo" ] || full=1
[ -d "$src/pg_replslot" ] && [ -n "$(ls -A "$src/pg_replslot")" ] && full=1
[ -d "$src/pg_wal" ] || full=1
skipped=0 skippedBytes=0
if [ -z "$full" ]; then
	per=$((4294967296 / size))
	segno=$((0x$redo / size))
	keep=$(printf '%08X%08X%08X' "$tli" $((segno / per)) $((segno % per)))
	segno=$((segno + 1))
	next=$(printf '%08X%08X%08X' "$tli" $((segno / per)) $((segno % per)))
	[ -f "$src/pg_wal/$keep" ] || full=1
fi
if [ -n "$full" ]; then
	cp -a "$src"/. "$dst"/
else
	for f in "$src"/* "$src"/.[!.]* "$src"/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		[ "$f" = "$src/pg_wal" ] && continue
		cp -a "$f" "$dst"/
	done
	mkdir "$dst/pg_wal"
	for f in "$src"/pg_wal/* "$src"/pg_wal/.[!.]* "$src"/pg_wal/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		n=${f##*/}
		if [ ${#n} -eq 24 ] && [ "$n" != "$keep" ] && [ "$n" != "$next" ] && [ -z "$(printf '%s' "$n" | tr -d 0-9A-F)" ] && [ -f "$f" ] && [ ! -L "$f" ]; then
			skipped=$((skipped + 1)) skippedBytes=$((skippedBytes + $(stat -c %s "$f")))
			continue
		fi
		cp -a "$f" "$dst/pg_wal/"
	done
	chown --reference="$src/pg_wal" "$dst/pg_wal"
	chmod --reference="$src/pg_wal" "$dst/pg_wal"
	chown --reference="$src" "$dst"
	chmod --reference="$src" "$dst"
fi
set -- $(manifest "$src") ; want=$(($2 - skipped)) wantBytes=$(($3 - skippedBytes)) wantSha=$4
set -- $(manifest "$dst")
if [ "$2" != "$want" ] || [ "$3" != "$wantBytes" ] || [ "$4" != "$wantSha" ]; then
	echo "the copy does not match the data directory: $2 entries, $3 bytes, pg_control $4; want $want, $wantBytes, $wantSha" >&2
	exit 4
fi
echo "manifest $2 $3 $4"
`

// restoreBackScript puts a copy ($2) back into a data directory ($1) on a
// volume mounted at $3: it copies it into a staging directory on that
// volume, checks the staged copy against the manifest recorded at Take
// ($4 entries, $5 bytes, $6 pg_control's sha256), and only then swaps it
// in by renames (the old files moved aside, the staged ones moved in) and
// removes the old files. It exits 10 when it failed before the swap (the
// data directory untouched), anything else non-zero when the swap failed.
const restoreBackScript = `set -u
export LC_ALL=C
` + restoreManifestScript + `data=$1 spare=$2 vol=$3
stage=$vol/.rehearse-stage old=$vol/.rehearse-old
fail() { echo "$*" >&2; rm -rf -- "$stage"; exit 10; }
rm -rf -- "$stage" "$old" || fail "remove a previous restore's leftovers"
[ -f "$spare/PG_VERSION" ] && [ -f "$spare/global/pg_control" ] || fail "the snapshot's copy is damaged: no PG_VERSION or global/pg_control"
cp -a "$spare" "$stage" || fail "copy the snapshot into $stage failed"
[ -f "$stage/PG_VERSION" ] && [ -f "$stage/global/pg_control" ] || fail "the staged copy is damaged: no PG_VERSION or global/pg_control"
got=$(manifest "$stage") || fail "read the staged copy"
[ "$got" = "manifest $4 $5 $6" ] || fail "the staged copy does not match the snapshot taken ($got; want $4 entries, $5 bytes, pg_control $6)"
set -e
if [ "$data" != "$vol" ]; then
	mv -- "$data" "$old"
	mv -- "$stage" "$data"
else
	mkdir "$old"
	for f in "$data"/* "$data"/.[!.]* "$data"/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		[ "$f" = "$stage" ] || [ "$f" = "$old" ] || mv -- "$f" "$old"/
	done
	for f in "$stage"/* "$stage"/.[!.]* "$stage"/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		mv -- "$f" "$data"/
	done
	chown --reference="$stage" "$data"
	chmod --reference="$stage" "$data"
	rmdir -- "$stage"
fi
rm -rf -- "$old"
`

// restoreParseManifest reads the "manifest ENTRIES BYTES SHA" line.
func restoreParseManifest(out string) (restoreManifest, error) {
	for _, l := range strings.Split(out, "\n") {
		var m restoreManifest
		if n, _ := fmt.Sscanf(l, "manifest %d %d %s", &m.entries, &m.bytes, &m.control); n == 3 && len(m.control) == 64 && m.entries > 0 {
			return m, nil
		}
	}
	return restoreManifest{}, fmt.Errorf("no manifest of the copy in its output: %q", restoreTail(out))
}

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

// takeFiles archives a service's declared paths (and crontabs).
func (s *Snapshot) takeFiles(ctx context.Context, sp *env.ServicePlan, svc *env.Service) error {
	f := &restoreFiles{service: sp.Name, units: sp.Ext.Config.Units}
	roots := slices.Clone(sp.Ext.Config.Files)
	if sp.Ext.Config.Crontab {
		roots = append(roots, restoreCronPaths...)
	}
	vols, err := svc.Container().ImageVolumes(ctx)
	if err != nil {
		return err
	}
	if err := restoreCheckRoots(s.e.Plan.File, sp, roots, vols); err != nil {
		return err
	}
	budget := &configBudget{maxEntries: configMaxEntries, maxBytes: configMaxBytes, what: "files under " + strings.Join(roots, ", ")}
	err = s.phase(sp.Name+": archive files", func() error {
		for _, root := range roots {
			r, err := restoreArchive(ctx, svc, root, budget)
			if err != nil {
				return fmt.Errorf("%s: archive %s: %w", sp.Name, root, err)
			}
			if err := s.holdArchive(int64(len(r.archive))); err != nil {
				return fmt.Errorf("%s: archive %s: %w", sp.Name, root, err)
			}
			f.roots = append(f.roots, r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = append(s.files, f)
	return nil
}

// restoreMaxArchives bounds the archives one snapshot holds in memory,
// summed over its services (each service's reading is bounded on its own
// by configMaxBytes and configMaxEntries).
var restoreMaxArchives int64 = 512 << 20

// holdArchive counts an archive against restoreMaxArchives.
func (s *Snapshot) holdArchive(n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.archived += n
	if s.archived > restoreMaxArchives {
		return fmt.Errorf("the snapshot's archives of declared files exceed %d MiB in memory (summed over every service): declare fewer or smaller paths (x-rehearse config files)", restoreMaxArchives>>20)
	}
	return nil
}

// restoreCheckRoots refuses declared paths that are a mount point or have
// one inside them: Restore removes a path and puts it back, which a mount
// point does not allow (it would be emptied, then the removal fail). The
// mount points are the plan's (volumes, binds, tmpfs) and imageVolumes,
// the VOLUMEs of the image the service runs (env.Container.ImageVolumes):
// the engine mounts an anonymous volume at each, which the plan does not
// list.
func restoreCheckRoots(file string, sp *env.ServicePlan, roots, imageVolumes []string) error {
	targets := slices.Sorted(maps.Keys(sp.Tmpfs))
	for _, m := range sp.Mounts {
		targets = append(targets, m.Target)
	}
	covers := func(root, t string) bool {
		return t == root || root == "/" || strings.HasPrefix(t, root+"/")
	}
	for _, root := range roots {
		root = path.Clean(root)
		for _, t := range targets {
			if t = path.Clean(t); covers(root, t) {
				return fmt.Errorf("%s: declared path %s (x-rehearse config files) is or holds the mount point %s in %s: a snapshot cannot put it back; declare the files inside the mount instead", sp.Name, root, t, file)
			}
		}
		for _, v := range imageVolumes {
			if v = path.Clean(v); covers(root, v) {
				return fmt.Errorf("%s: declared path %s (x-rehearse config files) is or holds %s, a VOLUME of its image %s, where the engine mounts an anonymous volume (service %s in %s): a snapshot cannot put it back; declare the files inside the volume instead, or give the service a named volume there",
					sp.Name, root, v, sp.Image.Ref, sp.Name, file)
			}
		}
	}
	return nil
}

// restoreArchive reads one path of a service into a tar archive whose
// names are relative to the directory above it, as the engine extracts
// them there.
func restoreArchive(ctx context.Context, svc *env.Service, root string, budget *configBudget) (restoreRoot, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	parent := path.Dir(root)
	err := svc.ReadTree(ctx, root, func(h *tar.Header, r io.Reader) error {
		if err := budget.entry(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
			if err := budget.take(h.Size); err != nil {
				return err
			}
		}
		h.Name = strings.TrimPrefix(strings.TrimPrefix(h.Name, parent), "/")
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%q: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
			if _, err := io.Copy(tw, r); err != nil {
				return fmt.Errorf("read %q: %w", h.Name, err)
			}
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return restoreRoot{path: root, absent: true}, nil
	}
	if err != nil {
		return restoreRoot{}, err
	}
	if err := tw.Close(); err != nil {
		return restoreRoot{}, err
	}
	return restoreRoot{path: root, archive: buf.Bytes()}, nil
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
	switch {
	case err != nil && ctx.Err() == nil:
		// The helper could not run (or be waited for): nothing says
		// whether it swapped.
		return err
	case err != nil:
		return &restoreSwapFailed{err}
	case res.ExitCode == 10:
		return fmt.Errorf("%s: copy back refused, the data directory is untouched: %s", svc.Name, restoreTail(res.Stderr))
	case res.ExitCode != 0:
		return &restoreSwapFailed{fmt.Errorf("%s: copy back failed while swapping the copy in (exit %d): %s", svc.Name, res.ExitCode, restoreTail(res.Stderr))}
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

// restoreFiles puts one service's archived paths back, then its units'
// states.
func (s *Snapshot) restoreFiles(ctx context.Context, f *restoreFiles) error {
	svc := s.e.Service(f.service)
	if svc == nil {
		return fmt.Errorf("service %s is not running", f.service)
	}
	// What changed, for the units to restart: the declared files' items
	// now against the snapshot's.
	var changed []string
	err := s.phase(f.service+": compare files", func() error {
		if !f.units {
			return nil
		}
		spec := s.e.Plan.Service(f.service).Ext.Config
		if len(spec.Files) == 0 {
			return nil
		}
		now, err := configFiles(ctx, svc, spec.Files)
		if err != nil {
			return err
		}
		for i := range now {
			now[i].Service = f.service
		}
		was := &ConfigPrint{}
		for _, it := range s.config.Items {
			if it.Service == f.service && strings.HasPrefix(it.Name, "/") {
				was.Items = append(was.Items, it)
			}
		}
		for _, c := range was.Diff(&ConfigPrint{Items: configNumber(now)}) {
			changed = append(changed, c.Item)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = s.phase(f.service+": put files back", func() error {
		for _, r := range f.roots {
			cctx, cancel := context.WithTimeout(ctx, restoreCmdTimeout)
			_, err := configExec(cctx, svc, "sh", "-c", `rm -rf -- "$1" && mkdir -p -- "$2"`, "sh", r.path, path.Dir(r.path))
			cancel()
			if err != nil {
				return fmt.Errorf("remove %s: %w", r.path, err)
			}
			if r.absent {
				continue
			}
			if err := svc.ExtractTree(ctx, path.Dir(r.path), bytes.NewReader(r.archive)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || !f.units {
		return err
	}
	return s.restoreUnits(ctx, svc, changed)
}

// restoreUnits reloads systemd and brings each unit back to the state and
// enablement the snapshot recorded; a unit active at both ends restarts
// when a path it names lies under a changed one.
func (s *Snapshot) restoreUnits(ctx context.Context, svc *env.Service, changed []string) error {
	run := func(args ...string) error {
		cctx, cancel := context.WithTimeout(ctx, restoreCmdTimeout)
		defer cancel()
		_, err := configExec(cctx, svc, append([]string{"systemctl", "--no-ask-password"}, args...)...)
		return err
	}
	if err := s.phase(svc.Name+": daemon-reload", func() error { return run("daemon-reload") }); err != nil {
		return err
	}
	was := map[string]ConfigItem{}
	for _, it := range s.config.Items {
		if it.Service == svc.Name && strings.HasPrefix(it.Name, "unit ") {
			was[strings.TrimPrefix(it.Name, "unit ")] = it
		}
	}
	nowItems, err := configUnits(ctx, svc)
	if err != nil {
		return err
	}
	now := map[string]ConfigItem{}
	for _, it := range nowItems {
		now[strings.TrimPrefix(it.Name, "unit ")] = it
	}
	var errs []error
	// Units the snapshot did not have: stopped if they run.
	for _, u := range slices.Sorted(maps.Keys(now)) {
		if _, ok := was[u]; !ok && restoreActive(restoreAttr(now[u], "state")) {
			errs = append(errs, run("stop", "--", u))
		}
	}
	for _, u := range slices.Sorted(maps.Keys(was)) {
		want, cur := was[u], now[u]
		wantEn, curEn := restoreAttr(want, "enabled"), restoreAttr(cur, "enabled")
		if wantEn != curEn {
			if curEn == "masked" {
				errs = append(errs, run("unmask", "--", u))
			}
			switch wantEn {
			case "enabled":
				errs = append(errs, run("enable", "--", u))
			case "disabled":
				errs = append(errs, run("disable", "--", u))
			case "masked":
				errs = append(errs, run("mask", "--", u))
			}
		}
		wantSt, curSt := restoreAttr(want, "state"), restoreAttr(cur, "state")
		switch {
		case wantSt == "active" && curSt != "active":
			if curSt == "failed" {
				errs = append(errs, run("reset-failed", "--", u))
			}
			errs = append(errs, run("start", "--", u))
		case wantSt == "active":
			if len(changed) > 0 {
				affected, err := restoreUnitAffected(ctx, svc, u, changed)
				if err == nil && affected {
					err = run("restart", "--", u)
				}
				errs = append(errs, err)
			}
		case !restoreActive(wantSt) && restoreActive(curSt):
			errs = append(errs, run("stop", "--", u))
		}
	}
	return errors.Join(errs...)
}

func restoreActive(state string) bool {
	return state == "active" || state == "activating" || state == "reloading"
}

func restoreAttr(it ConfigItem, name string) string {
	for _, a := range it.Attrs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// restoreUnitPathRE finds absolute paths in systemctl show's values.
var restoreUnitPathRE = regexp.MustCompile(`(?:^|[\s=])(/[^\s;]+)`)

// restoreUnitAffected reports whether a unit names a path under (or
// above) one that changed: its unit file, drop-ins, environment files,
// and the paths in its commands.
func restoreUnitAffected(ctx context.Context, svc *env.Service, unit string, changed []string) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, restoreCmdTimeout)
	defer cancel()
	out, err := configExec(cctx, svc, "systemctl", "show", "--value",
		"-p", "FragmentPath", "-p", "DropInPaths", "-p", "EnvironmentFiles",
		"-p", "ExecStartPre", "-p", "ExecStart", "-p", "ExecStartPost", "-p", "ExecReload", "--", unit)
	if err != nil {
		return false, err
	}
	for _, m := range restoreUnitPathRE.FindAllStringSubmatch(out, -1) {
		p := path.Clean(m[1])
		for _, c := range changed {
			if p == c || strings.HasPrefix(p, c+"/") || strings.HasPrefix(c, p+"/") {
				return true, nil
			}
		}
	}
	return false, nil
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

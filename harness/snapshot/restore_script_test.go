package snapshot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rehearse/rehearse/harness/env"
)

// restoreFakeCluster writes a data directory with a pg_control (version
// 1500, shut down, redo in segment 3 of timeline 1, 16MiB segments) and
// WAL segments 1-5.
func restoreFakeCluster(t *testing.T, dir string) {
	t.Helper()
	ctl := make([]byte, 8192)
	binary.LittleEndian.PutUint32(ctl[8:], 1500)
	binary.LittleEndian.PutUint32(ctl[16:], 1)
	binary.LittleEndian.PutUint64(ctl[40:], 3<<24+0x28)
	binary.LittleEndian.PutUint32(ctl[48:], 1)
	for name, content := range map[string]string{
		"PG_VERSION":                      "15\n",
		"global/pg_control":               string(ctl),
		"base/1/1259":                     "catalog",
		"pg_tblspc/.keep":                 "",
		"pg_replslot/.keep":               "",
		"pg_wal/archive_status/.keep":     "",
		"pg_wal/000000010000000000000001": "old",
		"pg_wal/000000010000000000000002": "old",
		"pg_wal/000000010000000000000003": "redo",
		"pg_wal/000000010000000000000004": "next",
		"pg_wal/000000010000000000000005": "ahead",
		"pg_wal/00000002.history":         "history",
		"postgresql.auto.conf":            "# x\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Empty the marker directories (kept only to exist).
	os.Remove(filepath.Join(dir, "pg_tblspc/.keep"))
	os.Remove(filepath.Join(dir, "pg_replslot/.keep"))
}

func restoreSh(t *testing.T, script string, args ...string) (string, string, int) {
	t.Helper()
	return restoreShAs(t, nil, script, args...)
}

// restoreShAs runs a script under sh, as cred when it is not nil.
func restoreShAs(t *testing.T, cred *syscall.Credential, script string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestSnapshotCopyScript runs the copy helper's script under sh: it keeps
// only the WAL a clean shutdown needs, prints a manifest that matches the
// copy, and refuses pg_wal as a link and tablespaces.
func TestSnapshotCopyScript(t *testing.T) {
	tmp := t.TempDir()
	src, dst := filepath.Join(tmp, "src"), filepath.Join(tmp, "dst")
	restoreFakeCluster(t, src)
	out, stderr, code := restoreSh(t, restoreCopyScript, src, dst, "16777216")
	if code != 0 {
		t.Fatalf("copy: exit %d: %s", code, stderr)
	}
	m, err := restoreParseManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"PG_VERSION", "global/pg_control", "base/1/1259", "pg_wal/000000010000000000000003", "pg_wal/000000010000000000000004", "pg_wal/00000002.history", "pg_wal/archive_status", "pg_tblspc"} {
		if _, err := os.Lstat(filepath.Join(dst, f)); err != nil {
			t.Errorf("the copy lacks %s: %v", f, err)
		}
	}
	for _, f := range []string{"pg_wal/000000010000000000000001", "pg_wal/000000010000000000000002", "pg_wal/000000010000000000000005"} {
		if _, err := os.Lstat(filepath.Join(dst, f)); err == nil {
			t.Errorf("the copy has %s, a segment the shutdown checkpoint does not need", f)
		}
	}
	if m.entries != 16 || m.bytes != 8192+3+7+4+4+7+4 {
		t.Errorf("manifest %+v, want 16 entries and %d bytes", m, 8192+3+7+4+4+7+4)
	}

	// pg_wal as a link: refused, whatever it points to.
	wal := filepath.Join(tmp, "wal")
	os.MkdirAll(wal, 0o700)
	os.WriteFile(filepath.Join(wal, "000000010000000000000003"), []byte("redo"), 0o600)
	linked := filepath.Join(tmp, "linked")
	restoreFakeCluster(t, linked)
	os.RemoveAll(filepath.Join(linked, "pg_wal"))
	if err := os.Symlink(wal, filepath.Join(linked, "pg_wal")); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := restoreSh(t, restoreCopyScript, linked, filepath.Join(tmp, "dst2"), "16777216"); code == 0 || !strings.Contains(stderr, "not supported: pg_wal is a link") {
		t.Errorf("pg_wal as a link: exit %d, %q", code, stderr)
	}
	// A tablespace: refused.
	ts := filepath.Join(tmp, "ts")
	restoreFakeCluster(t, ts)
	os.Symlink(wal, filepath.Join(ts, "pg_tblspc", "16384"))
	if _, stderr, code := restoreSh(t, restoreCopyScript, ts, filepath.Join(tmp, "dst3"), "16777216"); code == 0 || !strings.Contains(stderr, "not supported: tablespaces present") {
		t.Errorf("a tablespace: exit %d, %q", code, stderr)
	}
	// A replication slot: every segment is kept.
	slot := filepath.Join(tmp, "slot")
	restoreFakeCluster(t, slot)
	os.MkdirAll(filepath.Join(slot, "pg_replslot", "s1"), 0o700)
	if _, stderr, code := restoreSh(t, restoreCopyScript, slot, filepath.Join(tmp, "dst4"), "16777216"); code != 0 {
		t.Errorf("with a slot: exit %d, %s", code, stderr)
	} else if _, err := os.Stat(filepath.Join(tmp, "dst4", "pg_wal", "000000010000000000000001")); err != nil {
		t.Errorf("with a replication slot an old segment was left out: %v", err)
	}
}

// TestSnapshotCopyBackScript runs the copy-back script under sh: a damaged
// copy, or one not matching its manifest, is refused with
// restoreBackDamaged; a failure of the environment before the swap (a
// leftover it cannot remove, a volume it cannot write) with
// restoreBackUntouched; either way the data directory is untouched. A
// good copy is swapped in, whether the data directory is the volume's
// root or below it, and nothing of the staging is left.
func TestSnapshotCopyBackScript(t *testing.T) {
	for _, rel := range []string{"", "pgdata"} {
		tmp := t.TempDir()
		vol := filepath.Join(tmp, "vol")
		data := filepath.Join(vol, rel)
		restoreFakeCluster(t, data)
		os.WriteFile(filepath.Join(data, "base/1/1259"), []byte("live"), 0o600)
		os.WriteFile(filepath.Join(data, "added-after"), []byte("x"), 0o600)
		src, spare := filepath.Join(tmp, "src"), filepath.Join(tmp, "spare")
		restoreFakeCluster(t, src)
		out, stderr, code := restoreSh(t, restoreCopyScript, src, spare, "16777216")
		if code != 0 {
			t.Fatalf("copy: %s", stderr)
		}
		m, err := restoreParseManifest(out)
		if err != nil {
			t.Fatal(err)
		}
		args := func(m restoreManifest) []string {
			return []string{data, spare, vol, itoa(m.entries), itoa(m.bytes), m.control}
		}
		// A copy that does not match what Take recorded: refused.
		bad := m
		bad.bytes++
		if _, stderr, code := restoreSh(t, restoreBackScript, args(bad)...); code != restoreBackDamaged || !strings.Contains(stderr, "does not match") {
			t.Errorf("rel %q: a copy not matching its manifest: exit %d, %q", rel, code, stderr)
		}
		// A damaged copy: refused.
		os.Rename(filepath.Join(spare, "global/pg_control"), filepath.Join(tmp, "ctl"))
		if _, stderr, code := restoreSh(t, restoreBackScript, args(m)...); code != restoreBackDamaged || !strings.Contains(stderr, "pg_control") {
			t.Errorf("rel %q: a copy without pg_control: exit %d, %q", rel, code, stderr)
		}
		os.Rename(filepath.Join(tmp, "ctl"), filepath.Join(spare, "global/pg_control"))
		// The environment fails before the swap, the copy being good: a
		// previous restore's leftover it cannot remove, a volume it cannot
		// write.
		leftover := filepath.Join(vol, ".rehearse-old")
		if err := os.MkdirAll(leftover, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(leftover, "x"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		restoreUnwritable(t, tmp, leftover, func(cred *syscall.Credential) {
			if _, stderr, code := restoreShAs(t, cred, restoreBackScript, args(m)...); code != restoreBackUntouched || !strings.Contains(stderr, "leftovers") {
				t.Errorf("rel %q: a leftover that cannot be removed: exit %d, %q", rel, code, stderr)
			}
		})
		if _, err := os.Stat(filepath.Join(leftover, "x")); err != nil {
			t.Errorf("rel %q: the leftover that could not be removed: %v", rel, err)
		}
		os.RemoveAll(leftover)
		restoreUnwritable(t, tmp, vol, func(cred *syscall.Credential) {
			if _, stderr, code := restoreShAs(t, cred, restoreBackScript, args(m)...); code != restoreBackUntouched || !strings.Contains(stderr, "copy the snapshot into") {
				t.Errorf("rel %q: a volume that cannot be written: exit %d, %q", rel, code, stderr)
			}
		})
		if b, _ := os.ReadFile(filepath.Join(data, "base/1/1259")); string(b) != "live" {
			t.Errorf("rel %q: after a refused copy back the live data is %q", rel, b)
		}
		if _, err := os.Stat(filepath.Join(vol, ".rehearse-stage")); err == nil {
			t.Errorf("rel %q: a refused copy back left its staging directory", rel)
		}
		if _, stderr, code := restoreSh(t, restoreBackScript, args(m)...); code != 0 {
			t.Fatalf("rel %q: copy back: exit %d: %s", rel, code, stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(data, "base/1/1259")); string(b) != "catalog" {
			t.Errorf("rel %q: after the copy back base/1/1259 is %q", rel, b)
		}
		for _, gone := range []string{filepath.Join(data, "added-after"), filepath.Join(vol, ".rehearse-stage"), filepath.Join(vol, ".rehearse-old")} {
			if _, err := os.Lstat(gone); err == nil {
				t.Errorf("rel %q: %s is left after the copy back", rel, gone)
			}
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// restoreUnwritable runs fn with dir (under tmp) unwritable to the user fn
// names: the test's own when it is not root; when it is root (who writes
// anything), nobody (65534), to whom tmp is handed over first.
func restoreUnwritable(t *testing.T, tmp, dir string, fn func(*syscall.Credential)) {
	t.Helper()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		err := filepath.Walk(tmp, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, 65534, 65534)
		})
		if err != nil {
			t.Fatal(err)
		}
		// The directories above tmp (t.TempDir's, mode 0700) let nobody pass.
		for d := filepath.Dir(tmp); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, fi.Mode().Perm())
	fn(cred)
}

// TestSnapshotPlanRules: the data directory must lie on a named volume
// with no other mount inside it; a declared path may not be or hold a
// mount point; one rule says which services are PostgreSQL's; the
// archives a snapshot holds are bounded over all its services.
func TestSnapshotPlanRules(t *testing.T) {
	db := &env.ServicePlan{Name: "db", Mounts: []env.Mount{
		{Type: "volume", Source: "dbdata", Target: "/var/lib/postgresql/data"},
		{Type: "bind", Source: "/proj/conf", Target: "/etc/pgconf"},
		{Type: "bind", Source: "/proj/pgdata", Target: "/srv/pg"},
	}, Tmpfs: map[string]string{"/run/pg": ""}}
	pg, err := restoreLocate("compose.yaml", db, "/var/lib/postgresql/data/pgdata")
	if err != nil || pg.volume != "dbdata" || pg.rel != "pgdata" || pg.helperDir() != "/rehearse-data/pgdata" {
		t.Errorf("restoreLocate on the volume: %+v, %v", pg, err)
	}
	if pg, err := restoreLocate("compose.yaml", db, "/var/lib/postgresql/data"); err != nil || pg.rel != "" || pg.helperDir() != "/rehearse-data" {
		t.Errorf("restoreLocate at the volume's root: %+v, %v", pg, err)
	}
	for dir, want := range map[string]string{
		"/srv/pg/data": "lies on a bind mount (/proj/pgdata) in compose.yaml",
		"/run/pg/data": "lies on no volume of compose.yaml",
		"/data":        "lies on no volume",
	} {
		if _, err := restoreLocate("compose.yaml", db, dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("restoreLocate(%s) = %v, want %q", dir, err, want)
		}
	}
	walVol := &env.ServicePlan{Name: "db", Mounts: []env.Mount{
		{Type: "volume", Source: "dbdata", Target: "/pg"},
		{Type: "volume", Source: "wal", Target: "/pg/data/pg_wal"},
	}}
	if _, err := restoreLocate("compose.yaml", walVol, "/pg/data"); err == nil || !strings.Contains(err.Error(), "another mount inside it") {
		t.Errorf("a mount inside the data directory: %v", err)
	}

	db.Image.Ref = "rehearse/db:1"
	imageVols := []string{"/var/lib/app/state", "/opt/cache"}
	if err := restoreCheckRoots("compose.yaml", db, []string{"/etc/app", "/etc/pgconf/x.conf", "/var/lib/app/state/x.conf", "/opt/cachex"}, imageVols); err != nil {
		t.Errorf("paths that are no mount point: %v", err)
	}
	for _, root := range []string{"/etc/pgconf", "/etc", "/run/pg", "/"} {
		if err := restoreCheckRoots("compose.yaml", db, []string{root}, imageVols); err == nil || !strings.Contains(err.Error(), "mount point") {
			t.Errorf("declared path %s: %v", root, err)
		}
	}
	// The image's VOLUMEs, which the plan does not list.
	for root, vol := range map[string]string{"/var/lib/app": "/var/lib/app/state", "/var/lib/app/state": "/var/lib/app/state", "/opt/cache/": "/opt/cache", "/opt": "/opt/cache"} {
		err := restoreCheckRoots("compose.yaml", db, []string{root}, imageVols)
		want := "db: declared path " + path.Clean(root) + " (x-rehearse config files) is or holds " + vol + ", a VOLUME of its image rehearse/db:1, where the engine mounts an anonymous volume (service db in compose.yaml)"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("declared path %s: %v, want %q", root, err, want)
		}
	}

	for _, c := range []struct {
		sp   *env.ServicePlan
		want bool
	}{
		{&env.ServicePlan{Ext: env.Extension{Config: &env.ConfigSpec{Roles: true}}}, true},
		{&env.ServicePlan{Ext: env.Extension{Config: &env.ConfigSpec{Queries: map[string]string{"f": "SELECT 1"}}}}, true},
		{&env.ServicePlan{Ports: []env.Port{{Target: 5432, Protocol: "tcp"}}}, true},
		{&env.ServicePlan{Expose: []env.Port{{Target: 5432, Protocol: "tcp"}}}, false},
		{&env.ServicePlan{Ports: []env.Port{{Target: 5432, Protocol: "udp"}}}, false},
	} {
		if got := IsPostgres(c.sp); got != c.want {
			t.Errorf("IsPostgres(%+v) = %v", c.sp, got)
		}
	}

	defer func(n int64) { restoreMaxArchives = n }(restoreMaxArchives)
	restoreMaxArchives = 100
	s := &Snapshot{}
	if err := s.holdArchive(60); err != nil {
		t.Fatal(err)
	}
	if err := s.holdArchive(60); err == nil || !strings.Contains(err.Error(), "summed over every service") {
		t.Errorf("archives over the snapshot's bound: %v", err)
	}
}

// TestRestoreDatabaseChanges checks a database missing after a restore,
// and one created after the snapshot that a restore left, are each named
// by service and database.
func TestRestoreDatabaseChanges(t *testing.T) {
	got := restoreDatabaseChanges("db", []string{"billing", "gone", "postgres"}, []string{"billing", "postgres", "scratch"})
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(got)) {
		for _, f := range got[k].Findings {
			lines = append(lines, k+": "+f.String()+" ("+f.Kind+")")
		}
	}
	want := []string{
		"db/gone: database: in the snapshot, missing after the restore (database)",
		"db/scratch: database: created after the snapshot, still there after the restore (database)",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if got := restoreDatabaseChanges("db", []string{"billing"}, []string{"billing"}); len(got) != 0 {
		t.Errorf("the same databases: %v", got)
	}
}

// TestRestoreBackOutcome: a copy-back whose helper never ran, or whose
// script refused before the swap, leaves the data directory untouched
// (the error says whether the copy is damaged or the environment failed);
// a helper that may have run (any other error, a cancelled context) or a
// script that failed in the swap may have half-swapped it.
func TestRestoreBackOutcome(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	notRun := fmt.Errorf("run on the volumes of db: %w: %w", env.ErrHelperNotRun, errors.New("create helper: no space"))
	for _, c := range []struct {
		name string
		ctx  context.Context
		res  env.ExecResult
		err  error
		swap bool   // a *restoreSwapFailed
		want string // in the error
	}{
		{"swapped", live, env.ExecResult{}, nil, false, ""},
		{"helper never ran", live, env.ExecResult{}, notRun, false, "the helper did not run"},
		{"helper never ran, context cancelled", cancelled, env.ExecResult{}, notRun, true, "half-swapped"},
		{"wait for the helper failed", live, env.ExecResult{}, errors.New("wait helper: connection reset"), true, "half-swapped"},
		{"copy damaged", live, env.ExecResult{ExitCode: restoreBackDamaged, Stderr: "the staged copy does not match"}, nil, false, "db: copy back refused, the snapshot's copy is damaged (the data directory is untouched): the staged copy does not match"},
		{"environment failed", live, env.ExecResult{ExitCode: restoreBackUntouched, Stderr: "copy the snapshot into /rehearse-data/.rehearse-stage failed"}, nil, false, "db: copy back failed before the swap, the copy not judged damaged (the data directory is untouched): copy the snapshot into"},
		{"swap failed", live, env.ExecResult{ExitCode: 1, Stderr: "mv: cannot move"}, nil, true, "while swapping the copy in (exit 1)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := restoreBackOutcome(c.ctx, "db", c.res, c.err)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var swap *restoreSwapFailed
			if err == nil || errors.As(err, &swap) != c.swap || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v (half-swapped: %v), want half-swapped %v and %q", err, swap != nil, c.swap, c.want)
			}
		})
	}
}

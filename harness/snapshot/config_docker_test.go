package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/internal/envtest"
)

const configBillingCompose = "../../fixtures/billing/compose.yaml"

// TestConfigFingerprint changes the bundled world one thing at a time and
// checks that the diff names exactly that thing, and that putting it back
// leaves no diff.
func TestConfigFingerprint(t *testing.T) {
	e := envtest.Start(t, configBillingCompose)
	ctx := context.Background()
	take := func(t *testing.T) *ConfigPrint {
		t.Helper()
		p, err := ConfigAll(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := take(t)
	if want := []string{"billing", "db", "payments"}; !slices.Equal(base.Services, want) {
		t.Errorf("fingerprinted %q, want %q", base.Services, want)
	}
	// Each part found what it should: the print is not trivially empty.
	wantItems := map[string][]ConfigAttr{
		"billing /etc/billing":                 {{"mode", "0755"}, {"owner", "root:billing"}, {"type", "dir"}},
		"billing /etc/billing/billing.conf":    {{"mode", "0640"}, {"owner", "root:billing"}},
		"billing /opt/billing/bin":             {{"owner", "deploy:deploy"}, {"type", "dir"}},
		"billing /opt/billing/bin/billing-api": {{"type", "file"}},
		"billing unit billing-api.service":     {{"enabled", "enabled"}, {"state", "active"}},
		"db role postgres":                     {{"attributes", "superuser, create role, create db, login, replication, bypass rls"}},
	}
	for name, attrs := range wantItems {
		it := configFind(base, name)
		if it == nil {
			t.Errorf("no item %q in the print:\n%s", name, configDump(base))
			continue
		}
		for _, a := range attrs {
			if !slices.Contains(it.Attrs, a) {
				t.Errorf("%s has %q, want %s %s", name, it.Attrs, a.Name, a.Value)
			}
		}
	}
	if it := configFind(base, "billing /etc/billing/billing.conf"); it != nil && len(configAttr(it, "sha256")) != 64 {
		t.Errorf("billing.conf has no sha256: %q", it.Attrs)
	}

	// Untouched: nothing changes, twice in a row.
	t.Run("untouched", func(t *testing.T) {
		second := take(t)
		third := take(t)
		if d := base.Diff(second); len(d) != 0 {
			t.Errorf("an untouched world diffs:\n%s", d)
		}
		if d := second.Diff(third); len(d) != 0 {
			t.Errorf("an untouched world diffs the second time:\n%s", d)
		}
	})

	billing, payments := e.Service("billing"), e.Service("payments")
	const conf = "/etc/billing/billing.conf"
	// sh -c with the path as an argument, never in the script.
	run := func(t *testing.T, s *env.Service, script string, args ...string) {
		t.Helper()
		res, err := s.Exec(ctx, append([]string{"sh", "-c", script, "sh"}, args...))
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%s: %v %d %s", script, err, res.ExitCode, res.Stderr)
		}
	}
	sql := func(t *testing.T, q string) {
		t.Helper()
		conn, err := dataset.Connect(ctx, e, "db", "")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// expect checks that the world now diffs from base by exactly want,
	// then undoes the change and checks that the diff is gone.
	expect := func(t *testing.T, want []string, undo func()) {
		t.Helper()
		if got := base.Diff(take(t)).Lines(); !slices.Equal(got, want) {
			t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		undo()
		if d := base.Diff(take(t)); len(d) != 0 {
			t.Errorf("undone, the world still diffs:\n%s", d)
		}
	}

	t.Run("one byte of a config file", func(t *testing.T) {
		orig, err := billing.CopyOut(ctx, conf)
		if err != nil {
			t.Fatal(err)
		}
		// Overwrite byte 20 in place: owner and mode stay.
		patch := `printf %s "$2" | dd of="$1" bs=1 seek=20 count=1 conv=notrunc status=none`
		run(t, billing, patch, conf, string(orig[20]+1))
		expect(t, []string{"billing: /etc/billing/billing.conf: sha256 changed"}, func() {
			run(t, billing, patch, conf, string(orig[20]))
		})
	})

	t.Run("mode", func(t *testing.T) {
		run(t, billing, `chmod 0644 "$1"`, conf)
		expect(t, []string{"billing: /etc/billing/billing.conf: mode 0640 -> 0644"}, func() {
			run(t, billing, `chmod 0640 "$1"`, conf)
		})
	})

	t.Run("owner and a new file", func(t *testing.T) {
		run(t, billing, `chown deploy "$1" && echo x >"$2"`, conf, "/opt/billing/bin/migrate.sh")
		expect(t, []string{
			"billing: /etc/billing/billing.conf: owner root:billing -> deploy:billing",
			"billing: /opt/billing/bin/migrate.sh added",
		}, func() {
			run(t, billing, `chown root "$1" && rm "$2"`, conf, "/opt/billing/bin/migrate.sh")
		})
	})

	t.Run("links and strange names", func(t *testing.T) {
		run(t, billing, `ln -s /etc/shadow "$1" && touch "$2"`, "/etc/billing/shadow", "/etc/billing/x\nbilling: fine")
		after := take(t)
		it := configFind(after, "billing /etc/billing/shadow")
		if it == nil || configAttr(it, "type") != "link" || configAttr(it, "target") != "/etc/shadow" || configAttr(it, "sha256") != "" {
			t.Errorf("a link is recorded as %+v, want a link to /etc/shadow, not followed", it)
		}
		expect(t, []string{
			"billing: /etc/billing/shadow added",
			`billing: "/etc/billing/x\nbilling: fine" added`,
		}, func() {
			run(t, billing, `rm "$1" "$2"`, "/etc/billing/shadow", "/etc/billing/x\nbilling: fine")
		})
	})

	// What a hostile service could plant fails the fingerprint at the
	// bounds, without reading it all.
	t.Run("bounds", func(t *testing.T) {
		run(t, billing, `truncate -s 300M "$1"`, "/opt/billing/bin/huge")
		_, err := Config(ctx, e, "billing")
		if err == nil || !strings.Contains(err.Error(), "config fingerprint of billing: files: more than 256 MiB in files under /etc/billing, /opt/billing/bin") {
			t.Errorf("a 300 MiB file: %v", err)
		}
		// The bound on entries, lowered: making 20,000 files takes long.
		defer func(n int64) { configMaxEntries = n }(configMaxEntries)
		configMaxEntries = 100
		run(t, billing, `rm "$1" && mkdir "$2" && cd "$2" && seq 101 | xargs touch`, "/opt/billing/bin/huge", "/etc/billing/many")
		_, err = Config(ctx, e, "billing")
		if err == nil || !strings.Contains(err.Error(), "files: more than 100 files") {
			t.Errorf("too many files: %v", err)
		}
		configMaxEntries = 20000
		run(t, billing, `rm -r "$1"`, "/etc/billing/many")
		if d := base.Diff(take(t)); len(d) != 0 {
			t.Errorf("cleaned up, the world still diffs:\n%s", d)
		}
	})

	t.Run("crontab", func(t *testing.T) {
		run(t, billing, `mkdir -p /etc/cron.d && printf '# nightly\nMAILTO=""\n0 3 * * * deploy /opt/billing/bin/billing-api -purge\n' >/etc/cron.d/billing`)
		expect(t, []string{
			`billing: crontab /etc/cron.d/billing: 0 3 * * * deploy /opt/billing/bin/billing-api -purge added`,
			`billing: crontab /etc/cron.d/billing: MAILTO="" added`,
		}, func() {
			run(t, billing, `rm /etc/cron.d/billing`)
		})
	})

	t.Run("role", func(t *testing.T) {
		sql(t, "CREATE ROLE billing_migrator_tmp LOGIN")
		expect(t, []string{"db: role billing_migrator_tmp added"}, func() {
			sql(t, "DROP ROLE billing_migrator_tmp")
		})
	})

	t.Run("feature flag", func(t *testing.T) {
		sql(t, "INSERT INTO feature_flags VALUES ('new_invoices', false)")
		defer sql(t, "DELETE FROM feature_flags WHERE name = 'new_invoices'")
		before := take(t)
		if it := configFind(before, "db feature_flags new_invoices"); it == nil || configAttr(it, "enabled") != "f" {
			t.Fatalf("the flag's item: %+v", it)
		}
		sql(t, "UPDATE feature_flags SET enabled = true WHERE name = 'new_invoices'")
		if got, want := before.Diff(take(t)).String(), "db: feature_flags new_invoices: enabled f -> t"; got != want {
			t.Errorf("diff %q, want %q", got, want)
		}
	})

	t.Run("webhook", func(t *testing.T) {
		ep, err := payments.Endpoint("8090")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"url": "http://billing:8080/payments/callback", "events": []string{"invoice.paid"}})
		resp, err := http.Post("http://"+ep+"/webhooks", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var h struct{ ID int }
		json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || h.ID == 0 {
			t.Fatalf("register: %s %+v", resp.Status, h)
		}
		expect(t, []string{"payments: webhooks http://billing:8080/payments/callback added"}, func() {
			req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("http://%s/webhooks/%d", ep, h.ID), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		})
	})

	t.Run("stopped unit", func(t *testing.T) {
		run(t, billing, `systemctl stop billing-api.service`)
		expect(t, []string{"billing: unit billing-api.service: state active -> inactive"}, func() {
			run(t, billing, `systemctl start billing-api.service`)
		})
	})

}

func configFind(p *ConfigPrint, serviceAndName string) *ConfigItem {
	for i, it := range p.Items {
		if it.Service+" "+it.Name == serviceAndName {
			return &p.Items[i]
		}
	}
	return nil
}

func configAttr(it *ConfigItem, name string) string {
	for _, a := range it.Attrs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

func configDump(p *ConfigPrint) string {
	var b strings.Builder
	for _, it := range p.Items {
		fmt.Fprintf(&b, "%s: %s %q\n", it.Service, it.Name, it.Attrs)
	}
	return b.String()
}

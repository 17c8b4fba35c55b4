package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/internal/envtest"
)

// restoreTestScale is the invoices the correctness test seeds: enough rows
// for real tables, little enough to seed in seconds.
const restoreTestScale = 20_000

// TestSnapshotRestore snapshots the bundled world, changes its data,
// schema, roles, configuration files (content, mode, an added file), units
// and a webhook, restores, and checks that both fingerprints equal those
// taken at the snapshot; twice; then that a snapshot taken with a webhook
// registered (state in memory, lost on restart) fails its restore naming
// it; and that nothing is left after Drop and Down.
func TestSnapshotRestore(t *testing.T) {
	e := envtest.Start(t, configBillingCompose)
	ctx := context.Background()
	cli := enginetest.Connect(t)
	spec, err := dataset.Find("billing", "../../fixtures/billing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Load(ctx, e, spec, restoreTestScale); err != nil {
		t.Fatal(err)
	}
	// A second database of the cluster: Take prints it, Restore checks it.
	execIn(t, e, "", `CREATE DATABASE ledger`)
	execIn(t, e, "ledger", `CREATE TABLE entries (id int PRIMARY KEY, note text)`, `INSERT INTO entries SELECT g, 'n' || g FROM generate_series(1, 100) g`)
	_, _, volsBefore := enginetest.Resources(t, cli, e.RunID)

	snap, err := Take(ctx, e, "before")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snap.Drop(context.Background()) })
	if _, _, vols := enginetest.Resources(t, cli, e.RunID); vols != volsBefore+1 {
		t.Errorf("after Take the run has %d volumes, want %d (one copy of db's data)", vols, volsBefore+1)
	}
	// The data fingerprint is taken once every service is ready (the
	// dependents of the restarted db reconnected, whatever they write then
	// written), as Restore checks against it.
	takeReady, takePrinted := -1, -1
	for i, p := range snap.Phases() {
		t.Logf("take: %s %s", p.Name, p.Duration.Round(time.Millisecond))
		switch p.Name {
		case "ready":
			takeReady = i
		case "db: data fingerprint":
			takePrinted = i
		}
	}
	if takeReady < 0 || takePrinted < takeReady {
		t.Errorf("take phases: ready at %d, db's data fingerprint at %d: the fingerprint must come after every service is ready", takeReady, takePrinted)
	}
	cfg0, err := ConfigAll(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	data0, err := Data(ctx, e, "db", DataWithoutKeys())
	if err != nil {
		t.Fatal(err)
	}
	ledger0, err := Data(ctx, e, "db", DataWithoutKeys(), DataDatabase("ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(snap.data["db"])); !slices.Equal(got, []string{"billing", "ledger", "postgres"}) {
		t.Errorf("Take printed the databases %q of db, want billing, ledger and postgres (templates left out)", got)
	}
	databases := func(t *testing.T) string {
		t.Helper()
		dbs, err := dataset.QueryValue(ctx, e, "db", "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database WHERE NOT datistemplate")
		if err != nil {
			t.Fatal(err)
		}
		return dbs
	}

	billing, payments := e.Service("billing"), e.Service("payments")
	sql := func(t *testing.T, qs ...string) {
		t.Helper()
		conn, err := dataset.Connect(ctx, e, "db", "")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, q := range qs {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	run := func(t *testing.T, s *env.Service, script string, args ...string) {
		t.Helper()
		res, err := s.Exec(ctx, append([]string{"sh", "-c", script, "sh"}, args...))
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%s: %v %d %s", script, err, res.ExitCode, res.Stderr)
		}
	}
	webhook := func(t *testing.T, url string) {
		t.Helper()
		ep, err := payments.Endpoint("8090")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"url": url})
		resp, err := http.Post("http://"+ep+"/webhooks", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			t.Fatalf("register webhook: %s", resp.Status)
		}
	}
	// check asserts that the world equals the snapshot by both
	// fingerprints, taken independently of Restore's own check.
	check := func(t *testing.T) {
		t.Helper()
		cfg, err := ConfigAll(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if d := cfg0.Diff(cfg); len(d) != 0 {
			t.Errorf("configuration differs from the snapshot's:\n%s", d)
		}
		for _, p := range []*DataPrint{data0, ledger0} {
			d, err := DiffData(ctx, e, "db", p)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Empty() {
				t.Errorf("data of database %s differs from the snapshot's:\n%s", p.Database, d)
			}
		}
		if got := databases(t); got != "billing ledger postgres" {
			t.Errorf("after the restore db has the databases %q, want billing ledger postgres", got)
		}
	}
	// changed asserts that the world differs (so that a restore has
	// something to do): the diffs name at least these.
	changed := func(t *testing.T, wantConfig, wantData []string) {
		t.Helper()
		cfg, err := ConfigAll(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		got := cfg0.Diff(cfg).String()
		for _, w := range wantConfig {
			if !strings.Contains(got, w) {
				t.Errorf("before the restore the configuration diff lacks %q:\n%s", w, got)
			}
		}
		d, err := DiffData(ctx, e, "db", data0)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wantData {
			if !strings.Contains(d.String(), w) {
				t.Errorf("before the restore the data diff lacks %q:\n%s", w, d)
			}
		}
	}
	restore := func(t *testing.T) {
		t.Helper()
		if err := snap.Restore(ctx); err != nil {
			t.Fatal(err)
		}
		// The data check ends after every service is ready (the
		// dependents reconnected), not before.
		ready, verified := -1, -1
		for i, p := range snap.Phases() {
			t.Logf("restore: %s %s", p.Name, p.Duration.Round(time.Millisecond))
			switch p.Name {
			case "ready":
				ready = i
			case "db: verify data":
				verified = i
			}
		}
		if ready < 0 || verified < ready {
			t.Errorf("restore phases: ready at %d, db's data check at %d: the data check must come after every service is ready", ready, verified)
		}
		check(t)
	}

	t.Run("everything changed", func(t *testing.T) {
		sql(t,
			`UPDATE invoices SET amount_cents = amount_cents + 1 WHERE id <= 10`,
			`DELETE FROM invoice_lines WHERE id <= 5`,
			`INSERT INTO customers (name, email, country) VALUES ('New', 'new@example.com', 'DE')`,
			`DROP INDEX invoices_customer_id`,
			`ALTER TABLE invoices ALTER COLUMN status SET DEFAULT 'draft'`,
			`CREATE ROLE upgrade_tmp LOGIN`,
			`UPDATE feature_flags SET enabled = NOT enabled`,
		)
		const conf = "/etc/billing/billing.conf"
		run(t, billing, `printf X | dd of="$1" bs=1 seek=20 count=1 conv=notrunc status=none && chmod 0644 "$1"`, conf)
		run(t, billing, `echo extra=1 >/etc/billing/extra.conf && echo '* * * * * root true' >/etc/cron.d/upgrade`)
		run(t, billing, `systemctl disable billing-api.service`)
		webhook(t, "http://billing:8080/upgrade-tmp")
		execIn(t, e, "ledger", `UPDATE entries SET note = 'changed' WHERE id = 7`)
		execIn(t, e, "", `CREATE DATABASE scratch`)
		// The restore's own data check sees the other database and the
		// one created since, by service and database.
		diffs, err := snap.verifyData(ctx, "db")
		if err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]string{
			"db/ledger":  "entries: rows: ",
			"db/scratch": "database: created after the snapshot, still there after the restore",
			"db/billing": "invoices: rows: ",
		} {
			if !strings.Contains(diffs[key].String(), want) {
				t.Errorf("before the restore the data check of %s lacks %q: %v", key, want, diffs)
			}
		}
		changed(t, []string{
			"billing: /etc/billing/billing.conf: mode 0640 -> 0644, sha256 changed",
			"billing: /etc/billing/extra.conf added",
			"billing: crontab /etc/cron.d/upgrade: * * * * * root true added",
			"billing: unit billing-api.service: enabled enabled -> disabled",
			"db: role upgrade_tmp added",
			"db: feature_flags",
			"payments: webhooks http://billing:8080/upgrade-tmp added",
		}, []string{"invoices: rows: ", "invoice_lines: rows: ", "customers: rows: ", "index invoices_customer_id", "column status"})
		restore(t)
	})

	t.Run("restored twice", func(t *testing.T) {
		sql(t, `DELETE FROM invoice_lines WHERE id > 100`, `DROP ROLE IF EXISTS upgrade_tmp`, `CREATE ROLE other_tmp`)
		run(t, billing, `rm -rf /etc/billing && systemctl stop billing-api.service`)
		changed(t, []string{"billing: /etc/billing/billing.conf removed", "billing: /etc/billing: ", "billing: unit billing-api.service: state active -> inactive", "db: role other_tmp added"},
			[]string{"invoice_lines: rows: "})
		restore(t)
		// Untouched since: a restore is idempotent.
		restore(t)
		// The API runs the restored program (the unit was restarted or
		// started, and answers).
		if v, err := e.Version(ctx, "billing"); err != nil || v != "2.3" {
			t.Errorf("billing's API reports version %q (%v), want 2.3", v, err)
		}
	})

	t.Run("state in memory the restart cannot give back", func(t *testing.T) {
		webhook(t, "http://billing:8080/kept")
		with, err := Take(ctx, e, "with-webhook")
		if err != nil {
			t.Fatal(err)
		}
		defer with.Drop(ctx)
		webhook(t, "http://billing:8080/another")
		err = with.Restore(ctx)
		var mm *RestoreMismatch
		if !errors.As(err, &mm) {
			t.Fatalf("restore with a webhook lost on restart: %v, want a *RestoreMismatch", err)
		}
		if want := "payments: webhooks http://billing:8080/kept removed"; !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not name %q", err, want)
		}
		if strings.Contains(err.Error(), "another") || len(mm.Data) != 0 {
			t.Errorf("the error names more than the lost webhook: %v", err)
		}
	})

	t.Run("another image is refused before anything stops", func(t *testing.T) {
		was := maps.Clone(snap.images)
		defer func() { snap.images = was }()
		const other = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
		snap.images["db"], snap.images["billing"] = other, other
		sql(t, `INSERT INTO customers (name, email, country) VALUES ('Kept', 'kept@example.com', 'NL')`)
		err := snap.Restore(ctx)
		for _, want := range []string{"refused, nothing was stopped or changed",
			"db runs image " + was["db"] + " (rehearse/billing-db:15) now, " + other + " at the snapshot",
			"billing runs image " + was["billing"] + " (rehearse/billing:2.3) now, " + other + " at the snapshot"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("restore under another image: %v, want it to say %q", err, want)
			}
		}
		for _, p := range snap.Phases() {
			if p.Name != "check images" {
				t.Errorf("the refused restore ran phase %q", p.Name)
			}
		}
		if n, err := dataset.QueryValue(ctx, e, "db", "SELECT count(*) FROM customers WHERE email = 'kept@example.com'"); err != nil || n != "1" {
			t.Errorf("after the refused restore the customer added since is gone (%s, %v): the restore ran", n, err)
		}
	})

	t.Run("a damaged copy is refused, the live data untouched", func(t *testing.T) {
		sql(t, `INSERT INTO customers (name, email, country) VALUES ('After', 'after@example.com', 'FR')`)
		count := func(t *testing.T) string {
			t.Helper()
			n, err := dataset.QueryValue(ctx, e, "db", "SELECT count(*) FROM customers")
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := count(t)
		db := e.Service("db")
		// The copy kept, of the WAL, only what the clean shutdown's
		// checkpoint needs (pg_control read right).
		res, err := db.Container().RunWithVolumes(ctx, image.DebianBase, []string{"sh", "-c", `ls "$1" | grep -c '^[0-9A-F]\{24\}$'`, "sh", env.HelperSparePath + "/data/pg_wal"},
			restoreCapabilities, snap.pg[0].vol)
		if err != nil || (strings.TrimSpace(res.Stdout) != "1" && strings.TrimSpace(res.Stdout) != "2") {
			t.Errorf("WAL segments in the copy: %v, %q %s, want 1 or 2", err, res.Stdout, res.Stderr)
		}
		res, err = db.Container().RunWithVolumes(ctx, image.DebianBase, []string{"rm", "--", env.HelperSparePath + "/data/global/pg_control"},
			restoreCapabilities, snap.pg[0].vol)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("damage the copy: %v, exit %d, %s", err, res.ExitCode, res.Stderr)
		}
		err = snap.Restore(ctx)
		if err == nil || !strings.Contains(err.Error(), "pg_control") || !strings.Contains(err.Error(), "the snapshot's copy is damaged (the data directory is untouched)") {
			t.Errorf("restore from a copy without pg_control: %v, want an error naming pg_control, the damaged copy and the untouched data", err)
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := db.WaitReady(rctx); err != nil {
			t.Fatalf("db is not ready after the refused restore: %v", err)
		}
		if after := count(t); after != before {
			t.Errorf("after the refused restore db has %s customers, had %s", after, before)
		}
	})

	t.Run("drop and down leave nothing", func(t *testing.T) {
		if err := snap.Drop(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, vols := enginetest.Resources(t, cli, e.RunID); vols != volsBefore {
			t.Errorf("after Drop the run has %d volumes, want %d", vols, volsBefore)
		}
		if err := snap.Restore(ctx); err == nil {
			t.Error("a dropped snapshot restored")
		}
		if err := e.Down(ctx); err != nil {
			t.Fatal(err)
		}
		enginetest.AssertGone(t, cli, e.RunID, 30*time.Second)
	})
}

// TestTakeRefusesBadNames checks a name that could not name a volume fails
// before anything is made.
func TestTakeRefusesBadNames(t *testing.T) {
	for _, name := range []string{"", "a/b", "../x", "-x", "x y", strings.Repeat("a", 41)} {
		if _, err := Take(context.Background(), nil, name); err == nil || !strings.Contains(err.Error(), "a name is") {
			t.Errorf("Take(%q): %v, want a name error", name, err)
		}
	}
}

// TestRestoreUnitPaths checks the paths found in systemctl show's values.
func TestRestoreUnitPaths(t *testing.T) {
	out := "/etc/systemd/system/billing-api.service\n\n/etc/billing/billing.env (ignore_errors=no)\n" +
		"{ path=/opt/billing/bin/billing-api ; argv[]=/opt/billing/bin/billing-api -config /etc/billing/billing.conf ; ignore_errors=no ; start_time=[n/a] }\n"
	var got []string
	for _, m := range restoreUnitPathRE.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1])
	}
	want := []string{"/etc/systemd/system/billing-api.service", "/etc/billing/billing.env", "/opt/billing/bin/billing-api",
		"/opt/billing/bin/billing-api", "/etc/billing/billing.conf"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("paths %q, want %q", got, want)
	}
}

// TestRestoreMismatchError checks the error names every difference on one
// line, configuration then data by service.
func TestRestoreMismatchError(t *testing.T) {
	mm := &RestoreMismatch{
		Snapshot: "before",
		Config:   ConfigDiff{{Service: "db", Item: "role tmp", Change: ConfigAdded}},
		Data:     map[string]DataDiff{"db": {Findings: []DataFinding{{Object: "invoices", Kind: "index", Change: "index i dropped"}}}},
	}
	want := `restore of snapshot "before": still different after restoring: db: role tmp added; db: invoices: index i dropped`
	if got := mm.Error(); got != want {
		t.Errorf("error:\n%s\nwant:\n%s", got, want)
	}
}

// TestTakeRefusesImageVolumes checks declared config paths at or above a
// VOLUME of the service's image (an anonymous volume the plan does not
// list) are refused at Take, naming the compose file, service and volume,
// and that files beside them are not.
func TestTakeRefusesImageVolumes(t *testing.T) {
	const file = "testdata/image-volume/compose.yaml"
	e := envtest.Start(t, file)
	ctx := context.Background()
	cli := enginetest.Connect(t)
	_, _, volsBefore := enginetest.Resources(t, cli, e.RunID)
	snap, err := Take(ctx, e, "image-volumes")
	if err == nil {
		snap.Drop(ctx)
		t.Fatal("Take archived paths the engine mounts a volume at")
	}
	for _, want := range []string{
		"above: declared path /etc/app (x-rehearse config files) is or holds /etc/app/data, a VOLUME of its image rehearse-test/snapshot-image-volume:1, where the engine mounts an anonymous volume (service above in " + file + ")",
		"at: declared path /srv/state (x-rehearse config files) is or holds /srv/state, a VOLUME of its image rehearse-test/snapshot-image-volume:1, where the engine mounts an anonymous volume (service at in " + file + ")",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Take: %v\nwant it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "beside") {
		t.Errorf("Take refused the files beside the volumes: %v", err)
	}
	if _, _, vols := enginetest.Resources(t, cli, e.RunID); vols != volsBefore {
		t.Errorf("the refused Take left %d volumes, want %d", vols, volsBefore)
	}
}

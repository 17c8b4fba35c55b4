package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cucumber/godog"
	messages "github.com/cucumber/messages/go/v34"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/internal/envtest"
)

const billingCompose = "../fixtures/billing/compose.yaml"

func sqlExec(t *testing.T, e *env.Environment, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := dataset.Connect(ctx, e, "db", "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func sqlValue(t *testing.T, e *env.Environment, sql string) string {
	t.Helper()
	v, err := dataset.QueryValue(context.Background(), e, "db", sql)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func shell(t *testing.T, e *env.Environment, service, cmd string) {
	t.Helper()
	res, err := e.Service(service).Exec(context.Background(), []string{"sh", "-c", cmd})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%s in %s: %v %+v", cmd, service, err, res)
	}
}

// wantErr fails unless err is an error whose text has each part.
func wantErr(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: passed, want an error with %q", what, parts)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v\nwant it to contain %q", what, err, p)
		}
	}
}

// The snapshot steps on the bundled world, step by step: a snapshot, a
// broken rollback (one invoice, one byte of billing.conf) named by the
// diffs, a role and a webhook made "during the upgrade" named, the restore
// back to the snapshot, a lost row named by its key, and the prints'
// private hashes gone after the scenario's end.
func TestSnapshotStepsOnTheBundledWorld(t *testing.T) {
	e := envtest.Start(t, billingCompose)
	ctx := context.Background()
	spec, err := dataset.Find("billing", filepath.Dir(billingCompose))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Load(ctx, e, spec, 500); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := &World{Config: &Config{}, Timeline: timeline.New(), log: &syncWriter{w: &out}, Env: e, RunID: e.RunID, composeFile: billingCompose,
		Scenario: &godog.Scenario{Steps: []*messages.PickleStep{{Text: `the environment is rolled back to snapshot "before"`}}}}
	ctx = context.WithValue(ctx, worldKey{}, w)
	defer func() {
		if t.Failed() {
			w.Timeline.WriteText(os.Stderr)
			t.Logf("scenario output:\n%s", out.String())
		}
	}()

	if err := takeSnapshot(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	if w.snaps.taken[0].restore == nil {
		t.Fatal("a scenario that rolls back to the snapshot got no restorable copy")
	}
	if err := dataMatches(ctx, "before"); err != nil {
		t.Errorf("untouched data: %v", err)
	}
	if err := configMatches(ctx, "before"); err != nil {
		t.Errorf("untouched configuration: %v", err)
	}

	// Feature flags, as the declared query reads them.
	enabled := sqlValue(t, e, "SELECT enabled::text FROM feature_flags WHERE name = 'dunning_v2'")
	opposite := map[string]string{"true": "false", "false": "true"}[enabled]
	if err := featureFlagIs(ctx, "dunning_v2", enabled); err != nil {
		t.Errorf("feature flag as it is: %v", err)
	}
	wantErr(t, "feature flag, the other value", featureFlagIs(ctx, "dunning_v2", opposite), `feature flag dunning_v2 is "`+enabled[:1]+`", want "`+opposite+`"`)
	wantErr(t, "an unknown flag", featureFlagIs(ctx, "dunning_v3", "true"),
		`no feature flag "dunning_v3" (flags: dunning_v2, multi_currency, new_invoice_pdf, sepa_direct_debit, tax_engine_v3, webhooks_v2)`)

	// A broken rollback: one invoice and one byte of billing.conf.
	sqlExec(t, e, "UPDATE invoices SET amount_cents = amount_cents + 1 WHERE id = 17")
	shell(t, e, "billing", `sed -i 's/^invoice_batch_size = 500$/invoice_batch_size = 501/' /etc/billing/billing.conf`)
	wantErr(t, "data after a change", dataMatches(ctx, "before"), `the data differs from snapshot "before": db: invoices: rows: 1 changed (id=17)`)
	err = configMatches(ctx, "before")
	if err == nil || err.Error() != `the configuration differs from snapshot "before": billing: /etc/billing/billing.conf: sha256 changed` {
		t.Errorf("configuration after a change: %v", err)
	}
	if err := dataDiffersIn(ctx, "before", "invoices"); err != nil {
		t.Errorf("differs in invoices: %v", err)
	}
	wantErr(t, "differs in customers", dataDiffersIn(ctx, "before", "customers"),
		`table customers is as snapshot "before" recorded it; other tables differ: db: invoices: rows: 1 changed (id=17)`)
	if err := configDiffersAt(ctx, "before", "/etc/billing/billing.conf"); err != nil {
		t.Errorf("differs at billing.conf: %v", err)
	}
	wantErr(t, "differs at billing.env", configDiffersAt(ctx, "before", "/etc/billing/billing.env"),
		`/etc/billing/billing.env is as snapshot "before" recorded it; other items differ: billing: /etc/billing/billing.conf: sha256 changed`)
	if err := noRowsLost(ctx, "invoices"); err != nil {
		t.Errorf("a changed row is no lost row: %v", err)
	}

	// What an upgrade would leave: a role and a webhook, made after the
	// configuration before the apply was taken.
	w.noteConfigBeforeApply(ctx)
	if w.snaps.beforeApplyErr != nil {
		t.Fatal(w.snaps.beforeApplyErr)
	}
	if err := noRolesRemain(ctx); err != nil {
		t.Errorf("no role yet: %v", err)
	}
	sqlExec(t, e, "CREATE ROLE rehearse_tmp_role LOGIN")
	ep, err := e.Service("payments").Endpoint("8090/tcp")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"url": "http://billing:8080/hooks/test"})
	resp, err := http.Post("http://"+ep+"/webhooks", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("register a webhook: %v %v", err, resp)
	}
	resp.Body.Close()
	err = noRolesRemain(ctx)
	if err == nil || err.Error() != "db: role rehearse_tmp_role added during the upgrade" {
		t.Errorf("a role made during the upgrade: %v", err)
	}
	if err := rolesRemain(ctx, "rehearse_tmp_role"); err != nil {
		t.Errorf("exactly that role: %v", err)
	}
	err = noWebhooksRemain(ctx)
	if err == nil || err.Error() != "payments: webhooks http://billing:8080/hooks/test added during the upgrade" {
		t.Errorf("a webhook made during the upgrade: %v", err)
	}

	// The restore puts it all back, and checks itself.
	if err := rollBackToSnapshot(ctx, "before"); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if err := dataMatches(ctx, "before"); err != nil {
		t.Errorf("data after the restore: %v", err)
	}
	if err := configMatches(ctx, "before"); err != nil {
		t.Errorf("configuration after the restore: %v", err)
	}
	if err := noRolesRemain(ctx); err != nil {
		t.Errorf("roles after the restore: %v", err)
	}
	if err := noWebhooksRemain(ctx); err != nil {
		t.Errorf("webhooks after the restore: %v", err)
	}

	// A lost row is named by its key (the print's hashes came back with
	// the restore: the copy was taken after the print).
	sqlExec(t, e, "DELETE FROM invoice_lines WHERE invoice_id = 42; DELETE FROM invoices WHERE id = 42")
	wantErr(t, "a deleted invoice", noRowsLost(ctx, "invoices"), `rows of table invoices recorded by snapshot "before" are lost: db: invoices: 1 row lost (key id=42)`)

	// The scenario's end drops every print's private schema.
	const schemas = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rehearse_fp_%'"
	if n := sqlValue(t, e, schemas); n == "0" {
		t.Fatal("no private schema to drop: the test proves nothing")
	}
	if err := w.forgetPrints(ctx); err != nil {
		t.Fatal(err)
	}
	if n := sqlValue(t, e, schemas); n != "0" {
		t.Errorf("%s private schemas left after the scenario's end", n)
	}
	if !strings.Contains(timelineText(w.Timeline), "forget") {
		t.Error("no forget on the timeline")
	}
}

func timelineText(tl *timeline.Timeline) string {
	var b bytes.Buffer
	tl.WriteText(&b)
	return b.String()
}

// Through the runner: the failing step names the changed invoice, the
// failure is located at that step, the prints are forgotten before the
// environment goes down, and nothing of the run is left.
func TestSnapshotFeatureNamesTheDiff(t *testing.T) {
	enginetest.Connect(t)
	out := t.TempDir()
	sum, text := run(t, RunOptions{Paths: []string{"testdata/snapshots/broken.feature"}, OutDir: out})
	if sum.Passed() {
		t.Fatalf("a scenario whose data differs from its snapshot passed:\n%s", text)
	}
	if len(sum.Failures) != 1 || sum.Failures[0].String() !=
		`testdata/snapshots/broken.feature:12: scenario "One invoice and one byte of billing.conf are not what they were": the data differs from snapshot "before": db: invoices: rows: 1 changed (id=17)` {
		t.Errorf("failures: %v\n%s", sum.Failures, text)
	}
	ids := timelineRuns(t, out)
	files, _ := filepath.Glob(filepath.Join(out, "timelines", "*.txt"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		forget := regexp.MustCompile(`snapshot +db +forget(  error:.*)?\n`).FindStringSubmatchIndex(string(data))
		down := regexp.MustCompile(`environment +environment +down`).FindStringIndex(string(data))
		if forget == nil || down == nil || forget[0] > down[0] || forget[2] >= 0 {
			t.Errorf("want the prints forgotten, without an error, before the environment goes down:\n%s", data)
		}
	}
	assertRunsGone(t, ids)
}

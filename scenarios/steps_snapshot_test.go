package scenarios

import (
	"context"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cucumber/godog"
	messages "github.com/cucumber/messages/go/v34"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/snapshot"
	"github.com/rehearse/rehearse/harness/timeline"
)

// billingLikePlan is the bundled world's shape: db publishes 5432 and
// declares roles and a feature_flags query, billing declares files,
// payments a webhooks list; invoicing declares nothing.
func billingLikePlan() *env.Plan {
	return &env.Plan{File: "compose.yaml", Services: []*env.ServicePlan{
		{Name: "db", Ports: []env.Port{{Target: 5432, Protocol: "tcp"}},
			Ext: env.Extension{Config: &env.ConfigSpec{Roles: true, Queries: map[string]string{"feature_flags": "SELECT name, enabled FROM feature_flags"}}}},
		{Name: "billing", Ports: []env.Port{{Target: 8080, Protocol: "tcp"}}, Ext: env.Extension{Config: &env.ConfigSpec{Files: []string{"/etc/billing"}}}},
		{Name: "invoicing", Ports: []env.Port{{Target: 8081, Protocol: "tcp"}}},
		{Name: "payments", Ports: []env.Port{{Target: 8090, Protocol: "tcp"}},
			Ext: env.Extension{Config: &env.ConfigSpec{HTTP: map[string]env.ConfigHTTPSpec{"webhooks": {Path: "/webhooks", Key: "url"}, "callbacks": {Path: "/callbacks"}}}}},
		// PostgreSQL by its config only (roles), and by its port only.
		{Name: "replica", Ext: env.Extension{Config: &env.ConfigSpec{Roles: true}}},
		{Name: "legacy-db", Ports: []env.Port{{Target: 5432, Protocol: "tcp"}}},
		// A UDP 5432 is not PostgreSQL.
		{Name: "syslog", Ports: []env.Port{{Target: 5432, Protocol: "udp"}}},
	}}
}

func TestPostgresServices(t *testing.T) {
	got := postgresServices(billingLikePlan())
	if want := []string{"db", "replica", "legacy-db"}; !slices.Equal(got, want) {
		t.Errorf("postgresServices = %v, want %v", got, want)
	}
	if !declaresConfig(billingLikePlan()) {
		t.Error("declaresConfig: false for a plan that declares")
	}
	if declaresConfig(&env.Plan{Services: []*env.ServicePlan{{Name: "a"}}}) {
		t.Error("declaresConfig: true for a plan that declares nothing")
	}
}

func TestDiffError(t *testing.T) {
	one := diffError(`the data differs from snapshot "s"`, []string{"db: invoices: rows: 1 changed (id=17)"})
	if one.Error() != `the data differs from snapshot "s": db: invoices: rows: 1 changed (id=17)` {
		t.Errorf("one line: %q", one)
	}
	var many []string
	for i := range 45 {
		many = append(many, "line "+string(rune('a'+i%26)))
	}
	err := diffError("x differs", many).Error()
	lines := strings.Split(err, "\n")
	if lines[0] != "x differs in 45 ways, first line a:" {
		t.Errorf("first line: %q", lines[0])
	}
	if len(lines) != 1+diffShownMax+1 || lines[len(lines)-1] != "  … and 5 more" || lines[1] != "  line a" {
		t.Errorf("want %d lines shown then the rest counted:\n%s", diffShownMax, err)
	}
}

// A print with invoices (keyed) and events (no key, in schema audit).
func testPrint() *snapshot.DataPrint {
	return &snapshot.DataPrint{Service: "db", Tables: []snapshot.DataTable{
		{Schema: "audit", Name: "events", Rows: 10},
		{Schema: "public", Name: "empty", Rows: 0, Key: []string{"id"}},
		{Schema: "public", Name: "invoices", Rows: 100, Key: []string{"id"}},
	}}
}

func TestLostRows(t *testing.T) {
	p := testPrint()
	diff := func(fs ...snapshot.DataFinding) []serviceDiff {
		return []serviceDiff{{service: "db", print: p, diff: snapshot.DataDiff{Findings: fs}}}
	}
	// Changed and added rows, and a column added, lose nothing.
	changed := snapshot.DataFinding{Object: "invoices", Kind: "rows", Rows: &snapshot.DataRowChange{Before: 100, After: 101, Named: true,
		Changed: 100, Added: 1, ChangedKeys: []string{"1", "2"}, AddedKeys: []string{"101"}}}
	column := snapshot.DataFinding{Object: "invoices", Kind: "column", Name: "total_cents", Change: "column total_cents added (bigint not null)"}
	if lost := lostRows("invoices", diff(changed, column)); len(lost) != 0 {
		t.Errorf("changed rows counted as lost: %v", lost)
	}
	// Deleted rows are named by key; another table's loss is not this one's.
	deleted := snapshot.DataFinding{Object: "invoices", Kind: "rows", Rows: &snapshot.DataRowChange{Before: 100, After: 97, Named: true,
		Changed: 1, Deleted: 7, ChangedKeys: []string{"5"}, DeletedKeys: []string{"17", "18", "19", "20", "21"}}}
	other := snapshot.DataFinding{Object: "audit.events", Kind: "rows", Rows: &snapshot.DataRowChange{Before: 10, After: 0, Unnamed: "no primary key"}}
	lost := lostRows("invoices", diff(deleted, other))
	if want := []string{"db: invoices: 7 rows lost (keys 17, 18, 19, 20, 21, …)"}; !slices.Equal(lost, want) {
		t.Errorf("deleted rows: %q, want %q", lost, want)
	}
	if lost := lostRows("public.invoices", diff(deleted)); len(lost) != 1 {
		t.Errorf("public.invoices is invoices: %q", lost)
	}
	// A table without a key: fewer rows are lost ones; as many, with other
	// contents, cannot be told apart from lost ones.
	if lost := lostRows("audit.events", diff(other)); len(lost) != 1 || lost[0] != "db: audit.events: rows 10 -> 0: at least 10 rows lost (no primary key: rows not named)" {
		t.Errorf("unnamed, fewer: %q", lost)
	}
	same := snapshot.DataFinding{Object: "audit.events", Kind: "rows", Rows: &snapshot.DataRowChange{Before: 10, After: 10, Unnamed: "no primary key"}}
	if lost := lostRows("audit.events", diff(same)); len(lost) != 1 || !strings.Contains(lost[0], "cannot tell whether rows were lost (no primary key)") {
		t.Errorf("unnamed, as many: %q", lost)
	}
	// A dropped table loses its rows, unless it had none.
	dropped := func(obj string, n string) snapshot.DataFinding {
		return snapshot.DataFinding{Object: obj, Kind: "table", Change: "table dropped (had " + n + " rows)"}
	}
	if lost := lostRows("invoices", diff(dropped("invoices", "100"))); len(lost) != 1 || lost[0] != "db: invoices: table dropped (had 100 rows): all 100 rows lost" {
		t.Errorf("dropped: %q", lost)
	}
	if lost := lostRows("empty", diff(dropped("empty", "0"))); len(lost) != 0 {
		t.Errorf("an empty table dropped: %q", lost)
	}
}

func TestDataLinesAndTables(t *testing.T) {
	p := testPrint()
	d := []serviceDiff{{service: "db", print: p, diff: snapshot.DataDiff{Findings: []snapshot.DataFinding{
		{Object: "invoices", Kind: "rows", Change: "rows: 1 changed (id=17)"},
		{Object: "audit.events", Kind: "column", Change: "column x added (text)"},
	}}}}
	if got := dataLines(d, ""); !slices.Equal(got, []string{"db: invoices: rows: 1 changed (id=17)", "db: audit.events: column x added (text)"}) {
		t.Errorf("all lines: %q", got)
	}
	if got := dataLines(d, "invoices"); !slices.Equal(got, []string{"db: invoices: rows: 1 changed (id=17)"}) {
		t.Errorf("one table's lines: %q", got)
	}
	s := &namedSnapshot{name: "before", data: []*snapshot.DataPrint{p}}
	for _, ok := range []string{"invoices", "public.invoices", "audit.events"} {
		if err := checkTable(s, ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	err := checkTable(s, "invoice")
	if err == nil || err.Error() != `snapshot "before" recorded no table "invoice" (tables: db: audit.events, db: empty, db: invoices)` {
		t.Errorf("an unknown table: %v", err)
	}
}

func configPrint(items ...snapshot.ConfigItem) *snapshot.ConfigPrint {
	return &snapshot.ConfigPrint{Services: []string{"db", "billing", "payments"}, Items: items}
}

func TestAddedDuringTheUpgrade(t *testing.T) {
	plan := billingLikePlan()
	before := configPrint(
		snapshot.ConfigItem{Service: "db", Name: "role postgres"},
		snapshot.ConfigItem{Service: "db", Name: "role old_tmp"},
		snapshot.ConfigItem{Service: "payments", Name: "webhooks http://erp/hook", Attrs: []snapshot.ConfigAttr{{Name: "id", Value: "1"}}},
	)
	now := configPrint(
		snapshot.ConfigItem{Service: "db", Name: "role postgres", Attrs: []snapshot.ConfigAttr{{Name: "attributes", Value: "superuser"}}}, // changed: not created
		snapshot.ConfigItem{Service: "db", Name: "role billing_migrator_tmp"},
		snapshot.ConfigItem{Service: "db", Name: "feature_flags role x"}, // a query row, not a role
		snapshot.ConfigItem{Service: "billing", Name: "/etc/billing/role webhooks"},
		snapshot.ConfigItem{Service: "payments", Name: "webhooks http://erp/hook", Attrs: []snapshot.ConfigAttr{{Name: "id", Value: "1"}}},
		snapshot.ConfigItem{Service: "payments", Name: "webhooks http://billing:8080/hooks/payments"},
		snapshot.ConfigItem{Service: "payments", Name: "webhooks http://billing:8080/hooks/payments #2"},
		snapshot.ConfigItem{Service: "payments", Name: "callbacks {\"id\":1}"}, // not a webhook list
	)
	d := before.Diff(now)
	roles := roleKind(plan).added(d)
	if err := noneRemain(roles, "database roles"); err == nil || err.Error() != "db: role billing_migrator_tmp added during the upgrade" {
		t.Errorf("roles: %v", err)
	}
	hooks := webhookKind(plan).added(d)
	err := noneRemain(hooks, "webhook registrations")
	if err == nil || !strings.HasPrefix(err.Error(), "2 webhook registrations created during the upgrade remain in 2 ways, first payments: webhooks http://billing:8080/hooks/payments added during the upgrade:") ||
		!strings.Contains(err.Error(), "\n  payments: webhooks http://billing:8080/hooks/payments #2 added during the upgrade") {
		t.Errorf("webhooks: %v", err)
	}
	// The role removed since (old_tmp) is no role created.
	if err := exactlyRemain(roles, "billing_migrator_tmp", "database roles"); err != nil {
		t.Errorf("exactly the role: %v", err)
	}
	if err := exactlyRemain(roles, "billing_migrator_tmp, other", "database roles"); err == nil ||
		err.Error() != "the database roles created during the upgrade that remain are billing_migrator_tmp; want billing_migrator_tmp, other:\n  db: role billing_migrator_tmp added during the upgrade" {
		t.Errorf("one role of two: %v", err)
	}
	if err := exactlyRemain(nil, "billing_migrator_tmp", "database roles"); err == nil || err.Error() != "no database roles created during the upgrade remains, want billing_migrator_tmp" {
		t.Errorf("none: %v", err)
	}
	if err := exactlyRemain(roles, " , ", "database roles"); err == nil || !strings.Contains(err.Error(), "Then no database roles created during the upgrade remain") {
		t.Errorf("an empty list: %v", err)
	}
	if err := exactlyRemain(hooks, "http://billing:8080/hooks/payments #2,http://billing:8080/hooks/payments", "webhook registrations"); err != nil {
		t.Errorf("exactly the webhooks: %v", err)
	}
	if err := noneRemain(nil, "database roles"); err != nil {
		t.Errorf("nothing added: %v", err)
	}
}

func TestFeatureFlagValue(t *testing.T) {
	items := []snapshot.ConfigItem{
		{Service: "db", Name: "role postgres", Attrs: []snapshot.ConfigAttr{{Name: "attributes", Value: "superuser"}}},
		{Service: "db", Name: "feature_flags dunning_v2", Attrs: []snapshot.ConfigAttr{{Name: "enabled", Value: "t"}}},
		{Service: "db", Name: "feature_flags tax_engine_v3", Attrs: []snapshot.ConfigAttr{{Name: "enabled", Value: "f"}}},
		{Service: "db", Name: "feature_flags rollout", Attrs: []snapshot.ConfigAttr{{Name: "owner", Value: "ops"}, {Name: "value", Value: "25%"}}},
		{Service: "db", Name: "feature_flags odd", Attrs: []snapshot.ConfigAttr{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}}},
	}
	for _, c := range []struct {
		flag, want string
		ok         bool
	}{
		{"dunning_v2", "true", true}, {"dunning_v2", "t", true}, {"dunning_v2", "on", true}, {"dunning_v2", "false", false}, {"dunning_v2", "1", false},
		{"tax_engine_v3", "false", true}, {"tax_engine_v3", "disabled", true}, {"tax_engine_v3", "true", false},
		{"rollout", "25%", true}, {"rollout", "true", false},
	} {
		got, err := flagValue(items, c.flag)
		if err != nil {
			t.Errorf("%s: %v", c.flag, err)
			continue
		}
		if sameValue(got, c.want) != c.ok {
			t.Errorf("flag %s = %q; matches %q: %v, want %v", c.flag, got, c.want, !c.ok, c.ok)
		}
	}
	_, err := flagValue(items, "new_invoice_pdf")
	if err == nil || err.Error() != `no feature flag "new_invoice_pdf" (flags: dunning_v2, tax_engine_v3, rollout, odd)` {
		t.Errorf("an unknown flag: %v", err)
	}
	if _, err := flagValue(items, "odd"); err == nil || !strings.Contains(err.Error(), "its row has columns a, b") {
		t.Errorf("a row of two columns: %v", err)
	}
	if _, err := flagValue(items[:1], "x"); err == nil || !strings.Contains(err.Error(), "returns no rows") {
		t.Errorf("no flags: %v", err)
	}
}

// Without an environment or a snapshot, each step says what to add first.
func TestSnapshotStepsNeedTheirSetUp(t *testing.T) {
	w := &World{Timeline: timeline.New(), log: io.Discard}
	ctx := context.WithValue(context.Background(), worldKey{}, w)
	for name, c := range map[string]struct {
		err  error
		want string
	}{
		"take":         {takeSnapshot(ctx, "s"), "no environment"},
		"data":         {dataMatches(ctx, "s"), `none was taken in this scenario (use Given a snapshot "s" first)`},
		"config":       {configMatches(ctx, "s"), `Given a snapshot "s"`},
		"differs in":   {dataDiffersIn(ctx, "s", "invoices"), `Given a snapshot "s"`},
		"differs at":   {configDiffersAt(ctx, "s", "/etc/x"), `Given a snapshot "s"`},
		"no rows lost": {noRowsLost(ctx, "invoices"), `no snapshot was taken in this scenario: use Given a snapshot "NAME" first`},
		"roles":        {noRolesRemain(ctx), "no environment"},
		"webhooks":     {noWebhooksRemain(ctx), "no environment"},
		"feature flag": {featureFlagIs(ctx, "x", "true"), "no environment"},
		"roles remain": {rolesRemain(ctx, "x"), "no environment"},
		"hooks remain": {webhooksRemain(ctx, "x"), "no environment"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, c.err, c.want)
		}
	}
	w.snaps.taken = []*namedSnapshot{{name: "before"}}
	if err := dataMatches(ctx, "after"); err == nil || err.Error() != `no snapshot "after" in this scenario (taken: "before")` {
		t.Errorf("another name: %v", err)
	}
	if err := configMatches(ctx, "before"); err == nil || !strings.Contains(err.Error(), `snapshot "before" holds no configuration print`) {
		t.Errorf("no config print: %v", err)
	}
	// The "created during the upgrade" steps need an apply, and a plan
	// that declares what they look at.
	w.Env = &env.Environment{Plan: billingLikePlan()}
	if err := noRolesRemain(ctx); err == nil || !strings.Contains(err.Error(), "the upgrade has not been applied in this scenario") {
		t.Errorf("before an apply: %v", err)
	}
	w.snaps.beforeApplyDone, w.snaps.beforeApplyErr = true, io.ErrUnexpectedEOF
	if err := noWebhooksRemain(ctx); err == nil || err.Error() != "the configuration before the upgrade could not be taken: unexpected EOF" {
		t.Errorf("no print before the apply: %v", err)
	}
	w.Env = &env.Environment{Plan: &env.Plan{Services: []*env.ServicePlan{{Name: "a", Ext: env.Extension{Config: &env.ConfigSpec{Files: []string{"/etc"}}}}}}}
	w.composeFile = "compose.yaml"
	if err := noRolesRemain(ctx); err == nil || err.Error() != "no service in compose.yaml declares its roles (x-rehearse config roles: true on a PostgreSQL service)" {
		t.Errorf("no roles declared: %v", err)
	}
	if err := webhooksRemain(ctx, "x"); err == nil || !strings.Contains(err.Error(), "declares its webhook registrations (an x-rehearse config http list named like webhooks)") {
		t.Errorf("no webhooks declared: %v", err)
	}
	if err := featureFlagIs(ctx, "x", "true"); err == nil || !strings.Contains(err.Error(), "declares a feature_flags query") {
		t.Errorf("no feature flags declared: %v", err)
	}
	if err := takeSnapshot(ctx, "before"); err == nil || !strings.Contains(err.Error(), `a snapshot "before" was already taken`) {
		t.Errorf("a name taken twice: %v", err)
	}
	w.Env = &env.Environment{Plan: &env.Plan{Services: []*env.ServicePlan{{Name: "a"}}}}
	if err := takeSnapshot(ctx, "other"); err == nil || !strings.Contains(err.Error(), "nothing to snapshot in compose.yaml") {
		t.Errorf("nothing to snapshot: %v", err)
	}
}

type fakeRestore struct {
	err      error
	restored int
	dropped  int
}

func (f *fakeRestore) Restore(context.Context) error { f.restored++; return f.err }
func (f *fakeRestore) Drop(context.Context) error    { f.dropped++; return nil }

func TestRestoreNames(t *testing.T) {
	var st snapshotState
	for _, c := range []struct{ in, want string }{
		{"before", "before"},
		{"before the upgrade", "before-the-upgrade"},
		{"before/the upgrade!", "before-the-upgrade-2"}, // the same name once made safe
		{"before the upgrade", "before-the-upgrade-3"},
		{"  ..", "snapshot"},
		{"état 1", "tat-1"},
		{strings.Repeat("x", 60), strings.Repeat("x", 34)},
	} {
		got := st.restoreName(c.in)
		if got != c.want {
			t.Errorf("restoreName(%q) = %q, want %q", c.in, got, c.want)
		}
		if len(got) > 40 || !regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`).MatchString(got) {
			t.Errorf("restoreName(%q) = %q: not a name snapshot.Take accepts", c.in, got)
		}
	}
}

func TestRollBackToSnapshot(t *testing.T) {
	w := &World{Timeline: timeline.New(), log: io.Discard, Env: &env.Environment{Plan: billingLikePlan()},
		Scenario: &godog.Scenario{Steps: []*messages.PickleStep{
			{Text: `a snapshot "before"`},
			{Text: `the environment is rolled back to snapshot "before"`},
		}}}
	ctx := context.WithValue(context.Background(), worldKey{}, w)
	if !w.rollsBackTo("before") || w.rollsBackTo("after") || w.rollsBackTo("befor") {
		t.Error("rollsBackTo: only the snapshot a step rolls back to")
	}
	// A snapshot without a copy says when one is taken.
	w.snaps.taken = []*namedSnapshot{{name: "plain"}}
	if err := rollBackToSnapshot(ctx, "plain"); err == nil || !strings.Contains(err.Error(), `holds no restorable copy: it is taken when the scenario has the step When the environment is rolled back to snapshot "plain"`) {
		t.Errorf("no copy: %v", err)
	}
	// A restore that did not get there names each difference.
	f := &fakeRestore{err: &snapshot.RestoreMismatch{Snapshot: "before",
		Config: snapshot.ConfigDiff{{Service: "billing", Item: "/etc/billing/billing.conf", Change: snapshot.ConfigChanged, Attrs: []snapshot.ConfigAttrChange{{Name: "sha256", Before: "a", After: "b"}}}},
		Data: map[string]snapshot.DataDiff{
			"db2": {Findings: []snapshot.DataFinding{{Object: "t", Change: "rows: 1 -> 2"}}},
			"db":  {Findings: []snapshot.DataFinding{{Object: "invoices", Change: "rows: 1 changed (id=17)"}}},
		}}}
	w.snaps.taken = append(w.snaps.taken, &namedSnapshot{name: "before", restore: f})
	err := rollBackToSnapshot(ctx, "before")
	want := `the environment is not back to snapshot "before" after the restore in 3 ways, first billing: /etc/billing/billing.conf: sha256 changed:
  billing: /etc/billing/billing.conf: sha256 changed
  db: invoices: rows: 1 changed (id=17)
  db2: t: rows: 1 -> 2`
	if err == nil || err.Error() != want {
		t.Errorf("mismatch:\n%v\nwant\n%s", err, want)
	}
	f.err = nil
	if err := rollBackToSnapshot(ctx, "before"); err != nil || f.restored != 2 {
		t.Errorf("a restore: %v, restored %d times", err, f.restored)
	}
	if ev := w.Timeline.Filter(kindSnapshot); len(ev) != 2 || ev[1].Name != "restore" || ev[1].Err != "" {
		t.Errorf("timeline: %+v", ev)
	}
	// The copies go when the scenario ends.
	if err := w.dropRestorePoints(ctx); err != nil || f.dropped != 1 {
		t.Errorf("drop: %v, dropped %d times", err, f.dropped)
	}
}

package scenarios

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/snapshot"
	"github.com/rehearse/rehearse/harness/timeline"
)

// kindSnapshot is the timeline kind of snapshots: prints taken, compared
// and forgotten.
const kindSnapshot = "snapshot"

// snapshotState is the part of a World about snapshots.
type snapshotState struct {
	// taken are the named snapshots, in the order taken: the last is the
	// one "no rows are lost" compares with.
	taken []*namedSnapshot
	// The configuration right before the scenario's first apply (taken by
	// the apply step itself), which "created during the upgrade" compares
	// with; beforeApplyErr when it could not be taken.
	beforeApplyDone bool
	beforeApply     *snapshot.ConfigPrint
	beforeApplyErr  error
	// printed are the services a data print was started on: finish drops
	// their private hashes (snapshot.ForgetData) before the environment
	// goes down.
	printed []string
	// restoreNames are the names the restorable copies were taken under.
	restoreNames []string
}

// namedSnapshot is what Given a snapshot "NAME" recorded.
type namedSnapshot struct {
	name  string
	taken time.Time
	// data is one print per PostgreSQL service (postgresServices), in
	// plan order.
	data []*snapshot.DataPrint
	// config is the configuration of every service that declares one
	// (nil when none does).
	config *snapshot.ConfigPrint
	// restore is the restorable copy of the environment (harness/snapshot's
	// restore), for When the environment is rolled back to snapshot "NAME";
	// nil when the snapshot holds none.
	restore restorePoint
}

var snapshotSteps = []Step{
	{`Given a snapshot "NAME"`, `^a snapshot "([^"]*)"$`, `Given a snapshot "before"`,
		"record the data fingerprint of every PostgreSQL service (one that publishes 5432/tcp, or whose x-rehearse config declares roles or queries) and the configuration fingerprint of every service that declares an x-rehearse config, under NAME; " +
			"when the scenario rolls back to it, also a restorable copy (each PostgreSQL service stops for the copy)",
		takeSnapshot},
	{`When the environment is rolled back to snapshot "NAME"`, `^the environment is rolled back to snapshot "([^"]*)"$`, `When the environment is rolled back to snapshot "before"`,
		"put the databases, declared files, crontabs and units back as the snapshot had them (each PostgreSQL service restarts; a service keeping its lists in memory restarts if they differ), then check the fingerprints; fails naming what still differs",
		rollBackToSnapshot},
	{`Then the data matches snapshot "NAME"`, `^the data matches snapshot "([^"]*)"$`, `Then the data matches snapshot "before"`,
		"every table's rows, schema and sequences are as the snapshot recorded them; a failure lists each difference (rows by primary key)", dataMatches},
	{`Then the configuration matches snapshot "NAME"`, `^the configuration matches snapshot "([^"]*)"$`, `Then the configuration matches snapshot "before"`,
		"every declared configuration item (files, units, crontabs, roles, queries, lists) is as the snapshot recorded it; a failure lists each item added, removed or changed", configMatches},
	{`Then the data differs from snapshot "NAME" in table "TABLE"`, `^the data differs from snapshot "([^"]*)" in table "([^"]*)"$`, `Then the data differs from snapshot "before" in table "invoices"`,
		"the table's rows or schema changed since the snapshot (the differences go to the scenario's output)", dataDiffersIn},
	{`Then the configuration differs from snapshot "NAME" at "ITEM"`, `^the configuration differs from snapshot "([^"]*)" at "((?:[^"\\]|\\.)*)"$`, `Then the configuration differs from snapshot "before" at "/etc/billing/billing.conf"`,
		"the configuration item (a file's path, \"role NAME\", \"unit NAME\", \"feature_flags NAME\"...) was added, removed or changed since the snapshot", configDiffersAt},
	{`Then no rows are lost in table "TABLE"`, `^no rows are lost in table "([^"]*)"$`, `Then no rows are lost in table "invoices"`,
		"every row the last snapshot recorded in the table is still there, by primary key (changed rows are not lost; a table without one can only be counted)", noRowsLost},
	{`Then no webhook registrations created during the upgrade remain`, `^no webhook registrations created during the upgrade remain$`, `Then no webhook registrations created during the upgrade remain`,
		"no element of a declared x-rehearse config http list named like webhooks was added since right before the scenario's first apply", noWebhooksRemain},
	{`Then webhook registrations created during the upgrade remain: "KEYS"`, `^webhook registrations created during the upgrade remain: "([^"]*)"$`, `Then webhook registrations created during the upgrade remain: "http://billing:8080/hooks/payments"`,
		"exactly these webhook registrations (their keys, comma-separated) were added since right before the first apply", webhooksRemain},
	{`Then no database roles created during the upgrade remain`, `^no database roles created during the upgrade remain$`, `Then no database roles created during the upgrade remain`,
		"no PostgreSQL role (x-rehearse config roles: true) was added since right before the scenario's first apply", noRolesRemain},
	{`Then database roles created during the upgrade remain: "NAMES"`, `^database roles created during the upgrade remain: "([^"]*)"$`, `Then database roles created during the upgrade remain: "billing_migrator_tmp"`,
		"exactly these roles (comma-separated) were added since right before the first apply", rolesRemain},
	{`Then feature flag "FLAG" is "VALUE"`, `^feature flag "([^"]*)" is "((?:[^"\\]|\\.)*)"$`, `Then feature flag "webhooks_v2" is "true"`,
		"the flag's row of the declared feature_flags query (x-rehearse config queries) now has VALUE (a boolean reads as true or false)", featureFlagIs},
}

// postgresServices are the services a snapshot prints the data of, in plan
// order: the PostgreSQL services by the one rule that Take also copies by
// (snapshot.IsPostgres).
func postgresServices(p *env.Plan) []string {
	return snapshot.Databases(p)
}

// declaresConfig reports whether any service declares an x-rehearse config.
func declaresConfig(p *env.Plan) bool {
	return slices.ContainsFunc(p.Services, func(sp *env.ServicePlan) bool { return sp.Ext.Config != nil })
}

func takeSnapshot(ctx context.Context, name string) error {
	w := WorldFrom(ctx)
	e, err := w.environment()
	if err != nil {
		return err
	}
	if s := w.snaps.find(name); s != nil {
		return fmt.Errorf("a snapshot %q was already taken in this scenario (at %s): give this one another name", name, s.taken.Format("15:04:05"))
	}
	pgs := postgresServices(e.Plan)
	if len(pgs) == 0 && !declaresConfig(e.Plan) {
		return fmt.Errorf("nothing to snapshot in %s: no PostgreSQL service (one that publishes 5432/tcp) and no service declares an x-rehearse config", w.composeFile)
	}
	s := &namedSnapshot{name: name, taken: time.Now()}
	span := w.Timeline.Begin(kindSnapshot, name, "take").Set("data", strings.Join(pgs, ","))
	err = w.takeSnapshot(ctx, e, s, pgs)
	span.End(err)
	if err != nil {
		for _, p := range s.data { // no half snapshot stays in the database
			p.Forget(context.WithoutCancel(ctx))
		}
		return fmt.Errorf("snapshot %q: %w", name, err)
	}
	w.snaps.taken = append(w.snaps.taken, s)
	return nil
}

// takeSnapshot prints the data of each PostgreSQL service, then the
// configuration, each on the timeline with its duration.
func (w *World) takeSnapshot(ctx context.Context, e *env.Environment, s *namedSnapshot, pgs []string) error {
	for _, svc := range pgs {
		if !slices.Contains(w.snaps.printed, svc) {
			w.snaps.printed = append(w.snaps.printed, svc)
		}
		span := w.Timeline.Begin(kindSnapshot, svc, "data print").Set("snapshot", s.name)
		p, err := snapshot.Data(ctx, e, svc)
		if p != nil {
			var rows int64
			for _, t := range p.Tables {
				rows += t.Rows
			}
			span.Set("tables", len(p.Tables)).Set("rows", rows)
		}
		span.End(err)
		if err != nil {
			return fmt.Errorf("data print of %s: %w", svc, err)
		}
		fmt.Fprintf(w.log, "snapshot %s: data of %s: %d tables in %s\n", s.name, svc, len(p.Tables), p.Duration.Round(time.Millisecond))
		s.data = append(s.data, p)
	}
	if declaresConfig(e.Plan) {
		span := w.Timeline.Begin(kindSnapshot, "config", "config print").Set("snapshot", s.name)
		p, err := snapshot.ConfigAll(ctx, e)
		if p != nil {
			span.Set("services", strings.Join(p.Services, ",")).Set("items", len(p.Items))
		}
		span.End(err)
		if err != nil {
			return err
		}
		s.config = p
	}
	// The copy comes after the data prints, so that it holds their private
	// hashes: a diff after a restore still names rows.
	if w.rollsBackTo(s.name) {
		span := w.Timeline.Begin(kindSnapshot, s.name, "restorable copy")
		rp, err := takeRestorePoint(ctx, e, w.snaps.restoreName(s.name))
		span.End(err)
		if err != nil {
			return err
		}
		s.restore = rp
	}
	return nil
}

func (st *snapshotState) find(name string) *namedSnapshot {
	for _, s := range st.taken {
		if s.name == name {
			return s
		}
	}
	return nil
}

// snapshot returns the named snapshot, or an error that lists those taken.
func (w *World) snapshot(name string) (*namedSnapshot, error) {
	if s := w.snaps.find(name); s != nil {
		return s, nil
	}
	if len(w.snaps.taken) == 0 {
		return nil, fmt.Errorf(`no snapshot %q: none was taken in this scenario (use Given a snapshot "%s" first)`, name, name)
	}
	var names []string
	for _, s := range w.snaps.taken {
		names = append(names, strconv.Quote(s.name))
	}
	return nil, fmt.Errorf("no snapshot %q in this scenario (taken: %s)", name, strings.Join(names, ", "))
}

// serviceDiff is one service's data compared with its print.
type serviceDiff struct {
	service string
	print   *snapshot.DataPrint
	diff    snapshot.DataDiff
}

// diffData compares the data of the snapshot's services (only those whose
// print has a table of that name, when table is not "") with now.
func (w *World) diffData(ctx context.Context, s *namedSnapshot, table string) ([]serviceDiff, error) {
	e, err := w.environment()
	if err != nil {
		return nil, err
	}
	var out []serviceDiff
	for _, p := range s.data {
		if table != "" && findTable(p, table) == nil {
			continue
		}
		span := w.Timeline.Begin(kindSnapshot, p.Service, "data diff").Set("snapshot", s.name)
		d, err := snapshot.DiffData(ctx, e, p.Service, p)
		span.Set("findings", len(d.Findings)).End(err)
		if err != nil {
			return nil, fmt.Errorf("compare the data of %s with snapshot %q: %w", p.Service, s.name, err)
		}
		out = append(out, serviceDiff{service: p.Service, print: p, diff: d})
	}
	return out, nil
}

// dataLines is each difference on one line, "db: invoices: rows: 1 changed (id=17)".
func dataLines(diffs []serviceDiff, table string) []string {
	var out []string
	for _, d := range diffs {
		for _, f := range d.diff.Findings {
			if table == "" || f.Object == table {
				out = append(out, d.service+": "+f.String())
			}
		}
	}
	return out
}

// diffShownMax is how many differences a failure lists.
const diffShownMax = 40

// diffError is what a comparison that found differences says: the first
// one on the first line (the run's summary shows only that), then each.
func diffError(what string, lines []string) error {
	var b strings.Builder
	b.WriteString(what)
	if len(lines) == 1 {
		b.WriteString(": " + lines[0])
		return errors.New(b.String())
	}
	fmt.Fprintf(&b, " in %d ways, first %s:", len(lines), lines[0])
	for i, l := range lines {
		if i == diffShownMax {
			fmt.Fprintf(&b, "\n  … and %d more", len(lines)-i)
			break
		}
		b.WriteString("\n  " + l)
	}
	return errors.New(b.String())
}

func dataMatches(ctx context.Context, name string) error {
	w := WorldFrom(ctx)
	s, err := w.snapshot(name)
	if err != nil {
		return err
	}
	if len(s.data) == 0 {
		return fmt.Errorf("snapshot %q holds no data print: no PostgreSQL service in %s", name, w.composeFile)
	}
	diffs, err := w.diffData(ctx, s, "")
	if err != nil {
		return err
	}
	if lines := dataLines(diffs, ""); len(lines) > 0 {
		return diffError(fmt.Sprintf("the data differs from snapshot %q", name), lines)
	}
	return nil
}

// normTable is a table as diffs name it: "invoices" for public.invoices.
func normTable(table string) string {
	return strings.TrimPrefix(table, "public.")
}

func tableName(t snapshot.DataTable) string {
	if t.Schema == "public" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

func findTable(p *snapshot.DataPrint, table string) *snapshot.DataTable {
	table = normTable(table)
	for i := range p.Tables {
		if tableName(p.Tables[i]) == table {
			return &p.Tables[i]
		}
	}
	return nil
}

// checkTable fails unless some print of the snapshot has the table.
func checkTable(s *namedSnapshot, table string) error {
	var all []string
	for _, p := range s.data {
		if findTable(p, table) != nil {
			return nil
		}
		for _, t := range p.Tables {
			all = append(all, p.Service+": "+tableName(t))
		}
	}
	if len(all) == 0 {
		return fmt.Errorf("snapshot %q recorded no table", s.name)
	}
	return fmt.Errorf("snapshot %q recorded no table %q (tables: %s)", s.name, table, strings.Join(all, ", "))
}

func dataDiffersIn(ctx context.Context, name, table string) error {
	w := WorldFrom(ctx)
	s, err := w.snapshot(name)
	if err != nil {
		return err
	}
	if err := checkTable(s, table); err != nil {
		return err
	}
	diffs, err := w.diffData(ctx, s, table)
	if err != nil {
		return err
	}
	lines := dataLines(diffs, normTable(table))
	if len(lines) == 0 {
		if other := dataLines(diffs, ""); len(other) > 0 {
			return diffError(fmt.Sprintf("table %s is as snapshot %q recorded it; other tables differ", table, name), other)
		}
		return fmt.Errorf("table %s is as snapshot %q recorded it, and so is all the data", table, name)
	}
	for _, l := range lines {
		fmt.Fprintf(w.log, "snapshot %s: %s\n", name, l)
	}
	return nil
}

// lostRows names the rows of table that the print had and the diff says
// are gone, one line per service and kind; changed rows are not lost.
func lostRows(table string, diffs []serviceDiff) []string {
	table = normTable(table)
	var out []string
	for _, d := range diffs {
		t := findTable(d.print, table)
		if t == nil {
			continue
		}
		for _, f := range d.diff.Findings {
			if f.Object != table {
				continue
			}
			switch {
			case f.Kind == "table" && t.Rows > 0 && strings.HasPrefix(f.Change, "table dropped"):
				out = append(out, fmt.Sprintf("%s: %s: %s: all %d rows lost", d.service, table, f.Change, t.Rows))
			case f.Kind == "rows" && f.Rows != nil:
				if l := lostLine(f.Rows); l != "" {
					out = append(out, d.service+": "+table+": "+l)
				}
			}
		}
	}
	return out
}

func lostLine(r *snapshot.DataRowChange) string {
	if r.Named {
		if r.Deleted == 0 {
			return ""
		}
		keys := strings.Join(r.DeletedKeys, ", ")
		if int64(len(r.DeletedKeys)) < r.Deleted {
			keys += ", …"
		}
		noun := "keys"
		if r.Deleted == 1 {
			noun = "key"
		}
		return fmt.Sprintf("%s lost (%s %s)", plural(r.Deleted, "row"), noun, keys)
	}
	why := r.Unnamed
	if why == "" {
		why = "rows not compared by key"
	}
	if r.After < r.Before {
		return fmt.Sprintf("rows %d -> %d: at least %s lost (%s: rows not named)", r.Before, r.After, plural(r.Before-r.After, "row"), why)
	}
	if r.Before == 0 {
		return ""
	}
	return fmt.Sprintf("rows %d -> %d with other contents: cannot tell whether rows were lost (%s)", r.Before, r.After, why)
}

// plural is "1 row", "2 rows".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(n, 10) + " " + noun + "s"
}

func noRowsLost(ctx context.Context, table string) error {
	w := WorldFrom(ctx)
	if len(w.snaps.taken) == 0 {
		return errors.New(`no snapshot was taken in this scenario: use Given a snapshot "NAME" first`)
	}
	s := w.snaps.taken[len(w.snaps.taken)-1]
	if err := checkTable(s, table); err != nil {
		return err
	}
	diffs, err := w.diffData(ctx, s, table)
	if err != nil {
		return err
	}
	if lost := lostRows(table, diffs); len(lost) > 0 {
		return diffError(fmt.Sprintf("rows of table %s recorded by snapshot %q are lost", table, s.name), lost)
	}
	return nil
}

// configNow fingerprints the configuration of every service that declares
// one, on the timeline.
func (w *World) configNow(ctx context.Context, why string) (*snapshot.ConfigPrint, error) {
	e, err := w.environment()
	if err != nil {
		return nil, err
	}
	span := w.Timeline.Begin(kindSnapshot, "config", "config print").Set("for", why)
	p, err := snapshot.ConfigAll(ctx, e)
	if p != nil {
		span.Set("items", len(p.Items))
	}
	span.End(err)
	return p, err
}

func configMatches(ctx context.Context, name string) error {
	w := WorldFrom(ctx)
	s, err := w.snapshot(name)
	if err != nil {
		return err
	}
	if s.config == nil {
		return fmt.Errorf("snapshot %q holds no configuration print: no service in %s declares an x-rehearse config", name, w.composeFile)
	}
	now, err := w.configNow(ctx, "compare with "+name)
	if err != nil {
		return err
	}
	if d := s.config.Diff(now); len(d) > 0 {
		return diffError(fmt.Sprintf("the configuration differs from snapshot %q", name), d.Lines())
	}
	return nil
}

func configDiffersAt(ctx context.Context, name, item string) error {
	w := WorldFrom(ctx)
	item = unescape(item)
	s, err := w.snapshot(name)
	if err != nil {
		return err
	}
	if s.config == nil {
		return fmt.Errorf("snapshot %q holds no configuration print: no service in %s declares an x-rehearse config", name, w.composeFile)
	}
	now, err := w.configNow(ctx, "compare with "+name)
	if err != nil {
		return err
	}
	d := s.config.Diff(now)
	if c, ok := changeAt(d, item); ok {
		fmt.Fprintf(w.log, "snapshot %s: %s\n", name, c)
		return nil
	}
	if !hasItem(s.config, item) && !hasItem(now, item) {
		return fmt.Errorf("no configuration item %q, in snapshot %q or now (items are a file's absolute path, \"role NAME\", \"unit NAME\", a query or list's name and key)", item, name)
	}
	if len(d) > 0 {
		return diffError(fmt.Sprintf("%s is as snapshot %q recorded it; other items differ", item, name), d.Lines())
	}
	return fmt.Errorf("%s is as snapshot %q recorded it, and so is all the configuration", item, name)
}

// changeAt finds the change of the named item.
func changeAt(d snapshot.ConfigDiff, item string) (snapshot.ConfigChange, bool) {
	i := slices.IndexFunc(d, func(c snapshot.ConfigChange) bool { return c.Item == item })
	if i < 0 {
		return snapshot.ConfigChange{}, false
	}
	return d[i], true
}

func hasItem(p *snapshot.ConfigPrint, item string) bool {
	return slices.ContainsFunc(p.Items, func(it snapshot.ConfigItem) bool { return it.Name == item })
}

// noteConfigBeforeApply takes the configuration fingerprint right before
// the scenario's first apply, for the "created during the upgrade" steps.
// A failure is kept for those steps to report: the apply goes on.
func (w *World) noteConfigBeforeApply(ctx context.Context) {
	if w.snaps.beforeApplyDone || w.Env == nil {
		return
	}
	w.snaps.beforeApplyDone = true
	if !declaresConfig(w.Env.Plan) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, beforeApplyTimeout)
	defer cancel()
	p, err := w.configNow(ctx, "before the upgrade")
	w.snaps.beforeApply, w.snaps.beforeApplyErr = p, err
	if err != nil {
		fmt.Fprintf(w.log, "snapshot: the configuration before the upgrade could not be taken: %v\n", err)
	}
}

// beforeApplyTimeout bounds the configuration print before an apply.
const beforeApplyTimeout = 3 * time.Minute

// itemKind picks the configuration items of one kind: key is the item's
// name without its kind's prefix ("billing_migrator_tmp" of "role
// billing_migrator_tmp"), ok whether it is of the kind.
type itemKind struct {
	what     string              // "role", "webhook registration"
	prefixes map[string][]string // service -> the prefixes of its items of the kind ("role ")
}

// roleKind: the roles of every service whose config declares roles.
func roleKind(p *env.Plan) itemKind {
	k := itemKind{what: "role", prefixes: map[string][]string{}}
	for _, sp := range p.Services {
		if c := sp.Ext.Config; c != nil && c.Roles {
			k.prefixes[sp.Name] = []string{"role "}
		}
	}
	return k
}

// webhookKind: the elements of every declared HTTP list whose name says
// webhook (webhooks, payment_webhooks, ...).
func webhookKind(p *env.Plan) itemKind {
	k := itemKind{what: "webhook registration", prefixes: map[string][]string{}}
	for _, sp := range p.Services {
		c := sp.Ext.Config
		if c == nil {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(c.HTTP)) {
			if strings.Contains(strings.ToLower(name), "webhook") {
				k.prefixes[sp.Name] = append(k.prefixes[sp.Name], name+" ")
			}
		}
	}
	return k
}

// key returns the item's key when it is of the kind.
func (k itemKind) key(service, item string) (string, bool) {
	for _, pre := range k.prefixes[service] {
		if strings.HasPrefix(item, pre) {
			return strings.TrimPrefix(item, pre), true
		}
	}
	return "", false
}

// added lists the items of the kind that the diff adds, as (service, key).
func (k itemKind) added(d snapshot.ConfigDiff) []addedItem {
	var out []addedItem
	for _, c := range d {
		if c.Change != snapshot.ConfigAdded {
			continue
		}
		if key, ok := k.key(c.Service, c.Item); ok {
			out = append(out, addedItem{change: c, key: key})
		}
	}
	return out
}

type addedItem struct {
	change snapshot.ConfigChange
	key    string
}

func (a addedItem) String() string { return a.change.String() + " during the upgrade" }

// addedDuringUpgrade compares the configuration before the first apply
// with now, and lists the items of the kind added since.
func (w *World) addedDuringUpgrade(ctx context.Context, kindOf func(*env.Plan) itemKind, declare string) ([]addedItem, error) {
	e, err := w.environment()
	if err != nil {
		return nil, err
	}
	k := kindOf(e.Plan)
	if len(k.prefixes) == 0 {
		return nil, fmt.Errorf("no service in %s declares its %ss (%s)", w.composeFile, k.what, declare)
	}
	switch {
	case !w.snaps.beforeApplyDone:
		return nil, errors.New(`the upgrade has not been applied in this scenario: the configuration is taken right before the first apply (When the upgrade package is applied to "SVC" as "USER")`)
	case w.snaps.beforeApplyErr != nil:
		return nil, fmt.Errorf("the configuration before the upgrade could not be taken: %w", w.snaps.beforeApplyErr)
	}
	now, err := w.configNow(ctx, "created during the upgrade")
	if err != nil {
		return nil, err
	}
	return k.added(w.snaps.beforeApply.Diff(now)), nil
}

func noneRemain(added []addedItem, what string) error {
	if len(added) == 0 {
		return nil
	}
	lines := make([]string, len(added))
	for i, a := range added {
		lines[i] = a.String()
	}
	if len(lines) == 1 {
		return errors.New(lines[0])
	}
	return diffError(fmt.Sprintf("%d %s created during the upgrade remain", len(lines), what), lines)
}

// exactlyRemain passes when the keys added are exactly those listed.
func exactlyRemain(added []addedItem, list, what string) error {
	var want []string
	for _, k := range strings.Split(list, ",") {
		if k = strings.TrimSpace(k); k != "" {
			want = append(want, k)
		}
	}
	if len(want) == 0 {
		return fmt.Errorf("no %s listed: use Then no %s created during the upgrade remain", what, what)
	}
	var got []string
	for _, a := range added {
		got = append(got, a.key)
	}
	slices.Sort(want)
	slices.Sort(got)
	if slices.Equal(got, want) {
		return nil
	}
	if len(got) == 0 {
		return fmt.Errorf("no %s created during the upgrade remains, want %s", what, strings.Join(want, ", "))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the %s created during the upgrade that remain are %s; want %s:", what, strings.Join(got, ", "), strings.Join(want, ", "))
	for _, a := range added {
		b.WriteString("\n  " + a.String())
	}
	return errors.New(b.String())
}

const (
	declareRoles    = "x-rehearse config roles: true on a PostgreSQL service"
	declareWebhooks = "an x-rehearse config http list named like webhooks"
)

func noWebhooksRemain(ctx context.Context) error {
	added, err := WorldFrom(ctx).addedDuringUpgrade(ctx, webhookKind, declareWebhooks)
	if err != nil {
		return err
	}
	return noneRemain(added, "webhook registrations")
}

func webhooksRemain(ctx context.Context, keys string) error {
	added, err := WorldFrom(ctx).addedDuringUpgrade(ctx, webhookKind, declareWebhooks)
	if err != nil {
		return err
	}
	return exactlyRemain(added, keys, "webhook registrations")
}

func noRolesRemain(ctx context.Context) error {
	added, err := WorldFrom(ctx).addedDuringUpgrade(ctx, roleKind, declareRoles)
	if err != nil {
		return err
	}
	return noneRemain(added, "database roles")
}

func rolesRemain(ctx context.Context, names string) error {
	added, err := WorldFrom(ctx).addedDuringUpgrade(ctx, roleKind, declareRoles)
	if err != nil {
		return err
	}
	return exactlyRemain(added, names, "database roles")
}

// flagQuery is the declared query that feature flag steps read.
const flagQuery = "feature_flags"

func featureFlagIs(ctx context.Context, flag, want string) error {
	w := WorldFrom(ctx)
	want = unescape(want)
	e, err := w.environment()
	if err != nil {
		return err
	}
	var items []snapshot.ConfigItem
	for _, sp := range e.Plan.Services {
		if c := sp.Ext.Config; c == nil || c.Queries[flagQuery] == "" {
			continue
		}
		span := w.Timeline.Begin(kindSnapshot, sp.Name, "config print").Set("for", "feature flag "+flag)
		p, err := snapshot.Config(ctx, e, sp.Name)
		span.End(err)
		if err != nil {
			return err
		}
		items = append(items, p.Items...)
	}
	if items == nil {
		return fmt.Errorf("no service in %s declares a %s query (x-rehearse config queries: %s: \"SELECT name, value ...\")", w.composeFile, flagQuery, flagQuery)
	}
	got, err := flagValue(items, flag)
	if err != nil {
		return err
	}
	if !sameValue(got, want) {
		return fmt.Errorf("feature flag %s is %q, want %q", flag, got, want)
	}
	return nil
}

// flagValue finds the flag's row among the feature_flags items: its one
// other column, or its column named value or enabled.
func flagValue(items []snapshot.ConfigItem, flag string) (string, error) {
	var flags []string
	for _, it := range items {
		name, ok := strings.CutPrefix(it.Name, flagQuery+" ")
		if !ok {
			continue
		}
		if name != flag {
			flags = append(flags, name)
			continue
		}
		if len(it.Attrs) == 1 {
			return it.Attrs[0].Value, nil
		}
		var cols []string
		for _, a := range it.Attrs {
			if a.Name == "value" || a.Name == "enabled" {
				return a.Value, nil
			}
			cols = append(cols, a.Name)
		}
		return "", fmt.Errorf("feature flag %s: its row has columns %s: the query should return the name and one value (or a column named value or enabled)", flag, strings.Join(cols, ", "))
	}
	if len(flags) == 0 {
		return "", fmt.Errorf("no feature flag %q: the %s query returns no rows", flag, flagQuery)
	}
	return "", fmt.Errorf("no feature flag %q (flags: %s)", flag, strings.Join(flags, ", "))
}

// sameValue compares a value as PostgreSQL wrote it with one a feature
// file gave: equal text, or the same boolean (t and true, f and false).
func sameValue(got, want string) bool {
	if got == want {
		return true
	}
	g, ok := pgBool(got)
	if !ok {
		return false
	}
	var w bool
	switch strings.ToLower(want) {
	case "true", "t", "on", "yes", "enabled":
		w = true
	case "false", "f", "off", "no", "disabled":
		w = false
	default:
		return false
	}
	return g == w
}

func pgBool(s string) (v, ok bool) {
	switch s {
	case "t", "true":
		return true, true
	case "f", "false":
		return false, true
	}
	return false, false
}

// forgetPrints drops the restorable copies, then the private hashes of
// every data print of the scenario, in each service printed
// (snapshot.ForgetData: the run's prints, also one a failed step left),
// whatever ended the scenario. A failure is
// said in the scenario's output and on the timeline; the environment goes
// down (or is kept) all the same.
func (w *World) forgetPrints(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Join(err, fmt.Errorf("panic: %v", r))
		}
		if err != nil {
			fmt.Fprintf(w.log, "snapshot: the private hashes of the data prints were not all dropped: %v\n", err)
			w.Timeline.Mark(timeline.KindWarning, kindSnapshot, "private hashes not dropped", map[string]string{"error": err.Error()})
		}
	}()
	if w.Env == nil {
		return nil
	}
	err = w.dropRestorePoints(ctx)
	for _, svc := range w.snaps.printed {
		fctx, cancel := context.WithTimeout(ctx, forgetTimeout)
		span := w.Timeline.Begin(kindSnapshot, svc, "forget")
		ferr := snapshot.ForgetData(fctx, w.Env, svc, "")
		span.End(ferr)
		cancel()
		if ferr != nil {
			err = errors.Join(err, fmt.Errorf("%s: %w", svc, ferr))
		}
	}
	return err
}

// forgetTimeout bounds dropping one service's private hashes.
const forgetTimeout = time.Minute

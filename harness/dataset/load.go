package dataset

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rehearse/rehearse/harness/env"
)

// Progress is how far a table's load has come.
type Progress struct {
	Dataset string
	Table   string
	Done    int64
	Total   int64 // expected rows (an estimate for per: tables)
}

// Option configures Load.
type Option func(*options) error

type options struct {
	progress func(Progress)
	batch    int64
	tables   map[string]bool
	// inPlace loads into the full schema, constraints and indexes in place,
	// in one transaction: the order before restore order, kept for what
	// restore order cannot recreate faithfully and for tests that compare.
	inPlace bool
	// inline generates rows in the goroutine that encodes the COPY instead
	// of one of their own (benchmarks compare).
	inline bool
	// trace hears how long each phase of a load took (benchmarks).
	trace func(phase string, d time.Duration)
}

// WithProgress calls fn after each batch of a table's rows; tables load
// concurrently, but calls are never concurrent. Default: no reports.
func WithProgress(fn func(Progress)) Option {
	return func(o *options) error { o.progress = fn; return nil }
}

// WithBatchSize sets the rows between progress reports. Default: 50,000.
func WithBatchSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("batch size %d: must be positive", n)
		}
		o.batch = n
		return nil
	}
}

// WithTables loads only the named generated tables. Default: all.
func WithTables(names ...string) Option {
	return func(o *options) error {
		o.tables = map[string]bool{}
		for _, n := range names {
			o.tables[n] = true
		}
		return nil
	}
}

// Result says what a load did.
type Result struct {
	Rows     map[string]int64 // generated rows per table
	Duration time.Duration
	// InPlace says why the generated tables were loaded with their
	// constraints and indexes in place ("" when in restore order).
	InPlace string
}

// Load seeds a dataset into its service at a scale (the main table's row
// count): the schema, the dump files, then the generated tables, emptied
// first, in pg_restore's order: their primary keys, unique and exclusion
// constraints, indexes and foreign keys (those of other tables that point
// at them too) are dropped, the tables COPYed concurrently, the indexes and
// constraints recreated as they were, foreign keys last (see restoreOrder).
// Every connection names the tables schema-qualified, as the schema's own
// session (its search_path) resolved them. What that order would not load
// as the old one did (temporary tables, a role the schema set, triggers,
// defaults sharing a sequence or calling volatile functions, CHECKs calling
// the schema's functions, objects depending on the keys, event triggers,
// and more: see unsupportedSQL) loads in place instead, in one
// transaction, and Result.InPlace says why.
//
// A generated row that breaks a constraint is a *ViolationError; a
// cancelled ctx is an error, never a nil with tables left empty. On a
// failure in restore order after the drop, the generated tables, and the tables their
// TRUNCATE ... CASCADE emptied, are left empty, with every dropped
// definition put back (the error says if putting back failed too); in
// place, the load's transaction is rolled back and the tables keep what
// they held before. A process killed between the drop and the recreation
// leaves the tables without those keys and indexes: the environment is a
// disposable sandbox, and harness/snapshot's seeded-state cache stores a
// state only after a Load that returned nil.
func Load(ctx context.Context, e *env.Environment, s *Spec, scale int64, opts ...Option) (Result, error) {
	o := options{batch: 50_000}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return Result{}, fmt.Errorf("dataset %s: %w", s.Name, err)
		}
	}
	start := time.Now()
	res := Result{Rows: map[string]int64{}}
	svc := e.Service(s.Service)
	if svc == nil {
		return res, fmt.Errorf("dataset %s: service %q is not running", s.Name, s.Service)
	}
	conn, err := Connect(ctx, e, s.Service, s.Database)
	if err != nil {
		return res, fmt.Errorf("dataset %s: %w", s.Name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if s.Schema != "" {
		sql, err := s.readFile(s.Schema, true)
		if err != nil {
			return res, err
		}
		if _, err := conn.Exec(ctx, string(sql)); err != nil {
			return res, fmt.Errorf("dataset %s: schema %s: %w", s.Name, s.Schema, err)
		}
	}
	for _, f := range s.Files {
		if err := runDump(ctx, e, svc, s, f); err != nil {
			return res, fmt.Errorf("dataset %s: %s: %w", s.Name, f, err)
		}
	}
	var tables []*TableSpec
	for i := range s.Tables {
		if o.tables == nil || o.tables[s.Tables[i].Name] {
			tables = append(tables, &s.Tables[i])
		}
	}
	if len(tables) == 0 {
		res.Duration = time.Since(start)
		return res, nil
	}
	if o.progress != nil {
		// Tables load concurrently: one report at a time.
		var mu sync.Mutex
		fn := o.progress
		o.progress = func(p Progress) { mu.Lock(); defer mu.Unlock(); fn(p) }
	}
	ld := &loader{e: e, conn: conn, s: s, scale: scale, tables: tables, o: o, res: &res}
	if err := ld.resolve(ctx); err != nil {
		return res, err
	}
	if o.inPlace {
		err = ld.inPlace(ctx)
	} else {
		err = ld.restoreOrder(ctx)
	}
	if err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// loader is one Load of a dataset's generated tables.
type loader struct {
	e      *env.Environment
	conn   *pgx.Conn // the load's first connection
	s      *Spec
	scale  int64
	tables []*TableSpec // those to load, in the spec's order
	o      options
	res    *Result
	mu     sync.Mutex // guards res.Rows

	// What resolve found on the load's first connection, in the session
	// the schema left there: each table's oid and schema-qualified name,
	// the search_path, and why the other connections of restore order
	// would not see the same tables ("" when they would).
	oids       map[string]uint32
	ident      map[string]pgx.Identifier
	searchPath string
	// settings are what the schema SET for its session of the settings
	// that change what a default or the COPY's input makes of a row
	// (sessionSettingsSQL): every COPY connection of the load sets them
	// too, names and values side by side.
	settings [2][]string
	session  string
}

// sessionSettingsSQL lists, of the settings that change the values a row
// gets (defaults, input parsing, triggers), those the session SET, as
// current_setting shows them. The search_path and the role are handled
// apart; the rest are left alone: client_encoding is the driver's (pgx
// sends UTF-8), timeouts would cut the COPY, transaction_* cannot be set
// once a transaction has begun. A custom app.* setting is not listed in
// pg_settings (defaultsSQL sends defaults reading one in place).
const sessionSettingsSQL = `SELECT coalesce(pg_catalog.array_agg(name ORDER BY name), '{}'),
  coalesce(pg_catalog.array_agg(pg_catalog.current_setting(name) ORDER BY name), '{}')
FROM pg_catalog.pg_settings
WHERE source = 'session' AND name IN ('TimeZone', 'DateStyle', 'IntervalStyle', 'lc_monetary', 'lc_numeric',
  'lc_time', 'extra_float_digits', 'xmloption', 'default_text_search_config', 'session_replication_role',
  'row_security', 'standard_conforming_strings', 'array_nulls', 'backslash_quote', 'bytea_output')`

// resolveSQL gives a table's oid, schema and name, and whether it is
// temporary, from its name as the session resolves it.
const resolveSQL = `SELECT c.oid, n.nspname, c.relname, c.relpersistence = 't'
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = $1::pg_catalog.text::pg_catalog.regclass`

// resolve finds the tables the spec names as the load's first connection
// sees them (the schema may have set its search_path), once: every
// connection of the load then names them schema-qualified.
func (l *loader) resolve(ctx context.Context) error {
	l.oids = map[string]uint32{}
	l.ident = map[string]pgx.Identifier{}
	for _, t := range l.tables {
		var oid uint32
		var nsp, rel string
		var temp bool
		if err := l.conn.QueryRow(ctx, resolveSQL, pgx.Identifier{t.Name}.Sanitize()).Scan(&oid, &nsp, &rel, &temp); err != nil {
			return l.tableErr(t, "", err)
		}
		l.oids[t.Name] = oid
		l.ident[t.Name] = pgx.Identifier{nsp, rel}
		if temp && l.session == "" {
			l.session = fmt.Sprintf("table %s is temporary: only the load's first connection sees it", t.Name)
		}
	}
	var role string
	var changed bool
	if err := l.conn.QueryRow(ctx, "SELECT pg_catalog.current_setting('search_path'), current_user::pg_catalog.text, current_user <> session_user").Scan(&l.searchPath, &role, &changed); err != nil {
		return fmt.Errorf("dataset %s: %w", l.s.Name, err)
	}
	if changed && l.session == "" {
		l.session = fmt.Sprintf("the schema set the role to %s: the load's other connections would not run as it", role)
	}
	if err := l.conn.QueryRow(ctx, sessionSettingsSQL).Scan(&l.settings[0], &l.settings[1]); err != nil {
		return fmt.Errorf("dataset %s: read the session's settings: %w", l.s.Name, err)
	}
	return nil
}

// names are the tables to load, schema-qualified and quoted.
func (l *loader) names() []string {
	var names []string
	for _, t := range l.tables {
		names = append(names, l.ident[t.Name].Sanitize())
	}
	return names
}

func (l *loader) trace(phase string, start time.Time) {
	if l.o.trace != nil {
		l.o.trace(phase, time.Since(start))
	}
}

// inPlace loads into the full schema in one transaction: TRUNCATE, COPY
// each table in the spec's order with every constraint and index in place,
// sequences; ANALYZE after the commit. A failure rolls everything back.
func (l *loader) inPlace(ctx context.Context) error {
	s := l.s
	tx, err := l.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("dataset %s: %w", s.Name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	names := l.names()
	if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(names, ", ")+" CASCADE"); err != nil {
		return fmt.Errorf("dataset %s: empty tables: %w", s.Name, err)
	}
	rows, err := tableRows(ctx, tx, s, l.scale)
	if err != nil {
		return fmt.Errorf("dataset %s: %w", s.Name, err)
	}
	for _, t := range l.tables {
		n, err := l.copyTable(ctx, l.conn, t, rows)
		if err != nil {
			return l.tableErr(t, "", err)
		}
		rows[t.Name] = n
		l.res.Rows[t.Name] = n
		if err := syncSequences(ctx, tx, t, l.ident[t.Name]); err != nil {
			return l.tableErr(t, "", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return l.tableErr(nil, "", err)
	}
	for i, n := range names {
		if _, err := l.conn.Exec(ctx, "ANALYZE "+n); err != nil {
			return l.tableErr(l.tables[i], "", err)
		}
	}
	return nil
}

// tableRows knows the row count of every table a ref or per can name: the
// generated ones at this scale, others as they stand in the database.
func tableRows(ctx context.Context, tx execer, s *Spec, scale int64) (map[string]int64, error) {
	rows := map[string]int64{}
	for i := range s.Tables {
		t := &s.Tables[i]
		if t.Rows != "" {
			n, err := rowCount(t.Rows, scale)
			if err != nil {
				return nil, err
			}
			rows[t.Name] = n
		} else {
			var n int64
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{t.Name}.Sanitize()).Scan(&n); err != nil {
				return nil, err
			}
			rows[t.Name] = n
		}
	}
	return rows, nil
}

// copyTable streams a table's rows in one COPY on conn (inside whatever
// transaction conn has open), with rows counting for ref and per. The rows
// are generated in a goroutine of their own, a few batches ahead of the
// COPY, unless options.inline.
func (l *loader) copyTable(ctx context.Context, conn *pgx.Conn, t *TableSpec, rows map[string]int64) (int64, error) {
	src, err := newSource(l.s, t, l.scale, rows)
	if err != nil {
		return 0, err
	}
	var from pgx.CopyFromSource = src
	if !l.o.inline {
		p := generateAhead(src)
		defer p.stop()
		from = p
	}
	pr := &progressSource{CopyFromSource: from, l: l, t: t, total: src.estimate()}
	n, err := conn.CopyFrom(ctx, l.ident[t.Name], src.columnNames(), pr)
	if err != nil {
		return n, err
	}
	if pr.done != pr.reported {
		pr.report()
	}
	return n, nil
}

// progressSource reports progress every options.batch rows a COPY reads,
// and at the end.
type progressSource struct {
	pgx.CopyFromSource
	l              *loader
	t              *TableSpec
	total          int64
	done, reported int64
	ended          bool
}

func (p *progressSource) Next() bool {
	if !p.CopyFromSource.Next() {
		p.ended = true
		return false
	}
	p.done++
	if p.done%p.l.o.batch == 0 {
		p.report()
	}
	return true
}

func (p *progressSource) report() {
	p.reported = p.done
	if p.l.o.progress == nil {
		return
	}
	tot := max(p.total, p.done)
	if p.ended {
		tot = p.done
	}
	p.l.o.progress(Progress{Dataset: p.l.s.Name, Table: p.t.Name, Done: p.done, Total: tot})
}

// execer is what a connection and a transaction share.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// syncSequences moves identity/serial sequences past the generated ids, so
// the application's own inserts do not collide with them.
// table is t's schema-qualified name (loader.resolve).
func syncSequences(ctx context.Context, tx execer, t *TableSpec, table pgx.Identifier) error {
	for _, c := range t.columns {
		if _, ok := c.gen.(seqGen); !ok {
			continue
		}
		var seq *string
		if err := tx.QueryRow(ctx, "SELECT pg_catalog.pg_get_serial_sequence($1, $2)", table.Sanitize(), c.name).Scan(&seq); err != nil {
			return err
		}
		if seq == nil {
			continue
		}
		q := fmt.Sprintf("SELECT pg_catalog.setval($1::pg_catalog.text::pg_catalog.regclass, GREATEST((SELECT pg_catalog.max(%s) FROM %s), 1))", pgx.Identifier{c.name}.Sanitize(), table.Sanitize())
		if _, err := tx.Exec(ctx, q, *seq); err != nil {
			return err
		}
	}
	return nil
}

// runDump runs a .sql or .sql.gz file with psql inside the service, so
// pg_dump output (COPY ... FROM stdin, meta-commands) works as it would in
// production. The file goes in under a name of our own and every command
// gets its arguments as a list, never through a shell: a file name is data,
// whatever characters it holds.
func runDump(ctx context.Context, e *env.Environment, svc *env.Service, s *Spec, file string) error {
	data, err := s.readFile(file, true)
	if err != nil {
		return err
	}
	var tag [8]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return err
	}
	dst := "/tmp/rehearse-dataset-" + hex.EncodeToString(tag[:]) + ".sql"
	in := dst
	if strings.HasSuffix(file, ".gz") {
		in += ".gz"
	}
	defer func() {
		// A failed load must not leave the dump behind in the service.
		svc.Exec(context.WithoutCancel(ctx), []string{"rm", "-f", "--", dst, in})
	}()
	if err := svc.CopyIn(ctx, data, in, 0o644); err != nil {
		return err
	}
	if in != dst {
		if err := execOK(ctx, svc, []string{"gunzip", "--", in}); err != nil {
			return err
		}
	}
	creds := credentials(e, s.Service, s.Database)
	psql := []string{"psql", "-X", "-v", "ON_ERROR_STOP=1", "-q", "-h", "127.0.0.1", "-U", creds.user, "-d", creds.database, "-f", dst}
	res, err := svc.Exec(ctx, psql, env.WithExecEnv("PGPASSWORD="+creds.password))
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		// psql names the file it ran ("psql:/tmp/...sql:3: ERROR: ..."):
		// name the dataset's file instead.
		return fmt.Errorf("psql exited %d: %s", res.ExitCode, strings.ReplaceAll(strings.TrimSpace(res.Stderr), dst, file))
	}
	return nil
}

// execOK runs a command in a service and fails unless it exits 0.
func execOK(ctx context.Context, svc *env.Service, cmd []string, opts ...env.ExecOption) error {
	res, err := svc.Exec(ctx, cmd, opts...)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("%s exited %d: %s", cmd[0], res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return nil
}

type creds struct{ user, password, database string }

// credentials follows the convention of PostgreSQL images: POSTGRES_USER
// (default postgres), POSTGRES_PASSWORD, POSTGRES_DB (default the user).
func credentials(e *env.Environment, service, database string) creds {
	c := creds{user: "postgres", database: database}
	if sp := e.Plan.Service(service); sp != nil {
		if u := sp.Env["POSTGRES_USER"]; u != "" {
			c.user = u
		}
		c.password = sp.Env["POSTGRES_PASSWORD"]
		if c.database == "" {
			c.database = sp.Env["POSTGRES_DB"]
		}
	}
	if c.database == "" {
		c.database = c.user
	}
	return c
}

// DSN is the connection string for a PostgreSQL service through its
// 127.0.0.1 endpoint; database "" means the service's default.
func DSN(e *env.Environment, service, database string) (string, error) {
	svc := e.Service(service)
	if svc == nil {
		return "", fmt.Errorf("service %q is not running", service)
	}
	ep, err := svc.Endpoint("5432/tcp")
	if err != nil {
		return "", err
	}
	c := credentials(e, service, database)
	u := url.URL{Scheme: "postgres", User: url.UserPassword(c.user, c.password), Host: ep, Path: "/" + c.database, RawQuery: "sslmode=disable"}
	return u.String(), nil
}

// Connect opens a connection to a PostgreSQL service.
func Connect(ctx context.Context, e *env.Environment, service, database string) (*pgx.Conn, error) {
	dsn, err := DSN(e, service, database)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", service, err)
	}
	return conn, nil
}

// QueryValue runs SQL on a PostgreSQL service and returns the first column
// of the first row as text ("NULL" for null).
func QueryValue(ctx context.Context, e *env.Environment, service, sql string) (string, error) {
	conn, err := Connect(ctx, e, service, "")
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v any
	if err := conn.QueryRow(ctx, sql).Scan(&v); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("query %q on %s returned no rows", sql, service)
		}
		return "", fmt.Errorf("query %q on %s: %w", sql, service, err)
	}
	if v == nil {
		return "NULL", nil
	}
	return fmt.Sprint(v), nil
}

// RowCount counts a table's rows ("schema.table" works too).
func RowCount(ctx context.Context, e *env.Environment, service, table string) (int64, error) {
	v, err := QueryValue(ctx, e, service, "SELECT count(*) FROM "+pgx.Identifier(strings.Split(table, ".")).Sanitize())
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// WriteCSV writes a generated table's rows at a scale as CSV (the same rows
// Load copies), for comparisons and for tools that take files.
func WriteCSV(w io.Writer, s *Spec, table string, scale int64, rows map[string]int64) (int64, error) {
	var t *TableSpec
	for i := range s.Tables {
		if s.Tables[i].Name == table {
			t = &s.Tables[i]
		}
	}
	if t == nil {
		return 0, fmt.Errorf("dataset %s has no table %q", s.Name, table)
	}
	if rows == nil {
		rows = map[string]int64{}
		for i := range s.Tables {
			if s.Tables[i].Rows != "" {
				rows[s.Tables[i].Name], _ = rowCount(s.Tables[i].Rows, scale)
			}
		}
	}
	src, err := newSource(s, t, scale, rows)
	if err != nil {
		return 0, err
	}
	cw := csv.NewWriter(w)
	rec := make([]string, len(t.columns))
	for src.Next() {
		for i, v := range src.values {
			switch v := v.(type) {
			case time.Time:
				rec[i] = v.UTC().Format(time.RFC3339)
			default:
				rec[i] = fmt.Sprint(v)
			}
		}
		if err := cw.Write(rec); err != nil {
			return src.produced, err
		}
	}
	cw.Flush()
	return src.produced, cw.Error()
}

// Columns lists a generated table's columns in COPY order.
func (s *Spec) Columns(table string) []string {
	for i := range s.Tables {
		if s.Tables[i].Name == table {
			src := source{t: &s.Tables[i]}
			return src.columnNames()
		}
	}
	return nil
}

package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rehearse/rehearse/harness/env"
)

// DataPrint is the data fingerprint of one database of a PostgreSQL
// service: every user table's row count, checksum and schema, and the
// sequences. It marshals to JSON; the per-row hashes it names by KeySchema
// stay inside the database until Forget.
type DataPrint struct {
	Service   string         `json:"service"`
	Database  string         `json:"database"`
	Taken     time.Time      `json:"taken"`
	Duration  time.Duration  `json:"duration"`
	Tables    []DataTable    `json:"tables"` // by schema, then name
	Sequences []DataSequence `json:"sequences"`
	// KeySchema is the private schema that holds one (key, hash) table per
	// table with a primary key, for a later diff to name changed rows;
	// "" when none was kept (DataWithoutKeys) or after Forget.
	KeySchema string `json:"key_schema,omitempty"`
	// Seed is the seed of every row hash, random per print (DiffData uses
	// its earlier print's): the database does not know it in advance, so
	// an upgrade cannot aim a change at an unchanged checksum (see the
	// package doc for the limits). Two prints' checksums compare only
	// under the same seed.
	Seed int64 `json:"seed"`

	e *env.Environment
}

// DataTable is one table's fingerprint: its contents and its schema.
type DataTable struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	Rows   int64  `json:"rows"`
	// Checksum is the sum of a 64-bit hash of every row's text, in
	// decimal: equal for the same rows in any order.
	Checksum string `json:"checksum"`
	// Key is the primary key's columns, KeyTypes their types; nil for a
	// table without one (its rows cannot be named in a diff).
	Key      []string `json:"key,omitempty"`
	KeyTypes []string `json:"key_types,omitempty"`
	// KeyTable is the table in the print's KeySchema holding this table's
	// (key, hash) rows; "" when none was kept. KeyOID is its OID: what a
	// later print leaves out and Forget drops (a table of the database's
	// own cannot have it, whatever its name).
	KeyTable    string            `json:"key_table,omitempty"`
	KeyOID      uint32            `json:"key_oid,omitempty"`
	Columns     []DataColumn      `json:"columns"`
	Indexes     map[string]string `json:"indexes,omitempty"`     // name -> pg_get_indexdef
	Constraints map[string]string `json:"constraints,omitempty"` // name -> pg_get_constraintdef
}

// DataColumn is a column as the catalog has it.
type DataColumn struct {
	Name      string `json:"name"`
	Type      string `json:"type"`              // format_type: "bigint", "character varying(20)"
	Default   string `json:"default,omitempty"` // the expression; a generated column's generation expression
	NotNull   bool   `json:"not_null,omitempty"`
	Identity  string `json:"identity,omitempty"`  // "a" always, "d" by default, "" none
	Generated string `json:"generated,omitempty"` // "s" stored, "" none
}

// DataSequence is a sequence's definition and state.
type DataSequence struct {
	Schema    string `json:"schema"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	Start     int64  `json:"start"`
	Increment int64  `json:"increment"`
	Min       int64  `json:"min"`
	Max       int64  `json:"max"`
	Cycle     bool   `json:"cycle,omitempty"`
	// LastValue and Called are the sequence's own state (its relation's
	// last_value and is_called): the next nextval gives LastValue when
	// Called is false (a fresh sequence, or setval(s, v, false)), the value
	// after it when true. LastValue is nil without the privilege to read
	// the sequence.
	LastValue *int64 `json:"last_value,omitempty"`
	Called    bool   `json:"is_called,omitempty"`
}

// NextValue is what the next nextval gives ("" when unknown: no
// privilege; "none" when the sequence is exhausted and does not cycle).
func (s DataSequence) NextValue() string {
	if s.LastValue == nil {
		return ""
	}
	v := *s.LastValue
	if !s.Called {
		return strconv.FormatInt(v, 10)
	}
	next, over := v+s.Increment, false
	switch {
	case s.Increment > 0:
		over = next < v || next > s.Max
	case s.Increment < 0:
		over = next > v || next < s.Min
	}
	if !over {
		return strconv.FormatInt(next, 10)
	}
	switch {
	case !s.Cycle:
		return "none"
	case s.Increment > 0:
		return strconv.FormatInt(s.Min, 10)
	}
	return strconv.FormatInt(s.Max, 10)
}

// DataOption configures Data and DiffData.
type DataOption func(*dataOptions) error

type dataOptions struct {
	database string
	keys     bool
	examples int
	seed     *int64
}

// DataSeedOf takes the print with p's seed, so that p.Diff of it compares
// checksums (DiffData does so by itself).
func DataSeedOf(p *DataPrint) DataOption {
	return func(o *dataOptions) error {
		if p == nil {
			return errors.New("snapshot: DataSeedOf a nil print")
		}
		seed := p.Seed
		o.seed = &seed
		return nil
	}
}

// dataRandomSeed is a print's seed.
func dataRandomSeed() int64 {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:]))
}

// DataDatabase fingerprints a database other than the service's default
// (its POSTGRES_DB).
func DataDatabase(name string) DataOption {
	return func(o *dataOptions) error {
		if name == "" {
			return errors.New("snapshot: empty database name")
		}
		o.database = name
		return nil
	}
}

// DataWithoutKeys keeps no per-row hashes: Data then writes nothing into
// the database and runs read-only, and a later diff gives counts but names
// no rows.
func DataWithoutKeys() DataOption {
	return func(o *dataOptions) error { o.keys = false; return nil }
}

// DataExamples sets how many keys a diff names per kind of row change
// (changed, added, deleted). Default: 5.
func DataExamples(n int) DataOption {
	return func(o *dataOptions) error {
		if n < 0 {
			return fmt.Errorf("snapshot: %d examples", n)
		}
		o.examples = n
		return nil
	}
}

func dataOpts(opts []DataOption) (dataOptions, error) {
	o := dataOptions{keys: true, examples: 5}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// dataKeySchemaPrefix starts the name of every private schema of a run's
// prints, followed by 8 hex digits. The name alone excludes nothing from a
// print: a print leaves out the tables this process created (dataKept),
// by OID; ForgetData drops only tables of such schemas that also carry
// dataKeyComment and belong to the harness's role.
func dataKeySchemaPrefix(e *env.Environment) string { return "rehearse_fp_" + e.RunID + "_" }

// dataSchemaComment and dataKeyComment mark the private schema and its
// tables (the key tables' comments go on with the table they hash).
const (
	dataSchemaComment = "rehearse: per-row hashes of a data fingerprint, dropped when it is forgotten"
	dataKeyComment    = "rehearse: per-row hashes of "
)

// dataKept are the OIDs of the key tables this process created, per
// run, service and database: every print of this process leaves them out,
// and only them. OIDs rather than names: a database (or an upgrade) that
// has seen a private schema's name can create a table of its own in it,
// or one named like it, and that table is fingerprinted like any other;
// it cannot give its table an OID the server already gave ours without
// editing the catalog by hand. OIDs stay after Forget: a Restore can bring
// the tables back as they were, and they are still not the database's.
var dataKept struct {
	sync.Mutex
	m map[dataKeptKey]map[uint32]bool
}

type dataKeptKey struct{ run, service, database string }

func dataKeep(k dataKeptKey, oid uint32) {
	dataKept.Lock()
	defer dataKept.Unlock()
	if dataKept.m == nil {
		dataKept.m = map[dataKeptKey]map[uint32]bool{}
	}
	if dataKept.m[k] == nil {
		dataKept.m[k] = map[uint32]bool{}
	}
	dataKept.m[k][oid] = true
}

// dataExcluded is what a print in k leaves out: the key tables this
// process created and those of before (a print of another process).
func dataExcluded(k dataKeptKey, before *DataPrint) []uint32 {
	dataKept.Lock()
	oids := []uint32{} // not nil: a nil array is NULL, and <> ALL(NULL) keeps nothing
	for o := range dataKept.m[k] {
		oids = append(oids, o)
	}
	dataKept.Unlock()
	if before != nil {
		for _, t := range before.Tables {
			if t.KeyOID != 0 {
				oids = append(oids, t.KeyOID)
			}
		}
	}
	slices.Sort(oids)
	return slices.Compact(oids)
}

// Data takes the data fingerprint of a PostgreSQL service's database.
//
// One snapshot covers every table: a read-only REPEATABLE READ transaction
// exports it and stays open while a second session fingerprints the tables
// one by one, each in its own transaction on that snapshot, so a table is
// held ACCESS SHARE only while it is read. Unless DataWithoutKeys, each
// table's (primary key, row hash) pairs go into an unlogged table of a
// private schema (KeySchema), for DiffData to name changed rows; call Forget
// to drop it. On error nothing is left behind.
func Data(ctx context.Context, e *env.Environment, service string, opts ...DataOption) (*DataPrint, error) {
	o, err := dataOpts(opts)
	if err != nil {
		return nil, err
	}
	s, err := openDataSession(ctx, e, service, o.database)
	if err != nil {
		return nil, err
	}
	defer s.close(ctx)
	p := &DataPrint{Service: service, Database: s.database, Taken: time.Now(), Seed: dataRandomSeed(), e: e}
	if o.seed != nil {
		p.Seed = *o.seed
	}
	if o.keys {
		b := make([]byte, 4)
		rand.Read(b)
		p.KeySchema = dataKeySchemaPrefix(e) + hex.EncodeToString(b)
		if err := dataExec(ctx, s.work, "CREATE SCHEMA "+dataIdent(p.KeySchema)); err != nil {
			return nil, s.errorf("create private schema %s: %w", p.KeySchema, err)
		}
		if err := dataComment(ctx, s.work, "SCHEMA", dataIdent(p.KeySchema), dataSchemaComment); err != nil {
			err = s.errorf("create private schema %s: %w", p.KeySchema, err)
			return nil, errors.Join(err, dataDropKept(context.WithoutCancel(ctx), s.work, p))
		}
	}
	if err := s.take(ctx, p, nil, o); err != nil {
		if p.KeySchema != "" {
			// A fresh context: the caller's may be what ended the print.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			derr := dataDropKept(dctx, s.work, p)
			cancel()
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	p.Duration = time.Since(p.Taken)
	return p, nil
}

// DiffData compares a service's database as it is now with a print taken
// earlier (by this process or, from JSON, another, of the same run), and
// names what changed. It is read-only: it writes nothing into the
// database. Rows are named by primary key while the earlier print's
// private hashes exist; otherwise a changed table gives counts only.
func DiffData(ctx context.Context, e *env.Environment, service string, before *DataPrint, opts ...DataOption) (DataDiff, error) {
	if before == nil {
		return DataDiff{}, errors.New("snapshot: no earlier print to compare with")
	}
	if before.Database != "" {
		opts = append([]DataOption{DataDatabase(before.Database)}, opts...)
	}
	o, err := dataOpts(opts)
	if err != nil {
		return DataDiff{}, err
	}
	s, err := openDataSession(ctx, e, service, o.database)
	if err != nil {
		return DataDiff{}, err
	}
	defer s.close(ctx)
	now := &DataPrint{Service: service, Database: s.database, Taken: time.Now(), Seed: before.Seed, e: e}
	rows := map[[2]string]*DataRowChange{}
	if err := s.take(ctx, now, &dataRowDiffer{before: before, out: rows}, o); err != nil {
		return DataDiff{}, err
	}
	return diffData(before, now, rows), nil
}

// Diff compares two prints without the database: schema, sequences and
// each table's count and checksum. It names no rows (DiffData does).
// Checksums compare only between prints of the same seed (DataSeedOf);
// otherwise only counts do.
func (p *DataPrint) Diff(after *DataPrint) DataDiff { return diffData(p, after, nil) }

// Forget drops the print's private hashes from the database. The print
// still compares (DiffData then gives counts without keys).
func (p *DataPrint) Forget(ctx context.Context) error {
	if p.KeySchema == "" {
		return nil
	}
	if p.e == nil {
		return fmt.Errorf("snapshot: print of %s was not taken here: use ForgetData", p.Service)
	}
	conn, err := dataConnect(ctx, p.e, p.Service, p.Database)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := dataDropKept(ctx, conn, p); err != nil {
		return fmt.Errorf("%s: %w", p.Service, err)
	}
	p.KeySchema = ""
	for i := range p.Tables {
		p.Tables[i].KeyTable, p.Tables[i].KeyOID = "", 0
	}
	return nil
}

// dataDropKept drops the key tables p created, each by name when it still
// has the OID it was created with, RESTRICT: a user object that depends on
// one (a view, say) is not dropped with it, the drop fails and says so.
// Then the schema, RESTRICT: anything else in it is not ours and stays.
func dataDropKept(ctx context.Context, conn *pgx.Conn, p *DataPrint) error {
	for _, t := range p.Tables {
		if t.KeyTable == "" || t.KeyOID == 0 {
			continue
		}
		name := dataIdent(p.KeySchema, t.KeyTable)
		var oid *uint32
		if err := conn.QueryRow(ctx, "SELECT pg_catalog.to_regclass($1)::pg_catalog.oid", name).Scan(&oid); err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		if oid == nil || *oid != t.KeyOID {
			continue // gone, or not the table this print made
		}
		if err := dataExec(ctx, conn, "DROP TABLE "+name+" RESTRICT"); err != nil {
			return fmt.Errorf("drop %s (the private hashes of %s): %w", name, dataName(t.Schema, t.Name), err)
		}
	}
	if err := dataExec(ctx, conn, "DROP SCHEMA IF EXISTS "+dataIdent(p.KeySchema)+" RESTRICT"); err != nil {
		return fmt.Errorf("drop private schema %s (what is left in it was not made by the harness, and stays): %w", p.KeySchema, err)
	}
	return nil
}

// ForgetData drops the private hashes of every print of this run in a
// service's database (database "" is the default): the cleanup after a
// process that ended without Forget. It drops only what looks like the
// harness's own: tables named t<n>, unlogged, owned by the connected role,
// with the harness's comment, in schemas named rehearse_fp_<run id>_ and 8
// hex digits owned by that role; each RESTRICT, so that a user object that
// depends on one stays and the error names it. Then each such schema,
// RESTRICT: one that still holds anything is left, and said.
func ForgetData(ctx context.Context, e *env.Environment, service, database string) error {
	conn, err := dataConnect(ctx, e, service, database)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	prefix := dataKeySchemaPrefix(e)
	rows, err := conn.Query(ctx, `
SELECT n.nspname::text, c.relname::text
FROM pg_catalog.pg_namespace n
JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner AND r.rolname = current_user
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relowner = n.nspowner
	AND c.relkind = 'r' AND c.relpersistence = 'u' AND c.relname ~ '^t[0-9]+$'
	AND left(pg_catalog.obj_description(c.oid, 'pg_class'), length($2)) = $2
WHERE left(n.nspname, length($1)) = $1 AND substr(n.nspname, length($1) + 1) ~ '^[0-9a-f]{8}$'
ORDER BY 1, 2`, prefix, dataKeyComment)
	if err != nil {
		return fmt.Errorf("%s: list private schemas: %w", service, err)
	}
	type item struct{ schema, table *string }
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (item, error) {
		var it item
		err := r.Scan(&it.schema, &it.table)
		return it, err
	})
	if err != nil {
		return fmt.Errorf("%s: list private schemas: %w", service, err)
	}
	var errs []error
	var schemas []string
	for _, it := range items {
		if it.table != nil {
			name := dataIdent(*it.schema, *it.table)
			if err := dataExec(ctx, conn, "DROP TABLE IF EXISTS "+name+" RESTRICT"); err != nil {
				errs = append(errs, fmt.Errorf("%s: drop %s: %w", service, name, err))
			}
		}
		if len(schemas) == 0 || schemas[len(schemas)-1] != *it.schema {
			schemas = append(schemas, *it.schema)
		}
	}
	for _, n := range schemas {
		if err := dataExec(ctx, conn, "DROP SCHEMA IF EXISTS "+dataIdent(n)+" RESTRICT"); err != nil {
			errs = append(errs, fmt.Errorf("%s: drop private schema %s (what is left in it was not made by the harness, and stays): %w", service, n, err))
		}
	}
	return errors.Join(errs...)
}

// dataExec runs one statement over the extended protocol, so that it is
// one statement whatever its text: pgx sends a statement without
// arguments over the simple protocol, which runs every statement of a
// string.
// A server error keeps its detail (for a refused drop, what depends on
// the object).
func dataExec(ctx context.Context, conn *pgx.Conn, sql string) error {
	_, err := conn.PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Close()
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Detail != "" {
		return fmt.Errorf("%w (%s)", err, strings.ReplaceAll(pe.Detail, "\n", "; "))
	}
	return err
}

// dataComment comments on an object: the literal is quoted by the server
// (format's %L, from a bound parameter), never by hand, and the statement
// runs alone.
func dataComment(ctx context.Context, conn *pgx.Conn, kind, ident, text string) error {
	var q string
	// kind is the caller's constant (SCHEMA, TABLE), ident a Sanitize'd
	// identifier: neither is a literal.
	if err := conn.QueryRow(ctx, "SELECT pg_catalog.format($1::pg_catalog.text, $2::pg_catalog.text, $3::pg_catalog.text)",
		"COMMENT ON "+kind+" %s IS %L", ident, text).Scan(&q); err != nil {
		return err
	}
	return dataExec(ctx, conn, q)
}

func dataIdent(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

// dataName is how a diff names a table or sequence: without "public.".
func dataName(schema, name string) string {
	if schema == "public" {
		return name
	}
	return schema + "." + name
}

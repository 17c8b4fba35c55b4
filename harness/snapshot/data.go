package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rehearse/rehearse/harness/dataset"
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
	// (key, hash) rows; "" when none was kept.
	KeyTable    string            `json:"key_table,omitempty"`
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
	// LastValue is nil before the first nextval (or without the privilege
	// to read it).
	LastValue *int64 `json:"last_value,omitempty"`
}

// DataOption configures Data and DiffData.
type DataOption func(*dataOptions) error

type dataOptions struct {
	database string
	keys     bool
	examples int
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
// prints: excluded from every print of that run, dropped by Forget and
// ForgetData. The run id makes it one a database cannot have made up in
// advance to hide its own tables.
func dataKeySchemaPrefix(e *env.Environment) string { return "rehearse_fp_" + e.RunID + "_" }

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
	p := &DataPrint{Service: service, Database: s.database, Taken: time.Now(), e: e}
	if o.keys {
		b := make([]byte, 4)
		rand.Read(b)
		p.KeySchema = dataKeySchemaPrefix(e) + hex.EncodeToString(b)
		q := "CREATE SCHEMA " + dataIdent(p.KeySchema) + "; COMMENT ON SCHEMA " + dataIdent(p.KeySchema) +
			" IS 'rehearse: per-row hashes of a data fingerprint, dropped when it is forgotten'"
		if _, err := s.work.Exec(ctx, q); err != nil {
			return nil, s.errorf("create private schema %s: %w", p.KeySchema, err)
		}
	}
	if err := s.take(ctx, p, nil, o); err != nil {
		if p.KeySchema != "" {
			// A fresh context: the caller's may be what ended the print.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_, derr := s.work.Exec(dctx, "DROP SCHEMA IF EXISTS "+dataIdent(p.KeySchema)+" CASCADE")
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
	now := &DataPrint{Service: service, Database: s.database, Taken: time.Now(), e: e}
	rows := map[[2]string]*DataRowChange{}
	if err := s.take(ctx, now, &dataRowDiffer{before: before, out: rows}, o); err != nil {
		return DataDiff{}, err
	}
	return diffData(before, now, rows), nil
}

// Diff compares two prints without the database: schema, sequences and
// each table's count and checksum. It names no rows (DiffData does).
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
	conn, err := dataset.Connect(ctx, p.e, p.Service, p.Database)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+dataIdent(p.KeySchema)+" CASCADE"); err != nil {
		return fmt.Errorf("%s: drop %s: %w", p.Service, p.KeySchema, err)
	}
	p.KeySchema = ""
	for i := range p.Tables {
		p.Tables[i].KeyTable = ""
	}
	return nil
}

// ForgetData drops the private hashes of every print of this run in a
// service's database (database "" is the default): the cleanup after a
// process that ended without Forget.
func ForgetData(ctx context.Context, e *env.Environment, service, database string) error {
	conn, err := dataset.Connect(ctx, e, service, database)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	prefix := dataKeySchemaPrefix(e)
	rows, err := conn.Query(ctx, `SELECT nspname FROM pg_catalog.pg_namespace WHERE left(nspname, length($1)) = $1`, prefix)
	if err != nil {
		return fmt.Errorf("%s: list private schemas: %w", service, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("%s: list private schemas: %w", service, err)
	}
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+dataIdent(n)+" CASCADE"); err != nil {
			return fmt.Errorf("%s: drop %s: %w", service, n, err)
		}
	}
	return nil
}

func dataIdent(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

// dataName is how a diff names a table or sequence: without "public.".
func dataName(schema, name string) string {
	if schema == "public" {
		return name
	}
	return schema + "." + name
}

func dataLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

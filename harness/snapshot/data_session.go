package snapshot

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
)

// dataSettings make a row's text, and so its hash, the same in every
// session whatever the database or its roles set: the text of dates,
// times, intervals, floats, bytea and money depends on them. search_path
// pg_catalog also makes the catalog's deparsed types and expressions name
// every user object with its schema. The timeouts are the database's to
// set for its applications, not for a fingerprint that reads every row.
// standard_conforming_strings and client_encoding fix how the server
// parses a string literal (a backslash, a multibyte character ending in
// one): the literals the fingerprint sends are all quoted by the server
// (format's %L) or bound, but a database must not choose their parsing.
// Startup parameters override the database's and roles' settings.
var dataSettings = map[string]string{
	"standard_conforming_strings":         "on",
	"client_encoding":                     "UTF8",
	"backslash_quote":                     "safe_encoding",
	"application_name":                    "rehearse snapshot",
	"search_path":                         "pg_catalog",
	"TimeZone":                            "UTC",
	"DateStyle":                           "ISO, YMD",
	"IntervalStyle":                       "postgres",
	"extra_float_digits":                  "1",
	"bytea_output":                        "hex",
	"lc_monetary":                         "C",
	"statement_timeout":                   "0",
	"lock_timeout":                        "0",
	"idle_in_transaction_session_timeout": "0",
	"default_transaction_read_only":       "off",
}

// dataSession is a fingerprint's two connections: holder keeps the exported
// snapshot's transaction open (and reads the catalog in it), work reads
// the tables, each in a transaction that imports the snapshot.
type dataSession struct {
	service, database string
	holder, work      *pgx.Conn
	snapshot          string
	kept              dataKeptKey
}

// dataConfig is a connection to a service's database under dataSettings.
func dataConfig(e *env.Environment, service, database string) (*pgx.ConnConfig, error) {
	dsn, err := dataset.DSN(e, service, database)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", service, err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", service, err)
	}
	for k, v := range dataSettings {
		cfg.RuntimeParams[k] = v
	}
	return cfg, nil
}

// dataConnect connects to a service's database under dataSettings (Forget
// and ForgetData: search_path pg_catalog, so that no function of the
// database's stands in for the catalog's).
func dataConnect(ctx context.Context, e *env.Environment, service, database string) (*pgx.Conn, error) {
	cfg, err := dataConfig(e, service, database)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: connect: %w", service, err)
	}
	return conn, nil
}

func openDataSession(ctx context.Context, e *env.Environment, service, database string) (*dataSession, error) {
	cfg, err := dataConfig(e, service, database)
	if err != nil {
		return nil, err
	}
	s := &dataSession{service: service, database: cfg.Database, kept: dataKeptKey{e.RunID, service, cfg.Database}}
	if s.holder, err = pgx.ConnectConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("snapshot %s: connect: %w", service, err)
	}
	if s.work, err = pgx.ConnectConfig(ctx, cfg.Copy()); err != nil {
		s.holder.Close(ctx)
		return nil, fmt.Errorf("snapshot %s: connect: %w", service, err)
	}
	return s, nil
}

func (s *dataSession) close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	s.holder.Close(ctx)
	s.work.Close(ctx)
}

func (s *dataSession) errorf(format string, args ...any) error {
	return fmt.Errorf("snapshot %s (database %s): "+format, append([]any{s.service, s.database}, args...)...)
}

// take fills p: the catalog and every table's count and checksum, on one
// snapshot; with o.keys and p.KeySchema set, each keyed table's (key,
// hash) pairs go into the private schema; with diff, changed tables' rows
// are compared with an earlier print's.
func (s *dataSession) take(ctx context.Context, p *DataPrint, diff *dataRowDiffer, o dataOptions) (err error) {
	if _, err := s.holder.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return s.errorf("begin: %w", err)
	}
	defer func() {
		_, cerr := s.holder.Exec(context.WithoutCancel(ctx), "COMMIT")
		if err == nil && cerr != nil {
			err = s.errorf("end snapshot: %w", cerr)
		}
	}()
	if err := s.holder.QueryRow(ctx, "SELECT pg_catalog.pg_export_snapshot()").Scan(&s.snapshot); err != nil {
		return s.errorf("export snapshot: %w", err)
	}
	var before *DataPrint
	if diff != nil {
		before = diff.before
	}
	if p.Tables, err = readDataTables(ctx, s.holder, dataExcluded(s.kept, before)); err != nil {
		return s.errorf("read the catalog: %w", err)
	}
	for i := range p.Tables {
		t := &p.Tables[i]
		keep := p.KeySchema != "" && len(t.Key) > 0
		if keep {
			t.KeyTable = fmt.Sprintf("t%d", i+1)
		}
		if err := s.inSnapshot(ctx, !keep, func(tx pgx.Tx) error {
			if err := fingerprintTable(ctx, tx, p.KeySchema, p.Seed, t); err != nil {
				return err
			}
			if t.KeyOID != 0 {
				dataKeep(s.kept, t.KeyOID)
			}
			if diff != nil {
				return diff.table(ctx, tx, t, o.examples)
			}
			return nil
		}); err != nil {
			return s.errorf("table %s: %w", dataName(t.Schema, t.Name), err)
		}
	}
	// Sequences are not transactional: read outside the snapshot, in a
	// statement of their own (reading one locks it until the end of the
	// transaction).
	if p.Sequences, err = readDataSequences(ctx, s.work); err != nil {
		return s.errorf("read sequences: %w", err)
	}
	return nil
}

// dataSnapshotID is what pg_export_snapshot returns: 0000000A-0000001B-1.
var dataSnapshotID = regexp.MustCompile(`^[0-9A-F]+(-[0-9A-F]+)+$`)

// inSnapshot runs fn in a transaction of the work session on the
// exported snapshot, committed when fn succeeds.
func (s *dataSession) inSnapshot(ctx context.Context, readOnly bool, fn func(pgx.Tx) error) error {
	mode := pgx.ReadWrite
	if readOnly {
		mode = pgx.ReadOnly
	}
	tx, err := s.work.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: mode})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// SET TRANSACTION SNAPSHOT takes no parameter: the id is checked to be
	// the server's (hex digits and dashes) before it goes into the text.
	if !dataSnapshotID.MatchString(s.snapshot) {
		return fmt.Errorf("import snapshot: unexpected snapshot id %q", s.snapshot)
	}
	if err := dataExec(ctx, tx.Conn(), "SET TRANSACTION SNAPSHOT '"+s.snapshot+"'"); err != nil {
		return fmt.Errorf("import snapshot: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// dataRowHash is a row's hash: 64 bits of its text, the text of the
// composite value (deterministic under dataSettings). ROW(t.*) rather
// than t: a column named t would take t's place.
// The seed is the print's (an integer formatted here, no text of the
// database's).
func dataRowHash(seed int64) string {
	return "pg_catalog.hashtextextended(ROW(t.*)::pg_catalog.text, CAST(" + strconv.FormatInt(seed, 10) + " AS pg_catalog.int8))"
}

// fingerprintTable counts and checksums a table and, with keySchema and
// t.KeyTable, keeps its (key, hash) pairs there (unlogged: nothing for the
// WAL, and nothing a crash must keep).
func fingerprintTable(ctx context.Context, tx pgx.Tx, keySchema string, seed int64, t *DataTable) error {
	src := dataIdent(t.Schema, t.Name)
	if t.KeyTable == "" {
		return tx.QueryRow(ctx, "SELECT count(*), coalesce(sum("+dataRowHash(seed)+"), 0)::text FROM ONLY "+src+" AS t").
			Scan(&t.Rows, &t.Checksum)
	}
	kt := dataIdent(keySchema, t.KeyTable)
	q := "CREATE UNLOGGED TABLE " + kt + " AS SELECT " + dataKeyColumns(t.Key, "t.", true) + ", " + dataRowHash(seed) + " AS h FROM ONLY " + src + " AS t"
	if err := dataExec(ctx, tx.Conn(), q); err != nil {
		return fmt.Errorf("keep hashes: %w", err)
	}
	if err := tx.QueryRow(ctx, "SELECT pg_catalog.to_regclass($1)::pg_catalog.oid", kt).Scan(&t.KeyOID); err != nil {
		return fmt.Errorf("keep hashes: %w", err)
	}
	if err := dataComment(ctx, tx.Conn(), "TABLE", kt, dataKeyComment+src); err != nil {
		return fmt.Errorf("keep hashes: %w", err)
	}
	return tx.QueryRow(ctx, "SELECT count(*), coalesce(sum(h), 0)::text FROM "+kt).Scan(&t.Rows, &t.Checksum)
}

// dataKeyColumns lists key columns as qualifier.column, renamed k1..kn with as.
func dataKeyColumns(key []string, qualifier string, as bool) string {
	cols := make([]string, len(key))
	for i, k := range key {
		cols[i] = qualifier + dataIdent(k)
		if as {
			cols[i] += fmt.Sprintf(" AS k%d", i+1)
		}
	}
	return strings.Join(cols, ", ")
}

// dataRowDiffer compares changed tables' rows with an earlier print's kept
// hashes, inside the later print's snapshot.
type dataRowDiffer struct {
	before *DataPrint
	out    map[[2]string]*DataRowChange
}

func (d *dataRowDiffer) table(ctx context.Context, tx pgx.Tx, cur *DataTable, examples int) error {
	i := slices.IndexFunc(d.before.Tables, func(b DataTable) bool { return b.Schema == cur.Schema && b.Name == cur.Name })
	if i < 0 {
		return nil // a new table: the schema diff says so
	}
	bt := &d.before.Tables[i]
	if bt.Rows == cur.Rows && bt.Checksum == cur.Checksum {
		return nil
	}
	rc := &DataRowChange{Before: bt.Rows, After: cur.Rows}
	d.out[[2]string{cur.Schema, cur.Name}] = rc
	switch {
	case len(bt.Key) == 0:
		rc.Unnamed = "no primary key"
		return nil
	case bt.KeyTable == "" || d.before.KeySchema == "":
		rc.Unnamed = "no keys kept"
		return nil
	case !slices.Equal(bt.Key, cur.Key) || !slices.Equal(bt.KeyTypes, cur.KeyTypes):
		rc.Unnamed = "primary key changed"
		return nil
	}
	kt := dataIdent(d.before.KeySchema, bt.KeyTable)
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", kt).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		rc.Unnamed = "the earlier print's keys are gone"
		return nil
	}
	n := len(cur.Key)
	on := make([]string, n)
	ks := make([]string, n)
	for j := range n {
		on[j] = fmt.Sprintf("c.k%d = o.k%d", j+1, j+1)
		ks[j] = fmt.Sprintf("k%d", j+1)
	}
	co := make([]string, n)
	for j := range n {
		co[j] = fmt.Sprintf("coalesce(c.k%d, o.k%d) AS k%d", j+1, j+1, j+1)
	}
	keyText := "k1::pg_catalog.text"
	if n > 1 {
		keyText = "ROW(" + strings.Join(ks, ", ") + ")::pg_catalog.text"
	}
	// kind: 0 changed, 1 added, 2 deleted
	q := `WITH c AS (SELECT ` + dataKeyColumns(cur.Key, "t.", true) + `, ` + dataRowHash(d.before.Seed) + ` AS h FROM ONLY ` + dataIdent(cur.Schema, cur.Name) + ` AS t),
d AS (SELECT CASE WHEN o.h IS NULL THEN 1 WHEN c.h IS NULL THEN 2 ELSE 0 END AS kind, ` + strings.Join(co, ", ") + `
	FROM c FULL JOIN ` + kt + ` AS o ON ` + strings.Join(on, " AND ") + `
	WHERE c.h IS DISTINCT FROM o.h)
SELECT kind, n, key FROM (
	SELECT kind, count(*) OVER (PARTITION BY kind) AS n,
		row_number() OVER (PARTITION BY kind ORDER BY ` + strings.Join(ks, ", ") + `) AS rn, ` + keyText + ` AS key
	FROM d) AS x
WHERE rn <= $1 ORDER BY kind, rn`
	rows, err := tx.Query(ctx, q, max(examples, 1))
	if err != nil {
		return fmt.Errorf("compare rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind int
		var count int64
		var key *string
		if err := rows.Scan(&kind, &count, &key); err != nil {
			return fmt.Errorf("compare rows: %w", err)
		}
		counts, keys := &rc.Changed, &rc.ChangedKeys
		switch kind {
		case 1:
			counts, keys = &rc.Added, &rc.AddedKeys
		case 2:
			counts, keys = &rc.Deleted, &rc.DeletedKeys
		}
		*counts = count
		if len(*keys) < examples && key != nil {
			*keys = append(*keys, dataKeyDisplay(cur.Key, *key))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("compare rows: %w", err)
	}
	rc.Named = true
	return nil
}

// dataKeyDisplay names a row by its key: id=42, (tenant,id)=(1,42).
func dataKeyDisplay(cols []string, value string) string {
	if len(cols) == 1 {
		return cols[0] + "=" + value
	}
	return "(" + strings.Join(cols, ",") + ")=" + value
}

// readDataTables reads every user table's schema from the catalog: all
// schemas but pg_catalog and information_schema, less the tables excluded
// (the harness's own key tables, by OID); ordinary and partitioned tables,
// no temporary ones.
func readDataTables(ctx context.Context, conn *pgx.Conn, excluded []uint32) ([]DataTable, error) {
	rows, err := conn.Query(ctx, `
SELECT c.oid::int8, n.nspname::text, c.relname::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND c.oid <> ALL($1::pg_catalog.oid[])
ORDER BY 2, 3`, excluded)
	if err != nil {
		return nil, err
	}
	var tables []DataTable
	byOID := map[int64]int{}
	var oids []int64
	for rows.Next() {
		var oid int64
		var t DataTable
		if err := rows.Scan(&oid, &t.Schema, &t.Name); err != nil {
			rows.Close()
			return nil, err
		}
		byOID[oid] = len(tables)
		oids = append(oids, oid)
		t.Indexes, t.Constraints = map[string]string{}, map[string]string{}
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		return nil, nil
	}
	// Columns.
	if err := dataScanEach(ctx, conn, `
SELECT a.attrelid::int8, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod),
	coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), ''), a.attnotnull, a.attidentity::text, a.attgenerated::text
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum`, oids, func(rows pgx.Rows) error {
		var c DataColumn
		var oid int64
		if err := rows.Scan(&oid, &c.Name, &c.Type, &c.Default, &c.NotNull, &c.Identity, &c.Generated); err != nil {
			return err
		}
		t := &tables[byOID[oid]]
		t.Columns = append(t.Columns, c)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("columns: %w", err)
	}
	// Indexes; an invalid one (a failed CREATE INDEX CONCURRENTLY) says so.
	if err := dataScanEach(ctx, conn, `
SELECT i.indrelid::int8, c.relname::text, pg_catalog.pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' (invalid)' END
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = ANY($1::oid[])`, oids, func(rows pgx.Rows) error {
		var oid int64
		var name, def string
		if err := rows.Scan(&oid, &name, &def); err != nil {
			return err
		}
		tables[byOID[oid]].Indexes[name] = def
		return nil
	}); err != nil {
		return nil, fmt.Errorf("indexes: %w", err)
	}
	// Constraints.
	if err := dataScanEach(ctx, conn, `
SELECT conrelid::int8, conname::text, pg_catalog.pg_get_constraintdef(oid)
FROM pg_catalog.pg_constraint WHERE conrelid = ANY($1::oid[])`, oids, func(rows pgx.Rows) error {
		var oid int64
		var name, def string
		if err := rows.Scan(&oid, &name, &def); err != nil {
			return err
		}
		tables[byOID[oid]].Constraints[name] = def
		return nil
	}); err != nil {
		return nil, fmt.Errorf("constraints: %w", err)
	}
	// Primary keys, in key order.
	if err := dataScanEach(ctx, conn, `
SELECT i.indrelid::int8, array_agg(a.attname::text ORDER BY k.ord), array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY k.ord)
FROM pg_catalog.pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indisprimary AND i.indrelid = ANY($1::oid[])
GROUP BY i.indrelid`, oids, func(rows pgx.Rows) error {
		var oid int64
		var key, types []string
		if err := rows.Scan(&oid, &key, &types); err != nil {
			return err
		}
		t := &tables[byOID[oid]]
		t.Key, t.KeyTypes = key, types
		return nil
	}); err != nil {
		return nil, fmt.Errorf("primary keys: %w", err)
	}
	return tables, nil
}

// dataScanEach runs a catalog query about the tables oids and calls scan for
// each row.
func dataScanEach(ctx context.Context, conn *pgx.Conn, q string, oids []int64, scan func(rows pgx.Rows) error) error {
	rows, err := conn.Query(ctx, q, oids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// readDataSequences reads every sequence but pg_catalog's and
// information_schema's (the harness makes none). The state comes from each
// sequence relation itself (last_value, is_called): pg_sequences shows
// last_value NULL whenever is_called is false, so setval('s', 5000, false)
// and an untouched sequence would read alike though nextval gives 5000
// and 1.
func readDataSequences(ctx context.Context, conn *pgx.Conn) ([]DataSequence, error) {
	// The catalog, not the pg_sequences view: the view calls
	// pg_sequence_last_value, which takes ROW EXCLUSIVE on every sequence.
	// A SELECT from the sequence takes ACCESS SHARE.
	rows, err := conn.Query(ctx, `
SELECT n.nspname::text, c.relname::text, s.seqtypid::pg_catalog.regtype::text, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle,
	pg_catalog.has_sequence_privilege(c.oid, 'SELECT')
FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND NOT pg_catalog.pg_is_other_temp_schema(n.oid)
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	var can []bool
	seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DataSequence, error) {
		var s DataSequence
		var c bool
		err := r.Scan(&s.Schema, &s.Name, &s.Type, &s.Start, &s.Increment, &s.Min, &s.Max, &s.Cycle, &c)
		can = append(can, c)
		return s, err
	})
	if err != nil {
		return nil, err
	}
	// One statement per batch: a UNION ALL of each readable sequence's
	// single row (reading a sequence locks it to the statement's end).
	const batch = 200
	var idx []int
	for i := range seqs {
		if can[i] {
			idx = append(idx, i)
		}
	}
	for len(idx) > 0 {
		n := min(batch, len(idx))
		part := make([]string, n)
		for j, i := range idx[:n] {
			part[j] = fmt.Sprintf("SELECT %d::int4 AS i, last_value, is_called FROM %s", i, dataIdent(seqs[i].Schema, seqs[i].Name))
		}
		rows, err := conn.Query(ctx, strings.Join(part, " UNION ALL "))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var i int32
			var last int64
			var called bool
			if err := rows.Scan(&i, &last, &called); err != nil {
				rows.Close()
				return nil, err
			}
			seqs[i].LastValue, seqs[i].Called = &last, called
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		idx = idx[n:]
	}
	return seqs, nil
}

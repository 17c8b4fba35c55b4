package dataset

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// restoreParallel bounds the connections that load tables, build indexes
// and validate foreign keys at once.
const restoreParallel = 4

// restoreTimeout bounds putting the definitions back after a failed load.
const restoreTimeout = 5 * time.Minute

// definition is a constraint or an index of the schema, as the catalog
// prints it with an empty search_path (every name schema-qualified).
type definition struct {
	table   string // the table it is on, qualified and quoted
	tableOf string // the generated table it is on as the spec names it; "" for another table
	name    string // constraint or index name, unqualified
	kind    byte   // 'p', 'u', 'x', 'f': a constraint; 'i': an index
	def     string // pg_get_constraintdef, or pg_get_indexdef for an index
	schema  string // the index's schema (kind 'i'), quoted
	exists  string // SQL giving 0 when it is missing, 1 when in place, 2 when in place but NOT VALID
}

func (d definition) String() string {
	if d.kind == 'i' {
		return "index " + d.name
	}
	return "constraint " + d.name + " on " + d.table
}

// drop is the statement that removes it.
func (d definition) drop() string {
	if d.kind == 'i' {
		return "DROP INDEX " + d.schema + "." + pgx.Identifier{d.name}.Sanitize()
	}
	return "ALTER TABLE " + d.table + " DROP CONSTRAINT " + pgx.Identifier{d.name}.Sanitize()
}

// create is the statement that puts it back.
func (d definition) create() string {
	if d.kind == 'i' {
		return d.def
	}
	return "ALTER TABLE " + d.table + " ADD CONSTRAINT " + pgx.Identifier{d.name}.Sanitize() + " " + d.def
}

// definitions are what restore order drops before the COPY and recreates
// after it: the generated tables' primary keys, unique and exclusion
// constraints, and the indexes no constraint owns; and every foreign key
// from or to a generated table. CHECK and NOT NULL stay.
type definitions struct {
	indexes []definition // kinds 'i', 'p', 'u', 'x', per table
	fks     []definition
}

// unsupportedSQL names, for the tables $1, the first thing restore order
// would not bring back as it was (NULL when none): partitions and
// inheritance, a clustered or replica-identity index, comments on indexes
// or constraints, an index in a tablespace of its own or with a statistics
// target. Those load in place.
const unsupportedSQL = `
SELECT coalesce(
  (SELECT format('%s is partitioned or inherits', r.oid::regclass) FROM pg_class r
    WHERE r.oid = ANY($1) AND (r.relkind <> 'r' OR r.relispartition
      OR EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = r.oid OR h.inhparent = r.oid)) LIMIT 1),
  (SELECT format('index %s is clustered or the replica identity', i.indexrelid::regclass) FROM pg_index i
    WHERE i.indrelid = ANY($1) AND (i.indisclustered OR i.indisreplident) LIMIT 1),
  (SELECT format('index %s has a tablespace or statistics target of its own', i.indexrelid::regclass) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = ANY($1) AND (c.reltablespace <> 0
      OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND coalesce(a.attstattarget::int, -1) >= 0)) LIMIT 1),
  (SELECT format('index %s has a comment', i.indexrelid::regclass) FROM pg_index i JOIN pg_description d ON d.objoid = i.indexrelid AND d.classoid = 'pg_class'::regclass
    WHERE i.indrelid = ANY($1) LIMIT 1),
  (SELECT format('constraint %s has a comment', c.conname) FROM pg_constraint c JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_constraint'::regclass
    WHERE c.conrelid = ANY($1) OR c.confrelid = ANY($1) LIMIT 1),
  (SELECT format('constraint %s is inherited', c.conname) FROM pg_constraint c
    WHERE (c.conrelid = ANY($1) OR c.confrelid = ANY($1)) AND c.contype IN ('p','u','x','f') AND (NOT c.conislocal OR c.coninhcount > 0) LIMIT 1))`

// constraintsSQL lists, for the tables $1, their p/u/x constraints and
// every foreign key from or to them; foreign keys last.
const constraintsSQL = `
SELECT format('%I.%I', n.nspname, r.relname), r.oid, c.conname, c.contype::text, pg_get_constraintdef(c.oid)
FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE (c.conrelid = ANY($1) AND c.contype IN ('p','u','x','f')) OR (c.contype = 'f' AND c.confrelid = ANY($1))
ORDER BY c.contype = 'f', r.oid, c.conname`

// indexesSQL lists the indexes of the tables $1 that no constraint owns.
const indexesSQL = `
SELECT format('%I.%I', n.nspname, r.relname), r.oid, ic.relname, quote_ident(n.nspname), pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class r ON r.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
WHERE i.indrelid = ANY($1) AND NOT EXISTS (SELECT 1 FROM pg_constraint c
  WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p','u','x'))
ORDER BY r.oid, ic.relname`

// readDefinitions reads the definitions for the tables oids (by spec
// name) in tx, whose search_path it empties for the rest of tx, so the
// printed definitions name every object with its schema. It returns why
// restore order would not recreate them faithfully, when it would not.
func readDefinitions(ctx context.Context, tx pgx.Tx, oids map[string]uint32) (*definitions, string, error) {
	var ids []uint32
	byOID := map[uint32]string{}
	for name, oid := range oids {
		ids = append(ids, oid)
		byOID[oid] = name
	}
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = ''"); err != nil {
		return nil, "", err
	}
	var why *string
	if err := tx.QueryRow(ctx, unsupportedSQL, ids).Scan(&why); err != nil {
		return nil, "", fmt.Errorf("read the catalog: %w", err)
	}
	if why != nil {
		return nil, *why, nil
	}
	d := &definitions{}
	read := func(sql string, kind func(string) byte) error {
		rows, err := tx.Query(ctx, sql, ids)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var def definition
			var oid uint32
			var k, third string
			if err := rows.Scan(&def.table, &oid, &def.name, &k, &third); err != nil {
				return err
			}
			def.tableOf = byOID[oid]
			def.kind = kind(k)
			if def.kind == 'i' {
				def.schema = k
				def.def = third
				def.exists = "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = to_regnamespace(" + quoteLiteral(k) + ") AND c.relname = " + quoteLiteral(def.name)
			} else {
				def.def = third
				def.exists = "SELECT coalesce(max(CASE WHEN convalidated THEN 1 ELSE 2 END), 0) FROM pg_constraint WHERE conrelid = to_regclass(" + quoteLiteral(def.table) + ") AND conname = " + quoteLiteral(def.name)
			}
			if def.kind == 'f' {
				d.fks = append(d.fks, def)
			} else {
				d.indexes = append(d.indexes, def)
			}
		}
		return rows.Err()
	}
	if err := read(constraintsSQL, func(k string) byte { return k[0] }); err != nil {
		return nil, "", fmt.Errorf("read constraints: %w", err)
	}
	if err := read(indexesSQL, func(string) byte { return 'i' }); err != nil {
		return nil, "", fmt.Errorf("read indexes: %w", err)
	}
	return d, "", nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// restoreOrder loads the way pg_restore does, on several connections:
//
//  1. in one transaction: TRUNCATE the generated tables (CASCADE, as
//     before), read the definitions and drop them, foreign keys first;
//  2. each table on a connection of its own, concurrently: COPY the rows
//     (generated a few batches ahead), build its indexes, primary key and
//     unique constraints, sync its sequences, ANALYZE;
//  3. the foreign keys: each added NOT VALID, then validated concurrently.
//
// When the catalog holds what it would not recreate as it was, it loads in
// place instead (Result.InPlace says why). If step 2 or 3 fails, the
// generated tables are emptied and every dropped definition put back (best
// effort: the error says if that failed too).
func (l *loader) restoreOrder(ctx context.Context) error {
	s := l.s
	t0 := time.Now()
	tx, err := l.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("dataset %s: %w", s.Name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(l.names(), ", ")+" CASCADE"); err != nil {
		return fmt.Errorf("dataset %s: empty tables: %w", s.Name, err)
	}
	rows, err := tableRows(ctx, tx, s, l.scale)
	if err != nil {
		return fmt.Errorf("dataset %s: %w", s.Name, err)
	}
	oids := map[string]uint32{}
	for _, t := range l.tables {
		var oid uint32
		if err := tx.QueryRow(ctx, "SELECT $1::regclass::oid", pgx.Identifier{t.Name}.Sanitize()).Scan(&oid); err != nil {
			return l.tableErr(t, "", err)
		}
		oids[t.Name] = oid
	}
	defs, why, err := readDefinitions(ctx, tx, oids)
	if err != nil {
		return fmt.Errorf("dataset %s: %w", s.Name, err)
	}
	if why != "" {
		if err := tx.Rollback(ctx); err != nil {
			return fmt.Errorf("dataset %s: %w", s.Name, err)
		}
		l.res.InPlace = why
		return l.inPlace(ctx)
	}
	var drops []string
	for _, d := range append(append([]definition{}, defs.fks...), defs.indexes...) {
		drops = append(drops, d.drop())
	}
	if len(drops) > 0 {
		if _, err := tx.Exec(ctx, strings.Join(drops, ";\n")); err != nil {
			return fmt.Errorf("dataset %s: drop constraints and indexes before the load: %w", s.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("dataset %s: %w", s.Name, err)
	}
	l.trace("drop", t0)
	// From here the tables stand without their definitions: a failure puts
	// them back.
	if err := l.loadTables(ctx, defs, rows); err != nil {
		if rerr := l.putBack(ctx, defs); rerr != nil {
			return errors.Join(err, fmt.Errorf("dataset %s: the tables are left without some of their constraints or indexes: %w", s.Name, rerr))
		}
		return err
	}
	return nil
}

// loadTables is steps 2 and 3 of restoreOrder.
func (l *loader) loadTables(ctx context.Context, defs *definitions, rows map[string]int64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t0 := time.Now()
	sem := make(chan struct{}, restoreParallel)
	// produced is closed when a table's row count is final, for per:
	// tables and refs that follow it.
	produced := map[string]chan struct{}{}
	for _, t := range l.tables {
		produced[t.Name] = make(chan struct{})
	}
	var mu sync.Mutex // guards rows
	var wg sync.WaitGroup
	var first error
	var once sync.Once
	fail := func(err error) {
		once.Do(func() { first = err; cancel(err) })
	}
	for _, t := range l.tables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counted := false
			defer func() {
				if !counted {
					close(produced[t.Name])
				}
			}()
			for _, dep := range tableDeps(t) {
				if ch, ok := produced[dep]; ok {
					select {
					case <-ch:
					case <-ctx.Done():
						return
					}
				}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			mu.Lock()
			mine := make(map[string]int64, len(rows))
			for k, v := range rows {
				mine[k] = v
			}
			mu.Unlock()
			err := l.loadTable(ctx, t, defs, mine, func(n int64) {
				mu.Lock()
				rows[t.Name] = n
				mu.Unlock()
				counted = true
				close(produced[t.Name])
			})
			if err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	l.trace("tables", t0)
	t1 := time.Now()
	if err := l.addForeignKeys(ctx, defs.fks); err != nil {
		return err
	}
	l.trace("foreign keys", t1)
	return nil
}

// tableDeps are the tables whose row counts a table's generators read.
func tableDeps(t *TableSpec) []string {
	var deps []string
	if t.Per != "" {
		parent, _, _ := parsePer(t.Per)
		deps = append(deps, parent)
	}
	for _, c := range t.columns {
		if r, ok := c.gen.(refGen); ok {
			deps = append(deps, r.table)
		}
	}
	return deps
}

// loadTable is one table of step 2, on a connection of its own.
func (l *loader) loadTable(ctx context.Context, t *TableSpec, defs *definitions, rows map[string]int64, counted func(int64)) error {
	conn, err := Connect(ctx, l.e, l.s.Service, l.s.Database)
	if err != nil {
		return fmt.Errorf("dataset %s: %w", l.s.Name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	t0 := time.Now()
	n, err := l.copyTable(ctx, conn, t, rows)
	if err != nil {
		return l.tableErr(t, "", err)
	}
	counted(n)
	l.mu.Lock()
	l.res.Rows[t.Name] = n
	l.mu.Unlock()
	l.trace("copy "+t.Name, t0)
	t1 := time.Now()
	for _, d := range defs.indexes {
		if d.tableOf != t.Name {
			continue
		}
		if _, err := conn.Exec(ctx, d.create()); err != nil {
			return l.tableErr(t, d.name, err)
		}
	}
	l.trace("indexes "+t.Name, t1)
	t2 := time.Now()
	if err := syncSequences(ctx, conn, t); err != nil {
		return l.tableErr(t, "", err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE "+pgx.Identifier{t.Name}.Sanitize()); err != nil {
		return l.tableErr(t, "", err)
	}
	l.trace("analyze "+t.Name, t2)
	return nil
}

// addForeignKeys adds every foreign key NOT VALID (quick: it only takes
// locks), then validates them concurrently: a validation locks its tables
// in modes that do not conflict with the others', where plain ADD
// CONSTRAINTs would wait for each other. A key that was NOT VALID before
// the load stays so.
func (l *loader) addForeignKeys(ctx context.Context, fks []definition) error {
	if len(fks) == 0 {
		return nil
	}
	var validate []definition
	var adds []string
	for _, d := range fks {
		if strings.HasSuffix(d.def, " NOT VALID") {
			adds = append(adds, d.create())
			continue
		}
		adds = append(adds, d.create()+" NOT VALID")
		validate = append(validate, d)
	}
	if _, err := l.conn.Exec(ctx, strings.Join(adds, ";\n")); err != nil {
		return l.tableErr(nil, "", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(validate))
	sem := make(chan struct{}, restoreParallel)
	var wg sync.WaitGroup
	for i, d := range validate {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			conn, err := Connect(ctx, l.e, l.s.Service, l.s.Database)
			if err != nil {
				errs[i] = fmt.Errorf("dataset %s: %w", l.s.Name, err)
				cancel()
				return
			}
			defer conn.Close(context.WithoutCancel(ctx))
			if _, err := conn.Exec(ctx, "ALTER TABLE "+d.table+" VALIDATE CONSTRAINT "+pgx.Identifier{d.name}.Sanitize()); err != nil {
				errs[i] = l.defErr(d, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		// The first that failed on its own, not the others it cancelled.
		var v *ViolationError
		if errors.As(err, &v) {
			return err
		}
	}
	return errors.Join(errs...)
}

// putBack, after a failed load, empties the generated tables and recreates
// every dropped definition that is not in place, in one transaction on a
// connection of its own (the load's may be what failed).
func (l *loader) putBack(ctx context.Context, defs *definitions) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	conn, err := Connect(ctx, l.e, l.s.Service, l.s.Database)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(l.names(), ", ")+" CASCADE"); err != nil {
		return err
	}
	for _, d := range append(append([]definition{}, defs.indexes...), defs.fks...) {
		var n int
		if err := tx.QueryRow(ctx, d.exists).Scan(&n); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		sql := d.create()
		switch {
		case n == 2 && !strings.HasSuffix(d.def, " NOT VALID"):
			// Added NOT VALID before its validation failed.
			sql = "ALTER TABLE " + d.table + " VALIDATE CONSTRAINT " + pgx.Identifier{d.name}.Sanitize()
		case n > 0:
			continue
		}
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
	}
	return tx.Commit(ctx)
}

// ViolationError is a generated row that breaks a constraint of the schema:
// a duplicate key when a unique index is built, a foreign key that points
// nowhere when it is added, a NOT NULL or CHECK during the COPY.
type ViolationError struct {
	Dataset    string
	Table      string // the table of the offending row
	Constraint string // the constraint or index it breaks
	Detail     string // PostgreSQL's, naming the row's key: "Key (id)=(5) is duplicated."
	Err        *pgconn.PgError
}

func (e *ViolationError) Error() string {
	return fmt.Sprintf("dataset %s: table %s: a generated row breaks %s: %s (%s)", e.Dataset, e.Table, e.Constraint, strings.TrimSuffix(e.Detail, "."), e.Err.Message)
}

func (e *ViolationError) Unwrap() error { return e.Err }

// tableErr names the dataset and the table (t, when known) in an error;
// an integrity violation becomes a ViolationError naming the constraint
// (constraint, when PostgreSQL does not) and the row.
func (l *loader) tableErr(t *TableSpec, constraint string, err error) error {
	table := ""
	if t != nil {
		table = t.Name
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && strings.HasPrefix(pe.Code, "23") {
		v := &ViolationError{Dataset: l.s.Name, Table: table, Constraint: constraint, Detail: pe.Detail, Err: pe}
		if pe.TableName != "" {
			v.Table = pe.TableName
		}
		if pe.ConstraintName != "" {
			v.Constraint = pe.ConstraintName
		}
		if v.Constraint == "" && pe.ColumnName != "" {
			v.Constraint = "NOT NULL of column " + pe.ColumnName
		}
		if v.Detail == "" && pe.Where != "" {
			v.Detail = pe.Where
		}
		return v
	}
	if table == "" {
		return fmt.Errorf("dataset %s: %w", l.s.Name, err)
	}
	if constraint != "" {
		return fmt.Errorf("dataset %s: table %s: %s: %w", l.s.Name, table, constraint, err)
	}
	return fmt.Errorf("dataset %s: table %s: %w", l.s.Name, table, err)
}

// defErr is tableErr for a definition being recreated.
func (l *loader) defErr(d definition, err error) error {
	for _, t := range l.tables {
		if t.Name == d.tableOf {
			return l.tableErr(t, d.name, err)
		}
	}
	return l.tableErr(&TableSpec{Name: d.table}, d.name, err)
}

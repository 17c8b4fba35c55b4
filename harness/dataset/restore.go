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
	relid   uint32 // the table's oid
	tableOf string // the generated table it is on as the spec names it; "" for another table
	name    string // constraint or index name, unqualified
	kind    byte   // 'p', 'u', 'x', 'f': a constraint; 'i': an index
	def     string // pg_get_constraintdef, or pg_get_indexdef for an index
	schema  string // the index's schema (kind 'i'), quoted
	nsp     string // the index's schema (kind 'i'), as the catalog spells it
}

// existsSQL give, for a definition's $1 (table oid or index schema) and $2
// (name), 0 when it is missing, 1 when in place, 2 when in place but NOT
// VALID.
const (
	indexExistsSQL = `SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'i'`
	constraintExistsSQL = `SELECT coalesce(pg_catalog.max(CASE WHEN convalidated THEN 1 ELSE 2 END), 0)
FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND conname = $2`
)

// exists is 0 when d is missing, 1 when in place, 2 when in place but NOT
// VALID.
func (d definition) exists(ctx context.Context, q execer) (int, error) {
	var n int
	var err error
	if d.kind == 'i' {
		err = q.QueryRow(ctx, indexExistsSQL, d.nsp, d.name).Scan(&n)
	} else {
		err = q.QueryRow(ctx, constraintExistsSQL, d.relid, d.name).Scan(&n)
	}
	return n, err
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

// addedAsIs reports whether a foreign key goes back as it was, never
// validated: one that was NOT VALID before the load, or (PostgreSQL 18)
// NOT ENFORCED, which cannot be validated.
func (d definition) addedAsIs() bool {
	return strings.HasSuffix(d.def, " NOT VALID") || strings.HasSuffix(d.def, " NOT ENFORCED")
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
// target. Those load in place. So do what would load other rows, or run
// other code, when the tables load concurrently on other connections:
// triggers on the tables, CHECK constraints calling functions of the
// schema; and what the DROPs would fail on or be heard by: objects that
// depend on the keys and indexes to drop (a view grouping by a primary
// key), keys and indexes an extension owns, enabled event triggers. Every
// catalog name is written pg_catalog. (the schema may define look-alikes).
const unsupportedSQL = `
WITH cons AS (
  SELECT c.oid, c.conindid, c.contype FROM pg_catalog.pg_constraint c
  WHERE (c.conrelid = ANY($1) AND c.contype IN ('p','u','x','f')) OR (c.contype = 'f' AND c.confrelid = ANY($1))),
dropped AS (
  SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid AS classid, oid AS objid FROM cons
  UNION SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, conindid FROM cons WHERE contype <> 'f'
  UNION SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, i.indexrelid FROM pg_catalog.pg_index i WHERE i.indrelid = ANY($1))
SELECT coalesce(
  (SELECT pg_catalog.format('%s is partitioned or inherits', r.oid::pg_catalog.regclass) FROM pg_catalog.pg_class r
    WHERE r.oid = ANY($1) AND (r.relkind <> 'r' OR r.relispartition
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h WHERE h.inhrelid = r.oid OR h.inhparent = r.oid)) LIMIT 1),
  (SELECT pg_catalog.format('index %s is clustered or the replica identity', i.indexrelid::pg_catalog.regclass) FROM pg_catalog.pg_index i
    WHERE i.indrelid = ANY($1) AND (i.indisclustered OR i.indisreplident) LIMIT 1),
  (SELECT pg_catalog.format('index %s has a tablespace or statistics target of its own', i.indexrelid::pg_catalog.regclass)
    FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = ANY($1) AND (c.reltablespace <> 0
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND coalesce(a.attstattarget::pg_catalog.int4, -1) >= 0)) LIMIT 1),
  (SELECT pg_catalog.format('index %s has a comment', i.indexrelid::pg_catalog.regclass)
    FROM pg_catalog.pg_index i JOIN pg_catalog.pg_description d ON d.objoid = i.indexrelid AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
    WHERE i.indrelid = ANY($1) LIMIT 1),
  (SELECT pg_catalog.format('constraint %s has a comment', c.conname)
    FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
    WHERE c.conrelid = ANY($1) OR c.confrelid = ANY($1) LIMIT 1),
  (SELECT pg_catalog.format('constraint %s is inherited', c.conname) FROM pg_catalog.pg_constraint c
    WHERE (c.conrelid = ANY($1) OR c.confrelid = ANY($1)) AND c.contype IN ('p','u','x','f') AND (NOT c.conislocal OR c.coninhcount > 0) LIMIT 1),
  (SELECT pg_catalog.format('table %s has trigger %I', t.tgrelid::pg_catalog.regclass, t.tgname) FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid = ANY($1) AND NOT t.tgisinternal ORDER BY t.tgrelid, t.tgname LIMIT 1),
  (SELECT pg_catalog.format('check constraint %I on %s calls function %s', c.conname, c.conrelid::pg_catalog.regclass, p.oid::pg_catalog.regprocedure)
    FROM pg_catalog.pg_constraint c
      JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = c.oid
        AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
      JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid
    WHERE c.conrelid = ANY($1) AND c.contype = 'c' AND p.oid >= 16384 LIMIT 1),
  (SELECT pg_catalog.format('%s depends on %s', pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
      pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0))
    FROM pg_catalog.pg_depend d JOIN dropped x ON x.classid = d.refclassid AND x.objid = d.refobjid
    WHERE d.deptype IN ('n','a','e')
      AND NOT EXISTS (SELECT 1 FROM dropped y WHERE y.classid = d.classid AND y.objid = d.objid) LIMIT 1),
  (SELECT pg_catalog.format('%s belongs to %s', pg_catalog.pg_describe_object(d.classid, d.objid, 0),
      pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0))
    FROM pg_catalog.pg_depend d JOIN dropped x ON x.classid = d.classid AND x.objid = d.objid
    WHERE d.deptype IN ('e','x') LIMIT 1),
  (SELECT pg_catalog.format('event trigger %I is enabled', e.evtname) FROM pg_catalog.pg_event_trigger e
    WHERE e.evtenabled <> 'D' ORDER BY e.evtname LIMIT 1))`

// defaultsSQL names, for the tables $1, the columns whose default would
// give other values when the tables load concurrently, each connection in
// a session of its own: a default that takes from a sequence the column
// does not own (shared with other columns), that calls nextval on a
// sequence it does not name (nextval('s'::text)), or that calls a volatile
// function other than nextval, random, gen_random_uuid, clock_timestamp
// and timeofday, or that reads a setting with current_setting (the
// schema's session settings are set on every connection, but a custom
// app.* setting is not listed where the load could find it). Only columns
// the spec does not generate matter.
const defaultsSQL = `
SELECT a.attrelid, a.attname, pg_catalog.format('table %s, column %I: its default %s', a.attrelid::pg_catalog.regclass, a.attname, x.why)
FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  CROSS JOIN LATERAL (SELECT pg_catalog.array_agg(m[1]::pg_catalog.oid) AS funcs
    FROM pg_catalog.regexp_matches(d.adbin::pg_catalog.text, ':(?:op)?funcid (\d+)', 'g') m) f
  CROSS JOIN LATERAL (SELECT coalesce(
    (SELECT pg_catalog.format('takes from sequence %s, which the column does not own', s.oid::pg_catalog.regclass)
      FROM pg_catalog.pg_depend p JOIN pg_catalog.pg_class s ON s.oid = p.refobjid AND s.relkind = 'S'
      WHERE p.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND p.objid = d.oid
        AND p.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend o
          WHERE o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND o.objid = s.oid
            AND o.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND o.refobjid = a.attrelid
            AND o.refobjsubid = a.attnum AND o.deptype IN ('a','i'))
      LIMIT 1),
    (SELECT 'calls nextval on a sequence it does not name'
      WHERE 'pg_catalog.nextval(pg_catalog.regclass)'::pg_catalog.regprocedure::pg_catalog.oid = ANY(f.funcs)
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend p JOIN pg_catalog.pg_class s ON s.oid = p.refobjid AND s.relkind = 'S'
          WHERE p.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND p.objid = d.oid
            AND p.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass)),
    (SELECT pg_catalog.format('calls volatile function %s', p.oid::pg_catalog.regprocedure)
      FROM pg_catalog.pg_proc p
      WHERE p.oid = ANY(f.funcs) AND p.provolatile = 'v'
        AND NOT (p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
          AND p.proname IN ('nextval', 'random', 'gen_random_uuid', 'clock_timestamp', 'timeofday'))
      LIMIT 1),
    (SELECT pg_catalog.format('reads a setting (%s), which the load''s other sessions may not have', p.oid::pg_catalog.regprocedure)
      FROM pg_catalog.pg_proc p
      WHERE p.oid = ANY(f.funcs) AND p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace AND p.proname = 'current_setting'
      LIMIT 1)) AS why) x
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped AND x.why IS NOT NULL
ORDER BY a.attrelid, a.attnum`

// constraintsSQL lists, for the tables $1, their p/u/x constraints and
// every foreign key from or to them; foreign keys last.
const constraintsSQL = `
SELECT pg_catalog.format('%I.%I', n.nspname, r.relname), r.oid, c.conname, c.contype::pg_catalog.text,
  pg_catalog.pg_get_constraintdef(c.oid), n.nspname
FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
WHERE (c.conrelid = ANY($1) AND c.contype IN ('p','u','x','f')) OR (c.contype = 'f' AND c.confrelid = ANY($1))
ORDER BY c.contype = 'f', r.oid, c.conname`

// indexesSQL lists the indexes of the tables $1 that no constraint owns.
const indexesSQL = `
SELECT pg_catalog.format('%I.%I', n.nspname, r.relname), r.oid, ic.relname, pg_catalog.quote_ident(n.nspname),
  pg_catalog.pg_get_indexdef(i.indexrelid), n.nspname
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_class r ON r.oid = i.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
WHERE i.indrelid = ANY($1) AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
  WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p','u','x'))
ORDER BY r.oid, ic.relname`

// readDefinitions reads the definitions for the tables (their oids by spec
// name) in tx, whose search_path it empties for the rest of tx, so the
// printed definitions name every object with its schema. It returns why
// restore order would not load the tables as the old order did, or not
// recreate the definitions faithfully, when it would not.
func readDefinitions(ctx context.Context, tx pgx.Tx, tables []*TableSpec, oids map[string]uint32) (*definitions, string, error) {
	var ids []uint32
	byOID := map[uint32]*TableSpec{}
	for _, t := range tables {
		ids = append(ids, oids[t.Name])
		byOID[oids[t.Name]] = t
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
	w, err := defaultsWhy(ctx, tx, ids, byOID)
	if err != nil || w != "" {
		return nil, w, err
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
			var k, nsp string
			if err := rows.Scan(&def.table, &def.relid, &def.name, &k, &def.def, &nsp); err != nil {
				return err
			}
			if t := byOID[def.relid]; t != nil {
				def.tableOf = t.Name
			}
			def.kind = kind(k)
			if def.kind == 'i' {
				def.schema, def.nsp = k, nsp
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

// defaultsWhy is why a column the spec does not generate would take
// another default in restore order (see defaultsSQL); "" when none would.
func defaultsWhy(ctx context.Context, tx pgx.Tx, ids []uint32, byOID map[uint32]*TableSpec) (string, error) {
	rows, err := tx.Query(ctx, defaultsSQL, ids)
	if err != nil {
		return "", fmt.Errorf("read column defaults: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var relid uint32
		var col, why string
		if err := rows.Scan(&relid, &col, &why); err != nil {
			return "", fmt.Errorf("read column defaults: %w", err)
		}
		generated := false
		if t := byOID[relid]; t != nil {
			for _, c := range t.columns {
				generated = generated || c.name == col
			}
		}
		if !generated {
			return why, nil
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("read column defaults: %w", err)
	}
	return "", nil
}

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
	if l.session != "" {
		l.res.InPlace = l.session
		return l.inPlace(ctx)
	}
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
	defs, why, err := readDefinitions(ctx, tx, l.tables, l.oids)
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
			for _, dep := range l.tableDeps(t) {
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
	// Cancelled from outside: a goroutine that saw it while it waited
	// returned without loading its table.
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("dataset %s: %w", l.s.Name, err)
	}
	l.trace("tables", t0)
	t1 := time.Now()
	if err := l.addForeignKeys(ctx, defs.fks); err != nil {
		return err
	}
	l.trace("foreign keys", t1)
	return nil
}

// tableDeps are the tables being loaded whose row counts a table's
// generators read and that are not known before they load: per: tables. A
// rows: table's count is its rows: expression at the scale (tableRows),
// exactly what its source produces; a table not being loaded keeps its
// count.
func (l *loader) tableDeps(t *TableSpec) []string {
	var named []string
	if t.Per != "" {
		parent, _, _ := parsePer(t.Per)
		named = append(named, parent)
	}
	for _, c := range t.columns {
		if r, ok := c.gen.(refGen); ok {
			named = append(named, r.table)
		}
	}
	var deps []string
	for _, n := range named {
		for _, lt := range l.tables {
			if lt.Name == n && lt.Per != "" {
				deps = append(deps, n)
			}
		}
	}
	return deps
}

// connect opens a connection of the load's own, in the search_path the
// schema left on the load's first connection (what functions called by
// defaults and index expressions saw in the old order). Every table the
// load names on it is schema-qualified.
func (l *loader) connect(ctx context.Context, searchPath string) (*pgx.Conn, error) {
	conn, err := Connect(ctx, l.e, l.s.Service, l.s.Database)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", l.s.Name, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_catalog.set_config('search_path', $1, false)", searchPath); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("dataset %s: %w", l.s.Name, err)
	}
	return conn, nil
}

// loadTable is one table of step 2, on a connection of its own.
func (l *loader) loadTable(ctx context.Context, t *TableSpec, defs *definitions, rows map[string]int64, counted func(int64)) error {
	conn, err := l.connect(ctx, l.searchPath)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if len(l.settings[0]) > 0 {
		// What the schema SET for its session, so that the COPY's
		// defaults and input parsing see what they would on the first
		// connection.
		if _, err := conn.Exec(ctx, "SELECT pg_catalog.set_config(n, v, false) FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) AS s(n, v)", l.settings[0], l.settings[1]); err != nil {
			return fmt.Errorf("dataset %s: the schema's session settings: %w", l.s.Name, err)
		}
	}
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
	if err := syncSequences(ctx, conn, t, l.ident[t.Name]); err != nil {
		return l.tableErr(t, "", err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE "+l.ident[t.Name].Sanitize()); err != nil {
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
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("dataset %s: %w", l.s.Name, err)
	}
	if len(fks) == 0 {
		return nil
	}
	var validate []definition
	var adds []string
	for _, d := range fks {
		if d.addedAsIs() {
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
	// first is the first validation that failed on its own, not the others
	// it cancelled.
	var first error
	var once sync.Once
	fail := func(err error) { once.Do(func() { first = err; cancel() }) }
	sem := make(chan struct{}, restoreParallel)
	var wg sync.WaitGroup
	for _, d := range validate {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			conn, err := l.connect(ctx, "")
			if err != nil {
				fail(err)
				return
			}
			defer conn.Close(context.WithoutCancel(ctx))
			if _, err := conn.Exec(ctx, "ALTER TABLE "+d.table+" VALIDATE CONSTRAINT "+pgx.Identifier{d.name}.Sanitize()); err != nil {
				fail(l.defErr(d, err))
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("dataset %s: %w", l.s.Name, err)
	}
	return nil
}

// putBack, after a failed load, empties the generated tables and recreates
// every dropped definition that is not in place, in one transaction on a
// connection of its own (the load's may be what failed).
func (l *loader) putBack(ctx context.Context, defs *definitions) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	// The definitions and table names are schema-qualified: an empty
	// search_path, as they were printed in.
	conn, err := l.connect(ctx, "")
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
		n, err := d.exists(ctx, tx)
		if err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		sql := d.create()
		switch {
		case n == 2 && !d.addedAsIs():
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
	Where      string // PostgreSQL's, naming the row when a COPY breaks it: "COPY t, line 4"
	Err        *pgconn.PgError
}

func (e *ViolationError) Error() string {
	detail := strings.TrimSuffix(e.Detail, ".")
	switch {
	case detail == "":
		detail = e.Where
	case e.Where != "":
		detail += ", at " + e.Where
	}
	return fmt.Sprintf("dataset %s: table %s: a generated row breaks %s: %s (%s)", e.Dataset, e.Table, e.Constraint, detail, e.Err.Message)
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
		v := &ViolationError{Dataset: l.s.Name, Table: table, Constraint: constraint, Detail: pe.Detail, Where: pe.Where, Err: pe}
		if pe.TableName != "" {
			v.Table = pe.TableName
		}
		if pe.ConstraintName != "" {
			v.Constraint = pe.ConstraintName
		}
		if v.Constraint == "" && pe.ColumnName != "" {
			v.Constraint = "NOT NULL of column " + pe.ColumnName
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

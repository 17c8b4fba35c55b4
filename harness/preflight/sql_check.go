package preflight

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

// sqlRule is one SQL migration rule. It sees each statement with the
// state of the migration just before that statement runs (open
// transaction, lock_timeout, locks held, tables made by this file).
type sqlRule interface {
	statement(c *sqlCheck, s *sqlStmt)
}

// sqlEnder is a rule that judges the whole file after its last statement.
type sqlEnder interface {
	end(c *sqlCheck)
}

// newSQLRules returns fresh rules for one file (rules keep per-file state).
func newSQLRules() []sqlRule {
	return []sqlRule{
		&lockTimeoutRule{},
		&tableRewriteRule{},
		&indexConcurrentRule{},
		&constraintNotValidRule{},
		&setNotNullRule{},
		&breakingChangeRule{},
		&migrationLockRule{},
		&opaqueSQLRule{},
	}
}

// sqlStmt is one statement of the file.
type sqlStmt struct {
	node       *pg.Node
	start, end int // byte range of its text, leading comments skipped
	base       int // the byte offset the parser's locations in node count from
	line       int
	locks      []tableLock // what it locks (sql_lock.go)
	cmdLines   []int       // ALTER TABLE subcommand lines, computed on demand
}

// sqlCheck is the state of one migration file as its statements run.
type sqlCheck struct {
	file     string
	src      string
	lines    sqlLineIndex
	opts     sqlOptions
	rules    []sqlRule
	findings []Finding

	inTxn      bool
	txn        int                 // the open transaction's number (counts BEGINs)
	implicit   bool                // the transaction is the migration tool's
	held       map[string]lockMode // locks the open transaction holds, by key
	sessionTO  bool                // a non-zero session lock_timeout is in effect
	localTO    *bool               // SET LOCAL lock_timeout in this transaction
	savedTO    bool                // sessionTO when the transaction began
	created    map[string]bool     // tables (and views) made by this file
	newIndexes map[string]string   // index made by this file -> its table key
	colTypes   map[string]sqlType  // "table.column" -> type, as this file set it
}

func newSQLCheck(file, src string, o sqlOptions) *sqlCheck {
	c := &sqlCheck{
		file: file, src: src, lines: newSQLLineIndex(src), opts: o, rules: newSQLRules(),
		held: map[string]lockMode{}, created: map[string]bool{},
		newIndexes: map[string]string{}, colTypes: map[string]sqlType{},
	}
	if o.inTransaction {
		c.inTxn, c.implicit, c.txn = true, true, 1
	}
	return c
}

func (c *sqlCheck) report(rule string, sev Severity, line int, msg, fix string) {
	c.findings = append(c.findings, Finding{Rule: rule, Severity: sev, File: c.file, Line: line, Message: msg, Fix: fix})
}

// statement runs every rule on one statement, then applies it to the state.
func (c *sqlCheck) statement(raw sqlRawStmt) {
	if raw.Stmt == nil {
		return
	}
	start := skipSQLSpace(c.src, int(raw.StmtLocation))
	end := len(c.src)
	if raw.StmtLen > 0 {
		end = int(raw.StmtLocation + raw.StmtLen)
	}
	s := &sqlStmt{node: raw.Stmt, start: start, end: max(start, end), base: raw.base, line: c.lines.line(start)}
	s.locks = c.statementLocks(s)
	for _, r := range c.rules {
		r.statement(c, s)
	}
	c.apply(s)
}

func (c *sqlCheck) end() {
	for _, r := range c.rules {
		if e, ok := r.(sqlEnder); ok {
			e.end(c)
		}
	}
}

// isNew says whether the table (or index or view) key was made by this
// file: nobody else reads it yet, so its locks and rewrites are harmless.
func (c *sqlCheck) isNew(key string) bool {
	if c.created[key] {
		return true
	}
	if t, ok := c.newIndexes[key]; ok {
		return c.created[t]
	}
	return false
}

// lockTimeout says whether a non-zero lock_timeout is in effect.
func (c *sqlCheck) lockTimeout() bool {
	if c.inTxn && c.localTO != nil {
		return *c.localTO
	}
	return c.sessionTO
}

// waits says whether taking mode on key may wait for other sessions: not
// when this transaction already holds a lock that conflicts with at least
// everything mode conflicts with.
func (c *sqlCheck) waits(key string, mode lockMode) bool {
	h, ok := c.held[key]
	return !ok || !mode.coveredBy(h)
}

// apply updates the migration's state with what s did.
func (c *sqlCheck) apply(s *sqlStmt) {
	switch n := s.node.Node.(type) {
	case *pg.Node_TransactionStmt:
		c.transaction(n.TransactionStmt)
		return
	case *pg.Node_VariableSetStmt:
		v := n.VariableSetStmt
		if v.Name == "lock_timeout" || (v.Kind == pg.VariableSetKind_VAR_RESET_ALL) {
			c.setTimeout(v.IsLocal, v.Kind == pg.VariableSetKind_VAR_SET_VALUE && nonZeroSetting(v.Args))
		}
	case *pg.Node_SelectStmt:
		for _, f := range sqlFuncCalls(n.SelectStmt) {
			// set_config('lock_timeout', value, is_local)
			if sqlFuncName(f) != "set_config" || len(f.Args) != 3 {
				continue
			}
			if name, _ := sqlConst(f.Args[0]); name == "lock_timeout" {
				local, _ := sqlConst(f.Args[2])
				c.setTimeout(local == "true" || local == "t", nonZeroSetting(f.Args[1:2]))
			}
		}
	case *pg.Node_CreateStmt:
		c.created[relKey(n.CreateStmt.Relation)] = true
		for _, e := range n.CreateStmt.TableElts {
			if cd := e.GetColumnDef(); cd != nil {
				c.colTypes[relKey(n.CreateStmt.Relation)+"."+cd.Colname] = sqlTypeOf(cd.TypeName)
			}
		}
	case *pg.Node_CreateTableAsStmt:
		if n.CreateTableAsStmt.Into != nil {
			c.created[relKey(n.CreateTableAsStmt.Into.Rel)] = true
		}
	case *pg.Node_ViewStmt:
		if !n.ViewStmt.Replace {
			c.created[relKey(n.ViewStmt.View)] = true
		}
	case *pg.Node_IndexStmt:
		if n.IndexStmt.Idxname != "" {
			c.newIndexes[indexKey(n.IndexStmt.Relation.GetSchemaname(), n.IndexStmt.Idxname)] = relKey(n.IndexStmt.Relation)
		}
	case *pg.Node_RenameStmt:
		r := n.RenameStmt
		relation := r.RenameType == pg.ObjectType_OBJECT_TABLE || r.RenameType == pg.ObjectType_OBJECT_VIEW ||
			r.RenameType == pg.ObjectType_OBJECT_MATVIEW || r.RenameType == pg.ObjectType_OBJECT_FOREIGN_TABLE
		if relation && r.Relation != nil && c.created[relKey(r.Relation)] {
			c.created[sqlQualify(r.Relation.Schemaname, r.Newname)] = true
		}
	case *pg.Node_AlterTableStmt:
		t := relKey(n.AlterTableStmt.Relation)
		for _, cmd := range alterCmds(n.AlterTableStmt) {
			cd := cmd.Def.GetColumnDef()
			switch {
			case cmd.Subtype == pg.AlterTableType_AT_AddColumn && cd != nil:
				c.colTypes[t+"."+cd.Colname] = sqlTypeOf(cd.TypeName)
			case cmd.Subtype == pg.AlterTableType_AT_AlterColumnType && cd != nil:
				c.colTypes[t+"."+cmd.Name] = sqlTypeOf(cd.TypeName)
			}
		}
	}
	for _, l := range s.locks {
		if l.mode > c.held[l.key] {
			c.held[l.key] = l.mode
		}
	}
	if !c.inTxn {
		clear(c.held) // autocommit: the statement's own transaction is over
	}
}

func (c *sqlCheck) transaction(t *pg.TransactionStmt) {
	switch t.Kind {
	case pg.TransactionStmtKind_TRANS_STMT_BEGIN, pg.TransactionStmtKind_TRANS_STMT_START:
		if !c.inTxn {
			c.inTxn, c.implicit, c.savedTO = true, false, c.sessionTO
			c.txn++
		}
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT, pg.TransactionStmtKind_TRANS_STMT_PREPARE:
		c.endTxn(false)
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		c.endTxn(true)
	}
}

func (c *sqlCheck) endTxn(rollback bool) {
	if !c.inTxn {
		return
	}
	if rollback {
		c.sessionTO = c.savedTO
	}
	c.inTxn, c.implicit, c.localTO = false, false, nil
	clear(c.held)
}

// setTimeout records SET [LOCAL] lock_timeout (or set_config): SET LOCAL
// lasts until the transaction ends and has no effect outside one.
func (c *sqlCheck) setTimeout(local, on bool) {
	if local {
		if c.inTxn {
			c.localTO = &on
		}
		return
	}
	c.sessionTO, c.localTO = on, nil
}

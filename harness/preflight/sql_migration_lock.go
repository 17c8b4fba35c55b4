package preflight

import (
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// migrationLockRule reports no-migration-lock: a migration that changes
// existing tables without first taking an advisory lock
// (pg_advisory_lock, pg_try_advisory_lock, or pg_advisory_xact_lock
// inside the migration's transaction). Upgrades run migrations from more
// than one place (two application instances starting at once, a retried
// deploy job); without a lock two runs interleave their DDL and their
// backfills, and each sees the other's half-done schema. A warning: a
// migration tool that takes its own lock (Flyway, Liquibase, Rails) makes
// it harmless. It is reported once, at the first such statement; a
// pg_advisory_xact_lock outside a transaction is released at once and
// does not count.
type migrationLockRule struct {
	session   bool // a session-level advisory lock is held
	xactTxn   int  // the transaction holding a transaction-level one (0: none)
	xactStray int  // line of a pg_advisory_xact_lock outside a transaction
	lockLine  int  // line of the first advisory lock
	ddlLine   int  // line of the first unprotected DDL on an existing table
	ddlName   string
}

var advisoryLocks = map[string]bool{
	"pg_advisory_lock": true, "pg_try_advisory_lock": true,
	"pg_advisory_xact_lock": true, "pg_try_advisory_xact_lock": true,
}

func (r *migrationLockRule) statement(c *sqlCheck, s *sqlStmt) {
	held := r.session || (c.inTxn && r.xactTxn == c.txn)
	if !held && r.ddlLine == 0 && isDDL(s.node) && r.touchesExisting(c, s) {
		r.ddlLine, r.ddlName = s.line, stmtName(s)
	}
	for _, name := range calledFunctions(s.node) {
		if !advisoryLocks[name] {
			continue
		}
		if r.lockLine == 0 {
			r.lockLine = s.line
		}
		switch {
		case !strings.Contains(name, "xact"):
			r.session = true
		case c.inTxn:
			r.xactTxn = c.txn
		default:
			r.xactStray = s.line
		}
	}
}

func (r *migrationLockRule) touchesExisting(c *sqlCheck, s *sqlStmt) bool {
	for _, l := range s.locks {
		if l.key == "" || !c.isNew(l.key) {
			return true
		}
	}
	return false
}

func (r *migrationLockRule) end(c *sqlCheck) {
	if r.ddlLine == 0 {
		return
	}
	msg := fmt.Sprintf("%s changes an existing table with no advisory lock held: two runs of this migration at once interleave their changes", r.ddlName)
	switch {
	case r.xactStray > 0:
		msg += fmt.Sprintf(" (the pg_advisory_xact_lock on line %d is outside a transaction, so it is released as soon as it is taken)", r.xactStray)
	case r.lockLine > r.ddlLine:
		msg += fmt.Sprintf(" (the advisory lock on line %d comes after it)", r.lockLine)
	}
	c.report(RuleNoMigrationLock, Warning, r.ddlLine, msg,
		"SELECT pg_advisory_lock(<migration id>) before the first change (or pg_advisory_xact_lock inside the migration's transaction), unless the migration tool takes its own lock")
}

// isDDL says whether a statement changes a table's definition or storage.
func isDDL(n *pg.Node) bool {
	switch n.Node.(type) {
	case *pg.Node_AlterTableStmt, *pg.Node_IndexStmt, *pg.Node_DropStmt, *pg.Node_RenameStmt,
		*pg.Node_AlterObjectSchemaStmt, *pg.Node_CreateTrigStmt, *pg.Node_RuleStmt,
		*pg.Node_CreatePolicyStmt, *pg.Node_AlterPolicyStmt, *pg.Node_TruncateStmt,
		*pg.Node_ReindexStmt, *pg.Node_ClusterStmt:
		return true
	case *pg.Node_VacuumStmt:
		v := n.GetVacuumStmt()
		return v.IsVacuumcmd && sqlBoolOption(v.Options, "full")
	}
	return false
}

// calledFunctions returns the names of the functions a query or a DO
// block calls (a DO block's body is read with PostgreSQL's scanner: an
// identifier followed by "(").
func calledFunctions(n *pg.Node) []string {
	switch n.Node.(type) {
	case *pg.Node_SelectStmt, *pg.Node_CallStmt:
		var names []string
		for _, f := range sqlFuncCalls(n) {
			names = append(names, sqlFuncName(f))
		}
		return names
	case *pg.Node_DoStmt:
		words := bodyWords(doBody(n.GetDoStmt()))
		var names []string
		for i := 0; i+1 < len(words); i++ {
			if words[i+1] == "(" {
				names = append(names, words[i])
			}
		}
		return names
	}
	return nil
}

// doBody is the code of a DO block.
func doBody(d *pg.DoStmt) string {
	for _, a := range d.GetArgs() {
		if de := a.GetDefElem(); de != nil && de.Defname == "as" {
			if s, ok := sqlConst(de.Arg); ok {
				return s
			}
			if s := de.Arg.GetString_(); s != nil {
				return s.Sval
			}
		}
	}
	return ""
}

// bodyWords returns a PL/pgSQL body's tokens, lower case, as
// PostgreSQL's scanner cuts them (nil when it cannot).
func bodyWords(body string) []string {
	if body == "" {
		return nil
	}
	res, err := sqlScan(body)
	if err != nil {
		return nil
	}
	words := make([]string, 0, len(res.Tokens))
	for _, t := range res.Tokens {
		words = append(words, strings.ToLower(body[t.Start:t.End]))
	}
	return words
}

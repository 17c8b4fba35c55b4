package preflight

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// constraintNotValidRule reports constraint-not-valid: a constraint
// added to a table other sessions use in the form that checks every row
// while holding the lock of the ALTER TABLE:
//   - FOREIGN KEY or CHECK without NOT VALID: the validating scan runs
//     under SHARE ROW EXCLUSIVE on both tables (a foreign key: no writes)
//     or ACCESS EXCLUSIVE (a check: nothing at all). Added NOT VALID, the
//     constraint binds new rows at once, and VALIDATE CONSTRAINT scans the
//     old ones later under SHARE UPDATE EXCLUSIVE, which lets reads and
//     writes go on;
//   - VALIDATE CONSTRAINT in the same transaction as its NOT VALID add:
//     the add's lock is still held through the scan, so NOT VALID bought
//     nothing;
//   - UNIQUE, PRIMARY KEY or EXCLUDE without USING INDEX: the index is
//     built under ACCESS EXCLUSIVE. Build it with CREATE UNIQUE INDEX
//     CONCURRENTLY and attach it with ADD CONSTRAINT ... USING INDEX;
//   - such constraints written on an added column (REFERENCES, UNIQUE,
//     PRIMARY KEY, CHECK), which cannot be NOT VALID.
//
// A warning: on a small table the scan is over in a moment.
type constraintNotValidRule struct {
	notValid map[string]notValidAdd // table.constraint -> the NOT VALID add
}

type notValidAdd struct {
	txn  int
	lock lockMode
	line int
}

func (r *constraintNotValidRule) statement(c *sqlCheck, s *sqlStmt) {
	a := s.node.GetAlterTableStmt()
	if a == nil || a.Objtype != pg.ObjectType_OBJECT_TABLE {
		return
	}
	t := relKey(a.Relation)
	if c.isNew(t) {
		return
	}
	if r.notValid == nil {
		r.notValid = map[string]notValidAdd{}
	}
	for i, cmd := range alterCmds(a) {
		line := c.cmdLine(s, i)
		switch cmd.Subtype {
		case pg.AlterTableType_AT_AddConstraint:
			k := cmd.Def.GetConstraint()
			if k == nil {
				continue
			}
			if k.SkipValidation && c.inTxn {
				r.notValid[t+"."+k.Conname] = notValidAdd{txn: c.txn, lock: alterCmdLock(cmd), line: line}
			}
			if what, fix := constraintScan(t, k, false); what != "" {
				c.report(RuleConstraintNotValid, Warning, line, what, fix)
			}
		case pg.AlterTableType_AT_AddColumn:
			cd := cmd.Def.GetColumnDef()
			for _, k := range columnConstraints(cd) {
				if what, fix := constraintScan(t, k, true); what != "" {
					c.report(RuleConstraintNotValid, Warning, line, fmt.Sprintf("column %s: %s", cd.GetColname(), what), fix)
				}
			}
		case pg.AlterTableType_AT_ValidateConstraint:
			add, ok := r.notValid[t+"."+cmd.Name]
			if !ok || !c.inTxn || add.txn != c.txn {
				continue
			}
			c.report(RuleConstraintNotValid, Warning, line, fmt.Sprintf(
				"VALIDATE CONSTRAINT %s runs in the same transaction as its ADD ... NOT VALID (line %d): the %s lock the add took on %s is held through the whole validating scan",
				cmd.Name, add.line, add.lock, t),
				"COMMIT after the ADD CONSTRAINT ... NOT VALID, and VALIDATE CONSTRAINT in a transaction of its own")
		}
	}
}

// constraintScan says whether adding constraint k to existing table t
// checks every row under the ALTER TABLE's lock, and how to avoid it.
// onColumn: the constraint is written on an added column.
func constraintScan(t string, k *pg.Constraint, onColumn bool) (what, fix string) {
	name := k.Conname
	if name == "" {
		name = "(unnamed)"
	}
	switch k.Contype {
	case pg.ConstrType_CONSTR_FOREIGN:
		if k.SkipValidation {
			return "", ""
		}
		ref := relKey(k.Pktable)
		fix := "ADD CONSTRAINT ... NOT VALID, COMMIT, then VALIDATE CONSTRAINT in its own transaction (SHARE UPDATE EXCLUSIVE: reads and writes go on)"
		if onColumn {
			fix = "add the column without REFERENCES, then " + fix
		}
		return fmt.Sprintf("foreign key %s is checked against every row of %s while both %s and %s are locked SHARE ROW EXCLUSIVE (no writes)", name, t, t, ref), fix
	case pg.ConstrType_CONSTR_CHECK:
		if k.SkipValidation {
			return "", ""
		}
		fix := "ADD CONSTRAINT ... CHECK (...) NOT VALID, COMMIT, then VALIDATE CONSTRAINT in its own transaction"
		if onColumn {
			fix = "add the column without the CHECK, then " + fix
		}
		return fmt.Sprintf("check constraint %s is checked against every row of %s under an ACCESS EXCLUSIVE lock (no reads or writes)", name, t), fix
	case pg.ConstrType_CONSTR_UNIQUE, pg.ConstrType_CONSTR_PRIMARY, pg.ConstrType_CONSTR_EXCLUSION:
		if k.Indexname != "" {
			return "", "" // USING INDEX: the index exists already
		}
		kind := map[pg.ConstrType]string{pg.ConstrType_CONSTR_UNIQUE: "UNIQUE", pg.ConstrType_CONSTR_PRIMARY: "PRIMARY KEY", pg.ConstrType_CONSTR_EXCLUSION: "EXCLUDE"}[k.Contype]
		fix := fmt.Sprintf("CREATE UNIQUE INDEX CONCURRENTLY first (outside a transaction), then ADD CONSTRAINT ... %s USING INDEX", kind)
		if k.Contype == pg.ConstrType_CONSTR_EXCLUSION {
			fix = "build the exclusion constraint outside the upgrade window"
		}
		if onColumn {
			fix = "add the column without the constraint, then " + fix
		}
		return fmt.Sprintf("%s constraint %s builds its index on %s under an ACCESS EXCLUSIVE lock (no reads or writes until it is built)", kind, name, t), fix
	}
	return "", ""
}

package preflight

import (
	"fmt"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// setNotNullRule reports set-not-null on a table other sessions use:
//   - ALTER COLUMN SET NOT NULL scans the whole table under ACCESS
//     EXCLUSIVE to prove there is no NULL: no reads or writes meanwhile.
//     Since PostgreSQL 12 the scan is skipped when a valid CHECK (col IS
//     NOT NULL) proves it, and that check can be added NOT VALID and
//     validated under SHARE UPDATE EXCLUSIVE first;
//   - ADD COLUMN ... NOT NULL with no default fails on a table that has
//     rows, and while the old version still runs, its INSERTs, which do
//     not name the column, fail too.
//
// A warning: on a small table the scan is over in a moment. A VALIDATE
// CONSTRAINT of a check this file does not show counts as the proof when
// the constraint's name contains the column's (billing_total_not_null for
// total), the common naming for this pattern split over two migrations.
type setNotNullRule struct {
	checks    map[string]string   // table.constraint -> column, NOT VALID checks seen
	proven    map[string]bool     // table.column proven not null by a valid check
	validated map[string][]string // table -> validated constraints this file did not show
}

func (r *setNotNullRule) statement(c *sqlCheck, s *sqlStmt) {
	a := s.node.GetAlterTableStmt()
	if a == nil || a.Objtype != pg.ObjectType_OBJECT_TABLE {
		return
	}
	if r.checks == nil {
		r.checks, r.proven, r.validated = map[string]string{}, map[string]bool{}, map[string][]string{}
	}
	t := relKey(a.Relation)
	for i, cmd := range alterCmds(a) {
		switch cmd.Subtype {
		case pg.AlterTableType_AT_AddConstraint:
			k := cmd.Def.GetConstraint()
			if col := notNullCheckColumn(k); col != "" {
				if k.SkipValidation {
					r.checks[t+"."+k.Conname] = col
				} else {
					r.proven[t+"."+col] = true
				}
			}
		case pg.AlterTableType_AT_ValidateConstraint:
			if col, ok := r.checks[t+"."+cmd.Name]; ok {
				r.proven[t+"."+col] = true
			} else {
				r.validated[t] = append(r.validated[t], cmd.Name)
			}
		case pg.AlterTableType_AT_SetNotNull:
			if c.isNew(t) || (c.opts.postgres >= 12 && r.provenNotNull(t, cmd.Name)) {
				continue
			}
			fix := fmt.Sprintf("ADD CONSTRAINT %[1]s_%[2]s_not_null CHECK (%[2]s IS NOT NULL) NOT VALID, VALIDATE it in its own transaction, then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the check", strings.ReplaceAll(t, ".", "_"), cmd.Name)
			if c.opts.postgres < 12 {
				fix = "before PostgreSQL 12 SET NOT NULL always scans: keep a validated CHECK (" + cmd.Name + " IS NOT NULL) NOT VALID constraint instead, or run it in a maintenance window"
			}
			c.report(RuleSetNotNull, Warning, c.cmdLine(s, i), fmt.Sprintf(
				"SET NOT NULL on %s.%s scans every row of %s under an ACCESS EXCLUSIVE lock (no reads or writes) to prove there is no NULL", t, cmd.Name, t), fix)
		case pg.AlterTableType_AT_AddColumn:
			cd := cmd.Def.GetColumnDef()
			if c.isNew(t) || !requiredWithoutDefault(cd) {
				continue
			}
			c.report(RuleSetNotNull, Warning, c.cmdLine(s, i), fmt.Sprintf(
				"ADD COLUMN %s NOT NULL with no default fails if %s has any row, and the old version's INSERTs, which do not name %s, fail while it still runs", cd.Colname, t, cd.Colname),
				"add the column with a DEFAULT (a constant default is instant since PostgreSQL 11), or nullable: backfill it, then prove NOT NULL with a validated CHECK")
		}
	}
}

func (r *setNotNullRule) provenNotNull(t, col string) bool {
	if r.proven[t+"."+col] {
		return true
	}
	return slices.ContainsFunc(r.validated[t], func(name string) bool {
		return strings.Contains("_"+name+"_", "_"+col+"_")
	})
}

// notNullCheckColumn returns col for CHECK (col IS NOT NULL), else "".
func notNullCheckColumn(k *pg.Constraint) string {
	if k == nil || k.Contype != pg.ConstrType_CONSTR_CHECK {
		return ""
	}
	nt := k.RawExpr.GetNullTest()
	if nt == nil || nt.Nulltesttype != pg.NullTestType_IS_NOT_NULL {
		return ""
	}
	cr := nt.Arg.GetColumnRef()
	if cr == nil || len(cr.Fields) == 0 {
		return ""
	}
	if s := cr.Fields[len(cr.Fields)-1].GetString_(); s != nil {
		return s.Sval
	}
	return ""
}

// requiredWithoutDefault: NOT NULL, and nothing fills existing rows.
func requiredWithoutDefault(cd *pg.ColumnDef) bool {
	if cd == nil {
		return false
	}
	switch sqlTypeOf(cd.TypeName).name {
	case "serial", "serial4", "bigserial", "serial8", "smallserial", "serial2":
		return false
	}
	notNull := false
	for _, k := range columnConstraints(cd) {
		switch k.Contype {
		case pg.ConstrType_CONSTR_NOTNULL, pg.ConstrType_CONSTR_PRIMARY:
			notNull = true
		case pg.ConstrType_CONSTR_DEFAULT:
			if !isNullConst(k.RawExpr) {
				return false
			}
		case pg.ConstrType_CONSTR_IDENTITY, pg.ConstrType_CONSTR_GENERATED:
			return false
		}
	}
	return notNull
}

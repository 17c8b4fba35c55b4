package preflight

import (
	"fmt"
	"slices"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// tableRewriteRule reports table-rewrite: a statement that copies every
// row of an existing table (and rebuilds its indexes) under ACCESS
// EXCLUSIVE: a column type change that is not a binary-coercible
// widening, an added column whose default must be computed row by row (a
// volatile function, serial, identity, a stored generated column; any
// non-null default before PostgreSQL 11), VACUUM FULL, CLUSTER, SET
// LOGGED / UNLOGGED, SET TABLESPACE, SET ACCESS METHOD. The lock lasts as
// long as the copy: minutes to hours on a large table, during which
// nothing reads or writes it, and the disk needs room for a second copy.
// A warning: a rewrite of a small table is harmless, and the lock it
// takes is reported as lock-no-timeout (an error) when no lock_timeout
// guards it.
type tableRewriteRule struct{}

func (tableRewriteRule) statement(c *sqlCheck, s *sqlStmt) {
	report := func(line int, table, what, fix string) {
		if c.isNew(table) {
			return
		}
		c.report(RuleTableRewrite, Warning, line, fmt.Sprintf("%s rewrites all of %s under an ACCESS EXCLUSIVE lock (no reads or writes until it is done): %s", stmtName(s), table, what), fix)
	}
	switch n := s.node.Node.(type) {
	case *pg.Node_AlterTableStmt:
		t := relKey(n.AlterTableStmt.Relation)
		for i, cmd := range alterCmds(n.AlterTableStmt) {
			if what, fix := c.rewriteOf(t, cmd); what != "" {
				report(c.cmdLine(s, i), t, what, fix)
			}
		}
	case *pg.Node_VacuumStmt:
		if n.VacuumStmt.IsVacuumcmd && sqlBoolOption(n.VacuumStmt.Options, "full") {
			for _, l := range s.locks {
				report(s.line, l.key, "VACUUM FULL writes a new copy of the table", fixRepack)
			}
		}
	case *pg.Node_ClusterStmt:
		for _, l := range s.locks {
			report(s.line, l.key, "CLUSTER writes a new copy of the table in index order", fixRepack)
		}
	}
}

const fixRepack = "use pg_repack (or REPACK CONCURRENTLY on PostgreSQL 19) outside the upgrade; a plain VACUUM needs no exclusive lock"

// rewriteOf says whether an ALTER TABLE subcommand rewrites table t, why,
// and how to avoid it.
func (c *sqlCheck) rewriteOf(t string, cmd *pg.AlterTableCmd) (what, fix string) {
	switch cmd.Subtype {
	case pg.AlterTableType_AT_AddColumn:
		return c.addColumnRewrite(cmd.Def.GetColumnDef())
	case pg.AlterTableType_AT_AlterColumnType:
		return c.typeChangeRewrite(t, cmd.Name, cmd.Def.GetColumnDef())
	case pg.AlterTableType_AT_SetLogged, pg.AlterTableType_AT_SetUnLogged:
		return "SET LOGGED / UNLOGGED writes the whole table anew",
			"make the table logged or unlogged when it is created, or outside the upgrade window"
	case pg.AlterTableType_AT_SetTableSpace:
		return "SET TABLESPACE copies the table's files", "move the table outside the upgrade window (pg_repack can move it online)"
	case pg.AlterTableType_AT_SetAccessMethod:
		return "SET ACCESS METHOD writes the table anew", "change the access method outside the upgrade window"
	case pg.AlterTableType_AT_SetExpression:
		return fmt.Sprintf("SET EXPRESSION recomputes %s for every row", cmd.Name),
			"add a new column, fill it by batches, and switch to it in a later release"
	}
	return "", ""
}

func (c *sqlCheck) addColumnRewrite(cd *pg.ColumnDef) (what, fix string) {
	if cd == nil {
		return "", ""
	}
	const fixDefault = "add the column with no default (or a constant one), SET DEFAULT for new rows, and backfill the existing rows in batches"
	switch sqlTypeOf(cd.TypeName).name {
	case "serial", "serial4", "bigserial", "serial8", "smallserial", "serial2":
		return fmt.Sprintf("column %s is %s, whose nextval() default is computed for every existing row", cd.Colname, sqlTypeOf(cd.TypeName).name),
			"add a nullable integer column, give it a sequence default for new rows, and backfill the existing rows in batches"
	}
	for _, k := range columnConstraints(cd) {
		switch k.Contype {
		case pg.ConstrType_CONSTR_IDENTITY:
			return fmt.Sprintf("identity column %s is filled from its sequence for every existing row", cd.Colname),
				"add a nullable column, backfill it in batches, then make it an identity column (ALTER COLUMN ADD GENERATED) once filled"
		case pg.ConstrType_CONSTR_GENERATED:
			return fmt.Sprintf("stored generated column %s is computed for every existing row", cd.Colname),
				"add a plain nullable column filled by a trigger for new rows, and backfill the existing rows in batches"
		case pg.ConstrType_CONSTR_DEFAULT:
			if isNullConst(k.RawExpr) {
				continue
			}
			if c.opts.postgres < 11 {
				return fmt.Sprintf("before PostgreSQL 11 any non-null default (here for %s) is written into every row", cd.Colname), fixDefault
			}
			if f := volatileCall(k.RawExpr); f != "" {
				return fmt.Sprintf("the default of %s calls %s, which is volatile (or of unknown volatility: CREATE FUNCTION's default is VOLATILE), so it is computed for every existing row", cd.Colname, f), fixDefault
			}
		}
	}
	return "", ""
}

func isNullConst(n *pg.Node) bool {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	return n.GetAConst() != nil && n.GetAConst().Isnull
}

// stableFuncs are functions that are not volatile (immutable or stable),
// by name and argument count, which a default may call without a
// rewrite: their value is computed once, at ALTER TABLE time.
var stableFuncs = map[string][]int{
	"now": {0}, "transaction_timestamp": {0}, "statement_timestamp": {0}, "current_setting": {1, 2},
	"lower": {1}, "upper": {1}, "btrim": {1, 2}, "concat": nil, "length": {1}, "abs": {1},
	"date_trunc": {2, 3}, "make_interval": nil, "make_date": {3}, "make_timestamp": {6}, "make_timestamptz": {6, 7},
	"to_timestamp": {1, 2}, "to_char": {2}, "to_date": {2}, "to_number": {2},
	"jsonb_build_object": nil, "json_build_object": nil, "jsonb_build_array": nil, "json_build_array": nil,
	"to_jsonb": {1}, "to_json": {1}, "array_fill": {2, 3}, "md5": {1}, "timezone": {2},
}

// volatileCall returns the first call in a default expression to a
// function that is not known to be stable or immutable ("" when none).
func volatileCall(expr *pg.Node) string {
	for _, f := range sqlFuncCalls(expr) {
		name := sqlFuncName(f)
		arities, ok := stableFuncs[name]
		if ok && (arities == nil || slices.Contains(arities, len(f.Args))) {
			continue
		}
		return name + "()"
	}
	return ""
}

// typeChangeRewrite judges ALTER COLUMN TYPE. PostgreSQL skips the
// rewrite only when the old type is binary-coercible to the new one and
// no USING expression transforms the value (ATColumnChangeRequiresRewrite):
// varchar(n) to varchar(m >= n), varchar or text; text to varchar;
// numeric(p,s) to numeric(q >= p, s) or numeric; varbit(n) to a larger
// varbit; cidr to inet; a larger timestamp precision. The old type is
// known only when this file set it.
func (c *sqlCheck) typeChangeRewrite(t, col string, cd *pg.ColumnDef) (what, fix string) {
	if cd == nil {
		return "", ""
	}
	const fixType = "add a new column of the new type, fill it in batches (and by a trigger for new rows), and switch to it; drop the old column in a later release"
	to := sqlTypeOf(cd.TypeName)
	if cd.RawDefault != nil && !trivialUsing(cd.RawDefault, col) {
		return fmt.Sprintf("the USING expression converts %s row by row", col), fixType
	}
	from, known := c.colTypes[t+"."+col]
	if known && from.known && binaryCoercible(from, to) {
		return "", ""
	}
	if !known && widensTo(to) {
		return fmt.Sprintf("changing %s to %s copies every row unless its old type is binary-coercible to %s (varchar(n) to text or to a larger n), which this file does not show",
			col, to, to), fixType
	}
	if known {
		return fmt.Sprintf("changing %s from %s to %s converts every row", col, from, to), fixType
	}
	return fmt.Sprintf("changing %s to %s converts every row", col, to), fixType
}

// trivialUsing says whether USING is the column itself, or a cast of it
// to the new type (what PostgreSQL does without USING).
func trivialUsing(n *pg.Node, col string) bool {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	cr := n.GetColumnRef()
	if cr == nil || len(cr.Fields) == 0 {
		return false
	}
	last := cr.Fields[len(cr.Fields)-1].GetString_()
	return last != nil && last.Sval == col
}

// widensTo says whether some old type could reach t without a rewrite.
func widensTo(t sqlType) bool {
	switch t.name {
	case "text", "varchar", "numeric", "varbit", "inet", "timestamp", "timestamptz":
		return true
	}
	return false
}

func binaryCoercible(from, to sqlType) bool {
	if from.array != to.array {
		return false
	}
	if from.name == to.name && slices.Equal(from.mods, to.mods) {
		return true
	}
	larger := func() bool { // no limit, or a limit at least the old one
		return len(to.mods) == 0 || (len(from.mods) > 0 && to.mods[0] >= from.mods[0])
	}
	switch {
	case from.name == "varchar" && to.name == "varchar", from.name == "varbit" && to.name == "varbit",
		from.name == "timestamp" && to.name == "timestamp", from.name == "timestamptz" && to.name == "timestamptz":
		return larger()
	case from.name == "varchar" && to.name == "text", from.name == "text" && to.name == "varchar" && len(to.mods) == 0,
		from.name == "cidr" && to.name == "inet":
		return true
	case from.name == "numeric" && to.name == "numeric":
		if len(to.mods) == 0 {
			return true
		}
		fromScale, toScale := 0, 0
		if len(from.mods) > 1 {
			fromScale = from.mods[1]
		}
		if len(to.mods) > 1 {
			toScale = to.mods[1]
		}
		return len(from.mods) > 0 && to.mods[0] >= from.mods[0] && fromScale == toScale
	}
	return false
}

package preflight

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// breakingChangeRule reports breaking-change: a schema change that
// breaks the old version of the application, which keeps running while
// the upgrade migrates (and again if the upgrade is rolled back without
// its data): renaming or dropping a table, view or column it reads,
// changing a column's type, dropping NOT NULL (it may now read NULLs),
// dropping a schema or database. The safe shape is expand and contract:
// add the new name or column, have the new version use it, and remove the
// old one in a later release, once no running version reads it. A
// warning: the rule cannot know which columns the old version reads.
type breakingChangeRule struct{}

const fixExpandContract = "expand and contract: add the new %s beside the old one, move readers and writers over, and remove the old %s in a later release, once no running version uses it"

func (breakingChangeRule) statement(c *sqlCheck, s *sqlStmt) {
	report := func(line int, key, msg, thing string) {
		if key != "" && c.isNew(key) {
			return
		}
		c.report(RuleBreakingChange, Warning, line, msg+": the old version, still running during the upgrade, breaks", fmt.Sprintf(fixExpandContract, thing, thing))
	}
	switch n := s.node.Node.(type) {
	case *pg.Node_RenameStmt:
		r := n.RenameStmt
		switch r.RenameType {
		case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW:
			report(s.line, relKey(r.Relation), fmt.Sprintf("%s renames %s to %s", stmtName(s), relKey(r.Relation), r.Newname), "table")
		case pg.ObjectType_OBJECT_COLUMN:
			report(s.line, relKey(r.Relation), fmt.Sprintf("column %s.%s is renamed to %s", relKey(r.Relation), r.Subname, r.Newname), "column")
		case pg.ObjectType_OBJECT_SCHEMA:
			report(s.line, "", fmt.Sprintf("schema %s is renamed to %s", r.Subname, r.Newname), "schema")
		}
	case *pg.Node_AlterObjectSchemaStmt:
		if r := n.AlterObjectSchemaStmt.Relation; r != nil {
			report(s.line, relKey(r), fmt.Sprintf("%s moves %s to schema %s", stmtName(s), relKey(r), n.AlterObjectSchemaStmt.Newschema), "table")
		}
	case *pg.Node_DropStmt:
		d := n.DropStmt
		switch d.RemoveType {
		case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW:
			for _, l := range s.locks {
				report(s.line, l.key, fmt.Sprintf("%s drops %s", stmtName(s), l.target), "table")
			}
		case pg.ObjectType_OBJECT_SCHEMA:
			for _, o := range d.Objects {
				report(s.line, "", fmt.Sprintf("DROP SCHEMA drops %s and everything in it", sqlObjectKey(sqlNames(o))), "schema")
			}
		}
	case *pg.Node_DropdbStmt:
		report(s.line, "", fmt.Sprintf("DROP DATABASE drops %s", n.DropdbStmt.Dbname), "database")
	case *pg.Node_AlterTableStmt:
		a := n.AlterTableStmt
		t := relKey(a.Relation)
		for i, cmd := range alterCmds(a) {
			switch cmd.Subtype {
			case pg.AlterTableType_AT_DropColumn:
				report(c.cmdLine(s, i), t, fmt.Sprintf("column %s.%s is dropped", t, cmd.Name), "column")
			case pg.AlterTableType_AT_AlterColumnType:
				report(c.cmdLine(s, i), t, fmt.Sprintf("column %s.%s changes type to %s", t, cmd.Name, sqlTypeOf(cmd.Def.GetColumnDef().GetTypeName())), "column")
			case pg.AlterTableType_AT_DropNotNull:
				report(c.cmdLine(s, i), t, fmt.Sprintf("column %s.%s may now hold NULLs", t, cmd.Name), "column")
			}
		}
	}
}

package preflight

import (
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// opaqueSQLRule reports cannot-tell (info) where the SQL rules cannot see
// what runs: a DO block whose PL/pgSQL changes tables or runs dynamic SQL
// (EXECUTE), and CALL, whose procedure body is not followed. The locks
// and rewrites of those statements are not modelled, so preflight says so
// instead of passing them in silence.
type opaqueSQLRule struct{}

var ddlWords = map[string]bool{
	"alter": true, "drop": true, "truncate": true, "reindex": true, "cluster": true,
	"vacuum": true, "lock": true, "execute": true,
}

func (opaqueSQLRule) statement(c *sqlCheck, s *sqlStmt) {
	switch n := s.node.Node.(type) {
	case *pg.Node_DoStmt:
		words := bodyWords(doBody(n.DoStmt))
		for i, w := range words {
			ddl := ddlWords[w]
			if w == "create" && i+1 < len(words) {
				switch words[i+1] {
				case "index", "unique", "table", "trigger", "rule":
					ddl = true
				}
			}
			if ddl {
				c.report(RuleCannotTell, Info, s.line, fmt.Sprintf(
					"a DO block runs %s in PL/pgSQL: its locks and rewrites are not checked", strings.ToUpper(w)),
					"run schema changes as plain SQL statements, so that preflight can check them, or review this block by hand")
				return
			}
		}
	case *pg.Node_CallStmt:
		name := "a procedure"
		if f := n.CallStmt.Funccall; f != nil {
			name = sqlFuncName(f)
		}
		c.report(RuleCannotTell, Info, s.line, fmt.Sprintf(
			"CALL %s runs statements preflight does not follow: their locks and rewrites are not checked", name),
			"run schema changes as plain SQL statements, so that preflight can check them, or review the procedure by hand")
	}
}

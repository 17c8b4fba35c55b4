package preflight

import (
	"slices"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// cmdLine is the line of the i-th subcommand of an ALTER TABLE statement.
// The parser keeps no location for subcommands, so the statement's text
// is scanned (with PostgreSQL's scanner) for the commas that separate
// them, outside parentheses and brackets. It falls back to the
// statement's line.
func (c *sqlCheck) cmdLine(s *sqlStmt, i int) int {
	a := s.node.GetAlterTableStmt()
	if a == nil || len(a.Cmds) < 2 {
		return s.line
	}
	if s.cmdLines == nil {
		s.cmdLines = c.scanCmdLines(s, a)
	}
	if i < len(s.cmdLines) {
		return s.cmdLines[i]
	}
	return s.line
}

func (c *sqlCheck) scanCmdLines(s *sqlStmt, a *pg.AlterTableStmt) []int {
	fallback := make([]int, len(a.Cmds))
	for i := range fallback {
		fallback[i] = s.line
	}
	if a.Relation == nil {
		return fallback
	}
	// Scan the statement alone: token offsets count from s.start, the
	// parser's locations from s.base.
	res, err := sqlScan(c.src[s.start:s.end])
	if err != nil {
		return fallback
	}
	toks := slices.DeleteFunc(res.Tokens, func(t *pg.ScanToken) bool {
		return t.Token == pg.Token_SQL_COMMENT || t.Token == pg.Token_C_COMMENT
	})
	rel := int(a.Relation.Location) + s.base - s.start
	i := 0
	for i < len(toks) && int(toks[i].Start) < rel {
		i++
	}
	// The relation's name: ident ( '.' ident )* [ '*' ].
	i++
	for i+1 < len(toks) && toks[i].Token == pg.Token_ASCII_46 {
		i += 2
	}
	if i < len(toks) && toks[i].Token == pg.Token_ASCII_42 {
		i++
	}
	if i >= len(toks) {
		return fallback
	}
	lines := []int{c.lines.line(s.start + int(toks[i].Start))}
	depth := 0
	for ; i < len(toks); i++ {
		switch toks[i].Token {
		case pg.Token_ASCII_40, pg.Token_ASCII_91:
			depth++
		case pg.Token_ASCII_41, pg.Token_ASCII_93:
			depth--
		case pg.Token_ASCII_44:
			if depth == 0 && i+1 < len(toks) {
				lines = append(lines, c.lines.line(s.start+int(toks[i+1].Start)))
			}
		}
	}
	if len(lines) != len(a.Cmds) {
		return fallback
	}
	return lines
}

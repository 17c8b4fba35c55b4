package preflight

import (
	"errors"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
)

// defaultPostgres is the PostgreSQL major version a migration is judged
// for when the caller does not say (the bundled world runs 15).
const defaultPostgres = 15

// SQLOption changes how CheckSQLWith judges a migration file. Options
// cannot fail, so unlike the package's other options they return nothing.
type SQLOption func(*sqlOptions)

type sqlOptions struct {
	postgres      int
	inTransaction bool
}

// WithPostgres judges the file for a PostgreSQL major version (default
// 15): before 11 any ADD COLUMN default rewrites the table, before 12 SET
// NOT NULL always scans it.
func WithPostgres(major int) SQLOption {
	return func(o *sqlOptions) {
		if major > 0 {
			o.postgres = major
		}
	}
}

// WithTransaction says the migration tool wraps each file in one
// transaction (Flyway, Alembic, Rails do); the default is psql's
// autocommit, where each statement outside BEGIN commits on its own.
func WithTransaction() SQLOption {
	return func(o *sqlOptions) { o.inTransaction = true }
}

// CheckSQL checks one SQL migration file: the lock each statement takes
// and the hazards that follow; malformed SQL is a parse-error finding,
// and the statements that parse are still checked. The file is judged
// for PostgreSQL 15, run by psql in autocommit mode (see CheckSQLWith).
func CheckSQL(file string, src []byte) []Finding { return CheckSQLWith(file, src) }

// CheckSQLWith is CheckSQL for a given server version and migration tool.
func CheckSQLWith(file string, src []byte, opts ...SQLOption) []Finding {
	o := sqlOptions{postgres: defaultPostgres}
	for _, opt := range opts {
		opt(&o)
	}
	c := newSQLCheck(file, string(src), o)
	stmts, perr := parseSQL(c.src)
	if perr != nil {
		c.report(RuleParseError, Error, perr.line, perr.msg,
			"fix the SQL: psql stops at this statement and runs none after it (the statements that parse were still checked)")
	}
	for _, raw := range stmts {
		c.statement(raw)
	}
	c.end()
	Sort(c.findings)
	return c.findings
}

// sqlParseError is where and why a file does not parse.
type sqlParseError struct {
	line int
	msg  string
}

// parseSQL parses src whole; when it does not parse, it splits src at the
// scanner's top-level semicolons and parses each statement on its own, so
// that the statements around the error are still checked. Locations stay
// byte offsets into src.
func parseSQL(src string) ([]*pg.RawStmt, *sqlParseError) {
	tree, err := pg.Parse(src)
	if err == nil {
		return tree.Stmts, nil
	}
	perr := &sqlParseError{line: 1, msg: "SQL does not parse: " + err.Error()}
	at := -1
	var pe *pgparser.Error
	if errors.As(err, &pe) && pe.Cursorpos > 0 {
		at = sqlCharToByte(src, pe.Cursorpos-1)
		perr.line = sqlLineOf(src, at)
	}
	var stmts []*pg.RawStmt
	first := true
	for _, seg := range splitStatements(src) {
		// Blank what comes before the statement (keeping newlines), so
		// the parser's byte locations are still offsets into src.
		t, err := pg.Parse(blankSQL(src[:seg[0]]) + src[seg[0]:seg[1]])
		if err != nil {
			if at < 0 && first {
				perr.line = sqlLineOf(src, skipSQLSpace(src, seg[0]))
				first = false
			}
			continue
		}
		for _, st := range t.Stmts {
			// The first statement's location is 0, in the blanked prefix.
			if lo := int32(seg[0]); st.StmtLocation < lo {
				if st.StmtLen > 0 {
					st.StmtLen -= lo - st.StmtLocation
				}
				st.StmtLocation = lo
			}
		}
		stmts = append(stmts, t.Stmts...)
	}
	return stmts, perr
}

// splitStatements returns the [start, end) byte ranges of src's
// statements, cut at semicolons outside parentheses, as PostgreSQL's own
// scanner sees them (so a semicolon in a string or comment is no cut).
// Where the scanner itself fails (an unterminated string or comment), the
// rest of src is one last range.
func splitStatements(src string) [][2]int {
	end := len(src)
	res, err := pg.Scan(src)
	if err != nil {
		var pe *pgparser.Error
		if !errors.As(err, &pe) || pe.Cursorpos <= 0 {
			return [][2]int{{0, len(src)}}
		}
		end = sqlCharToByte(src, pe.Cursorpos-1)
		if res, err = pg.Scan(src[:end]); err != nil {
			return [][2]int{{0, len(src)}}
		}
	}
	var segs [][2]int
	start, depth := 0, 0
	for _, t := range res.Tokens {
		switch t.Token {
		case pg.Token_ASCII_40:
			depth++
		case pg.Token_ASCII_41:
			depth = max(0, depth-1)
		case pg.Token_ASCII_59:
			if depth == 0 {
				segs = append(segs, [2]int{start, int(t.End)})
				start = int(t.End)
			}
		}
	}
	if strings.TrimSpace(src[start:]) != "" {
		segs = append(segs, [2]int{start, len(src)})
	}
	if end < len(src) && len(segs) > 0 {
		segs[len(segs)-1][1] = len(src)
	}
	return segs
}

// blankSQL replaces every byte of s but newlines by a space.
func blankSQL(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c != '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}

// sqlCharToByte turns a character index of src (PostgreSQL's error cursor
// counts characters) into a byte offset.
func sqlCharToByte(src string, n int) int {
	i := 0
	for off := range src {
		if i == n {
			return off
		}
		i++
	}
	return len(src)
}

// sqlLineOf is the 1-based line of byte offset off in src.
func sqlLineOf(src string, off int) int {
	off = min(max(off, 0), len(src))
	return strings.Count(src[:off], "\n") + 1
}

// skipSQLSpace skips white space and comments (-- to the end of the line,
// and nested /* */) from byte offset i: a statement's location starts
// right after the previous semicolon.
func skipSQLSpace(src string, i int) int {
	for i < len(src) {
		switch {
		case src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r' || src[i] == '\f' || src[i] == '\v':
			i++
		case strings.HasPrefix(src[i:], "--"):
			nl := strings.IndexByte(src[i:], '\n')
			if nl < 0 {
				return len(src)
			}
			i += nl + 1
		case strings.HasPrefix(src[i:], "/*"):
			depth := 0
			for i < len(src) {
				if strings.HasPrefix(src[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(src[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		default:
			return i
		}
	}
	return i
}

// sqlLineIndex maps byte offsets to lines with a binary search.
type sqlLineIndex []int

func newSQLLineIndex(src string) sqlLineIndex {
	idx := sqlLineIndex{0}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			idx = append(idx, i+1)
		}
	}
	return idx
}

func (l sqlLineIndex) line(off int) int {
	n, found := slices.BinarySearch(l, off)
	if found {
		return n + 1
	}
	return n
}

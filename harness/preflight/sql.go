package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

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
	ctx           context.Context // nil: never cancelled
}

// WithContext stops the check when ctx is done (between statements); the
// findings are then partial, and ctx.Err() says so.
func WithContext(ctx context.Context) SQLOption {
	return func(o *sqlOptions) { o.ctx = ctx }
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
	src, nul, hasNUL := stripNUL(file, 1, src)
	c := newSQLCheck(file, string(src), o)
	if hasNUL {
		c.findings = append(c.findings, nul)
	}
	p := parseSQL(c.src)
	if p.err != nil {
		c.report(RuleParseError, Error, p.err.line, p.err.msg,
			"fix the SQL: psql stops at this statement and runs none after it (the statements that parse were still checked)")
	}
	for _, d := range p.deep {
		c.report(RuleCannotTell, Info, d.line, fmt.Sprintf(
			"statement %d at line %d nests deeper than preflight parses: not checked", d.n, d.line),
			"review this statement by hand; if a tool generated it, have it write shorter operator chains or less nesting (preflight parses up to about 500 levels of nesting or 1,500 chained operators)")
	}
	for _, raw := range p.stmts {
		if o.ctx != nil && o.ctx.Err() != nil {
			break
		}
		c.statement(raw)
	}
	c.end()
	Sort(c.findings)
	return c.findings
}

// sqlWork counts the bytes handed to PostgreSQL's parser and scanner, so
// that tests can bound the work on a file (it must stay O(file size)).
var sqlWork atomic.Int64

func sqlParse(s string) (*pg.ParseResult, error) {
	sqlWork.Add(int64(len(s)))
	return pg.Parse(s)
}

func sqlScan(s string) (*pg.ScanResult, error) {
	sqlWork.Add(int64(len(s)))
	return pg.Scan(s)
}

// sqlParsed is what parseSQL makes of a file: its statements, the first
// syntax error, and the statements too deep to parse.
type sqlParsed struct {
	stmts []sqlRawStmt
	err   *sqlParseError
	deep  []sqlDeepStmt
}

// sqlRawStmt is one parsed statement. Its StmtLocation and StmtLen are
// byte offsets into the file; the locations inside Stmt count from base
// (0 when the whole file was parsed at once, the statement's start when it
// was parsed alone).
type sqlRawStmt struct {
	*pg.RawStmt
	base int
}

// sqlParseError is where and why a file does not parse.
type sqlParseError struct {
	line int
	msg  string
}

// sqlDeepStmt is a statement preflight does not hand to the parser: the
// n-th of the file, on line.
type sqlDeepStmt struct {
	n, line int
}

// parseSQL scans src with PostgreSQL's scanner, which is flat, and cuts it
// into statements; a statement that nests deeper than sqlMaxDepth is not
// parsed (pg_query's C code recurses over the tree and would overflow the
// stack, killing the process). When no statement is too deep, src is
// parsed whole, in one call; when it does not parse, or a statement is too
// deep, each statement is parsed on its own, so that the statements around
// the error are still checked. The work is linear in the file's size: one
// scan, at most one parse of the whole file and one of each statement.
func parseSQL(src string) sqlParsed {
	var p sqlParsed
	segs := splitStatements(src)
	deep := slices.ContainsFunc(segs, func(s sqlSegment) bool { return s.depth > sqlMaxDepth })
	var whole error
	if !deep {
		tree, err := sqlParse(src)
		if err == nil {
			for _, st := range tree.Stmts {
				p.stmts = append(p.stmts, sqlRawStmt{st, 0})
			}
			return p
		}
		whole = err
	}
	lines := newSQLLineIndex(src)
	for i, seg := range segs {
		line := lines.line(skipSQLSpace(src, seg.start))
		if seg.depth > sqlMaxDepth {
			p.deep = append(p.deep, sqlDeepStmt{i + 1, line})
			continue
		}
		text := src[seg.start:seg.end]
		t, err := sqlParse(text)
		if err != nil {
			if sqlTooDeep(err) {
				p.deep = append(p.deep, sqlDeepStmt{i + 1, line})
			} else if p.err == nil {
				p.err = &sqlParseError{line: line, msg: "SQL does not parse: " + err.Error()}
				var pe *pgparser.Error
				if errors.As(err, &pe) && pe.Cursorpos > 0 {
					p.err.line = lines.line(seg.start + sqlCharToByte(text, pe.Cursorpos-1))
				}
			}
			continue
		}
		for _, st := range t.Stmts {
			if st.StmtLen == 0 { // the rest of the text
				st.StmtLen = int32(len(text)) - st.StmtLocation
			}
			st.StmtLocation += int32(seg.start)
			p.stmts = append(p.stmts, sqlRawStmt{st, seg.start})
		}
	}
	if p.err == nil && whole != nil && !sqlTooDeep(whole) {
		// The file does not parse, though each statement does alone.
		p.err = &sqlParseError{line: 1, msg: "SQL does not parse: " + whole.Error()}
		var pe *pgparser.Error
		if errors.As(whole, &pe) && pe.Cursorpos > 0 {
			p.err.line = sqlLineOf(src, sqlCharToByte(src, pe.Cursorpos-1))
		}
	}
	return p
}

// sqlTooDeep says whether a parse failed for depth alone: the Go protobuf
// decoder refuses a tree nested deeper than its recursion limit. (Bison's
// "memory exhausted" is PostgreSQL's own verdict: the server refuses the
// statement too, so it stays a parse error.)
func sqlTooDeep(err error) bool {
	return strings.Contains(err.Error(), "exceeded maximum recursion depth")
}

// sqlMaxDepth bounds how deep a statement may nest for preflight to hand
// it to PostgreSQL's parser; sqlNestCost is what one level of nesting
// (parenthesis, bracket, CASE) counts, one binary operator counting 1.
//
// pg_query's parser builds a tree as deep as a chain of binary operators
// (1+1+..., 'a'||'a'||..., x::int::int..., UNION, JOIN) and then walks it
// recursively in C to serialise it: about 350 bytes of C stack a level.
// Measured on this machine (pg_query_go v6.2.5, amd64) for SELECT 1+1+...:
// a SIGSEGV, which no Go code can recover from, at 23,800 levels on the
// main thread's 8 MiB stack, at about 5,900 on a 2 MiB thread stack (what
// glibc gives other threads when ulimit -s is unlimited), at about 3,000
// on a 1 MiB one; and the Go protobuf decoder's recursion limit (10,000
// messages) fails the parse ("exceeded maximum recursion depth") from
// 4,970 levels, as a false parse error. Nesting fails sooner per level:
// bison's stack ("memory exhausted") at 9,960 parentheses, 3,312 levels
// of 1+(, 1,968 nested CASEs; the protobuf limit at 1,656 nested
// (SELECT ...). 1,500, with a level of nesting worth 3, stays 3 times
// below every one of those and 2 times below a crash on a 1 MiB stack;
// no hand-written migration comes near it (a 100,000-row VALUES list is
// wide, not deep: its depth is 4).
const (
	sqlMaxDepth = 1500
	sqlNestCost = 3
)

// sqlSegment is one statement's [start, end) byte range in the file and
// an upper bound of how deep the parser's tree for it nests (sqlDepth).
type sqlSegment struct {
	start, end int
	depth      int
}

// splitStatements returns src's statements, cut at semicolons outside
// parentheses, brackets, CASE ... END and BEGIN ATOMIC ... END, as
// PostgreSQL's own scanner sees them (so a semicolon in a string or
// comment is no cut), with each one's depth. The scanner is flat (no
// recursion), so this is safe on any input. Where the scanner itself fails
// (an unterminated string or comment), the rest of src is one last range.
func splitStatements(src string) []sqlSegment {
	end := len(src)
	res, err := sqlScan(src)
	if err != nil {
		var pe *pgparser.Error
		if !errors.As(err, &pe) || pe.Cursorpos <= 0 {
			return []sqlSegment{{0, len(src), 0}}
		}
		end = sqlCharToByte(src, pe.Cursorpos-1)
		if res, err = sqlScan(src[:end]); err != nil {
			return []sqlSegment{{0, len(src), 0}}
		}
	}
	var segs []sqlSegment
	start := 0
	var d sqlDepth
	for i, t := range res.Tokens {
		if t.Token == pg.Token_ASCII_59 && len(d.levels) == 0 {
			segs = append(segs, sqlSegment{start, int(t.End), d.max})
			start, d = int(t.End), sqlDepth{}
			continue
		}
		atomic := t.Token == pg.Token_BEGIN_P && i+1 < len(res.Tokens) && res.Tokens[i+1].Token == pg.Token_ATOMIC
		d.token(t.Token, atomic)
	}
	if strings.TrimSpace(src[start:]) != "" {
		segs = append(segs, sqlSegment{start, len(src), d.max})
	}
	if end < len(src) && len(segs) > 0 {
		segs[len(segs)-1].end = len(src)
	}
	return segs
}

// sqlDepth follows a statement's tokens and keeps an upper bound of the
// depth of the tree the parser makes of them (max). Every open level of
// nesting counts sqlNestCost, plus the length of the chain of binary
// operators at each open level: a chain of operators is a tree as deep as
// the chain. A comma ends the operator chain at its level (list items are
// siblings), and so do AND and OR (the parser flattens them into one list)
// and the words that start another clause or CASE branch. Set operations
// and joins make their own chain, which only the end of its level or a
// semicolon inside BEGIN ATOMIC ends: a comma in a UNION arm (SELECT a, b
// ... UNION ...) or a VALUES list does not, as the arms still nest.
type sqlDepth struct {
	levels []sqlLevel
	top    sqlLevel // the statement's own level, never closed
	depth  int      // the sum over the open levels, top's included
	max    int
}

type sqlLevel struct {
	opener     pg.Token // ( [ CASE ATOMIC
	expr, sets int      // operator chain and set operation / join chain
}

func (d *sqlDepth) token(t pg.Token, atomic bool) {
	cur := &d.top
	if n := len(d.levels); n > 0 {
		cur = &d.levels[n-1]
	}
	switch t {
	case pg.Token_ASCII_40, pg.Token_ASCII_91, pg.Token_CASE:
		d.open(t)
	case pg.Token_BEGIN_P:
		if atomic {
			d.open(pg.Token_ATOMIC)
		}
	case pg.Token_ASCII_41:
		d.close(pg.Token_ASCII_40, pg.Token_ASCII_40)
	case pg.Token_ASCII_93:
		d.close(pg.Token_ASCII_91, pg.Token_ASCII_91)
	case pg.Token_END_P:
		d.close(pg.Token_CASE, pg.Token_ATOMIC)
	case pg.Token_ASCII_44:
		// A comma ends the operator chain only: in SELECT 1, 1 UNION
		// SELECT 1, 1 ... the arms' commas are inside the set chain.
		d.depth -= cur.expr
		cur.expr = 0
	case pg.Token_ASCII_59: // a semicolon inside BEGIN ATOMIC ends a statement
		d.depth -= cur.expr + cur.sets
		cur.expr, cur.sets = 0, 0
	case pg.Token_AND, pg.Token_OR, pg.Token_WHEN, pg.Token_THEN, pg.Token_ELSE,
		pg.Token_WHERE, pg.Token_FROM, pg.Token_SET, pg.Token_ON:
		d.depth -= cur.expr
		cur.expr = 0
	case pg.Token_UNION, pg.Token_INTERSECT, pg.Token_EXCEPT, pg.Token_JOIN:
		d.depth -= cur.expr
		cur.expr = 0
		cur.sets++
		d.depth++
	case pg.Token_ASCII_43, pg.Token_ASCII_45, pg.Token_ASCII_42, pg.Token_ASCII_47,
		pg.Token_ASCII_37, pg.Token_ASCII_94, pg.Token_ASCII_60, pg.Token_ASCII_62,
		pg.Token_ASCII_61, pg.Token_Op, pg.Token_TYPECAST, pg.Token_LESS_EQUALS,
		pg.Token_GREATER_EQUALS, pg.Token_NOT_EQUALS, pg.Token_NOT, pg.Token_IS,
		pg.Token_ISNULL, pg.Token_NOTNULL, pg.Token_LIKE, pg.Token_ILIKE,
		pg.Token_SIMILAR, pg.Token_BETWEEN, pg.Token_IN_P, pg.Token_COLLATE,
		pg.Token_AT, pg.Token_OPERATOR, pg.Token_OVERLAPS:
		cur.expr++
		d.depth++
	}
	d.max = max(d.max, d.depth)
}

func (d *sqlDepth) open(t pg.Token) {
	d.levels = append(d.levels, sqlLevel{opener: t})
	d.depth += sqlNestCost
}

// close closes the innermost level opened by a or b, and any left open
// inside it; a closer with nothing to close is ignored.
func (d *sqlDepth) close(a, b pg.Token) {
	for i := len(d.levels) - 1; i >= 0; i-- {
		if o := d.levels[i].opener; o == a || o == b {
			for _, l := range d.levels[i:] {
				d.depth -= sqlNestCost + l.expr + l.sets
			}
			d.levels = d.levels[:i]
			return
		}
	}
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

package preflight

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// deepSQLShapes are statements that nest deeper than PostgreSQL's parser
// (as pg_query_go runs it) survives: chains of binary operators make a
// tree as deep as the chain, which overflows the C stack while the tree
// is serialised (SIGSEGV, not recoverable), or exceeds the Go protobuf
// decoder's recursion limit; nested parentheses exhaust bison's stack.
// n is the chain length or nesting depth.
func deepSQL(shape string, n int) string {
	switch shape {
	case "plus":
		return "SELECT 1" + strings.Repeat("+1", n)
	case "concat":
		return "SELECT 'a'" + strings.Repeat("||'a'", n)
	case "default":
		return "ALTER TABLE t ADD COLUMN c int DEFAULT 1" + strings.Repeat("+1", n)
	case "parens":
		return "SELECT " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n)
	case "nested-plus":
		return "SELECT " + strings.Repeat("1+(", n) + "1" + strings.Repeat(")", n)
	case "subquery":
		return "SELECT " + strings.Repeat("(SELECT ", n) + "1" + strings.Repeat(")", n)
	case "case":
		return "SELECT " + strings.Repeat("CASE WHEN true THEN ", n) + "1" + strings.Repeat(" END", n)
	case "cast":
		return "SELECT 1" + strings.Repeat("::int", n)
	case "union":
		return "SELECT 1" + strings.Repeat(" UNION ALL SELECT 1", n)
	case "unioncomma":
		return "SELECT 1, 1" + strings.Repeat(" UNION ALL SELECT 1, 1", n)
	case "valuesunion":
		return "VALUES (1),(2)" + strings.Repeat(" UNION VALUES (1),(2)", n)
	case "groupby":
		return "SELECT a FROM t GROUP BY a, b" + strings.Repeat(" UNION SELECT a FROM t GROUP BY a, b", n)
	case "intersect":
		return "SELECT 1, 1" + strings.Repeat(" INTERSECT SELECT 1, 1", n)
	case "except":
		return "SELECT 1, 1" + strings.Repeat(" EXCEPT SELECT 1, 1", n)
	case "joincomma":
		return "SELECT * FROM t0" + strings.Repeat(" JOIN t USING (a, b)", n)
	case "join":
		return "SELECT * FROM t0" + strings.Repeat(" JOIN t ON true", n)
	case "not":
		return "SELECT " + strings.Repeat("NOT ", n) + "true"
	}
	panic("unknown shape " + shape)
}

// deepSQLFile puts a deep statement between two ordinary ones: line 2 is
// the deep statement, line 3 a DROP COLUMN (breaking-change).
func deepSQLFile(shape string, n int) string {
	return "SET lock_timeout = '1s';\n" + deepSQL(shape, n) + ";\nALTER TABLE t DROP COLUMN a;\n"
}

const deepChildEnv = "REHEARSE_TEST_SQL_DEEP_CHILD"

// TestCheckSQLTooDeep runs each crash input in a child process (the test
// binary itself): a C stack overflow kills the process, so a regression
// is this test failing, not the test binary dying.
func TestCheckSQLTooDeep(t *testing.T) {
	if spec := os.Getenv(deepChildEnv); spec != "" {
		var shape string
		var n int
		if _, err := fmt.Sscanf(spec, "%s %d", &shape, &n); err != nil {
			fmt.Println("bad spec", spec)
			os.Exit(3)
		}
		for _, f := range CheckSQL("deep.sql", []byte(deepSQLFile(shape, n))) {
			fmt.Printf("finding %s:%d:%s\n", f.Rule, f.Line, f.Message)
		}
		os.Exit(0)
	}
	cases := []struct {
		shape string
		n     int
	}{
		{"plus", 30000},    // SIGSEGV in the C parser (8 MiB stack)
		{"concat", 50000},  // SIGSEGV
		{"default", 30000}, // SIGSEGV
		{"plus", 20000},    // proto: exceeded maximum recursion depth
		{"parens", 10000},  // memory exhausted
		{"nested-plus", 4000},
		{"subquery", 2000},
		{"case", 2500},
		{"cast", 30000},
		{"union", 12000},
		{"unioncomma", 60000}, // SIGSEGV: a comma in each arm reset the UNION chain
		{"valuesunion", 60000},
		{"groupby", 60000},
		{"intersect", 60000},
		{"except", 60000},
		{"joincomma", 30000},
		{"join", 30000},
		{"not", 6000},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%d", tc.shape, tc.n), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCheckSQLTooDeep$", "-test.count=1")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", deepChildEnv, tc.shape, tc.n))
			out, err := cmd.CombinedOutput()
			if err != nil {
				tail := string(out)
				if len(tail) > 600 {
					tail = tail[:600]
				}
				t.Fatalf("CheckSQL died on %s x %d (%v):\n%s", tc.shape, tc.n, err, tail)
			}
			var got []string
			for _, l := range strings.Split(string(out), "\n") {
				if r, ok := strings.CutPrefix(l, "finding "); ok {
					got = append(got, r)
				}
			}
			want := []string{
				RuleCannotTell + ":2:statement 2 at line 2 nests deeper than preflight parses: not checked",
				RuleBreakingChange + ":3:",
			}
			for _, w := range want {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
					t.Errorf("no %q in %q", w, got)
				}
			}
			for _, g := range got {
				if strings.HasPrefix(g, RuleParseError) {
					t.Errorf("a valid statement is a parse error: %s", g)
				}
			}
		})
	}
}

// TestSQLDepthBound: ordinary statements, however long, stay under the
// bound; the chain counter resets where the parser's tree does not grow.
func TestSQLDepthBound(t *testing.T) {
	cases := []struct {
		name string
		sql  string
		deep bool
	}{
		{"long AND chain is flat", "SELECT 1 WHERE " + strings.Repeat("a = 1 AND ", 5000) + "true", false},
		{"long OR chain is flat", "SELECT 1 WHERE " + strings.Repeat("a = 1 OR ", 5000) + "true", false},
		{"long CASE is flat", "UPDATE t SET a = CASE " + strings.Repeat("WHEN id = 1 THEN 'x' || 'y' ", 5000) + "END", false},
		{"long IN list", "DELETE FROM t WHERE id IN (" + strings.Repeat("1+1, ", 20000) + "1)", false},
		{"plus at the bound", "SELECT 1" + strings.Repeat("+1", sqlMaxDepth), false},
		{"plus over the bound", "SELECT 1" + strings.Repeat("+1", sqlMaxDepth+1), true},
		{"parens over the bound", deepSQL("parens", sqlMaxDepth/sqlNestCost+1), true},
		{"subqueries over the bound", deepSQL("subquery", sqlMaxDepth/sqlNestCost+1), true},
		{"a deep chain inside nested parentheses", "SELECT " + strings.Repeat("(", 100) + "1" + strings.Repeat("+1", sqlMaxDepth-300+1) + strings.Repeat(")", 100), true},
		{"chains in separate items do not add up", "SELECT " + strings.Repeat("1"+strings.Repeat("+1", 1000)+", ", 10) + "1", false},
		{"UNION chain survives WHERE ... AND", "SELECT 1" + strings.Repeat(" UNION SELECT 1 WHERE a AND b", sqlMaxDepth+1), true},
		{"UNION chain survives commas", "SELECT 1, 1" + strings.Repeat(" UNION SELECT 1, 1", sqlMaxDepth+1), true},
		{"UNION chain under the bound with commas", "SELECT 1, 1" + strings.Repeat(" UNION SELECT 1, 1", sqlMaxDepth-1), false},
		{"VALUES UNION chain survives commas", "VALUES (1),(2)" + strings.Repeat(" UNION VALUES (1),(2)", sqlMaxDepth+1), true},
		{"JOIN chain survives ON", "SELECT * FROM t0" + strings.Repeat(" JOIN t ON a = b", sqlMaxDepth+1), true},
		{"BEGIN ATOMIC body is one statement", "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END", false},
		{"statements in BEGIN ATOMIC are siblings", "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC " + strings.Repeat("SELECT 1"+strings.Repeat("+1", 1000)+"; ", 3) + "END", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			segs := splitStatements(tc.sql)
			if len(segs) != 1 {
				t.Fatalf("%d statements, want 1", len(segs))
			}
			if got := segs[0].depth > sqlMaxDepth; got != tc.deep {
				t.Errorf("depth %d (bound %d): deep %v, want %v", segs[0].depth, sqlMaxDepth, got, tc.deep)
			}
			if !tc.deep {
				if _, err := sqlParse(tc.sql); err != nil {
					t.Errorf("does not parse: %v", err)
				}
			}
		})
	}
}

// TestCheckSQLHugeValues: a 100,000-row INSERT ... VALUES is wide, not
// deep: it is parsed and checked, and the statements after it too.
func TestCheckSQLHugeValues(t *testing.T) {
	var b strings.Builder
	b.WriteString("INSERT INTO t (a, b) VALUES\n")
	for i := range 100000 {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "(%d, 'row %d' || 'x')", i, i)
	}
	b.WriteString(";\nALTER TABLE t DROP COLUMN a;\n")
	src := b.String()
	fs := CheckSQL("m.sql", []byte(src))
	want := strings.Count(src, "\n") // the DROP COLUMN's line
	var ok bool
	for _, f := range fs {
		if f.Rule == RuleCannotTell || f.Rule == RuleParseError {
			t.Errorf("%s", sqlDump([]Finding{f}))
		}
		if f.Rule == RuleBreakingChange && f.Line == want {
			ok = true
		}
	}
	if !ok {
		t.Errorf("no breaking-change on line %d:\n%s", want, sqlDump(fs))
	}
}

// TestCheckSQLWorkLinear bounds the bytes handed to PostgreSQL's parser
// and scanner (sqlWork) to 3 times the file's size: after a syntax error
// each statement is parsed alone, and an ALTER TABLE's subcommand lines
// come from scanning that statement only.
func TestCheckSQLWorkLinear(t *testing.T) {
	var bad, alters strings.Builder
	for i := range 10000 {
		if i == 5000 {
			bad.WriteString("SELEC 1;\n")
		}
		fmt.Fprintf(&bad, "ALTER TABLE t%d ADD COLUMN c int;\n", i)
		fmt.Fprintf(&alters, "ALTER TABLE t%d\n  DROP COLUMN a,\n  DROP COLUMN b;\n", i)
	}
	cases := []struct {
		name string
		src  string
		want func(fs []Finding) string // "" when the findings are right
	}{
		{"10,000 statements and a syntax error", bad.String(), func(fs []Finding) string {
			var perr, other int
			for _, f := range fs {
				switch {
				case f.Rule == RuleParseError && f.Line == 5001:
					perr++
				case f.Rule == RuleLockNoTimeout:
					other++
				}
			}
			if perr != 1 || other != 10000 {
				return fmt.Sprintf("%d parse-errors on line 5001 (want 1), %d lock-no-timeout (want 10000)", perr, other)
			}
			return ""
		}},
		{"10,000 two-subcommand ALTERs", alters.String(), func(fs []Finding) string {
			lines := map[int]int{}
			for _, f := range fs {
				if f.Rule == RuleBreakingChange {
					lines[f.Line]++
				}
			}
			for _, l := range []int{2, 3, 29999, 30000} {
				if lines[l] != 1 {
					return fmt.Sprintf("breaking-change on line %d: %d findings, want 1", l, lines[l])
				}
			}
			return ""
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := sqlWork.Load()
			fs := CheckSQL("m.sql", []byte(tc.src))
			work := sqlWork.Load() - before
			if work > 3*int64(len(tc.src)) {
				t.Errorf("%d bytes parsed or scanned for a %d-byte file (%.1f times), want at most 3 times", work, len(tc.src), float64(work)/float64(len(tc.src)))
			}
			if msg := tc.want(fs); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// TestCheckSQLLinesAfterError: statements parsed alone (after a syntax
// error, or beside a statement too deep) keep their file lines, ALTER
// TABLE subcommands included.
func TestCheckSQLLinesAfterError(t *testing.T) {
	for _, first := range []string{"SELEC 1;\n", deepSQL("plus", sqlMaxDepth+1) + ";\n"} {
		src := first + "-- c\nALTER TABLE s.t\n  DROP COLUMN a,\n  -- c\n  DROP COLUMN b;\nDROP TABLE u;\n"
		var got []int
		for _, f := range CheckSQL("m.sql", []byte(src)) {
			if f.Rule == RuleBreakingChange {
				got = append(got, f.Line)
			}
		}
		if want := []int{4, 6, 7}; !slices.Equal(got, want) {
			t.Errorf("after %.20q: breaking-change on lines %v, want %v", first, got, want)
		}
	}
}

package preflight

import (
	"cmp"
	"os"
	"slices"
	"strings"
	"testing"
)

// FuzzCheckSQL: any input gives findings (never a panic, never a crash in
// the C parser), sorted, each on a line of the file, with its name,
// message and fix; a file that does not parse gives exactly one
// parse-error (its other statements are still checked), one that parses
// gives none.
func FuzzCheckSQL(f *testing.F) {
	for _, p := range []string{
		"../../fixtures/billing/packages/billing-3.0/as-shipped/migrations/001_invoice_totals.sql",
		"../../fixtures/billing/packages/billing-3.0/rehearsed/migrations/001_invoice_totals.sql",
	} {
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src))
	}
	for _, shape := range []string{"plus", "concat", "default", "parens", "nested-plus", "subquery", "case", "cast", "union", "join", "not"} {
		f.Add(deepSQLFile(shape, 20))
	}
	for _, s := range []string{
		"SELEC 1;\nALTER TABLE t DROP COLUMN a;\n",
		"ALTER TABLE t ADD COLUMN a int,\n  ALTER COLUMN b SET NOT NULL;\nSELECT 'abc;\n",
		"CREATE INDEX i ON t (a\n;\n",
		"/* unterminated comment\nDROP TABLE t;\n",
		"-- üü\nFRM t;\nBEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE t ALTER COLUMN a TYPE bigint;\nCOMMIT;\n",
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\nDROP TABLE t;\n",
		"DO $$ BEGIN ALTER TABLE t ADD COLUMN a int; END $$;\nCALL p();\n",
		"SELECT (((1);\nSELECT 1));\nSELECT CASE END END;\n",
		"ALTER TABLE t DETACH PARTITION p;;;\n\n",
		"SELECT $1$;\nSELECT E'\\'';\nSELECT U&'\\0000';\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		got := CheckSQL("m.sql", []byte(src))
		lines := 1 + strings.Count(src, "\n")
		perrs := 0
		for _, g := range got {
			if g.Rule == RuleParseError {
				perrs++
			}
			if g.Line < 1 || g.Line > lines {
				t.Errorf("finding %+v: line outside the file (1 to %d)", g, lines)
			}
			if g.File != "m.sql" || g.Message == "" || g.Fix == "" {
				t.Errorf("finding lacks its file, message or fix: %+v", g)
			}
		}
		if !slices.IsSortedFunc(got, func(a, b Finding) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Message, b.Message))
		}) {
			t.Errorf("findings out of order:\n%s", sqlDump(got))
		}
		if perrs > 1 {
			t.Errorf("%d parse-errors, want one at most:\n%s", perrs, sqlDump(got))
		}
		// The oracle: PostgreSQL's parser on the whole file, where that is
		// safe (no statement too deep to hand it).
		if slices.ContainsFunc(splitStatements(src), func(s sqlSegment) bool { return s.depth > sqlMaxDepth }) {
			return
		}
		_, err := sqlParse(src)
		switch {
		case err == nil && perrs != 0:
			t.Errorf("the file parses, but a parse-error was reported:\n%s", sqlDump(got))
		case err != nil && !sqlTooDeep(err) && perrs != 1:
			t.Errorf("the file does not parse (%v), but no parse-error was reported:\n%s", err, sqlDump(got))
		}
	})
}

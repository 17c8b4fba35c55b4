package preflight

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sqlRuleCase is one table-test row of a SQL rule: the lines on which the
// rule must report (nil: it must not).
type sqlRuleCase struct {
	name string
	sql  string
	want []int
	opts []SQLOption
}

// runSQLRuleCases checks each case's findings of one rule, by line.
func runSQLRuleCases(t *testing.T, rule string, cases []sqlRuleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := CheckSQLWith("m.sql", []byte(tc.sql), tc.opts...)
			var got []int
			for _, f := range fs {
				if f.Rule == rule {
					got = append(got, f.Line)
					if f.File != "m.sql" || f.Message == "" || f.Fix == "" {
						t.Errorf("finding lacks file, message or fix: %+v", f)
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s on lines %v, want %v; all findings:\n%s", rule, got, tc.want, sqlDump(fs))
			}
		})
	}
}

func sqlDump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.File + ":" + strconv.Itoa(f.Line) + " " + string(f.Severity) + " " + f.Rule + ": " + f.Message + "\n")
	}
	return b.String()
}

func TestCheckSQLParseError(t *testing.T) {
	cases := []struct {
		name    string
		sql     string
		line    int
		others  []string // rules still reported from the statements that parse
		message string
	}{
		{"syntax error mid-file", "ALTER TABLE t DROP COLUMN a;\n\nSELEC 1;\nDROP TABLE u;\n", 3, []string{RuleBreakingChange}, `"SELEC"`},
		{"error on a later line of a statement", "CREATE INDEX i\n  ON t (a\n;\n", 3, nil, "syntax error"},
		{"unterminated string", "DROP TABLE u;\nSELECT 'abc;\n", 2, []string{RuleBreakingChange}, "unterminated"},
		{"multibyte text before the error", "-- üüüüüüüüüüüü\nFRM t;\n", 2, nil, "FRM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := CheckSQL("m.sql", []byte(tc.sql))
			var perr []Finding
			rules := map[string]bool{}
			for _, f := range fs {
				if f.Rule == RuleParseError {
					perr = append(perr, f)
				}
				rules[f.Rule] = true
			}
			if len(perr) != 1 || perr[0].Line != tc.line || perr[0].Severity != Error || !strings.Contains(perr[0].Message, tc.message) {
				t.Fatalf("parse-error findings %+v, want one error on line %d mentioning %s", perr, tc.line, tc.message)
			}
			for _, r := range tc.others {
				if !rules[r] {
					t.Errorf("no %s from the statements that parse:\n%s", r, sqlDump(fs))
				}
			}
		})
	}
}

func TestCheckSQLLines(t *testing.T) {
	src := "-- header\n/* a /* nested */ comment */\nSET lock_timeout = '1s';\n\n  ALTER TABLE t\n    ADD COLUMN a int DEFAULT random(),\n    ALTER COLUMN b\n      SET NOT NULL,\n    ADD CONSTRAINT c CHECK (a > (1)), DROP COLUMN d;\n"
	fs := CheckSQL("m.sql", []byte(src))
	want := map[string]int{RuleTableRewrite: 6, RuleSetNotNull: 7, RuleConstraintNotValid: 9, RuleBreakingChange: 9, RuleNoMigrationLock: 5}
	for _, f := range fs {
		if w, ok := want[f.Rule]; !ok || f.Line != w {
			t.Errorf("%s on line %d, want %d", f.Rule, f.Line, w)
		}
		delete(want, f.Rule)
	}
	if len(want) != 0 {
		t.Errorf("missing %v:\n%s", want, sqlDump(fs))
	}
}

// TestCheckSQLBilling: the feature file expects a lock finding for the
// as-shipped billing migration and no error for the rehearsed one.
func TestCheckSQLBilling(t *testing.T) {
	const dir = "../../fixtures/billing/packages/billing-3.0/"
	read := func(p string) []Finding {
		src, err := os.ReadFile(dir + p)
		if err != nil {
			t.Fatal(err)
		}
		return CheckSQL(p, src)
	}
	shipped := read("as-shipped/migrations/001_invoice_totals.sql")
	want := []string{RuleLockNoTimeout + ":7:error", RuleNoMigrationLock + ":8:warning", RuleSetNotNull + ":10:warning"}
	var got []string
	for _, f := range shipped {
		got = append(got, f.Rule+":"+strconv.Itoa(f.Line)+":"+string(f.Severity))
	}
	if !slices.Equal(got, want) {
		t.Errorf("as-shipped: %v, want %v:\n%s", got, want, sqlDump(shipped))
	}
	if !strings.Contains(shipped[0].Message, "ACCESS EXCLUSIVE") || !strings.Contains(shipped[0].Message, "invoices") {
		t.Errorf("the lock finding names no lock level or table: %s", shipped[0].Message)
	}
	rehearsed := read("rehearsed/migrations/001_invoice_totals.sql")
	if HasErrors(rehearsed) {
		t.Errorf("rehearsed: errors:\n%s", sqlDump(rehearsed))
	}
	for _, f := range rehearsed {
		if f.Severity != Info {
			t.Errorf("rehearsed: %s", sqlDump([]Finding{f}))
		}
	}
}

func TestCheckSQLOptions(t *testing.T) {
	src := []byte("ALTER TABLE t ADD COLUMN a int DEFAULT 10;\n")
	has := func(fs []Finding, rule string) bool {
		return slices.ContainsFunc(fs, func(f Finding) bool { return f.Rule == rule })
	}
	if has(CheckSQL("m.sql", src), RuleTableRewrite) {
		t.Error("a constant default rewrites on PostgreSQL 15")
	}
	if !has(CheckSQLWith("m.sql", src, WithPostgres(10)), RuleTableRewrite) {
		t.Error("a constant default does not rewrite on PostgreSQL 10")
	}
	nv := []byte("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;\n")
	if has(CheckSQL("m.sql", nv), RuleConstraintNotValid) {
		t.Error("autocommit: NOT VALID then VALIDATE reported")
	}
	if !has(CheckSQLWith("m.sql", nv, WithTransaction()), RuleConstraintNotValid) {
		t.Error("one transaction: VALIDATE with its NOT VALID add not reported")
	}
}

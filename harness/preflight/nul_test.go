package preflight

import (
	"strings"
	"testing"
)

// TestShellLinesPastParserLimit: mvdan's positions keep lines in 18 bits
// (Line() is 0 past 262,143); findings past that are still on their line.
func TestShellLinesPastParserLimit(t *testing.T) {
	src := strings.Repeat(":\n", 300000) + "\n sudo id\n"
	fs := CheckScript("big.sh", 1, []byte(src), ShellEnv{})
	if !has(fs, RuleSudo, Error, "big.sh", 300002) {
		t.Errorf("no sudo on line 300002 in%s", show(fs))
	}
	fs = CheckScript("big.sh", 1, []byte(strings.Repeat(":\n", 300000)+"if true\n"), ShellEnv{})
	if len(fs) != 1 || fs[0].Rule != RuleParseError || fs[0].Line < 300001 {
		t.Errorf("want one parse-error on line 300001 or after, got%s", show(fs))
	}
}

// TestNULAnywhere: CheckSQL and CheckScript, called directly, read past a
// NUL wherever it is (PostgreSQL's parser stops at one; psql, bash and
// dash do not), and say where it was.
func TestNULAnywhere(t *testing.T) {
	pad := strings.Repeat("-- padding padding padding padding\n", 300) // past 8,000 bytes
	sql := pad + "SELECT '\x00';\nALTER TABLE t DROP COLUMN a;\n"
	fs := CheckSQL("m.sql", []byte(sql))
	for _, w := range []struct {
		rule string
		sev  Severity
		line int
	}{{RuleCannotTell, Info, 301}, {RuleBreakingChange, Warning, 302}} {
		if !has(fs, w.rule, w.sev, "m.sql", w.line) {
			t.Errorf("sql: no %s %s on line %d in%s", w.sev, w.rule, w.line, show(fs))
		}
	}
	for _, f := range fs {
		if f.Rule == RuleParseError {
			t.Errorf("sql: %+v", f)
		}
	}
	sh := strings.ReplaceAll(pad, "--", "#") + "echo \x00\nsudo true\n"
	fs = CheckScript("s.sh", 10, []byte(sh), ShellEnv{})
	for _, w := range []struct {
		rule string
		sev  Severity
		line int
	}{{RuleCannotTell, Info, 310}, {RuleSudo, Error, 311}} {
		if !has(fs, w.rule, w.sev, "s.sh", w.line) {
			t.Errorf("script: no %s %s on line %d in%s", w.sev, w.rule, w.line, show(fs))
		}
	}
}

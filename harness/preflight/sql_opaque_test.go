package preflight

import "testing"

func TestOpaqueSQLRule(t *testing.T) {
	runSQLRuleCases(t, RuleCannotTell, []sqlRuleCase{
		{name: "DO with DDL", sql: "DO $$ BEGIN ALTER TABLE t ADD COLUMN c int; END $$;", want: []int{1}},
		{name: "DO with EXECUTE", sql: "SELECT 1;\nDO $$ BEGIN EXECUTE 'DROP TABLE ' || 't'; END $$;", want: []int{2}},
		{name: "DO with CREATE INDEX", sql: "DO $$ BEGIN CREATE INDEX i ON t (a); END $$;", want: []int{1}},
		{name: "DO without DDL", sql: "DO $$ BEGIN IF NOT EXISTS (SELECT 1) THEN CREATE ROLE r; END IF; UPDATE t SET a = 1; END $$;"},
		{name: "CALL", sql: "CALL migrate_step('x');", want: []int{1}},
	})
}

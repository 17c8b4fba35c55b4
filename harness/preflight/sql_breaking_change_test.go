package preflight

import "testing"

func TestBreakingChangeRule(t *testing.T) {
	runSQLRuleCases(t, RuleBreakingChange, []sqlRuleCase{
		{name: "rename table", sql: "ALTER TABLE t RENAME TO u;", want: []int{1}},
		{name: "rename column", sql: "ALTER TABLE t RENAME COLUMN a TO b;", want: []int{1}},
		{name: "rename view", sql: "ALTER VIEW v RENAME TO w;", want: []int{1}},
		{name: "set schema", sql: "ALTER TABLE t SET SCHEMA archive;", want: []int{1}},
		{name: "drop column", sql: "ALTER TABLE t DROP COLUMN a CASCADE;", want: []int{1}},
		{name: "drop table", sql: "DROP TABLE t;\nDROP TABLE IF EXISTS u, v;", want: []int{1, 2, 2}},
		{name: "drop view", sql: "DROP VIEW v;", want: []int{1}},
		{name: "type change", sql: "ALTER TABLE t ALTER COLUMN a TYPE bigint;", want: []int{1}},
		{name: "drop not null", sql: "ALTER TABLE t ALTER COLUMN a DROP NOT NULL;", want: []int{1}},
		{name: "drop schema and database", sql: "DROP SCHEMA s CASCADE;\nDROP DATABASE d;", want: []int{1, 2}},
		{name: "new table", sql: "CREATE TABLE t (a int);\nALTER TABLE t RENAME COLUMN a TO b;\nALTER TABLE t DROP COLUMN b;\nALTER TABLE t RENAME TO u;\nDROP TABLE u;"},
		{name: "drop index, add column", sql: "DROP INDEX i;\nALTER TABLE t ADD COLUMN c int;"},
	})
}

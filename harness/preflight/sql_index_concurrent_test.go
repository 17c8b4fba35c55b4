package preflight

import "testing"

func TestIndexConcurrentRule(t *testing.T) {
	runSQLRuleCases(t, RuleIndexNotConcurrent, []sqlRuleCase{
		{name: "create index", sql: "CREATE INDEX i ON t (a);", want: []int{1}},
		{name: "create unique index", sql: "-- c\nCREATE UNIQUE INDEX i ON t (a);", want: []int{2}},
		{name: "concurrently", sql: "CREATE INDEX CONCURRENTLY i ON t (a);"},
		{name: "new table", sql: "BEGIN;\nCREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\nCOMMIT;"},
		{name: "drop index", sql: "DROP INDEX IF EXISTS i;", want: []int{1}},
		{name: "drop index concurrently", sql: "DROP INDEX CONCURRENTLY i;"},
		{name: "drop an index of a new table", sql: "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\nDROP INDEX i;"},
		{name: "drop two indexes", sql: "DROP INDEX i, j;", want: []int{1, 1}},
		{name: "reindex", sql: "REINDEX TABLE t;\nREINDEX INDEX i;\nREINDEX SCHEMA s;\nREINDEX DATABASE d;", want: []int{1, 2, 3, 4}},
		{name: "reindex concurrently", sql: "REINDEX TABLE CONCURRENTLY t;\nREINDEX (CONCURRENTLY) INDEX i;"},
		{name: "reindex concurrently false", sql: "REINDEX (CONCURRENTLY false) INDEX i;", want: []int{1}},
		{name: "reindex system", sql: "REINDEX SYSTEM d;"},
		{name: "drop table is not drop index", sql: "DROP TABLE t;\nDROP TRIGGER g ON t;"},
	})
}

package preflight

import "testing"

func TestMigrationLockRule(t *testing.T) {
	runSQLRuleCases(t, RuleNoMigrationLock, []sqlRuleCase{
		{name: "no lock", sql: "SET lock_timeout = '1s';\nALTER TABLE t ADD COLUMN c int;\nALTER TABLE t ADD COLUMN d int;", want: []int{2}},
		{name: "session lock", sql: "SELECT pg_advisory_lock(42);\nALTER TABLE t ADD COLUMN c int;"},
		{name: "try lock", sql: "SELECT pg_try_advisory_lock(42);\nALTER TABLE t ADD COLUMN c int;"},
		{name: "xact lock in the transaction", sql: "BEGIN;\nSELECT pg_advisory_xact_lock(42);\nALTER TABLE t ADD COLUMN c int;\nCOMMIT;"},
		{name: "xact lock outside a transaction", sql: "SELECT pg_advisory_xact_lock(42);\nALTER TABLE t ADD COLUMN c int;", want: []int{2}},
		{name: "xact lock in the tool's transaction", sql: "SELECT pg_advisory_xact_lock(42);\nALTER TABLE t ADD COLUMN c int;", opts: []SQLOption{WithTransaction()}},
		{name: "lock after the change", sql: "ALTER TABLE t ADD COLUMN c int;\nSELECT pg_advisory_lock(42);", want: []int{1}},
		{name: "lock in a DO block", sql: "DO $$ BEGIN PERFORM pg_advisory_lock(42); END $$;\nALTER TABLE t ADD COLUMN c int;"},
		{name: "only new tables", sql: "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN c int;\nCREATE INDEX i ON t (a);"},
		{name: "no DDL", sql: "UPDATE t SET a = 1;\nSELECT 1;"},
		{name: "shared lock does not serialise", sql: "SELECT pg_advisory_lock_shared(42);\nCREATE INDEX CONCURRENTLY i ON t (a);", want: []int{2}},
	})
}

package preflight

import "testing"

func TestLockTimeoutRule(t *testing.T) {
	runSQLRuleCases(t, RuleLockNoTimeout, []sqlRuleCase{
		{name: "add column, no timeout", sql: "ALTER TABLE t ADD COLUMN c boolean;", want: []int{1}},
		{name: "timeout set before", sql: "SET lock_timeout = '2s';\nALTER TABLE t ADD COLUMN c boolean;"},
		{name: "timeout in milliseconds", sql: "SET lock_timeout TO 500;\nDROP TABLE t;"},
		{name: "timeout after", sql: "ALTER TABLE t ADD COLUMN c boolean;\nSET lock_timeout = '2s';", want: []int{1}},
		{name: "zero timeout", sql: "SET lock_timeout = 0;\nALTER TABLE t ADD COLUMN c boolean;", want: []int{2}},
		{name: "zero with unit", sql: "SET lock_timeout = '0s';\nTRUNCATE t;", want: []int{2}},
		{name: "reset", sql: "SET lock_timeout = '1s';\nRESET lock_timeout;\nALTER TABLE t DROP COLUMN c;", want: []int{3}},
		{name: "other namespace", sql: "SET foo.lock_timeout = '1s';\nALTER TABLE t ADD COLUMN c int;", want: []int{2}},
		{name: "statement_timeout is not lock_timeout", sql: "SET statement_timeout = '5s';\nALTER TABLE t ADD COLUMN c int;", want: []int{2}},
		{name: "set local in the transaction", sql: "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE t ADD COLUMN c int;\nCOMMIT;"},
		{name: "set local ends with the transaction", sql: "BEGIN;\nSET LOCAL lock_timeout = '1s';\nCOMMIT;\nALTER TABLE t ADD COLUMN c int;", want: []int{4}},
		{name: "set local outside a transaction does nothing", sql: "SET LOCAL lock_timeout = '1s';\nALTER TABLE t ADD COLUMN c int;", want: []int{2}},
		{name: "session set rolled back", sql: "BEGIN;\nSET lock_timeout = '1s';\nROLLBACK;\nALTER TABLE t ADD COLUMN c int;", want: []int{4}},
		{name: "set_config", sql: "SELECT set_config('lock_timeout', '1s', false);\nALTER TABLE t ADD COLUMN c int;"},
		{name: "lock held already in the transaction", sql: "BEGIN;\nLOCK TABLE t IN ACCESS EXCLUSIVE MODE;\nALTER TABLE t ADD COLUMN c int;\nALTER TABLE t DROP COLUMN d;\nCOMMIT;", want: []int{2}},
		{name: "a weaker lock held does not cover", sql: "BEGIN;\nLOCK TABLE t IN SHARE MODE;\nALTER TABLE t ADD COLUMN c int;\nCOMMIT;", want: []int{3}},
		{name: "autocommit: each statement waits again", sql: "ALTER TABLE t ADD COLUMN c int;\nALTER TABLE t ADD COLUMN d int;", want: []int{1, 2}},
		{name: "table made by this file", sql: "CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN c int;"},
		{name: "share update exclusive is no outage", sql: "ALTER TABLE t VALIDATE CONSTRAINT c;\nCREATE INDEX CONCURRENTLY i ON t (a);\nALTER TABLE t SET (fillfactor = 70);"},
		{name: "share lock is another rule's", sql: "CREATE INDEX i ON t (a);"},
		{name: "foreign key: share row exclusive", sql: "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) NOT VALID;"},
		{name: "drop index", sql: "DROP INDEX i;", want: []int{1}},
		{name: "vacuum full and cluster", sql: "VACUUM FULL t;\nVACUUM t;\nCLUSTER t USING i;", want: []int{1, 3}},
		{name: "lock table default mode", sql: "LOCK t;\nLOCK t IN ROW EXCLUSIVE MODE;", want: []int{1}},
		{name: "rename", sql: "ALTER TABLE t RENAME TO u;", want: []int{1}},
		{name: "tool transaction and set local", sql: "SET LOCAL lock_timeout = '1s';\nALTER TABLE t ADD COLUMN c int;", opts: []SQLOption{WithTransaction()}},
		{name: "detach partition", sql: "ALTER TABLE t DETACH PARTITION p;\nALTER TABLE t DETACH PARTITION p CONCURRENTLY;", want: []int{1, 1}},
	})
}

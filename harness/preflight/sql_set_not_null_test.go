package preflight

import "testing"

func TestSetNotNullRule(t *testing.T) {
	pg11 := []SQLOption{WithPostgres(11)}
	const proof = "ALTER TABLE t ADD CONSTRAINT t_c_nn CHECK (c IS NOT NULL) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT t_c_nn;\n"
	runSQLRuleCases(t, RuleSetNotNull, []sqlRuleCase{
		{name: "set not null", sql: "ALTER TABLE t ALTER COLUMN c SET NOT NULL;", want: []int{1}},
		{name: "proven by a validated check", sql: proof + "ALTER TABLE t ALTER COLUMN c SET NOT NULL;"},
		{name: "proven, but PostgreSQL 11 scans anyway", sql: proof + "ALTER TABLE t ALTER COLUMN c SET NOT NULL;", want: []int{3}, opts: pg11},
		{name: "check not validated", sql: "ALTER TABLE t ADD CONSTRAINT t_c_nn CHECK (c IS NOT NULL) NOT VALID;\nALTER TABLE t ALTER COLUMN c SET NOT NULL;", want: []int{2}},
		{name: "check on another column", sql: "ALTER TABLE t ADD CONSTRAINT t_d_nn CHECK (d IS NOT NULL) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT t_d_nn;\nALTER TABLE t ALTER COLUMN c SET NOT NULL;", want: []int{3}},
		{name: "check added valid", sql: "ALTER TABLE t ADD CONSTRAINT x CHECK (c IS NOT NULL);\nALTER TABLE t ALTER COLUMN c SET NOT NULL;"},
		{name: "validated elsewhere, named for the column", sql: "ALTER TABLE t VALIDATE CONSTRAINT t_total_cents_not_null;\nALTER TABLE t ALTER COLUMN total_cents SET NOT NULL;"},
		{name: "validated elsewhere, named for another column", sql: "ALTER TABLE t VALIDATE CONSTRAINT t_other_not_null;\nALTER TABLE t ALTER COLUMN total_cents SET NOT NULL;", want: []int{2}},
		{name: "add column not null without default", sql: "ALTER TABLE t ADD COLUMN c boolean NOT NULL;", want: []int{1}},
		{name: "add column not null with default", sql: "ALTER TABLE t ADD COLUMN c boolean NOT NULL DEFAULT true;"},
		{name: "add column not null generated", sql: "ALTER TABLE t ADD COLUMN c numeric GENERATED ALWAYS AS (a + b) STORED NOT NULL;"},
		{name: "add column nullable", sql: "ALTER TABLE t ADD COLUMN c boolean;"},
		{name: "new table", sql: "CREATE TABLE t (c int);\nALTER TABLE t ALTER COLUMN c SET NOT NULL;\nALTER TABLE t ADD COLUMN d int NOT NULL;"},
	})
}

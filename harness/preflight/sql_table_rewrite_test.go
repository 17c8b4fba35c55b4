package preflight

import "testing"

func TestTableRewriteRule(t *testing.T) {
	pg10 := []SQLOption{WithPostgres(10)}
	runSQLRuleCases(t, RuleTableRewrite, []sqlRuleCase{
		{name: "constant default", sql: "ALTER TABLE t ADD COLUMN c int DEFAULT 10;"},
		{name: "constant default before 11", sql: "ALTER TABLE t ADD COLUMN c int DEFAULT 10;", want: []int{1}, opts: pg10},
		{name: "null default before 11", sql: "ALTER TABLE t ADD COLUMN c int DEFAULT NULL;", opts: pg10},
		{name: "now() is stable", sql: "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now() - interval '1 day';"},
		{name: "current_timestamp", sql: "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT current_timestamp;"},
		{name: "casts and arrays", sql: "ALTER TABLE t ADD COLUMN c jsonb DEFAULT '{}'::jsonb, ADD COLUMN d text[] DEFAULT ARRAY['a']::text[];"},
		{name: "random()", sql: "ALTER TABLE t ADD COLUMN c float8 DEFAULT random();", want: []int{1}},
		{name: "clock_timestamp()", sql: "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT clock_timestamp();", want: []int{1}},
		{name: "gen_random_uuid()", sql: "ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid();", want: []int{1}},
		{name: "nextval", sql: "ALTER TABLE t ADD COLUMN c bigint DEFAULT nextval('s');", want: []int{1}},
		{name: "unknown function", sql: "ALTER TABLE t ADD COLUMN c jsonb DEFAULT my_default();", want: []int{1}},
		{name: "now with arguments is not now()", sql: "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now(1);", want: []int{1}},
		{name: "serial", sql: "ALTER TABLE t ADD COLUMN c bigserial;", want: []int{1}},
		{name: "identity", sql: "ALTER TABLE t ADD COLUMN c bigint GENERATED ALWAYS AS IDENTITY;", want: []int{1}},
		{name: "stored generated", sql: "ALTER TABLE t ADD COLUMN c numeric GENERATED ALWAYS AS (a + b) STORED;", want: []int{1}},
		{name: "type change, old type unknown", sql: "ALTER TABLE t ALTER COLUMN c TYPE bigint;", want: []int{1}},
		{name: "type change to text, old type unknown", sql: "ALTER TABLE t ALTER COLUMN c TYPE text;", want: []int{1}},
		{name: "varchar to text", sql: "ALTER TABLE t ADD COLUMN c varchar(20);\nALTER TABLE t ALTER COLUMN c TYPE text;"},
		{name: "larger varchar", sql: "ALTER TABLE t ADD COLUMN c varchar(20);\nALTER TABLE t ALTER COLUMN c TYPE varchar(40);"},
		{name: "smaller varchar", sql: "ALTER TABLE t ADD COLUMN c varchar(20);\nALTER TABLE t ALTER COLUMN c TYPE varchar(10);", want: []int{2}},
		{name: "larger numeric, same scale", sql: "ALTER TABLE t ADD COLUMN c numeric(10,2);\nALTER TABLE t ALTER COLUMN c TYPE numeric(12,2);"},
		{name: "numeric scale change", sql: "ALTER TABLE t ADD COLUMN c numeric(10,2);\nALTER TABLE t ALTER COLUMN c TYPE numeric(12,3);", want: []int{2}},
		{name: "int to bigint", sql: "ALTER TABLE t ADD COLUMN c int;\nALTER TABLE t ALTER COLUMN c TYPE bigint;", want: []int{2}},
		{name: "varchar to text with a transforming USING", sql: "ALTER TABLE t ADD COLUMN c varchar(20);\nALTER TABLE t ALTER COLUMN c TYPE text USING lower(c);", want: []int{2}},
		{name: "varchar to text with the plain USING", sql: "ALTER TABLE t ADD COLUMN c varchar(20);\nALTER TABLE t ALTER COLUMN c TYPE text USING c::text;"},
		{name: "vacuum full", sql: "VACUUM FULL t;\nVACUUM (FULL) t;\nVACUUM (FULL FALSE) t;\nVACUUM ANALYZE t;", want: []int{1, 2}},
		{name: "cluster", sql: "CLUSTER t USING i;", want: []int{1}},
		{name: "set logged, unlogged, tablespace, access method", sql: "ALTER TABLE t SET LOGGED;\nALTER TABLE t SET UNLOGGED;\nALTER TABLE t SET TABLESPACE s;\nALTER TABLE t SET ACCESS METHOD heap2;", want: []int{1, 2, 3, 4}},
		{name: "new table is exempt", sql: "CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN c float8 DEFAULT random();"},
		{name: "subcommand line", sql: "ALTER TABLE t SET LOGGED,\n  ADD COLUMN c uuid DEFAULT gen_random_uuid();", want: []int{1, 2}},
	})
}

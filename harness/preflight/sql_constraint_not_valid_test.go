package preflight

import "testing"

func TestConstraintNotValidRule(t *testing.T) {
	runSQLRuleCases(t, RuleConstraintNotValid, []sqlRuleCase{
		{name: "foreign key", sql: "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id);", want: []int{1}},
		{name: "foreign key not valid", sql: "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT f;"},
		{name: "check", sql: "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);", want: []int{1}},
		{name: "check not valid", sql: "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;"},
		{name: "validate in the same transaction", sql: "BEGIN;\nALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT f;\nCOMMIT;", want: []int{3}},
		{name: "validate in the next transaction", sql: "BEGIN;\nALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) NOT VALID;\nCOMMIT;\nBEGIN;\nALTER TABLE t VALIDATE CONSTRAINT f;\nCOMMIT;"},
		{name: "validate in the tool's transaction", sql: "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;", want: []int{2}, opts: []SQLOption{WithTransaction()}},
		{name: "unique", sql: "ALTER TABLE t ADD CONSTRAINT k UNIQUE (a);", want: []int{1}},
		{name: "primary key", sql: "ALTER TABLE t ADD PRIMARY KEY (id);", want: []int{1}},
		{name: "using index", sql: "ALTER TABLE t ADD CONSTRAINT k UNIQUE USING INDEX i;\nALTER TABLE t ADD CONSTRAINT p PRIMARY KEY USING INDEX j;"},
		{name: "column references", sql: "ALTER TABLE t ADD COLUMN u_id int REFERENCES u (id);", want: []int{1}},
		{name: "column unique", sql: "ALTER TABLE t ADD COLUMN c text UNIQUE;", want: []int{1}},
		{name: "column serial primary key", sql: "ALTER TABLE t ADD COLUMN c serial PRIMARY KEY;", want: []int{1}},
		{name: "new table", sql: "CREATE TABLE t (a int);\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);\nALTER TABLE t ADD CONSTRAINT k UNIQUE (a);"},
		{name: "create table with references", sql: "CREATE TABLE t (a int REFERENCES u (id), CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id));"},
		{name: "drop constraint", sql: "ALTER TABLE t DROP CONSTRAINT c;"},
	})
}

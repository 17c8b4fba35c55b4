package preflight

import (
	"fmt"
	"slices"
	"testing"
)

// TestStatementLocks pins the lock model to PostgreSQL's lock table
// ("Explicit Locking", 13.3.1, and ALTER TABLE's per-subcommand levels).
func TestStatementLocks(t *testing.T) {
	cases := []struct {
		sql  string
		want []string // "target=MODE"
	}{
		{"ALTER TABLE t ADD COLUMN c int", []string{"t=ACCESS EXCLUSIVE"}},
		{"ALTER TABLE t ALTER COLUMN c TYPE bigint", []string{"t=ACCESS EXCLUSIVE"}},
		{"ALTER TABLE t ALTER COLUMN c SET STATISTICS 500", []string{"t=SHARE UPDATE EXCLUSIVE"}},
		{"ALTER TABLE t VALIDATE CONSTRAINT k", []string{"t=SHARE UPDATE EXCLUSIVE"}},
		{"ALTER TABLE t SET (fillfactor = 70, autovacuum_enabled = false)", []string{"t=SHARE UPDATE EXCLUSIVE"}},
		{"ALTER TABLE t SET (user_catalog_table = true)", []string{"t=ACCESS EXCLUSIVE"}},
		{"ALTER TABLE t CLUSTER ON i", []string{"t=SHARE UPDATE EXCLUSIVE"}},
		{"ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) NOT VALID", []string{"t=SHARE ROW EXCLUSIVE", "u=SHARE ROW EXCLUSIVE"}},
		{"ALTER TABLE t ADD CONSTRAINT k CHECK (a > 0) NOT VALID", []string{"t=ACCESS EXCLUSIVE"}},
		{"ALTER TABLE t DISABLE TRIGGER g", []string{"t=SHARE ROW EXCLUSIVE"}},
		{"ALTER TABLE t VALIDATE CONSTRAINT k, ADD COLUMN c int", []string{"t=ACCESS EXCLUSIVE"}},
		{"ALTER TABLE t ATTACH PARTITION p FOR VALUES IN (1)", []string{"t=SHARE UPDATE EXCLUSIVE", "p=ACCESS EXCLUSIVE"}},
		{"ALTER TABLE t DETACH PARTITION p CONCURRENTLY", []string{"t=SHARE UPDATE EXCLUSIVE"}},
		{"ALTER TABLE t DETACH PARTITION p FINALIZE", []string{"t=SHARE UPDATE EXCLUSIVE"}},
		{"ALTER TABLE t DETACH PARTITION p", []string{"t=ACCESS EXCLUSIVE", "p=ACCESS EXCLUSIVE"}},
		{"CREATE INDEX i ON t (a)", []string{"t=SHARE"}},
		{"CREATE INDEX CONCURRENTLY i ON t (a)", []string{"t=SHARE UPDATE EXCLUSIVE"}},
		{"DROP INDEX s.i", []string{"the table of index s.i=ACCESS EXCLUSIVE"}},
		{"DROP INDEX CONCURRENTLY i", []string{"the table of index i=SHARE UPDATE EXCLUSIVE"}},
		{"REINDEX TABLE t", []string{"the indexes of t=ACCESS EXCLUSIVE"}},
		{"REINDEX TABLE CONCURRENTLY t", nil},
		{"CREATE TRIGGER g AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", []string{"t=SHARE ROW EXCLUSIVE"}},
		{"DROP TRIGGER g ON t", []string{"t=ACCESS EXCLUSIVE"}},
		{"CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING", []string{"t=ACCESS EXCLUSIVE"}},
		{"TRUNCATE t, u", []string{"t=ACCESS EXCLUSIVE", "u=ACCESS EXCLUSIVE"}},
		{"LOCK TABLE t IN SHARE ROW EXCLUSIVE MODE", []string{"t=SHARE ROW EXCLUSIVE"}},
		{"VACUUM t", []string{"t=SHARE UPDATE EXCLUSIVE"}},
		{"VACUUM FULL t", []string{"t=ACCESS EXCLUSIVE"}},
		{"ANALYZE t", []string{"t=SHARE UPDATE EXCLUSIVE"}},
		{"CLUSTER t", []string{"t=ACCESS EXCLUSIVE"}},
		{"REFRESH MATERIALIZED VIEW CONCURRENTLY m", []string{"m=EXCLUSIVE"}},
		{"ALTER INDEX i RENAME TO j", []string{"index i=SHARE UPDATE EXCLUSIVE"}},
		{"ALTER TABLE t RENAME COLUMN a TO b", []string{"t=ACCESS EXCLUSIVE"}},
		{"CREATE TABLE n (a int REFERENCES u (id))", []string{"u=SHARE ROW EXCLUSIVE"}},
		{"CREATE TABLE p1 PARTITION OF t FOR VALUES IN (1)", []string{"t=ACCESS EXCLUSIVE"}},
		{"SELECT * FROM t", nil},
	}
	for _, tc := range cases {
		t.Run(tc.sql, func(t *testing.T) {
			p := parseSQL(tc.sql)
			stmts := p.stmts
			if p.err != nil || len(stmts) != 1 {
				t.Fatalf("parse: %v", p.err)
			}
			c := newSQLCheck("m.sql", tc.sql, sqlOptions{postgres: defaultPostgres})
			var got []string
			for _, l := range c.statementLocks(&sqlStmt{node: stmts[0].Stmt}) {
				got = append(got, fmt.Sprintf("%s=%s", l.target, l.mode))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("locks %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLockConflicts(t *testing.T) {
	// Table 13.2: ACCESS SHARE conflicts only with ACCESS EXCLUSIVE; SHARE
	// UPDATE EXCLUSIVE conflicts with itself but not with ROW EXCLUSIVE.
	if !accessShare.conflictsWith(accessExclusive) || accessShare.conflictsWith(exclusive) {
		t.Error("ACCESS SHARE")
	}
	if !shareUpdateExclusive.conflictsWith(shareUpdateExclusive) || shareUpdateExclusive.conflictsWith(rowExclusive) {
		t.Error("SHARE UPDATE EXCLUSIVE")
	}
	if share.conflictsWith(share) || !share.conflictsWith(rowExclusive) {
		t.Error("SHARE")
	}
	for a := accessShare; a <= accessExclusive; a++ {
		for b := accessShare; b <= accessExclusive; b++ {
			if a.conflictsWith(b) != b.conflictsWith(a) {
				t.Errorf("%s/%s: the table is not symmetric", a, b)
			}
		}
		if !a.coveredBy(accessExclusive) {
			t.Errorf("%s not covered by ACCESS EXCLUSIVE", a)
		}
	}
	if shareRowExclusive.coveredBy(share) || !share.coveredBy(shareRowExclusive) {
		t.Error("coveredBy")
	}
}

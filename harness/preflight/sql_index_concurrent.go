package preflight

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// indexConcurrentRule reports index-not-concurrent: CREATE INDEX, DROP
// INDEX or REINDEX without CONCURRENTLY on a table other sessions use.
// CREATE INDEX holds SHARE on the table for the whole build (minutes on
// a large table: no writes); DROP INDEX and REINDEX take ACCESS EXCLUSIVE
// (REINDEX on the indexes, which every query on the table needs to plan:
// no reads either). The CONCURRENTLY forms take SHARE UPDATE EXCLUSIVE,
// which lets reads and writes go on. A warning: on a small table the
// plain form is over in a moment; a table made by the same file is
// exempt.
type indexConcurrentRule struct{}

const fixConcurrently = "%s CONCURRENTLY, outside a transaction block (it cannot run inside one); if it fails, drop the INVALID index it leaves and retry"

func (indexConcurrentRule) statement(c *sqlCheck, s *sqlStmt) {
	inTxn := ""
	if c.inTxn {
		inTxn = " (and move it out of the transaction: CONCURRENTLY cannot run in one)"
	}
	switch n := s.node.Node.(type) {
	case *pg.Node_IndexStmt:
		ix := n.IndexStmt
		t := relKey(ix.Relation)
		if ix.Concurrent || c.isNew(t) {
			return
		}
		kind := "CREATE INDEX"
		if ix.Unique {
			kind = "CREATE UNIQUE INDEX"
		}
		c.report(RuleIndexNotConcurrent, Warning, s.line, fmt.Sprintf(
			"%s without CONCURRENTLY holds a SHARE lock on %s for the whole build: no writes to %s until the index is built", kind, t, t),
			fmt.Sprintf(fixConcurrently, kind)+inTxn)
	case *pg.Node_DropStmt:
		d := n.DropStmt
		if d.RemoveType != pg.ObjectType_OBJECT_INDEX || d.Concurrent {
			return
		}
		for _, l := range s.locks {
			if c.isNew(l.key) {
				continue
			}
			c.report(RuleIndexNotConcurrent, Warning, s.line, fmt.Sprintf(
				"DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on %s: no reads or writes while it waits and drops", l.target),
				fmt.Sprintf(fixConcurrently, "DROP INDEX")+inTxn)
		}
	case *pg.Node_ReindexStmt:
		r := n.ReindexStmt
		if r.Kind == pg.ReindexObjectType_REINDEX_OBJECT_SYSTEM || sqlBoolOption(r.Params, "concurrently") {
			return // system catalogs cannot be reindexed concurrently
		}
		for _, l := range s.locks {
			if l.key != "" && c.isNew(l.key) {
				continue
			}
			c.report(RuleIndexNotConcurrent, Warning, s.line, fmt.Sprintf(
				"REINDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on %s (and SHARE on its table): queries that would use them wait until it is done", l.target),
				fmt.Sprintf(fixConcurrently, "REINDEX")+" (PostgreSQL 12 or later)"+inTxn)
		}
	}
}

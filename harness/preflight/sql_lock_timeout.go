package preflight

import "fmt"

// lockTimeoutRule reports lock-no-timeout: a statement that must wait for
// an ACCESS EXCLUSIVE lock (every table rewrite takes one) on a table
// other sessions use, with no non-zero lock_timeout set before it. While
// it waits behind any open transaction (a report, a stuck job, a VACUUM
// that will not give way), every later query on the table queues behind
// it: an outage of the application for as long as the longest
// transaction, with no error anywhere. With a lock_timeout the statement
// fails fast and the migration is retried. An error: this is the outage
// that preflight exists to catch.
//
// A lock the open transaction already holds is not waited for again, so
// only the first statement that takes it is reported; a table made by the
// same file is nobody else's yet.
type lockTimeoutRule struct{}

func (lockTimeoutRule) statement(c *sqlCheck, s *sqlStmt) {
	if c.lockTimeout() {
		return
	}
	for _, l := range s.locks {
		if l.mode != accessExclusive || (l.key != "" && c.isNew(l.key)) || !c.waits(l.key, l.mode) {
			continue
		}
		fix := "SET lock_timeout = '2s' before it, and retry the migration when it times out"
		if c.inTxn {
			fix = "SET LOCAL lock_timeout = '2s' at the start of the transaction (or SET lock_timeout before it), and retry the migration when it times out"
		}
		held := "until the statement ends"
		if c.inTxn {
			held = "until the transaction ends"
		}
		c.report(RuleLockNoTimeout, Error, s.line, fmt.Sprintf(
			"%s takes an %s lock on %s with no lock_timeout: while it waits for the lock, and %s, it stops %s on %s",
			stmtName(s), l.mode, l.target, held, l.mode.stops(), l.target), fix)
	}
}

package preflight

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// lockMode is a PostgreSQL table-level lock mode, numbered as PostgreSQL
// numbers them (a larger number is the stricter lock an ALTER TABLE with
// several subcommands takes).
type lockMode int8

const (
	noLock lockMode = iota
	accessShare
	rowShare
	rowExclusive
	shareUpdateExclusive
	share
	shareRowExclusive
	exclusive
	accessExclusive
)

var lockNames = [...]string{"no lock", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"}

func (m lockMode) String() string { return lockNames[m] }

// lockConflicts is the conflict table of "Explicit Locking" (13.3.1,
// table 13.2): the modes each mode conflicts with.
var lockConflicts = [...]uint16{
	noLock:               0,
	accessShare:          1 << accessExclusive,
	rowShare:             1<<exclusive | 1<<accessExclusive,
	rowExclusive:         1<<share | 1<<shareRowExclusive | 1<<exclusive | 1<<accessExclusive,
	shareUpdateExclusive: 1<<shareUpdateExclusive | 1<<share | 1<<shareRowExclusive | 1<<exclusive | 1<<accessExclusive,
	share:                1<<rowExclusive | 1<<shareUpdateExclusive | 1<<shareRowExclusive | 1<<exclusive | 1<<accessExclusive,
	shareRowExclusive:    1<<rowExclusive | 1<<shareUpdateExclusive | 1<<share | 1<<shareRowExclusive | 1<<exclusive | 1<<accessExclusive,
	exclusive:            1<<rowShare | 1<<rowExclusive | 1<<shareUpdateExclusive | 1<<share | 1<<shareRowExclusive | 1<<exclusive | 1<<accessExclusive,
	accessExclusive:      1<<accessShare | 1<<rowShare | 1<<rowExclusive | 1<<shareUpdateExclusive | 1<<share | 1<<shareRowExclusive | 1<<exclusive | 1<<accessExclusive,
}

func (m lockMode) conflictsWith(o lockMode) bool { return lockConflicts[m]&(1<<o) != 0 }

// coveredBy says whether a transaction holding h can take m without
// waiting for anyone new: everything m conflicts with, h does already.
func (m lockMode) coveredBy(h lockMode) bool {
	return lockConflicts[m]&^lockConflicts[h] == 0
}

// stops says what a session waiting for, or holding, the lock stops on
// that table: a lock request queues every later conflicting request
// behind it, so a DDL statement stuck behind one long transaction stops
// the application's queries too.
func (m lockMode) stops() string {
	switch {
	case m.conflictsWith(accessShare):
		return "every read and write"
	case m.conflictsWith(rowExclusive):
		return "every write"
	default:
		return "no read or write"
	}
}

// tableLock is one lock a statement takes.
type tableLock struct {
	key    string // table key (relKey), or indexKey, or "" when not one table
	target string // what is locked, for messages ("invoices", "the table of index i")
	mode   lockMode
}

// statementLocks models the table-level locks a statement takes (the
// "Explicit Locking" chapter, and ALTER TABLE's per-subcommand levels of
// PostgreSQL's AlterTableGetLockLevel). Row-level and catalog locks, and
// the plain ACCESS SHARE / ROW EXCLUSIVE of queries, are left out.
func (c *sqlCheck) statementLocks(s *sqlStmt) []tableLock {
	on := func(r *pg.RangeVar, m lockMode) tableLock {
		return tableLock{key: relKey(r), target: relKey(r), mode: m}
	}
	switch n := s.node.Node.(type) {
	case *pg.Node_AlterTableStmt:
		return alterTableLocks(n.AlterTableStmt)
	case *pg.Node_IndexStmt:
		if n.IndexStmt.Concurrent {
			return []tableLock{on(n.IndexStmt.Relation, shareUpdateExclusive)}
		}
		return []tableLock{on(n.IndexStmt.Relation, share)}
	case *pg.Node_DropStmt:
		return dropLocks(n.DropStmt)
	case *pg.Node_TruncateStmt:
		var ls []tableLock
		for _, r := range n.TruncateStmt.Relations {
			ls = append(ls, on(r.GetRangeVar(), accessExclusive))
		}
		return ls
	case *pg.Node_LockStmt:
		var ls []tableLock
		for _, r := range n.LockStmt.Relations {
			ls = append(ls, on(r.GetRangeVar(), lockMode(n.LockStmt.Mode)))
		}
		return ls
	case *pg.Node_ReindexStmt:
		return reindexLocks(n.ReindexStmt)
	case *pg.Node_VacuumStmt:
		v := n.VacuumStmt
		mode := shareUpdateExclusive
		if v.IsVacuumcmd && sqlBoolOption(v.Options, "full") {
			mode = accessExclusive
		}
		if len(v.Rels) == 0 {
			return []tableLock{{target: "every table of the database", mode: mode}}
		}
		var ls []tableLock
		for _, r := range v.Rels {
			ls = append(ls, on(r.GetVacuumRelation().GetRelation(), mode))
		}
		return ls
	case *pg.Node_ClusterStmt:
		if n.ClusterStmt.Relation == nil {
			return []tableLock{{target: "every clustered table of the database", mode: accessExclusive}}
		}
		return []tableLock{on(n.ClusterStmt.Relation, accessExclusive)}
	case *pg.Node_CreateTrigStmt:
		ls := []tableLock{on(n.CreateTrigStmt.Relation, shareRowExclusive)}
		if n.CreateTrigStmt.Constrrel != nil {
			ls = append(ls, on(n.CreateTrigStmt.Constrrel, shareRowExclusive))
		}
		return ls
	case *pg.Node_RuleStmt:
		return []tableLock{on(n.RuleStmt.Relation, accessExclusive)}
	case *pg.Node_CreatePolicyStmt:
		return []tableLock{on(n.CreatePolicyStmt.Table, accessExclusive)}
	case *pg.Node_AlterPolicyStmt:
		return []tableLock{on(n.AlterPolicyStmt.Table, accessExclusive)}
	case *pg.Node_RefreshMatViewStmt:
		if n.RefreshMatViewStmt.Concurrent {
			return []tableLock{on(n.RefreshMatViewStmt.Relation, exclusive)}
		}
		return []tableLock{on(n.RefreshMatViewStmt.Relation, accessExclusive)}
	case *pg.Node_RenameStmt:
		r := n.RenameStmt
		switch r.RenameType {
		case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW,
			pg.ObjectType_OBJECT_FOREIGN_TABLE, pg.ObjectType_OBJECT_SEQUENCE, pg.ObjectType_OBJECT_COLUMN,
			pg.ObjectType_OBJECT_TABCONSTRAINT, pg.ObjectType_OBJECT_TRIGGER, pg.ObjectType_OBJECT_RULE,
			pg.ObjectType_OBJECT_POLICY:
			if r.Relation != nil {
				return []tableLock{on(r.Relation, accessExclusive)}
			}
			if names := sqlNames(r.Object); len(names) > 1 { // RULE, TRIGGER, POLICY: table then name
				k := sqlObjectKey(names[:len(names)-1])
				return []tableLock{{key: k, target: k, mode: accessExclusive}}
			}
		case pg.ObjectType_OBJECT_INDEX:
			k := indexKey(r.Relation.GetSchemaname(), r.Relation.GetRelname())
			return []tableLock{{key: k, target: "index " + relKey(r.Relation), mode: shareUpdateExclusive}}
		}
	case *pg.Node_AlterObjectSchemaStmt:
		if r := n.AlterObjectSchemaStmt.Relation; r != nil {
			return []tableLock{on(r, accessExclusive)}
		}
	case *pg.Node_CreateStmt:
		return createTableLocks(n.CreateStmt)
	case *pg.Node_ViewStmt:
		if n.ViewStmt.Replace {
			return []tableLock{on(n.ViewStmt.View, accessExclusive)}
		}
	}
	return nil
}

func alterTableLocks(a *pg.AlterTableStmt) []tableLock {
	key, target := relKey(a.Relation), relKey(a.Relation)
	if a.Objtype == pg.ObjectType_OBJECT_INDEX {
		key, target = indexKey(a.Relation.GetSchemaname(), a.Relation.GetRelname()), "index "+target
	}
	mode := noLock
	var extra []tableLock
	for _, cmd := range alterCmds(a) {
		mode = max(mode, alterCmdLock(cmd))
		for _, k := range addedConstraints(cmd) {
			if k.Contype == pg.ConstrType_CONSTR_FOREIGN && k.Pktable != nil {
				extra = append(extra, tableLock{key: relKey(k.Pktable), target: relKey(k.Pktable), mode: shareRowExclusive})
			}
		}
		attachOrDetach := cmd.Subtype == pg.AlterTableType_AT_AttachPartition || cmd.Subtype == pg.AlterTableType_AT_DetachPartition
		if p := cmd.Def.GetPartitionCmd(); attachOrDetach && p != nil && p.Name != nil && !p.Concurrent {
			extra = append(extra, tableLock{key: relKey(p.Name), target: relKey(p.Name), mode: accessExclusive})
		}
	}
	return append([]tableLock{{key: key, target: target, mode: mode}}, extra...)
}

// addedConstraints returns the constraints an ALTER TABLE subcommand adds:
// ADD CONSTRAINT's, and those written on an added column.
func addedConstraints(cmd *pg.AlterTableCmd) []*pg.Constraint {
	switch cmd.Subtype {
	case pg.AlterTableType_AT_AddConstraint:
		if k := cmd.Def.GetConstraint(); k != nil {
			return []*pg.Constraint{k}
		}
	case pg.AlterTableType_AT_AddColumn:
		return columnConstraints(cmd.Def.GetColumnDef())
	}
	return nil
}

// alterCmdLock is the lock one ALTER TABLE subcommand needs
// (AlterTableGetLockLevel in PostgreSQL's tablecmds.c).
func alterCmdLock(cmd *pg.AlterTableCmd) lockMode {
	switch cmd.Subtype {
	case pg.AlterTableType_AT_SetStatistics, pg.AlterTableType_AT_ClusterOn, pg.AlterTableType_AT_DropCluster,
		pg.AlterTableType_AT_SetOptions, pg.AlterTableType_AT_ResetOptions, pg.AlterTableType_AT_ValidateConstraint,
		pg.AlterTableType_AT_AttachPartition, pg.AlterTableType_AT_DetachPartitionFinalize:
		return shareUpdateExclusive
	case pg.AlterTableType_AT_DetachPartition:
		if cmd.Def.GetPartitionCmd().GetConcurrent() {
			return shareUpdateExclusive
		}
		return accessExclusive
	case pg.AlterTableType_AT_SetRelOptions, pg.AlterTableType_AT_ResetRelOptions:
		return relOptionsLock(cmd.Def)
	case pg.AlterTableType_AT_EnableTrig, pg.AlterTableType_AT_EnableAlwaysTrig, pg.AlterTableType_AT_EnableReplicaTrig,
		pg.AlterTableType_AT_EnableTrigAll, pg.AlterTableType_AT_EnableTrigUser, pg.AlterTableType_AT_DisableTrig,
		pg.AlterTableType_AT_DisableTrigAll, pg.AlterTableType_AT_DisableTrigUser:
		return shareRowExclusive
	case pg.AlterTableType_AT_AddConstraint:
		if k := cmd.Def.GetConstraint(); k != nil && k.Contype == pg.ConstrType_CONSTR_FOREIGN {
			return shareRowExclusive
		}
	}
	return accessExclusive
}

// suReloptions are the storage parameters PostgreSQL changes under SHARE
// UPDATE EXCLUSIVE (reloptions.c); the others take ACCESS EXCLUSIVE.
var suReloptions = map[string]bool{
	"fillfactor": true, "toast_tuple_target": true, "parallel_workers": true,
	"vacuum_index_cleanup": true, "vacuum_truncate": true, "log_autovacuum_min_duration": true,
}

func relOptionsLock(def *pg.Node) lockMode {
	mode := noLock
	for _, n := range def.GetList().GetItems() {
		d := n.GetDefElem()
		if d == nil {
			continue
		}
		if suReloptions[d.Defname] || strings.HasPrefix(d.Defname, "autovacuum_") {
			mode = max(mode, shareUpdateExclusive)
		} else {
			mode = accessExclusive
		}
	}
	if mode == noLock {
		mode = accessExclusive
	}
	return mode
}

func dropLocks(d *pg.DropStmt) []tableLock {
	var ls []tableLock
	for _, o := range d.Objects {
		names := sqlNames(o)
		switch d.RemoveType {
		case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW,
			pg.ObjectType_OBJECT_FOREIGN_TABLE, pg.ObjectType_OBJECT_SEQUENCE:
			k := sqlObjectKey(names)
			ls = append(ls, tableLock{key: k, target: k, mode: accessExclusive})
		case pg.ObjectType_OBJECT_INDEX:
			k := "index:" + sqlObjectKey(names)
			mode := accessExclusive
			if d.Concurrent {
				mode = shareUpdateExclusive
			}
			ls = append(ls, tableLock{key: k, target: "the table of index " + sqlObjectKey(names), mode: mode})
		case pg.ObjectType_OBJECT_TRIGGER, pg.ObjectType_OBJECT_RULE, pg.ObjectType_OBJECT_POLICY:
			if len(names) > 1 {
				k := sqlObjectKey(names[:len(names)-1])
				ls = append(ls, tableLock{key: k, target: k, mode: accessExclusive})
			}
		}
	}
	return ls
}

func reindexLocks(r *pg.ReindexStmt) []tableLock {
	if sqlBoolOption(r.Params, "concurrently") {
		return nil // SHARE UPDATE EXCLUSIVE: no read or write waits
	}
	switch r.Kind {
	case pg.ReindexObjectType_REINDEX_OBJECT_INDEX:
		k := indexKey(r.Relation.GetSchemaname(), r.Relation.GetRelname())
		return []tableLock{{key: k, target: "index " + relKey(r.Relation), mode: accessExclusive}}
	case pg.ReindexObjectType_REINDEX_OBJECT_TABLE:
		// SHARE on the table, and ACCESS EXCLUSIVE on each index, which
		// every query planning on the table needs to open.
		return []tableLock{{key: relKey(r.Relation), target: "the indexes of " + relKey(r.Relation), mode: accessExclusive}}
	case pg.ReindexObjectType_REINDEX_OBJECT_SCHEMA:
		return []tableLock{{target: "every index of schema " + r.Name, mode: accessExclusive}}
	case pg.ReindexObjectType_REINDEX_OBJECT_DATABASE:
		return []tableLock{{target: "every index of the database", mode: accessExclusive}}
	case pg.ReindexObjectType_REINDEX_OBJECT_SYSTEM:
		return []tableLock{{target: "every system catalog index", mode: accessExclusive}}
	}
	return nil
}

// createTableLocks: a new table's foreign keys take SHARE ROW EXCLUSIVE
// on the tables they reference, and PARTITION OF takes ACCESS EXCLUSIVE
// on the parent.
func createTableLocks(cs *pg.CreateStmt) []tableLock {
	var ls []tableLock
	fk := func(k *pg.Constraint) {
		if k.Contype == pg.ConstrType_CONSTR_FOREIGN && k.Pktable != nil {
			ls = append(ls, tableLock{key: relKey(k.Pktable), target: relKey(k.Pktable), mode: shareRowExclusive})
		}
	}
	for _, e := range cs.TableElts {
		if k := e.GetConstraint(); k != nil {
			fk(k)
		}
		for _, k := range columnConstraints(e.GetColumnDef()) {
			fk(k)
		}
	}
	if cs.Partbound != nil {
		for _, p := range cs.InhRelations {
			ls = append(ls, tableLock{key: relKey(p.GetRangeVar()), target: relKey(p.GetRangeVar()), mode: accessExclusive})
		}
	}
	return ls
}

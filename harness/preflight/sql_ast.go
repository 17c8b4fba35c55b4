package preflight

import (
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// sqlQualify names a relation as written, with the default schema left out
// so that public.t and t are the same table.
func sqlQualify(schema, name string) string {
	if schema == "" || schema == "public" {
		return name
	}
	return schema + "." + name
}

func relKey(r *pg.RangeVar) string {
	if r == nil {
		return ""
	}
	return sqlQualify(r.Schemaname, r.Relname)
}

// indexKey is the key of an index: indexes and tables share a namespace
// in PostgreSQL, but the rules must not take one for the other.
func indexKey(schema, name string) string { return "index:" + sqlQualify(schema, name) }

// sqlNames reads a qualified name (a List of String nodes).
func sqlNames(n *pg.Node) []string {
	var items []*pg.Node
	if l := n.GetList(); l != nil {
		items = l.Items
	} else if n != nil {
		items = []*pg.Node{n}
	}
	var out []string
	for _, it := range items {
		if s := it.GetString_(); s != nil {
			out = append(out, s.Sval)
		}
	}
	return out
}

// sqlObjectKey turns a qualified name into a relation key.
func sqlObjectKey(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	default:
		return sqlQualify(names[len(names)-2], names[len(names)-1])
	}
}

func alterCmds(a *pg.AlterTableStmt) []*pg.AlterTableCmd {
	cmds := make([]*pg.AlterTableCmd, 0, len(a.Cmds))
	for _, n := range a.Cmds {
		if cmd := n.GetAlterTableCmd(); cmd != nil {
			cmds = append(cmds, cmd)
		}
	}
	return cmds
}

// columnConstraints returns the constraints written on a column.
func columnConstraints(cd *pg.ColumnDef) []*pg.Constraint {
	var out []*pg.Constraint
	for _, n := range cd.GetConstraints() {
		if k := n.GetConstraint(); k != nil {
			out = append(out, k)
		}
	}
	return out
}

// sqlType is a column type as written: its name without pg_catalog, its
// modifiers (varchar(255): [255]) and whether it is an array.
type sqlType struct {
	name  string
	mods  []int
	array bool
	known bool
}

func sqlTypeOf(t *pg.TypeName) sqlType {
	if t == nil {
		return sqlType{}
	}
	names := sqlNames(&pg.Node{Node: &pg.Node_List{List: &pg.List{Items: t.Names}}})
	if len(names) == 0 {
		return sqlType{}
	}
	st := sqlType{name: names[len(names)-1], array: len(t.ArrayBounds) > 0, known: true}
	for _, m := range t.Typmods {
		if c := m.GetAConst(); c != nil && c.GetIval() != nil {
			st.mods = append(st.mods, int(c.GetIval().Ival))
		} else {
			st.mods = append(st.mods, -1)
		}
	}
	return st
}

// typeDisplay spells the parser's internal type names as SQL does.
var typeDisplay = map[string]string{
	"int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real", "float8": "double precision",
	"bool": "boolean", "bpchar": "char", "varbit": "bit varying",
}

func (t sqlType) String() string {
	if !t.known {
		return "?"
	}
	s := t.name
	if d, ok := typeDisplay[s]; ok {
		s = d
	}
	if len(t.mods) > 0 {
		parts := make([]string, len(t.mods))
		for i, m := range t.mods {
			parts[i] = strconv.Itoa(m)
		}
		s += "(" + strings.Join(parts, ",") + ")"
	}
	if t.array {
		s += "[]"
	}
	return s
}

// sqlFuncName is a function call's name, lower case, without its schema.
func sqlFuncName(f *pg.FuncCall) string {
	names := sqlNames(&pg.Node{Node: &pg.Node_List{List: &pg.List{Items: f.Funcname}}})
	if len(names) == 0 {
		return ""
	}
	return strings.ToLower(names[len(names)-1])
}

// walkSQLNodes calls fn for every Node under m, depth first; fn returns
// false to skip a node's children.
func walkSQLNodes(m protoreflect.ProtoMessage, fn func(*pg.Node) bool) {
	if m == nil {
		return
	}
	walkSQLMessage(m.ProtoReflect(), fn)
}

func walkSQLMessage(m protoreflect.Message, fn func(*pg.Node) bool) {
	if !m.IsValid() {
		return
	}
	if n, ok := m.Interface().(*pg.Node); ok && !fn(n) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkSQLMessage(l.Get(i).Message(), fn)
			}
			return true
		}
		walkSQLMessage(v.Message(), fn)
		return true
	})
}

// sqlFuncCalls returns every function call under m.
func sqlFuncCalls(m protoreflect.ProtoMessage) []*pg.FuncCall {
	var out []*pg.FuncCall
	walkSQLNodes(m, func(n *pg.Node) bool {
		if f := n.GetFuncCall(); f != nil {
			out = append(out, f)
		}
		return true
	})
	return out
}

// sqlConst is the text of a string, integer or float constant.
func sqlConst(n *pg.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	c := n.GetAConst()
	if c == nil || c.Isnull {
		return "", false
	}
	switch {
	case c.GetSval() != nil:
		return c.GetSval().Sval, true
	case c.GetIval() != nil:
		return strconv.Itoa(int(c.GetIval().Ival)), true
	case c.GetFval() != nil:
		return c.GetFval().Fval, true
	case c.GetBoolval() != nil:
		return strconv.FormatBool(c.GetBoolval().Boolval), true
	}
	return "", false
}

// nonZeroSetting says whether a SET value turns a timeout on: "0" (any
// unit) turns it off; a value that does not read as a number is taken at
// its word (PostgreSQL would reject it).
func nonZeroSetting(args []*pg.Node) bool {
	if len(args) != 1 {
		return false
	}
	s, ok := sqlConst(args[0])
	if !ok {
		return false
	}
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && (s[end] == '.' || s[end] == '-' || s[end] == '+' || (s[end] >= '0' && s[end] <= '9')) {
		end++
	}
	f, err := strconv.ParseFloat(s[:end], 64)
	if err != nil {
		return s != ""
	}
	return f > 0
}

// sqlBoolOption reads a DefElem list option such as CONCURRENTLY or FULL:
// present with no argument means true.
func sqlBoolOption(opts []*pg.Node, name string) bool {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || !strings.EqualFold(d.Defname, name) {
			continue
		}
		if d.Arg == nil {
			return true
		}
		s, ok := sqlConst(d.Arg)
		switch {
		case ok:
		case d.Arg.GetString_() != nil:
			s = d.Arg.GetString_().Sval
		case d.Arg.GetBoolean() != nil:
			return d.Arg.GetBoolean().Boolval
		case d.Arg.GetInteger() != nil:
			return d.Arg.GetInteger().Ival != 0
		default:
			return true
		}
		switch strings.ToLower(s) {
		case "false", "off", "0", "no":
			return false
		}
		return true
	}
	return false
}

// stmtName names a statement's kind for messages ("ALTER TABLE").
func stmtName(s *sqlStmt) string {
	switch n := s.node.Node.(type) {
	case *pg.Node_AlterTableStmt:
		if n.AlterTableStmt.Objtype == pg.ObjectType_OBJECT_INDEX {
			return "ALTER INDEX"
		}
		return "ALTER TABLE"
	case *pg.Node_IndexStmt:
		return "CREATE INDEX"
	case *pg.Node_DropStmt:
		return "DROP " + sqlObjectWord(n.DropStmt.RemoveType)
	case *pg.Node_TruncateStmt:
		return "TRUNCATE"
	case *pg.Node_LockStmt:
		return "LOCK TABLE"
	case *pg.Node_ReindexStmt:
		return "REINDEX"
	case *pg.Node_VacuumStmt:
		if n.VacuumStmt.IsVacuumcmd && sqlBoolOption(n.VacuumStmt.Options, "full") {
			return "VACUUM FULL"
		}
		if n.VacuumStmt.IsVacuumcmd {
			return "VACUUM"
		}
		return "ANALYZE"
	case *pg.Node_ClusterStmt:
		return "CLUSTER"
	case *pg.Node_CreateTrigStmt:
		return "CREATE TRIGGER"
	case *pg.Node_RuleStmt:
		return "CREATE RULE"
	case *pg.Node_CreatePolicyStmt:
		return "CREATE POLICY"
	case *pg.Node_AlterPolicyStmt:
		return "ALTER POLICY"
	case *pg.Node_RefreshMatViewStmt:
		return "REFRESH MATERIALIZED VIEW"
	case *pg.Node_RenameStmt:
		return "ALTER " + sqlObjectWord(n.RenameStmt.RenameType) + " RENAME"
	case *pg.Node_AlterObjectSchemaStmt:
		return "ALTER " + sqlObjectWord(n.AlterObjectSchemaStmt.ObjectType) + " SET SCHEMA"
	case *pg.Node_CreateStmt:
		return "CREATE TABLE"
	case *pg.Node_ViewStmt:
		return "CREATE OR REPLACE VIEW"
	}
	return "the statement"
}

// sqlObjectWord is an object type as SQL spells it ("MATERIALIZED VIEW").
func sqlObjectWord(t pg.ObjectType) string {
	w := strings.TrimPrefix(t.String(), "OBJECT_")
	switch w {
	case "MATVIEW":
		return "MATERIALIZED VIEW"
	case "TABCONSTRAINT":
		return "CONSTRAINT"
	case "FOREIGN_TABLE":
		return "FOREIGN TABLE"
	}
	return strings.ReplaceAll(w, "_", " ")
}

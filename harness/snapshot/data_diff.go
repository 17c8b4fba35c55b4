package snapshot

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// DataDiff is what changed between two data fingerprints: one finding per
// change, tables (by schema and name) first, then sequences.
type DataDiff struct {
	Findings []DataFinding
}

// DataFinding is one change of a table or sequence.
type DataFinding struct {
	Object string // the table or sequence, without "public.": "invoices", "audit.events"
	Kind   string // "table", "rows", "column", "index", "constraint" or "sequence"
	Name   string // the column, index or constraint; "" for the other kinds
	Change string // for people: "column total_cents: default 0 -> none"
	Rows   *DataRowChange
}

// DataRowChange is how a table's rows changed.
type DataRowChange struct {
	Before, After int64 // row counts
	// Named is true when the rows were compared by primary key: then the
	// counts below are exact, and the keys are the first few (in key
	// order) of each kind.
	Named                               bool
	Changed, Added, Deleted             int64
	ChangedKeys, AddedKeys, DeletedKeys []string
	// Unnamed says why the rows were not compared by key ("no primary
	// key", "no keys kept").
	Unnamed string
}

// Empty reports whether nothing changed.
func (d DataDiff) Empty() bool { return len(d.Findings) == 0 }

// String is one line per finding, "object: change"; "" when empty.
func (d DataDiff) String() string {
	var b strings.Builder
	for _, f := range d.Findings {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func (f DataFinding) String() string { return f.Object + ": " + f.Change }

func (r *DataRowChange) String() string {
	if !r.Named {
		why := r.Unnamed
		if why == "" {
			why = "not compared by key"
		}
		if r.Before != r.After {
			return fmt.Sprintf("rows: %d -> %d (%s: rows not named)", r.Before, r.After, why)
		}
		return fmt.Sprintf("rows: %d, contents differ (%s: rows not named)", r.After, why)
	}
	var parts []string
	add := func(n int64, verb string, keys []string) {
		if n == 0 {
			return
		}
		s := fmt.Sprintf("%d %s", n, verb)
		if len(keys) > 0 {
			more := ""
			if int64(len(keys)) < n {
				more = ", …"
			}
			s += " (" + strings.Join(keys, ", ") + more + ")"
		}
		parts = append(parts, s)
	}
	add(r.Changed, "changed", r.ChangedKeys)
	add(r.Added, "added", r.AddedKeys)
	add(r.Deleted, "deleted", r.DeletedKeys)
	if len(parts) == 0 {
		return "rows: checksum differs, but no row does by key"
	}
	return "rows: " + strings.Join(parts, ", ")
}

// diffData compares two prints; rows holds the row comparisons made in
// the database, by table (nil: counts and checksums only).
func diffData(before, after *DataPrint, rows map[[2]string]*DataRowChange) DataDiff {
	var d DataDiff
	type key = [2]string
	bt := map[key]*DataTable{}
	for i := range before.Tables {
		t := &before.Tables[i]
		bt[key{t.Schema, t.Name}] = t
	}
	at := map[key]*DataTable{}
	for i := range after.Tables {
		t := &after.Tables[i]
		at[key{t.Schema, t.Name}] = t
	}
	for _, k := range dataSortedKeys(bt, at) {
		b, a := bt[k], at[k]
		obj := dataName(k[0], k[1])
		add := func(kind, name, change string) {
			d.Findings = append(d.Findings, DataFinding{Object: obj, Kind: kind, Name: name, Change: change})
		}
		switch {
		case a == nil:
			add("table", "", fmt.Sprintf("table dropped (had %d rows)", b.Rows))
			continue
		case b == nil:
			add("table", "", fmt.Sprintf("table added (%d rows)", a.Rows))
			continue
		}
		if b.Rows != a.Rows || (before.Seed == after.Seed && b.Checksum != a.Checksum) {
			rc := rows[k]
			if rc == nil {
				rc = &DataRowChange{Before: b.Rows, After: a.Rows, Unnamed: "compared without the database"}
				if len(b.Key) == 0 {
					rc.Unnamed = "no primary key"
				}
			}
			d.Findings = append(d.Findings, DataFinding{Object: obj, Kind: "rows", Change: rc.String(), Rows: rc})
		}
		diffDataColumns(b.Columns, a.Columns, add)
		diffDataDefs("index", b.Indexes, a.Indexes, add)
		diffDataDefs("constraint", b.Constraints, a.Constraints, add)
	}
	diffDataSequences(before.Sequences, after.Sequences, &d)
	return d
}

func dataSortedKeys[V any](ms ...map[[2]string]V) [][2]string {
	set := map[[2]string]bool{}
	for _, m := range ms {
		for k := range m {
			set[k] = true
		}
	}
	return slices.SortedFunc(maps.Keys(set), func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
}

func diffDataColumns(before, after []DataColumn, add func(kind, name, change string)) {
	find := func(cols []DataColumn, name string) *DataColumn {
		if i := slices.IndexFunc(cols, func(c DataColumn) bool { return c.Name == name }); i >= 0 {
			return &cols[i]
		}
		return nil
	}
	for _, b := range before {
		if find(after, b.Name) == nil {
			add("column", b.Name, fmt.Sprintf("column %s dropped", b.Name))
		}
	}
	for _, a := range after {
		b := find(before, a.Name)
		if b == nil {
			add("column", a.Name, fmt.Sprintf("column %s added (%s)", a.Name, a.describe()))
			continue
		}
		change := func(what, from, to string) {
			if from != to {
				add("column", a.Name, strings.TrimSpace(fmt.Sprintf("column %s: %s", a.Name, what))+fmt.Sprintf(" %s -> %s", from, to))
			}
		}
		change("type", b.Type, a.Type)
		change("default", dataOrNone(b.defaultExpr()), dataOrNone(a.defaultExpr()))
		change("generated", dataOrNone(b.generation()), dataOrNone(a.generation()))
		change("identity", dataOrNone(dataIdentityText(b.Identity)), dataOrNone(dataIdentityText(a.Identity)))
		change("", dataNullText(b.NotNull), dataNullText(a.NotNull))
	}
}

// describe is a column's definition, for an added column.
func (c DataColumn) describe() string {
	s := c.Type
	if c.NotNull {
		s += " not null"
	}
	if e := c.defaultExpr(); e != "" {
		s += " default " + e
	}
	if g := c.generation(); g != "" {
		s += " generated always as (" + g + ") stored"
	}
	if id := dataIdentityText(c.Identity); id != "" {
		s += " generated " + id + " as identity"
	}
	return s
}

func (c DataColumn) defaultExpr() string {
	if c.Generated != "" {
		return ""
	}
	return c.Default
}

func (c DataColumn) generation() string {
	if c.Generated == "" {
		return ""
	}
	return c.Default
}

func dataIdentityText(id string) string {
	switch id {
	case "a":
		return "always"
	case "d":
		return "by default"
	}
	return id
}

func dataNullText(notNull bool) string {
	if notNull {
		return "not null"
	}
	return "nullable"
}

func dataOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func diffDataDefs(kind string, before, after map[string]string, add func(kind, name, change string)) {
	for _, n := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[n]; !ok {
			add(kind, n, fmt.Sprintf("%s %s dropped", kind, n))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(after)) {
		b, ok := before[n]
		switch {
		case !ok:
			add(kind, n, fmt.Sprintf("%s %s added: %s", kind, n, after[n]))
		case b != after[n]:
			add(kind, n, fmt.Sprintf("%s %s: %s -> %s", kind, n, b, after[n]))
		}
	}
}

func diffDataSequences(before, after []DataSequence, d *DataDiff) {
	bs := map[[2]string]DataSequence{}
	for _, s := range before {
		bs[[2]string{s.Schema, s.Name}] = s
	}
	as := map[[2]string]DataSequence{}
	for _, s := range after {
		as[[2]string{s.Schema, s.Name}] = s
	}
	for _, k := range dataSortedKeys(bs, as) {
		b, bok := bs[k]
		a, aok := as[k]
		add := func(change string) {
			d.Findings = append(d.Findings, DataFinding{Object: dataName(k[0], k[1]), Kind: "sequence", Change: change})
		}
		switch {
		case !aok:
			add("sequence dropped")
			continue
		case !bok:
			add("sequence added (next value " + dataNextValue(a) + ")")
			continue
		}
		change := func(what, from, to string) {
			if from != to {
				add(fmt.Sprintf("sequence: %s %s -> %s", what, from, to))
			}
		}
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		change("type", b.Type, a.Type)
		change("start", i(b.Start), i(a.Start))
		change("increment", i(b.Increment), i(a.Increment))
		change("min", i(b.Min), i(a.Min))
		change("max", i(b.Max), i(a.Max))
		change("cycle", strconv.FormatBool(b.Cycle), strconv.FormatBool(a.Cycle))
		change("next value", dataNextValue(b), dataNextValue(a))
	}
}

func dataNextValue(s DataSequence) string {
	if v := s.NextValue(); v != "" {
		return v
	}
	return "unknown (no privilege to read it)"
}

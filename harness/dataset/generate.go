package dataset

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// row is what a generator sees when it makes one value.
type row struct {
	rng    *rand.Rand
	seq    int64 // 1-based row number in the table
	index  int64 // 1-based position under the parent (per: tables)
	parent int64 // the parent row's number (per: tables)
	rows   map[string]int64
}

// generator makes one column's value for a row.
type generator interface {
	value(r *row) any
}

type (
	seqGen    struct{}
	indexGen  struct{}
	parentGen struct{}
	refGen    struct{ table string }
	intGen    struct{ lo, hi int64 }
	choiceGen struct{ values []string }
	listGen   struct{ values []string }
	boolGen   struct{ p float64 }
	timeGen   struct{ lo, hi time.Time }
	formatGen struct{ format string }
	wordsGen  struct{ lo, hi int64 }
	constGen  struct{ s string }
)

func (seqGen) value(r *row) any    { return r.seq }
func (indexGen) value(r *row) any  { return r.index }
func (parentGen) value(r *row) any { return r.parent }
func (g refGen) value(r *row) any  { return 1 + r.rng.Int64N(max(1, r.rows[g.table])) }
func (g intGen) value(r *row) any  { return g.lo + r.rng.Int64N(g.hi-g.lo+1) }
func (g choiceGen) value(r *row) any {
	return g.values[r.rng.IntN(len(g.values))]
}
func (g listGen) value(r *row) any { return g.values[(r.seq-1)%int64(len(g.values))] }
func (g boolGen) value(r *row) any { return r.rng.Float64() < g.p }
func (g timeGen) value(r *row) any {
	span := g.hi.Sub(g.lo)
	return g.lo.Add(time.Duration(r.rng.Int64N(int64(span)))).Truncate(time.Second)
}
func (g formatGen) value(r *row) any { return fmt.Sprintf(g.format, r.seq) }
func (g constGen) value(*row) any    { return g.s }

var verbRE = regexp.MustCompile(`%[-+ #0]*[0-9]*d`)

var vocabulary = strings.Fields(`annual service fee hosting support licence seat storage
	consulting training migration setup premium standard basic addon bandwidth backup
	monitoring renewal discount credit adjustment travel hardware maintenance`)

func (g wordsGen) value(r *row) any {
	n := g.lo + r.rng.Int64N(g.hi-g.lo+1)
	w := make([]string, n)
	for i := range w {
		w[i] = vocabulary[r.rng.IntN(len(vocabulary))]
	}
	return strings.Join(w, " ")
}

// parseGenerator reads one column's generator, such as "int 1..10".
func parseGenerator(spec string) (generator, error) {
	kind, arg, _ := strings.Cut(strings.TrimSpace(spec), " ")
	arg = strings.TrimSpace(arg)
	needArg := func() error {
		if arg == "" {
			return fmt.Errorf("%s needs an argument", kind)
		}
		return nil
	}
	switch kind {
	case "seq":
		return seqGen{}, nil
	case "index":
		return indexGen{}, nil
	case "parent":
		return parentGen{}, nil
	case "ref":
		return refGen{table: arg}, needArg()
	case "int":
		r, err := parseIntRange(arg)
		return intGen{r[0], r[1]}, err
	case "choice", "list":
		if err := needArg(); err != nil {
			return nil, err
		}
		values := strings.Split(arg, ",")
		for i := range values {
			values[i] = strings.TrimSpace(values[i])
		}
		if kind == "list" {
			return listGen{values}, nil
		}
		return choiceGen{values}, nil
	case "bool":
		p, err := strconv.ParseFloat(arg, 64)
		if err != nil || p < 0 || p > 1 {
			return nil, fmt.Errorf("bool %q: give the probability of true, 0 to 1", arg)
		}
		return boolGen{p}, nil
	case "timestamp":
		r, err := parseTimeRange(arg)
		return timeGen{r[0], r[1]}, err
	case "format":
		if n := len(verbRE.FindAllString(arg, -1)); n != 1 || strings.Count(arg, "%") != 1 {
			return nil, fmt.Errorf("format %q: needs one %%d for the row number", arg)
		}
		return formatGen{arg}, nil
	case "words":
		r, err := parseIntRange(arg)
		return wordsGen{r[0], r[1]}, err
	case "const":
		return constGen{s: arg}, needArg()
	}
	return nil, fmt.Errorf("unknown generator %q (seq, index, parent, ref, int, choice, list, bool, timestamp, format, words, const)", kind)
}

// tableSeed derives one table's seed, so each table's rows depend only on
// the dataset seed, the table and the scale.
func tableSeed(seed uint64, table string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", seed, table)
	return h.Sum64()
}

// source produces a table's rows for COPY (pgx.CopyFromSource).
type source struct {
	t        *TableSpec
	r        row
	total    int64 // rows for fixed tables; parents for per: tables
	per      [2]int64
	perLeft  int64
	values   []any
	limit    int64 // stop after this many rows (a batch); 0: no limit
	produced int64
	done     bool // the table has no more rows
}

func newSource(s *Spec, t *TableSpec, scale int64, rows map[string]int64) (*source, error) {
	src := &source{t: t, values: make([]any, len(t.columns)),
		r: row{rng: rand.New(rand.NewPCG(s.Seed, tableSeed(s.Seed, t.Name))), rows: rows}}
	if t.Per != "" {
		parent, r, err := parsePer(t.Per)
		if err != nil {
			return nil, err
		}
		src.total, src.per = rows[parent], r
		return src, nil
	}
	n, err := rowCount(t.Rows, scale)
	src.total = n
	return src, err
}

// Next advances to the next row; it stops at the end of the table or of
// the current batch.
func (s *source) Next() bool {
	if s.limit > 0 && s.produced >= s.limit {
		return false
	}
	if s.t.Per == "" {
		if s.r.seq >= s.total {
			s.done = true
			return false
		}
		s.r.seq++
	} else {
		for s.perLeft == 0 {
			if s.r.parent >= s.total {
				s.done = true
				return false
			}
			s.r.parent++
			s.r.index = 0
			s.perLeft = s.per[0] + s.r.rng.Int64N(s.per[1]-s.per[0]+1)
		}
		s.perLeft--
		s.r.index++
		s.r.seq++
	}
	for i, c := range s.t.columns {
		s.values[i] = c.gen.value(&s.r)
	}
	s.produced++
	return true
}

func (s *source) Values() ([]any, error) { return s.values, nil }
func (s *source) Err() error             { return nil }

func (s *source) columnNames() []string {
	names := make([]string, len(s.t.columns))
	for i, c := range s.t.columns {
		names[i] = c.name
	}
	return names
}

// estimate is the expected row count, for progress.
func (s *source) estimate() int64 {
	if s.t.Per == "" {
		return s.total
	}
	return s.total * (s.per[0] + s.per[1]) / 2
}

package dataset

import (
	"math"
	"math/bits"
	"strconv"
	"strings"
	"unicode"
)

// EstimateRows is about how many rows Load writes at scale: each table's
// rows (a table of per-parent rows counts the mean per parent), summed.
// It is known only for a dataset of generated tables at a positive scale
// whose count fits an int64: a dump's rows are not known before it runs,
// nor are a schema's that fills tables itself (an INSERT or COPY in it),
// nor a per-parent table's whose parent lies outside the dataset (known
// false).
func (s *Spec) EstimateRows(scale int64) (rows int64, known bool) {
	if len(s.Files) > 0 || scale <= 0 || s.schemaFillsItself() {
		return 0, false
	}
	n := map[string]int64{}
	for i := range s.Tables {
		t := &s.Tables[i]
		var r int64
		var ok bool
		if t.Rows != "" {
			if r, ok = estimateRowCount(t.Rows, scale); !ok {
				return 0, false
			}
		} else {
			parent, per, err := parsePer(t.Per)
			if err != nil || per[0] < 0 || per[1] < 0 {
				return 0, false
			}
			p, inside := n[parent]
			if !inside {
				return 0, false // a parent outside the dataset: its rows are the database's
			}
			sum, ok := estimateAdd(per[0], per[1])
			if !ok {
				return 0, false
			}
			// p × (min+max) / 2 in 128 bits, so that the product may pass
			// an int64 where the mean does not.
			hi, lo := bits.Mul64(uint64(p), uint64(sum))
			if hi >= 2 {
				return 0, false
			}
			half := lo>>1 | hi<<63
			if half > math.MaxInt64 {
				return 0, false
			}
			r = int64(half)
		}
		n[t.Name] = r
		if rows, ok = estimateAdd(rows, r); !ok {
			return 0, false
		}
	}
	return rows, true
}

// estimateRowCount is rowCount with its multiplication checked: false on
// an error, a negative count or an overflow.
func estimateRowCount(expr string, scale int64) (int64, bool) {
	r, err := rowCount(expr, scale)
	if err != nil {
		return 0, false
	}
	if rest, ok := strings.CutPrefix(strings.ReplaceAll(expr, " ", ""), "scale*"); ok {
		k, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || k < 0 {
			return 0, false
		}
		return estimateMul(scale, k)
	}
	return r, r >= 0
}

// estimateMul and estimateAdd are a*b and a+b of non-negative counts,
// false when either is negative or the result passes an int64.
func estimateMul(a, b int64) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

func estimateAdd(a, b int64) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	sum, carry := bits.Add64(uint64(a), uint64(b), 0)
	if carry != 0 || sum > math.MaxInt64 {
		return 0, false
	}
	return int64(sum), true
}

// schemaFillsItself reports whether the schema file may write rows of its
// own (an INSERT or a COPY), or cannot be read. It is a plain
// case-insensitive token check, not a parse (PostgreSQL's parser lives in
// harness/preflight, which a dataset does not import): a comment or a
// name that reads "copy" also answers true, which only makes the
// estimate unknown (the caller then computes a key rather than skip it).
func (s *Spec) schemaFillsItself() bool {
	if s.Schema == "" {
		return false
	}
	b, err := s.readFile(s.Schema, true)
	if err != nil {
		return true
	}
	for _, w := range strings.FieldsFunc(string(b), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' }) {
		if strings.EqualFold(w, "insert") || strings.EqualFold(w, "copy") {
			return true
		}
	}
	return false
}

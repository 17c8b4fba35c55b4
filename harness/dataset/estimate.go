package dataset

// EstimateRows is about how many rows Load writes at scale: each table's
// rows (a table of per-parent rows counts the mean per parent), summed.
// It is known only for a dataset of generated tables: a dump's rows are
// not known before it runs (known false).
func (s *Spec) EstimateRows(scale int64) (rows int64, known bool) {
	if len(s.Files) > 0 {
		return 0, false
	}
	n := map[string]int64{}
	for i := range s.Tables {
		t := &s.Tables[i]
		var r int64
		if t.Rows != "" {
			v, err := rowCount(t.Rows, scale)
			if err != nil {
				return 0, false
			}
			r = v
		} else {
			parent, per, err := parsePer(t.Per)
			if err != nil {
				return 0, false
			}
			p, ok := n[parent]
			if !ok {
				return 0, false // a parent outside the dataset: its rows are the database's
			}
			r = p * (per[0] + per[1]) / 2
		}
		n[t.Name] = r
		rows += r
	}
	return rows, true
}

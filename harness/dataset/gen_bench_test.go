package dataset

import "testing"

// BenchmarkGenerate times the generators alone on the billing dataset at
// 1,000,000 invoices (no database): the client's share of a load.
func BenchmarkGenerate(b *testing.B) {
	s := billingSpec(b)
	const scale = 1_000_000
	for i := 0; i < b.N; i++ {
		rows := map[string]int64{}
		for j := range s.Tables {
			if s.Tables[j].Rows != "" {
				rows[s.Tables[j].Name], _ = rowCount(s.Tables[j].Rows, scale)
			}
		}
		var total int64
		for j := range s.Tables {
			src, err := newSource(s, &s.Tables[j], scale, rows)
			if err != nil {
				b.Fatal(err)
			}
			for src.Next() {
			}
			rows[s.Tables[j].Name] = src.produced
			total += src.produced
		}
		b.ReportMetric(float64(total), "rows")
	}
}

package dataset

import (
	"bytes"
	"testing"
)

// Off a terminal (CI logs), progress is plain lines: the first report, then
// at most one every few seconds, and always the end of a table.
func TestPrinterLines(t *testing.T) {
	var b bytes.Buffer
	p := Printer(&b)
	for done := int64(1000); done <= 10000; done += 1000 {
		p(Progress{Dataset: "billing", Table: "invoices", Done: done, Total: 10000})
	}
	want := "loading billing.invoices: 1000/10000 rows (10%)\nloading billing.invoices: 10000/10000 rows (100%)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

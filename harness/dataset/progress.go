package dataset

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rehearse/rehearse/internal/term"
)

// Printer reports load progress on w: a redrawn bar on a terminal, and a
// line every few seconds (and at each table's end) elsewhere, such as CI.
func Printer(w io.Writer) func(Progress) {
	tty := term.IsTerminal(w)
	var mu sync.Mutex
	last := map[string]time.Time{}
	return func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		done := p.Done >= p.Total
		pct := 100.0
		if p.Total > 0 {
			pct = float64(p.Done) * 100 / float64(p.Total)
		}
		if tty {
			const width = 30
			filled := min(width, int(pct*width/100))
			fmt.Fprintf(w, "\r%s.%s [%s%s] %5.1f%% %d rows", p.Dataset, p.Table,
				strings.Repeat("#", filled), strings.Repeat(" ", width-filled), pct, p.Done)
			if done {
				fmt.Fprintln(w)
			}
			return
		}
		key := p.Dataset + "." + p.Table
		if !done && time.Since(last[key]) < 5*time.Second {
			return
		}
		last[key] = time.Now()
		fmt.Fprintf(w, "loading %s: %d/%d rows (%.0f%%)\n", key, p.Done, p.Total, pct)
	}
}

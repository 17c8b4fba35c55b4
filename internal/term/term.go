// Package term holds small helpers for text shown to people.
package term

import (
	"io"
	"os"
	"strings"
)

// IsTerminal reports whether w is a terminal (progress bars redraw there;
// elsewhere, such as CI logs, output is plain lines).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package progress

import (
	"io"
	"os"

	"golang.org/x/term"
)

// columns is the width of the terminal w, or 0 when it is no terminal or
// reports none (a pseudo-terminal nobody sized), where bars would draw
// nothing.
func columns(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}

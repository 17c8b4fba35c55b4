//go:build !unix

package progress

import "io"

// columns assumes a terminal of 80 columns where it cannot ask.
func columns(io.Writer) int { return 80 }

package preflight

import (
	"bytes"
	"fmt"
)

// stripNUL returns src without its NUL bytes, its lines unchanged, and
// the finding that says so (ok false: src has no NUL, and is returned as
// is). base is the file line of src's first line.
//
// bash and dash skip a NUL in a script and run the rest (bash refuses a
// file only for a NUL in its first 80 bytes, dash never), psql reads a
// migration on past one; but PostgreSQL's parser and scanner take C
// strings and stop at the first NUL, so a NUL left in would hide every
// statement after it. Whatever decides the file is text (not a program),
// a NUL anywhere in it is removed before it is read.
func stripNUL(file string, base int, src []byte) (clean []byte, f Finding, ok bool) {
	i := bytes.IndexByte(src, 0)
	if i < 0 {
		return src, Finding{}, false
	}
	n := bytes.Count(src, []byte{0})
	return bytes.ReplaceAll(src, []byte{0}, nil), nulFinding(file, base+bytes.Count(src[:i], []byte("\n")), n), true
}

// nulFinding is the cannot-tell for n NUL bytes removed from file, the
// first on line.
func nulFinding(file string, line, n int) Finding {
	return Finding{Rule: RuleCannotTell, Severity: Info, File: file, Line: line,
		Message: fmt.Sprintf("%d NUL bytes in it (the first on this line): checked with them removed (bash, dash and psql skip them and read on); a tool that stops at a NUL reads less", n),
		Fix:     "remove the NUL bytes"}
}

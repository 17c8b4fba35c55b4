package env

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/rehearse/rehearse/harness/sandbox"
)

// FileError is a problem in a compose file: it names the file, and the line
// and key where they are known. It unwraps to ErrSandbox or ErrNotHonoured
// when the sandbox refused the file.
type FileError = sandbox.FileError

// ErrSandbox marks a compose setting the sandbox refuses.
var ErrSandbox = sandbox.ErrNotAllowed

// ErrNotHonoured marks a compose key the harness would ignore, refused so
// that nothing is silently dropped.
var ErrNotHonoured = sandbox.ErrNotHonoured

func keyError(file string, key []string, format string, args ...any) *FileError {
	return sandbox.At(file, key, format, args...)
}

var (
	lineRE      = regexp.MustCompile(`line (\d+)`)
	undefinedRE = regexp.MustCompile(`service "([^"]+)" depends on (?:undefined|unknown) service "([^"]+)"`)
	cycleRE     = regexp.MustCompile(`dependency cycle detected: (([^ ]+) -> .*)$`)
)

// composeError turns a compose-go load error into a FileError with a line.
func composeError(file string, err error) error {
	if fe := dependencyError(file, err); fe != nil {
		return fe
	}
	msg := err.Error()
	fe := &FileError{File: file, Msg: msg}
	// The last line a YAML error names is where the parser gave up.
	if ms := lineRE.FindAllStringSubmatch(msg, -1); ms != nil {
		fe.Line, _ = strconv.Atoi(ms[len(ms)-1][1])
		// compose-go prefixes the absolute path; the user's path is already in front.
		if i := strings.Index(msg, "yaml: "); i >= 0 {
			fe.Msg = msg[i:]
		}
	}
	return fe
}

// dependencyError places compose-go's depends_on errors (an unknown service,
// a cycle found by its graph package) at the depends_on key of the service
// that starts them; nil for any other error.
func dependencyError(file string, err error) *FileError {
	msg := err.Error()
	if m := undefinedRE.FindStringSubmatch(msg); m != nil {
		return keyError(file, []string{"services", m[1], "depends_on"}, "depends on undefined service %q", m[2])
	}
	if m := cycleRE.FindStringSubmatch(msg); m != nil {
		return keyError(file, []string{"services", m[2], "depends_on"}, "dependency cycle: %s", m[1])
	}
	return nil
}

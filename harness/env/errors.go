package env

import (
	"errors"
	"fmt"
	"path/filepath"
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

// ErrNotRunning is wrapped by Exec and ExecStream when the service's
// container is not running (killed or stopped by a fault, or exited): the
// command could not start, which is the command's failure rather than the
// harness's.
var ErrNotRunning = errors.New("the service is not running")

func keyError(file string, key []string, format string, args ...any) *FileError {
	return sandbox.At(file, key, format, args...)
}

var (
	lineRE      = regexp.MustCompile(`line (\d+)`)
	otherFileRE = regexp.MustCompile(`^failed to (?:read|parse) (/[^:]+): (.*)$`)
	undefinedRE = regexp.MustCompile(`service "([^"]+)" depends on (?:undefined|unknown) service "([^"]+)"`)
	cycleRE     = regexp.MustCompile(`dependency cycle detected: (([^ ]+) -> .*)$`)
)

// composeError turns a compose-go load error into a FileError. A line is
// attached only to the file the error is about: compose-go reports YAML
// errors of the compose file bare ("yaml: ... line 4: ..."), and errors of
// another file (an env file, an included file) after that file's path, which
// then names the error instead of the compose file. projectDir is the
// compose file's directory.
func composeError(file, projectDir string, err error) error {
	if fe := dependencyError(file, err); fe != nil {
		return fe
	}
	msg := err.Error()
	fe := &FileError{File: file, Msg: msg}
	switch m := otherFileRE.FindStringSubmatch(msg); {
	case strings.HasPrefix(msg, "yaml: "):
		fe.Line = lastLine(msg)
	case m != nil && sandbox.Inside(projectDir, m[1]):
		rel, rerr := filepath.Rel(projectDir, m[1])
		if rerr == nil {
			fe.File, fe.Msg = filepath.Join(filepath.Dir(file), rel), m[2]
			if fe.Line = lastLine(m[2]); fe.Line > 0 {
				fe.Msg = strings.TrimPrefix(fe.Msg, fmt.Sprintf("line %d: ", fe.Line))
			}
		}
	}
	return fe
}

// lastLine is the last line number an error names, where a parser gave up.
func lastLine(msg string) int {
	ms := lineRE.FindAllStringSubmatch(msg, -1)
	if ms == nil {
		return 0
	}
	n, _ := strconv.Atoi(ms[len(ms)-1][1])
	return n
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

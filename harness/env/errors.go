package env

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FileError is a problem in a compose file: it names the file, and the line
// and key where they are known.
type FileError struct {
	File string // the compose file as the user named it
	Line int    // 1-based; 0 when unknown
	Key  string // dotted path such as services.db.privileged; "" when unknown
	Msg  string
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// ErrSandbox marks a compose setting the sandbox refuses.
var ErrSandbox = errors.New("not allowed in a rehearsal sandbox")

// SandboxError is a FileError for a setting the sandbox refuses.
type SandboxError struct{ FileError }

func (e *SandboxError) Unwrap() error { return ErrSandbox }

func keyError(file string, key []string, format string, args ...any) *FileError {
	return &FileError{File: file, Line: keyLine(file, key...), Key: strings.Join(key, "."), Msg: fmt.Sprintf(format, args...)}
}

func sandboxError(file string, key []string, format string, args ...any) error {
	return &SandboxError{*keyError(file, key, format, args...)}
}

var (
	lineRE      = regexp.MustCompile(`line (\d+)`)
	undefinedRE = regexp.MustCompile(`service "([^"]+)" depends on undefined service "([^"]+)"`)
)

// composeError turns a compose-go load error into a FileError with a line.
func composeError(file string, err error) error {
	msg := err.Error()
	if m := undefinedRE.FindStringSubmatch(msg); m != nil {
		return keyError(file, []string{"services", m[1], "depends_on"}, "depends on undefined service %q", m[2])
	}
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

// keyLine finds the line of a key path in a YAML file; 0 when not found.
// Lines are for people reading the error, so failures are silent.
func keyLine(file string, path ...string) int {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return 0
	}
	node, line := doc.Content[0], 0
	for _, key := range path {
		if node.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == key {
				line = node.Content[i].Line
				node = node.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

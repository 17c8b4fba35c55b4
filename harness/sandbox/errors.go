package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Reasons a compose file is refused; a FileError unwraps to one of them.
var (
	// ErrNotAllowed marks a setting that would let a rehearsal reach the
	// host, production, or another run.
	ErrNotAllowed = errors.New("not allowed in a rehearsal sandbox")
	// ErrNotHonoured marks a compose key the harness does not turn into
	// anything: refused, so that nothing in a compose file is silently dropped.
	ErrNotHonoured = errors.New("not honoured by rehearse")
)

// FileError is a problem in a compose file: it names the file, and the line
// and key where they are known.
type FileError struct {
	File string // the compose file as the user named it
	Line int    // 1-based; 0 when unknown
	Key  string // dotted path such as services.db.privileged; "" when unknown
	Msg  string
	Err  error // ErrNotAllowed, ErrNotHonoured, or nil
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

// Unwrap returns the reason, so errors.Is(err, ErrNotAllowed) works.
func (e *FileError) Unwrap() error { return e.Err }

// At builds a FileError for a key path of file, finding the key's line.
// Path elements are mapping keys, or "[i]" for the i-th item of a sequence.
func At(file string, path []string, format string, args ...any) *FileError {
	return &FileError{File: file, Line: keyLine(file, path...), Key: JoinKey(path), Msg: fmt.Sprintf(format, args...)}
}

// JoinKey renders a key path: services.app.volumes[0].bind.
func JoinKey(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// refuse is a FileError that the sandbox forbids.
func refuse(file string, path []string, format string, args ...any) error {
	e := At(file, path, format, args...)
	e.Err = ErrNotAllowed
	return e
}

// unhonoured is a FileError for a key the harness does not honour.
func unhonoured(file string, path []string, why string) error {
	msg := fmt.Sprintf("%s is %v", keyName(path), ErrNotHonoured)
	if len(path) > 1 && path[0] == "services" {
		msg += fmt.Sprintf(" (service %q)", path[1])
	}
	if why != "" {
		msg += ": " + why
	}
	e := At(file, path, "%s", msg)
	e.Err = ErrNotHonoured
	return e
}

// keyName is the last mapping key of a path: "bind" for volumes[0].bind.
func keyName(path []string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if !strings.HasPrefix(path[i], "[") {
			return path[i]
		}
	}
	return ""
}

// keyLine finds the line of a key path in a YAML file; 0 when not found, or
// the line of the deepest element found. Lines are for people reading the
// error, so failures are silent.
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
		switch {
		case node.Kind == yaml.SequenceNode && strings.HasPrefix(key, "["):
			i, err := strconv.Atoi(strings.Trim(key, "[]"))
			if err != nil || i < 0 || i >= len(node.Content) {
				return line
			}
			node = node.Content[i]
			line = node.Line
		case node.Kind == yaml.MappingNode:
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
		default:
			return line
		}
	}
	return line
}

package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// CheckReferences refuses, before compose-go reads anything, a compose file
// that could make the loader read a host file outside the project directory:
// env_file and label_file (of services and their pre_start hooks), include
// (its paths, env_file and project_directory, and the .env of an included
// project) and extends.file, in the compose file and, recursively, in the
// files it includes or extends. The loader reads those files while it loads,
// before Check sees the project, and quotes their content in its errors and
// puts it in containers' environments. file is the compose file as the user
// named it; its directory is the project directory.
//
// What the check cannot judge exactly as the loader will is refused:
//   - a top-level key other than services, networks, volumes, secrets,
//     configs, name, version, include and x-* (compose-go reads, for
//     example, jobs' extends files before it validates the file);
//   - a path that uses a variable ($) or starts with ~: the loader sets some
//     variables (COMPOSE_PROJECT_NAME) only after this check;
//   - in a file reached through include, an include entry's project_directory
//     or relative env_file: compose-go (v2.16.2) resolves them against the
//     process's working directory, not the project;
//   - an include entry without a path, and a project_directory that is not a
//     directory.
//
// A file that is not valid YAML is refused with the parser's error.
func CheckReferences(file string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	r := &references{user: file, main: abs, project: filepath.Dir(abs), seen: map[string]bool{}}
	return r.scan(abs, r.project, false)
}

// topLevel are the top-level keys a compose file may have; x-* extensions
// are allowed too.
var topLevel = []string{"services", "networks", "volumes", "secrets", "configs", "name", "version", "include"}

// references walks the files the loader would read.
type references struct {
	user    string // the compose file as the user named it
	main    string // the compose file, absolute
	project string // the project directory
	seen    map[string]bool
}

// display names a file of the project the way the user named the compose file.
func (r *references) display(abs string) string {
	if abs == r.main {
		return r.user
	}
	rel, err := filepath.Rel(r.project, abs)
	if err != nil {
		return abs
	}
	return filepath.Join(filepath.Dir(r.user), rel)
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// scan checks one file; workDir is where the loader resolves its relative
// paths (the project or included project's directory, or an extended file's
// own); included is true for every file but the compose file itself.
func (r *references) scan(abs, workDir string, included bool) error {
	if r.seen[abs+"\x00"+workDir] {
		return nil // the loader reports include and extends cycles itself
	}
	r.seen[abs+"\x00"+workDir] = true
	name := r.display(abs)
	data, err := os.ReadFile(abs)
	if err != nil {
		if pe := (*os.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err // the path is already in front
		}
		return &FileError{File: name, Msg: fmt.Sprintf("read: %v", err)}
	}
	w := walker{r: r, file: name, fileDir: filepath.Dir(abs), workDir: workDir, included: included}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			fe := &FileError{File: name, Msg: err.Error()}
			// The last line the parser names is where it gave up.
			if ms := yamlLineRE.FindAllStringSubmatch(err.Error(), -1); ms != nil {
				fe.Line, _ = strconv.Atoi(ms[len(ms)-1][1])
			}
			return fe
		}
		if len(doc.Content) == 0 {
			continue
		}
		if err := checkShape(name, &doc); err != nil {
			return err
		}
		if err := w.document(deref(doc.Content[0])); err != nil {
			return err
		}
	}
}

// walker checks the documents of one file.
type walker struct {
	r                *references
	file             string // as displayed in errors
	fileDir, workDir string
	included         bool // reached through include or extends
}

func (w *walker) document(root *yaml.Node) error {
	for _, kv := range pairs(root) {
		if !slices.Contains(topLevel, kv.key) && !strings.HasPrefix(kv.key, "x-") {
			return &FileError{File: w.file, Line: kv.line, Key: kv.key, Err: ErrNotHonoured,
				Msg: fmt.Sprintf("top-level key %q is %v: only %s and x-* extensions are (the loader would read files it names before the sandbox could check them)", kv.key, ErrNotHonoured, strings.Join(topLevel, ", "))}
		}
	}
	if inc := lookup(root, "include"); inc != nil && inc.Kind == yaml.SequenceNode {
		for i, item := range inc.Content {
			if err := w.include([]string{"include", fmt.Sprintf("[%d]", i)}, deref(item)); err != nil {
				return err
			}
		}
	}
	for _, kv := range pairs(lookup(root, "services")) {
		key := []string{"services", kv.key}
		if err := w.containerFiles(key, kv.value); err != nil {
			return err
		}
		for i, hook := range items(lookup(kv.value, "pre_start")) {
			if err := w.containerFiles(append(key, "pre_start", fmt.Sprintf("[%d]", i)), hook); err != nil {
				return err
			}
		}
		ext := lookup(kv.value, "extends")
		if f := lookup(ext, "file"); f != nil {
			path, err := w.check(append(key, "extends", "file"), "extended file", f)
			if err != nil {
				return err
			}
			if err := w.r.scan(path, filepath.Dir(path), true); err != nil {
				return err
			}
		}
	}
	return nil
}

// containerFiles checks the env_file and label_file of a service or hook.
func (w *walker) containerFiles(key []string, spec *yaml.Node) error {
	for i, f := range items(lookup(spec, "env_file")) {
		k := append(slices.Clip(key), "env_file", fmt.Sprintf("[%d]", i))
		if f.Kind == yaml.MappingNode {
			f, k = lookup(f, "path"), append(k, "path")
		}
		if _, err := w.check(k, "env file", f); err != nil {
			return err
		}
	}
	for i, f := range items(lookup(spec, "label_file")) {
		if _, err := w.check(append(slices.Clip(key), "label_file", fmt.Sprintf("[%d]", i)), "label file", f); err != nil {
			return err
		}
	}
	return nil
}

// include checks one include entry and scans the files it includes.
func (w *walker) include(key []string, item *yaml.Node) error {
	pathNodes, pathKey := []*yaml.Node{item}, key
	var envNodes []*yaml.Node
	var projectDir *yaml.Node
	if item.Kind == yaml.MappingNode {
		pathKey = append(slices.Clip(key), "path")
		pathNodes, envNodes, projectDir = items(lookup(item, "path")), items(lookup(item, "env_file")), lookup(item, "project_directory")
	}
	if len(pathNodes) == 0 {
		// The loader would still read a .env, from the process's directory.
		return &FileError{File: w.file, Line: lineOf(item), Key: JoinKey(key), Msg: "include entry has no path"}
	}
	var includes []string
	for i, n := range pathNodes {
		k := pathKey
		if item.Kind == yaml.MappingNode && isSequence(lookup(item, "path")) {
			k = append(slices.Clip(pathKey), fmt.Sprintf("[%d]", i))
		}
		path, err := w.check(k, "included file", n)
		if err != nil {
			return err
		}
		includes = append(includes, path)
	}
	dir := filepath.Dir(includes[0])
	if projectDir != nil {
		k := append(slices.Clip(key), "project_directory")
		if w.included {
			return nested(w.file, lineOf(projectDir), k, "project_directory")
		}
		d, err := w.check(k, "included project directory", projectDir)
		if err != nil {
			return err
		}
		// The loader takes a file's directory for some paths and the file
		// itself for others: only a directory means one place.
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return &FileError{File: w.file, Line: lineOf(projectDir), Key: JoinKey(k), Msg: fmt.Sprintf("included project directory %q is not a directory", projectDir.Value)}
		}
		dir = d
	}
	for i, n := range envNodes {
		k := append(slices.Clip(key), "env_file")
		if isSequence(lookup(item, "env_file")) {
			k = append(k, fmt.Sprintf("[%d]", i))
		}
		if n.Kind == yaml.ScalarNode && n.Value == os.DevNull {
			continue // the loader's way to say "no .env"
		}
		if w.included && n.Kind == yaml.ScalarNode && !filepath.IsAbs(n.Value) {
			return nested(w.file, n.Line, k, "a relative env_file")
		}
		if _, err := w.check(k, "env file", n); err != nil {
			return err
		}
	}
	if len(envNodes) == 0 {
		// The loader reads the included project's .env, links and all.
		dotEnv := filepath.Join(dir, ".env")
		if _, err := os.Lstat(dotEnv); err == nil && !Inside(w.r.project, dotEnv) {
			return outside(w.file, lineOf(item), key, "the included project's .env", dotEnv, w.r.project)
		}
	}
	for _, path := range includes {
		if err := w.r.scan(path, dir, true); err != nil {
			return err
		}
	}
	return nil
}

// nested refuses an include setting in an included file that compose-go
// resolves against the process's working directory instead of the project.
func nested(file string, line int, key []string, what string) error {
	return &FileError{File: file, Line: line, Key: JoinKey(key), Err: ErrNotAllowed,
		Msg: fmt.Sprintf("%s in an include of an included file is %v: the loader resolves it against the directory rehearse runs in, not the project; include that file from the main compose file instead", what, ErrNotAllowed)}
}

// check refuses a path node that uses a variable or the home directory, or
// that lies outside the project from either directory the loader could
// resolve it against, and returns it resolved against the loader's working
// directory.
func (w *walker) check(key []string, what string, n *yaml.Node) (string, error) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" || n.Value == "" {
		return "", &FileError{File: w.file, Line: lineOf(n), Key: JoinKey(key), Msg: what + " is not a path"}
	}
	value := n.Value
	switch {
	case strings.Contains(value, "$"):
		return "", refuseLine(w.file, n.Line, key, "%s %q uses a variable, which is %v: paths may not use variables in a rehearsal: they are checked before loading, and the loader sets some variables (COMPOSE_PROJECT_NAME) only afterwards", what, value, ErrNotAllowed)
	case strings.HasPrefix(value, "~"):
		return "", refuseLine(w.file, n.Line, key, "%s %q starts with ~, which is %v: the home directory is outside the project", what, value, ErrNotAllowed)
	}
	resolved := value
	if !filepath.IsAbs(value) {
		resolved = filepath.Join(w.workDir, value)
	}
	for _, dir := range []string{w.workDir, w.fileDir} {
		p := value
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if !Inside(w.r.project, p) {
			return "", outside(w.file, n.Line, key, what, value, w.r.project)
		}
	}
	return resolved, nil
}

// refuseLine is a FileError the sandbox forbids at a known line; a service's
// key names the service.
func refuseLine(file string, line int, key []string, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if len(key) > 1 && key[0] == "services" {
		msg += fmt.Sprintf(" (service %q)", key[1])
	}
	return &FileError{File: file, Line: line, Key: JoinKey(key), Msg: msg, Err: ErrNotAllowed}
}

// CheckLoaded refuses a loaded project whose services (or pre_start hooks)
// name an env or label file outside the project directory: the loader has
// read those, so this is a second line behind CheckReferences, which keeps
// it from reading them at all. compose-go does not tell which env files of
// include entries it read; CheckReferences alone guards those.
func CheckLoaded(file string, p *types.Project) error {
	all := maps.Clone(p.Services)
	maps.Copy(all, p.DisabledServices)
	for _, name := range slices.Sorted(maps.Keys(all)) {
		s := all[name]
		specs := []types.ContainerSpec{s.ContainerSpec}
		keys := [][]string{{"services", name}}
		for i, h := range s.PreStart {
			specs = append(specs, h.ContainerSpec)
			keys = append(keys, []string{"services", name, "pre_start", fmt.Sprintf("[%d]", i)})
		}
		for j, spec := range specs {
			for i, f := range spec.EnvFiles {
				if err := CheckInside(file, p.WorkingDir, append(slices.Clip(keys[j]), "env_file", fmt.Sprintf("[%d]", i)), "env file", f.Path); err != nil {
					return err
				}
			}
			for i, f := range spec.LabelFiles {
				if err := CheckInside(file, p.WorkingDir, append(slices.Clip(keys[j]), "label_file", fmt.Sprintf("[%d]", i)), "label file", f); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isSequence(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.SequenceNode
}

func lineOf(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

type pair struct {
	key   string
	line  int // the key's
	value *yaml.Node
}

// pairs lists a mapping's entries, with those merged in by "<<" after its
// own (an own key wins), aliases followed.
func pairs(m *yaml.Node) []pair {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	var own, merged []pair
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], deref(m.Content[i+1])
		if k.Value == "<<" && k.Tag != "!!str" {
			for _, src := range items(v) {
				merged = append(merged, pairs(src)...)
			}
			continue
		}
		own = append(own, pair{k.Value, k.Line, v})
	}
	seen := map[string]bool{}
	var out []pair
	for _, p := range append(own, merged...) {
		if !seen[p.key] {
			seen[p.key] = true
			out = append(out, p)
		}
	}
	return out
}

// lookup is a mapping's value for key, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	for _, p := range pairs(m) {
		if p.key == key {
			return p.value
		}
	}
	return nil
}

// items is a sequence's items, or a lone value as one item; aliases followed.
func items(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	switch {
	case n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null"):
		return nil
	case n.Kind == yaml.SequenceNode:
		out := make([]*yaml.Node, len(n.Content))
		for i, c := range n.Content {
			out[i] = deref(c)
		}
		return out
	default:
		return []*yaml.Node{n}
	}
}

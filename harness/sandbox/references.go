package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/paths"
	"github.com/compose-spec/compose-go/v2/template"
	"go.yaml.in/yaml/v4"
)

// CheckReferences refuses, before compose-go reads anything, a compose file
// that names a host file outside the project directory for the loader
// itself to read: env_file and label_file (of services and their pre_start
// hooks), include (its paths, env_file and project_directory, and the .env
// of an included project) and extends.file, in the compose file and,
// recursively, in the files it includes or extends. The loader reads those
// files while it loads, before Check sees the project, and quotes their
// content in its errors. file is the compose file as the user named it; its
// directory is the project directory; env is the interpolation environment
// the loader will use, so ${VAR} in a path is judged as the loader reads it.
// A file that is not valid YAML is refused with the parser's error.
func CheckReferences(file string, env map[string]string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	r := &references{user: file, main: abs, project: filepath.Dir(abs), seen: map[string]bool{}}
	return r.scan(abs, r.project, env)
}

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
// paths (the project or included project's directory, or an extended
// file's own), env its interpolation environment.
func (r *references) scan(abs, workDir string, env map[string]string) error {
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
	w := walker{r: r, file: name, fileDir: filepath.Dir(abs), workDir: workDir, env: env}
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
	env              map[string]string
}

func (w *walker) document(root *yaml.Node) error {
	if inc := lookup(root, "include"); inc != nil && inc.Kind == yaml.SequenceNode {
		for i, item := range inc.Content {
			if err := w.include([]string{"include", fmt.Sprintf("[%d]", i)}, deref(item)); err != nil {
				return err
			}
		}
	}
	services := lookup(root, "services")
	for _, kv := range pairs(services) {
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
			if err := w.r.scan(path, filepath.Dir(path), w.env); err != nil {
				return err
			}
		}
	}
	return nil
}

// containerFiles checks the env_file and label_file of a service or hook.
func (w *walker) containerFiles(key []string, spec *yaml.Node) error {
	for i, f := range items(lookup(spec, "env_file")) {
		k := append(key, "env_file", fmt.Sprintf("[%d]", i))
		if f.Kind == yaml.MappingNode {
			f, k = lookup(f, "path"), append(k, "path")
		}
		if _, err := w.check(k, "env file", f); err != nil {
			return err
		}
	}
	for i, f := range items(lookup(spec, "label_file")) {
		if _, err := w.check(append(key, "label_file", fmt.Sprintf("[%d]", i)), "label file", f); err != nil {
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
		pathKey = append(key, "path")
		pathNodes, envNodes, projectDir = items(lookup(item, "path")), items(lookup(item, "env_file")), lookup(item, "project_directory")
	}
	var includes []string
	for i, n := range pathNodes {
		k := pathKey
		if item.Kind == yaml.MappingNode && isSequence(lookup(item, "path")) {
			k = append(pathKey, fmt.Sprintf("[%d]", i))
		}
		path, err := w.check(k, "included file", n)
		if err != nil {
			return err
		}
		includes = append(includes, path)
	}
	if len(includes) == 0 {
		return nil
	}
	dir := filepath.Dir(includes[0])
	if projectDir != nil {
		d, err := w.check(append(key, "project_directory"), "included project directory", projectDir)
		if err != nil {
			return err
		}
		dir = d
	}
	var envFiles []string
	for i, n := range envNodes {
		k := append(key, "env_file")
		if isSequence(lookup(item, "env_file")) {
			k = append(k, fmt.Sprintf("[%d]", i))
		}
		if n.Value == os.DevNull {
			continue // the loader's way to say "no .env"
		}
		path, err := w.check(k, "env file", n)
		if err != nil {
			return err
		}
		envFiles = append(envFiles, path)
	}
	if len(envNodes) == 0 {
		// The loader reads the included project's .env, links and all.
		dotEnv := filepath.Join(dir, ".env")
		if st, err := os.Lstat(dotEnv); err == nil {
			if !Inside(w.r.project, dotEnv) {
				return outside(w.file, lineOf(item), key, "the included project's .env", dotEnv, w.r.project)
			}
			if st, err = os.Stat(dotEnv); err == nil && !st.IsDir() {
				envFiles = append(envFiles, dotEnv)
			}
		}
	}
	env := map[string]string{}
	for k, v := range w.env {
		env[k] = v
	}
	if len(envFiles) > 0 {
		// Inside the project: their content may appear in errors.
		more, err := dotenv.GetEnvFromFile(env, envFiles)
		if err != nil {
			return At(w.file, key, "include: %v", err)
		}
		for k, v := range more {
			if _, set := env[k]; !set {
				env[k] = v
			}
		}
	}
	for _, path := range includes {
		if err := w.r.scan(path, dir, env); err != nil {
			return err
		}
	}
	return nil
}

// check refuses a path node, once interpolated, that lies outside the
// project from either directory the loader could resolve it against, and
// returns it resolved against the loader's working directory.
func (w *walker) check(key []string, what string, n *yaml.Node) (string, error) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", &FileError{File: w.file, Line: lineOf(n), Key: JoinKey(key), Msg: what + " is not a path"}
	}
	value, err := template.Substitute(n.Value, func(k string) (string, bool) {
		v, ok := w.env[k]
		return v, ok
	})
	if err != nil {
		return "", &FileError{File: w.file, Line: n.Line, Key: JoinKey(key), Msg: fmt.Sprintf("interpolate %s: %v", what, err)}
	}
	value = paths.ExpandUser(value)
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
			return "", outside(w.file, n.Line, key, what, n.Value, w.r.project)
		}
	}
	return resolved, nil
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
		own = append(own, pair{k.Value, v})
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

// Package dataset seeds PostgreSQL services at production scale: a schema,
// deterministic generators (same seed, same rows) loaded with COPY, and
// plain .sql / .sql.gz dump files.
package dataset

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// FileName is the definition file inside a dataset directory.
const FileName = "dataset.yaml"

// ErrNotFound means no dataset of that name exists.
var ErrNotFound = errors.New("dataset not found")

// Spec is a dataset definition (datasets/NAME/dataset.yaml).
type Spec struct {
	Name     string      `yaml:"-"`
	Dir      string      `yaml:"-"`
	File     string      `yaml:"-"`
	Service  string      `yaml:"service"`  // the PostgreSQL service to load into
	Database string      `yaml:"database"` // default: the service's POSTGRES_DB
	Schema   string      `yaml:"schema"`   // SQL run before loading (relative to Dir)
	Files    []string    `yaml:"files"`    // .sql / .sql.gz dumps run after the schema
	Seed     uint64      `yaml:"seed"`
	Main     string      `yaml:"main"` // the table whose row count is the scale
	Tables   []TableSpec `yaml:"tables"`

	def []byte // the definition file's bytes as Parse read them (Digest hashes them)
}

// TableSpec generates one table.
type TableSpec struct {
	Name    string    `yaml:"name"`
	Rows    string    `yaml:"rows"` // N, "scale", "scale/N", "scale*N"
	Per     string    `yaml:"per"`  // "PARENT MIN..MAX": rows per parent row
	Columns yaml.Node `yaml:"columns"`
	columns []columnSpec
}

type columnSpec struct {
	name string
	gen  generator
}

// Find locates a dataset by name: NAME may be a directory holding
// dataset.yaml, a dataset.yaml file, or a name looked up as
// datasets/NAME under each search directory in turn.
func Find(name string, searchDirs ...string) (*Spec, error) {
	candidates := []string{}
	if filepath.IsAbs(name) || strings.ContainsRune(name, os.PathSeparator) {
		candidates = append(candidates, name)
	}
	for _, d := range searchDirs {
		candidates = append(candidates, filepath.Join(d, "datasets", name), filepath.Join(d, name))
	}
	for _, c := range candidates {
		st, err := os.Stat(c)
		if err != nil {
			continue
		}
		if st.IsDir() {
			c = filepath.Join(c, FileName)
			if _, err := os.Stat(c); err != nil {
				continue
			}
		}
		return Parse(c, name)
	}
	return nil, fmt.Errorf("%w: %q (looked for datasets/%s/%s under %s)", ErrNotFound, name, name, FileName, strings.Join(searchDirs, ", "))
}

// Parse reads a dataset definition file.
func Parse(file, name string) (*Spec, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var s Spec
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	s.Name, s.File, s.Dir, s.def = name, file, filepath.Dir(file), data
	if s.Service == "" {
		return nil, fmt.Errorf("%s: service: required (the PostgreSQL service to load into)", file)
	}
	seen := map[string]int{}
	for i := range s.Tables {
		t := &s.Tables[i]
		if t.Name == "" {
			return nil, fmt.Errorf("%s: tables[%d]: name required", file, i)
		}
		if (t.Rows == "") == (t.Per == "") {
			return nil, fmt.Errorf("%s:%d: table %s: give exactly one of rows and per", file, t.Columns.Line, t.Name)
		}
		if t.Per != "" {
			parent, _, err := parsePer(t.Per)
			if err != nil {
				return nil, fmt.Errorf("%s: table %s: per: %w", file, t.Name, err)
			}
			if _, ok := seen[parent]; !ok {
				return nil, fmt.Errorf("%s: table %s: per: parent %q must be a table listed before it", file, t.Name, parent)
			}
		} else if _, err := rowCount(t.Rows, 1); err != nil {
			return nil, fmt.Errorf("%s: table %s: rows: %w", file, t.Name, err)
		}
		if t.Columns.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: table %s: columns: a mapping of column: generator is required", file, t.Name)
		}
		for j := 0; j+1 < len(t.Columns.Content); j += 2 {
			k, v := t.Columns.Content[j], t.Columns.Content[j+1]
			g, err := parseGenerator(v.Value)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: table %s, column %s: %w", file, v.Line, t.Name, k.Value, err)
			}
			if r, ok := g.(refGen); ok {
				if _, ok := seen[r.table]; !ok {
					return nil, fmt.Errorf("%s:%d: table %s, column %s: ref %q must name a table listed before it", file, v.Line, t.Name, k.Value, r.table)
				}
			}
			if _, ok := g.(parentGen); ok && t.Per == "" {
				return nil, fmt.Errorf("%s:%d: table %s, column %s: parent needs per:", file, v.Line, t.Name, k.Value)
			}
			t.columns = append(t.columns, columnSpec{name: k.Value, gen: g})
		}
		seen[t.Name] = i
	}
	if s.Main != "" {
		if _, ok := seen[s.Main]; !ok {
			return nil, fmt.Errorf("%s: main: %q is not one of the tables", file, s.Main)
		}
	}
	for _, f := range append([]string{s.Schema}, s.Files...) {
		if f == "" {
			continue
		}
		if err := s.statFile(f); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, f, err)
		}
	}
	return &s, nil
}

// statFile checks that a file the dataset names is a regular file inside
// its directory.
func (s *Spec) statFile(name string) error {
	_, err := s.readFile(name, false)
	return err
}

// readFile reads a file the dataset names (its schema, a dump) through an
// os.Root on the dataset's directory, so that neither `..` nor a symbolic
// link reaches a file outside it. It opens without blocking and reads only
// regular files, so a fifo cannot hang a load; with content false it only
// checks.
func (s *Spec) readFile(name string, content bool) ([]byte, error) {
	root, err := os.OpenRoot(s.Dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", name, st.Mode().Type())
	}
	if !content {
		return nil, nil
	}
	return io.ReadAll(f)
}

// rowCount evaluates a rows expression at a scale.
func rowCount(expr string, scale int64) (int64, error) {
	expr = strings.ReplaceAll(expr, " ", "")
	if n, err := strconv.ParseInt(expr, 10, 64); err == nil {
		return n, nil
	}
	if expr == "scale" {
		return scale, nil
	}
	for _, op := range []string{"/", "*"} {
		if rest, ok := strings.CutPrefix(expr, "scale"+op); ok {
			k, err := strconv.ParseInt(rest, 10, 64)
			if err != nil || k <= 0 {
				break
			}
			if op == "/" {
				return max(1, scale/k), nil
			}
			return scale * k, nil
		}
	}
	return 0, fmt.Errorf("%q: use a number, scale, scale/N or scale*N", expr)
}

func parsePer(per string) (parent string, r [2]int64, err error) {
	f := strings.Fields(per)
	if len(f) != 2 {
		return "", r, fmt.Errorf("%q: use PARENT MIN..MAX", per)
	}
	r, err = parseIntRange(f[1])
	return f[0], r, err
}

func parseIntRange(s string) ([2]int64, error) {
	lo, hi, ok := strings.Cut(s, "..")
	a, err1 := strconv.ParseInt(lo, 10, 64)
	b, err2 := strconv.ParseInt(hi, 10, 64)
	if !ok || err1 != nil || err2 != nil || a > b {
		return [2]int64{}, fmt.Errorf("%q: use MIN..MAX", s)
	}
	return [2]int64{a, b}, nil
}

func parseTimeRange(s string) ([2]time.Time, error) {
	lo, hi, ok := strings.Cut(s, "..")
	a, err1 := time.Parse(time.DateOnly, lo)
	b, err2 := time.Parse(time.DateOnly, hi)
	if !ok || err1 != nil || err2 != nil || !a.Before(b) {
		return [2]time.Time{}, fmt.Errorf("%q: use YYYY-MM-DD..YYYY-MM-DD", s)
	}
	return [2]time.Time{a, b}, nil
}

package preflight

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// configKey is one key a configuration file sets, where it sets it.
type configKey struct {
	Key  string // dotted: a nested YAML key or an INI section's key is section.key
	Line int
}

// templateSuffixes mark a template: the format is the name's without it
// (billing.conf.tmpl is read as a .conf file).
var templateSuffixes = []string{".tmpl", ".tpl", ".gotmpl", ".template", ".j2", ".jinja", ".jinja2", ".erb", ".in"}

// configExts are the extensions of configuration files, with their format.
var configExts = map[string]string{
	".yaml": "yaml", ".yml": "yaml", ".json": "yaml",
	".conf": "keyvalue", ".cfg": "keyvalue", ".ini": "keyvalue", ".env": "keyvalue",
	".properties": "keyvalue", ".toml": "keyvalue", ".cnf": "keyvalue",
}

// configFormat says how a file is read for its keys: "yaml", "keyvalue",
// or "" when it is not a configuration file. A template is one; its
// format is its inner name's (keyvalue when that says nothing).
func configFormat(name string) (format string, template bool) {
	base := strings.ToLower(path.Base(name))
	for _, s := range templateSuffixes {
		if inner, ok := strings.CutSuffix(base, s); ok && inner != "" {
			if f := configExts[path.Ext(inner)]; f != "" {
				return f, true
			}
			return "keyvalue", true
		}
	}
	return configExts[path.Ext(base)], false
}

// templateAction is a template's own syntax, which is not the file's:
// Go and Jinja actions, ERB tags.
var templateAction = regexp.MustCompile(`(?s)\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|<%.*?%>`)

// blankActions replaces template actions with underscores, keeping their
// newlines so that lines stay where they were.
func blankActions(data []byte) []byte {
	return templateAction.ReplaceAllFunc(data, func(m []byte) []byte {
		out := bytes.Repeat([]byte("_"), len(m))
		for i, c := range m {
			if c == '\n' {
				out[i] = '\n'
			}
		}
		return out
	})
}

// configKeys lists the keys a configuration file sets. A YAML or JSON file
// is read with the YAML parser (nested keys dotted); others as key = value
// or key: value lines with [section] headers (INI, .conf, .env, Java
// properties, flat TOML). A template's actions are blanked first; a
// template that still does not parse as YAML is read line by line.
func configKeys(name string, data []byte) ([]configKey, error) {
	format, template := configFormat(name)
	if template {
		data = blankActions(data)
	}
	if format == "yaml" {
		keys, err := yamlKeys(data)
		if err == nil || !template {
			return keys, err
		}
		return yamlLineKeys(data), nil // a template's {{ if }} lines are no YAML
	}
	return keyValueKeys(data), nil
}

// yamlKeyLine is a line of block YAML that sets a key.
var yamlKeyLine = regexp.MustCompile(`^(\s*)(?:- )?["']?([A-Za-z0-9_.\-]+)["']?\s*:(?:\s|$)`)

// yamlLineKeys reads a YAML template that does not parse as YAML line by
// line, nesting keys by indentation.
func yamlLineKeys(data []byte) []configKey {
	type level struct {
		indent int
		key    string
	}
	var out []configKey
	var stack []level
	for i, line := range strings.Split(string(data), "\n") {
		m := yamlKeyLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		indent := len(m[1])
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		k := m[2]
		if len(stack) > 0 {
			k = stack[len(stack)-1].key + "." + k
		}
		stack = append(stack, level{indent, k})
		out = append(out, configKey{Key: k, Line: i + 1})
	}
	return out
}

func yamlKeys(data []byte) ([]configKey, error) {
	var out []configKey
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		var visit func(n *yaml.Node, prefix string)
		visit = func(n *yaml.Node, prefix string) {
			switch n.Kind {
			case yaml.DocumentNode, yaml.SequenceNode:
				for _, c := range n.Content {
					visit(c, prefix)
				}
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					k := n.Content[i].Value
					if prefix != "" {
						k = prefix + "." + k
					}
					out = append(out, configKey{Key: k, Line: n.Content[i].Line})
					visit(n.Content[i+1], k)
				}
			}
		}
		visit(&doc, "")
	}
}

// keyName is what a key = value line's key may be.
var keyName = regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`)

func keyValueKeys(data []byte) []configKey {
	var out []configKey
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), len(data)+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "", line[0] == '#', line[0] == ';', strings.HasPrefix(line, "//"), line[0] == '!':
			continue
		case line[0] == '[':
			section = strings.Trim(line, "[] \t")
			if i := strings.IndexAny(section, "#;"); i >= 0 {
				section = strings.TrimSpace(section[:i])
			}
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			continue
		}
		k := strings.Trim(strings.TrimSpace(line[:i]), `"'`)
		if !keyName.MatchString(k) {
			continue
		}
		if section != "" {
			k = section + "." + k
		}
		out = append(out, configKey{Key: k, Line: n})
	}
	return out
}

// describeKey is how a finding names a key of the matrix.
func describeKey(d Deprecation, sev Severity, target string) string {
	var b strings.Builder
	if sev == Error {
		fmt.Fprintf(&b, "%s was removed in %s", d.Key, d.RemovedIn)
		if d.DeprecatedIn != "" {
			fmt.Fprintf(&b, " (deprecated since %s)", d.DeprecatedIn)
		}
		fmt.Fprintf(&b, "; this package installs %s", target)
	} else {
		fmt.Fprintf(&b, "%s is deprecated since %s", d.Key, d.DeprecatedIn)
		if d.RemovedIn != "" {
			fmt.Fprintf(&b, " and removed in %s", d.RemovedIn)
		}
	}
	return b.String()
}

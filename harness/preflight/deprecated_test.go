package preflight

import (
	"strings"
	"testing"
)

func TestDeprecatedRule(t *testing.T) {
	m, err := ParseMatrix("test", []byte(`
deprecated-keys:
  - {key: old_flag, component: billing, deprecated-in: "2.2", removed-in: "3.0", replacement: new_flag}
  - {key: batch_size, deprecated-in: "3.0", removed-in: "4.0", replacement: batch_rows}
  - {key: db.host, deprecated-in: v2.0.0, replacement: db.url}
  - {key: other_product_key, component: invoicing, removed-in: "1.0"}
`))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		sev  Severity
		line int
	}
	for _, c := range []struct {
		name, file, text, target string
		want                     []want
	}{
		{"removed at the target: error", "app.conf", "old_flag = 1\n", "3.0", []want{{Error, 1}}},
		{"removed before the target", "app.conf", "old_flag = 1\n", "3.1.2", []want{{Error, 1}}},
		{"deprecated, not removed yet: warning", "app.conf", "# x\nold_flag = 1\n", "2.9", []want{{Warning, 2}}},
		{"before the deprecation: nothing", "app.conf", "old_flag = 1\n", "2.1", nil},
		{"deprecated at the target", "app.conf.tmpl", "batch_size = {{ .Batch }}\n", "3.0", []want{{Warning, 1}}},
		{"an INI section", "app.ini", "[db]\nhost = x\n", "3.0", []want{{Warning, 2}}},
		{"nested YAML", "app.yaml", "db:\n  port: 5\n  host: x\n", "3.0", []want{{Warning, 3}}},
		{"a YAML template", "app.yaml.tmpl", "db:\n{{ if .X }}\n  host: {{ .Host }}\n{{ end }}\n", "3.0", []want{{Warning, 3}}},
		{"JSON", "app.json", "{\n  \"old_flag\": true\n}\n", "3.0", []want{{Error, 2}}},
		{"env file", "app.env", "export old_flag=1\n", "3.0", []want{{Error, 1}}},
		{"another product's key", "app.conf", "other_product_key = 1\n", "9.0", nil},
		{"a key only in a value", "app.conf", "comment = old_flag\n", "3.0", nil},
		{"a commented key", "app.conf", "# old_flag = 1\n", "3.0", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newDeprecatedRule(m, "billing", c.target)
			fs := r.check(c.file, c.file, []byte(c.text))
			if len(fs) != len(c.want) {
				t.Fatalf("want %v, got%s", c.want, show(fs))
			}
			for i, w := range c.want {
				if f := fs[i]; f.Rule != RuleDeprecatedConfig || f.Severity != w.sev || f.Line != w.line || f.File != c.file || f.Fix == "" {
					t.Errorf("want %v, got%s", w, show(fs))
				}
			}
		})
	}
	t.Run("an environment's file is named in the message", func(t *testing.T) {
		fs := newDeprecatedRule(m, "billing", "3.0").check("", "billing:/etc/app.conf", []byte("\nold_flag=1\n"))
		if len(fs) != 1 || fs[0].File != "" || fs[0].Line != 0 || !strings.HasPrefix(fs[0].Message, "billing:/etc/app.conf:2: old_flag was removed in 3.0") {
			t.Errorf("got%s", show(fs))
		}
	})
	t.Run("a malformed YAML file is a parse-error", func(t *testing.T) {
		fs := newDeprecatedRule(m, "billing", "3.0").check("app.yaml", "app.yaml", []byte("a: [\nold_flag: 1\n"))
		if len(fs) != 1 || fs[0].Rule != RuleParseError || fs[0].Line == 0 {
			t.Errorf("got%s", show(fs))
		}
	})
}

func TestParseMatrix(t *testing.T) {
	for _, c := range []struct{ name, text, err string }{
		{"ok", "deprecated-keys:\n  - {key: a, deprecated-in: '1.0', removed-in: '2.0'}\n", ""},
		{"empty", "", ""},
		{"no key", "deprecated-keys:\n  - {deprecated-in: '1.0'}\n", "key is required"},
		{"no version", "deprecated-keys:\n  - {key: a}\n", "give deprecated-in, removed-in or both"},
		{"not a version", "deprecated-keys:\n  - {key: a, removed-in: soon}\n", `removed-in "soon" is not a version`},
		{"removed first", "deprecated-keys:\n  - {key: a, deprecated-in: '2.0', removed-in: '1.9'}\n", "before deprecated-in"},
		{"unknown field", "deprecated-keys:\n  - {key: a, removed: '1.0'}\n", "field removed not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseMatrix("m.yaml", []byte(c.text))
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "m.yaml")) {
				t.Errorf("got %v, want %q", err, c.err)
			}
		})
	}
}

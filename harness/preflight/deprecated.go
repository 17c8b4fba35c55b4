package preflight

import (
	"fmt"
)

// deprecatedRule is deprecated-config: a configuration key that the
// version being installed deprecated or removed, in the package's own
// templates or in the environment's configuration files. A removed key is
// the quiet failure of upgrades: the new version starts, ignores the
// setting (or refuses to start), and production runs on a default nobody
// chose. The matrix says which keys and since when; a target version equal
// to the removal version counts as removed (as pluto counts it).
type deprecatedRule struct {
	keys   map[string][]Deprecation
	target string // the version the package installs
}

// newDeprecatedRule keeps the matrix's keys that apply to the product
// (component empty or equal to it); nil when there is nothing to judge.
func newDeprecatedRule(m *Matrix, product, target string) *deprecatedRule {
	if m == nil || target == "" {
		return nil
	}
	r := &deprecatedRule{keys: map[string][]Deprecation{}, target: target}
	for _, d := range m.Keys {
		if d.Component == "" || d.Component == product {
			r.keys[d.Key] = append(r.keys[d.Key], d)
		}
	}
	return r
}

// check reads one configuration file. file and line locate findings in the
// package; where names the file in messages (an environment's file has no
// package path: file is "" and where is service:path).
func (r *deprecatedRule) check(file, where string, data []byte) []Finding {
	keys, err := configKeys(where, data)
	var out []Finding
	if err != nil {
		out = append(out, Finding{Rule: RuleParseError, Severity: Warning, File: file, Line: yamlErrorLine(err),
			Message: fmt.Sprintf("%s: not readable as configuration: %v; its keys were not checked", where, err),
			Fix:     "fix the file's syntax"})
	}
	for _, k := range keys {
		for _, d := range r.keys[k.Key] {
			sev, ok := d.status(r.target)
			if !ok {
				continue
			}
			f := Finding{Rule: RuleDeprecatedConfig, Severity: sev, File: file, Line: k.Line,
				Message: describeKey(d, sev, r.target), Fix: fixFor(d)}
			if file == "" {
				f.Line = 0
				f.Message = fmt.Sprintf("%s:%d: %s", where, k.Line, f.Message)
			}
			out = append(out, f)
		}
	}
	return out
}

func fixFor(d Deprecation) string {
	if d.Replacement != "" {
		return fmt.Sprintf("replace %s with %s", d.Key, d.Replacement)
	}
	return fmt.Sprintf("remove %s", d.Key)
}

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// billingPackages makes sure the bundled packages are built (make
// packages) and returns out/ at the repository root.
func billingPackages(t *testing.T) string {
	t.Helper()
	out, err := filepath.Abs(filepath.Join("..", "..", "out"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "packages", "billing-3.0-as-shipped.zip.p7s")); err != nil {
		cmd := exec.Command("go", "run", "./fixtures/billing/packages/build", "-out", "out")
		cmd.Dir = filepath.Join("..", "..")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the packages: %v\n%s", err, b)
		}
	}
	return out
}

func TestPreflightCommand(t *testing.T) {
	out := billingPackages(t)
	shipped := filepath.Join(out, "packages", "billing-3.0-as-shipped.zip")
	trust := []string{"--trust", filepath.Join(out, "pki", "old-root.pem"), "--chain", filepath.Join(out, "pki", "cross-chain.pem")}
	matrix := []string{"--matrix", filepath.Join("..", "..", "fixtures", "billing", "deprecations.yaml")}

	t.Run("usage errors exit 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"preflight"},
			{"preflight", shipped, "--format", "xml"},
			{"preflight", filepath.Join(out, "nope.zip"), "--no-verify"},
			{"preflight", shipped},                        // an archive needs --trust (or --no-verify)
			{"preflight", shipped, "--no-verify", "--up"}, // --up needs -f
			{"preflight", shipped, "--no-verify", "--matrix", filepath.Join(out, "nope.yaml")},
			{"preflight", shipped, "--no-verify", "-f", filepath.Join(out, "nope-compose.yaml")}, // a missing compose file
			{"preflight", shipped, "--usage", "nope", "--trust", filepath.Join(out, "pki", "old-root.pem")},
		} {
			if r := rehearse(t, args...); r.code != exitUsage {
				t.Errorf("%q: exit %d, want %d\n%s%s", args, r.code, exitUsage, r.stdout, r.stderr)
			}
		}
	})

	t.Run("untrusted exit 1", func(t *testing.T) {
		r := rehearse(t, "preflight", shipped, "--trust", filepath.Join(out, "pki", "old-root.pem"))
		if r.code != exitFailure || !strings.Contains(r.stderr, "unknown-authority") || r.stdout != "" {
			t.Errorf("without the cross chain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("json", func(t *testing.T) {
		r := rehearse(t, slices.Concat([]string{"preflight", shipped, "--format", "json"}, trust, matrix)...)
		if r.code != exitFailure {
			t.Fatalf("as shipped: exit %d, want %d\n%s%s", r.code, exitFailure, r.stdout, r.stderr)
		}
		var doc map[string][]map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc) != 1 || doc["findings"] == nil {
			t.Fatalf("not {\"findings\": [...]}: %v\n%s", err, r.stdout)
		}
		rules := map[string]bool{}
		for _, f := range doc["findings"] {
			var keys []string
			for k := range f {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"file", "fix", "line", "message", "rule", "severity"}) {
				t.Errorf("finding keys %q", keys)
			}
			rules[f["rule"].(string)+" "+f["file"].(string)] = true
		}
		for _, want := range []string{"sudo upgrade.yaml", "hardcoded-credential config/billing.conf.tmpl", "deprecated-config config/billing.conf.tmpl", "scheduled-task cron/billing-report"} {
			if !rules[want] {
				t.Errorf("no %s in %s", want, r.stdout)
			}
		}
	})

	t.Run("no errors exit 0, an empty list", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "upgrade.yaml"), []byte("name: x\nversion: \"1.1\"\nservice: app\nsteps:\n  - name: hello\n    command: echo hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := rehearse(t, "preflight", dir, "--format", "json")
		if r.code != exitOK || strings.TrimSpace(r.stdout) != "{\n  \"findings\": []\n}" {
			t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "is a directory: no signature to verify") {
			t.Errorf("the checks that apply to a directory are not said: %s", r.stderr)
		}
		if r := rehearse(t, "preflight", dir); r.code != exitOK || !strings.Contains(r.stdout, "0 findings") {
			t.Errorf("text: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "installed version are not checked") {
			t.Errorf("without -f the unchecked installed version is not said: %s", r.stderr)
		}
		// --installed-version is checked without an environment: the
		// note does not say otherwise.
		r = rehearse(t, "preflight", dir, "--installed-version", "1.0")
		if r.code != exitOK || strings.Contains(r.stderr, "installed version") || !strings.Contains(r.stderr, "the environment's configuration are not checked") {
			t.Errorf("--installed-version: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("sarif", func(t *testing.T) {
		r := rehearse(t, slices.Concat([]string{"preflight", shipped, "--format", "sarif"}, trust, matrix)...)
		if r.code != exitFailure {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		checkSARIF(t, []byte(r.stdout))
	})
}

// checkSARIF checks a log against what the SARIF 2.1.0 schema requires of
// the objects rehearse writes: sarifLog (version, runs), run (tool),
// tool (driver), toolComponent (name), reportingDescriptor (id), result
// (message with text; level from its enum; ruleId naming a rule),
// physicalLocation and region (startLine >= 1), artifactLocation (a
// relative uri).
func checkSARIF(t *testing.T, data []byte) {
	t.Helper()
	var log map[string]any
	if err := json.Unmarshal(data, &log); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	obj := func(v any, what string) map[string]any {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s is not an object: %v", what, v)
		}
		return m
	}
	arr := func(v any, what string) []any {
		a, ok := v.([]any)
		if !ok {
			t.Fatalf("%s is not an array: %v", what, v)
		}
		return a
	}
	str := func(m map[string]any, key, what string) string {
		s, ok := m[key].(string)
		if !ok || s == "" {
			t.Fatalf("%s.%s is required (a non-empty string): %v", what, key, m[key])
		}
		return s
	}
	if v := str(log, "version", "sarifLog"); v != "2.1.0" {
		t.Errorf("version %q", v)
	}
	runs := arr(log["runs"], "runs")
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	run := obj(runs[0], "runs[0]")
	driver := obj(obj(run["tool"], "tool")["driver"], "tool.driver")
	if str(driver, "name", "driver") != "rehearse" {
		t.Errorf("driver name %v", driver["name"])
	}
	ids := map[string]bool{}
	for _, r := range arr(driver["rules"], "driver.rules") {
		rule := obj(r, "rule")
		ids[str(rule, "id", "rule")] = true
		str(obj(rule["help"], "rule help"), "text", "rule help")
	}
	results := arr(run["results"], "results")
	if len(results) == 0 {
		t.Fatal("no results")
	}
	for _, x := range results {
		res := obj(x, "result")
		str(obj(res["message"], "message"), "text", "result.message")
		if id := str(res, "ruleId", "result"); !ids[id] {
			t.Errorf("ruleId %q is not among the driver's rules", id)
		}
		if lv := str(res, "level", "result"); !slices.Contains([]string{"none", "note", "warning", "error"}, lv) {
			t.Errorf("level %q", lv)
		}
		locs, _ := res["locations"].([]any)
		for _, l := range locs {
			pl := obj(obj(l, "location")["physicalLocation"], "physicalLocation")
			uri := str(obj(pl["artifactLocation"], "artifactLocation"), "uri", "artifactLocation")
			if strings.HasPrefix(uri, "/") || strings.Contains(uri, ":") {
				t.Errorf("uri %q is not relative to the package", uri)
			}
			if reg, ok := pl["region"]; ok {
				if n, ok := obj(reg, "region")["startLine"].(float64); !ok || n < 1 {
					t.Errorf("region.startLine %v", obj(reg, "region")["startLine"])
				}
			}
		}
	}
}

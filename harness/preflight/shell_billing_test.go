package preflight

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// billingPackage is the bundled billing-3.0 package, as shipped or as
// rehearsed.
func billingPackage(t *testing.T, which string) string {
	t.Helper()
	return filepath.Join("..", "..", "fixtures", "billing", "packages", "billing-3.0", which)
}

// manifestCommands are the step commands of an upgrade.yaml with the
// line where each command's text starts (a block scalar's on the next
// line), read here with yaml.v3 so that this test needs nothing but the
// shell rules.
func manifestCommands(t *testing.T, src []byte) (cmds []string, lines []int) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatalf("upgrade.yaml: %v", err)
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if list := top.Content[i+1]; list.Kind == yaml.SequenceNode {
			for _, step := range list.Content {
				for j := 0; j+1 < len(step.Content); j += 2 {
					if step.Content[j].Value == "command" {
						cmd := step.Content[j+1]
						line := cmd.Line
						if cmd.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
							line++
						}
						cmds, lines = append(cmds, cmd.Value), append(lines, line)
					}
				}
			}
		}
	}
	return cmds, lines
}

// checkBilling runs the shell rules on a billing package's step commands
// and its cron file, the way the package check does.
func checkBilling(t *testing.T, which string, env ShellEnv) []Finding {
	t.Helper()
	dir := billingPackage(t, which)
	src, err := os.ReadFile(filepath.Join(dir, "upgrade.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []Finding
	cmds, lines := manifestCommands(t, src)
	for i, cmd := range cmds {
		out = append(out, CheckScript("upgrade.yaml", lines[i], []byte(cmd), env)...)
	}
	cron, err := os.ReadFile(filepath.Join(dir, "cron", "billing-report"))
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, env.CheckScheduledFile("cron/billing-report", cron)...)
	Sort(out)
	return out
}

// billingEnv is what the billing environment's hosts know: the 3.0 unit
// name, the compose services.
var billingEnv = ShellEnv{
	Units: map[string]bool{"billing-api.service": true, "cron.service": true, "ssh.service": true},
	Hosts: []string{"billing", "db", "invoicing", "gateway"},
}

func TestShellBillingPackage(t *testing.T) {
	type want struct {
		file, rule string
		line       int
		in         string // a word of the message
	}
	for _, tc := range []struct {
		which string
		want  []want
	}{
		{"as-shipped", []want{
			{"cron/billing-report", RuleExternalEndpoint, 2, "reports.billing-vendor.example"},
			{"cron/billing-report", RuleScheduledTask, 2, "15 2 * * *"},
			{"upgrade.yaml", RuleSudo, 23, "sudo systemctl restart billing.service"},
			{"upgrade.yaml", RuleUnknownUnit, 23, "billing.service"},
		}},
		{"rehearsed", []want{
			{"cron/billing-report", RuleExternalEndpoint, 2, "reports.billing-vendor.example"},
			{"cron/billing-report", RuleScheduledTask, 2, "15 2 * * *"},
		}},
	} {
		t.Run(tc.which, func(t *testing.T) {
			got := checkBilling(t, tc.which, billingEnv)
			for _, f := range got {
				t.Logf("%s:%d %s %s: %s", f.File, f.Line, f.Severity, f.Rule, f.Message)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d findings, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.File != w.file || g.Rule != w.rule || g.Line != w.line || !strings.Contains(g.Message, w.in) {
					t.Errorf("finding %d = %s:%d %s %q, want %s:%d %s with %q", i, g.File, g.Line, g.Rule, g.Message, w.file, w.line, w.rule, w.in)
				}
			}
			if which := tc.which; which == "rehearsed" && HasErrors(got) {
				t.Errorf("the rehearsed package has errors: %v", got)
			}
		})
	}
}

// ExampleCheckScript shows the shell rules on the as-shipped billing
// package's restart step.
func ExampleCheckScript() {
	env := ShellEnv{Units: map[string]bool{"billing-api.service": true}}
	for _, f := range CheckScript("upgrade.yaml", 23, []byte("sudo systemctl restart billing.service"), env) {
		fmt.Printf("%s:%d %s %s: %s\n", f.File, f.Line, f.Severity, f.Rule, f.Message)
	}
	// Output:
	// upgrade.yaml:23 error sudo: `sudo systemctl restart billing.service` switches to root inside the script
	// upgrade.yaml:23 error unknown-unit: `systemctl restart billing.service` names billing.service, which the target host does not have
}

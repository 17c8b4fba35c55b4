package preflight

import "testing"

func TestUnknownUnitRule(t *testing.T) {
	host := ShellEnv{Units: map[string]bool{"billing-api.service": true, "getty@.service": true,
		"billing-report.timer": true, "nginx": true}}
	runShellCases(t, []shellCase{
		{name: "a renamed unit", src: "systemctl restart billing.service\n", env: host,
			want: []hit{{RuleUnknownUnit, 1, "billing.service"}}},
		{name: "the fix suggests the new name", src: "systemctl restart billing\n", env: host,
			want: []hit{{RuleUnknownUnit, 1, "names billing.service"}}},
		{name: "a unit the host has, without .service", src: "systemctl restart billing-api\nsystemctl reload nginx.service\n", env: host},
		{name: "an inventory name without .service", src: "systemctl status nginx\n", env: host},
		{name: "a template instance", src: "systemctl start getty@tty1.service\nsystemctl start serial@ttyS0.service\n", env: host,
			want: []hit{{RuleUnknownUnit, 2, "serial@ttyS0.service"}}},
		{name: "several units, options anywhere", src: "systemctl --no-block restart billing-api billing-web -q\n", env: host,
			want: []hit{{RuleUnknownUnit, 1, "billing-web.service"}}},
		{name: "a timer", src: "systemctl is-active billing-report.timer\n", env: host},
		{name: "options with values are skipped", src: "systemctl kill -s HUP billing-api\nsystemctl show -p MainPID billing-api\n", env: host},
		{name: "globs are not judged", src: "systemctl stop 'billing*'\n", env: host},
		{name: "verbs without units", src: "systemctl daemon-reload\nsystemctl list-units --all\n", env: host},
		{name: "--user units are not the host's", src: "systemctl --user restart foo\n", env: host},
		{name: "another host's units are not judged", src: "systemctl -H ops@db restart foo\nssh db systemctl restart foo\n",
			env: ShellEnv{Units: host.Units, Hosts: []string{"db"}}},
		{name: "a variable unit", src: "systemctl restart \"$UNIT\"\n", env: host,
			want: []hit{{RuleCannotTell, 1, "$UNIT"}}},
		{name: "a variable the script set", src: "UNIT=billing\nsystemctl restart \"$UNIT\"\n", env: host,
			want: []hit{{RuleUnknownUnit, 2, "billing.service"}}},
		{name: "service NAME VERB", src: "service billing restart\nservice billing-api restart\nservice --status-all\n", env: host,
			want: []hit{{RuleUnknownUnit, 1, "billing.service"}}},
		{name: "on the unit's own line", src: "systemctl restart \\\n  billing-api \\\n  billing\n", env: host,
			want: []hit{{RuleUnknownUnit, 3, ""}}},
		{name: "through sudo and bash -c", src: "sudo bash -c 'systemctl restart billing'\n", env: host,
			want: []hit{{RuleSudo, 1, ""}, {RuleUnknownUnit, 1, "billing.service"}}},
		{name: "no inventory: not judged", src: "systemctl restart billing\nsystemctl restart \"$U\"\n"},
	})
}

func TestUnitName(t *testing.T) {
	for in, want := range map[string]string{"billing": "billing.service", "billing.service": "billing.service",
		"x.timer": "x.timer", "foo@bar": "foo@bar.service", "a.b": "a.b.service", "tmp.mount": "tmp.mount"} {
		if got := unitName(in); got != want {
			t.Errorf("unitName(%q) = %q, want %q", in, got, want)
		}
	}
}

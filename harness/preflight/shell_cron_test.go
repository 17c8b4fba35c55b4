package preflight

import "testing"

func TestCheckScheduledFile(t *testing.T) {
	env := ShellEnv{Hosts: []string{"billing"}}
	for _, tc := range []struct {
		name, path, src string
		want            []hit
	}{
		{name: "a package cron file: user field, the job checked", path: "cron/billing-report",
			src:  "# nightly\nSHELL=/bin/bash\nMAILTO = ops@example.com\n\n15 2 * * * deploy curl -fsS https://reports.vendor.example/ingest\n",
			want: []hit{{RuleExternalEndpoint, 5, "reports.vendor.example"}, {RuleScheduledTask, 5, "as deploy"}}},
		{name: "sh -c in a cron line is seen", path: "etc/cron.d/billing",
			src:  "0 * * * * root sh -c 'sudo systemctl restart billing'\n*/5 * * * * root /bin/sh -c \"$JOB\"\n",
			want: []hit{{RuleScheduledTask, 1, "0 * * * *"}, {RuleSudo, 1, "sudo systemctl"}, {RuleCannotTell, 2, "sh -c"}, {RuleScheduledTask, 2, "*/5"}}},
		{name: "the environment's own host is not external", path: "cron.d/ping",
			src:  "@hourly deploy curl -fsS http://billing:8080/health\n",
			want: []hit{{RuleScheduledTask, 1, "@hourly"}}},
		{name: "a user crontab has no user field", path: "var/spool/cron/crontabs/deploy",
			src:  "30 4 * * 1 /opt/billing/bin/rotate --keep 7\n",
			want: []hit{{RuleScheduledTask, 1, "runs `/opt/billing/bin/rotate --keep 7`"}}},
		{name: "a % ends the command (the rest is its input)", path: "cron/mail",
			src:  "0 0 * * * root date +\\%F | mail -s report ops%body text; sudo id\n",
			want: []hit{{RuleScheduledTask, 1, "date +%F | mail -s report ops`"}}},
		{name: "a line with no command", path: "cron/bad",
			src:  "0 0 * * * root\n1 1 * * * root /bin/true\n",
			want: []hit{{RuleParseError, 1, "no command"}, {RuleScheduledTask, 2, ""}}},
		{name: "a syntax error in one job, the next still checked", path: "crontab",
			src:  "0 0 * * * root echo 'a\n1 1 * * * root sudo id\n",
			want: []hit{{RuleParseError, 1, ""}, {RuleScheduledTask, 1, ""}, {RuleScheduledTask, 2, ""}, {RuleSudo, 2, ""}}},
		{name: "a systemd timer", path: "units/billing-report.timer",
			src:  "[Unit]\nDescription=report\n\n[Timer]\nOnCalendar=*-*-* 02:15\nPersistent=true\n",
			want: []hit{{RuleScheduledTask, 5, "OnCalendar=*-*-* 02:15"}}},
		{name: "a cron.daily script, checked whole", path: "cron.daily/billing",
			src:  "#!/bin/sh\nsudo /opt/billing/bin/report\n",
			want: []hit{{RuleScheduledTask, 0, "cron.daily"}, {RuleSudo, 2, ""}}},
		{name: "a cron.daily script that does not parse", path: "cron.daily/billing",
			src:  "#!/bin/sh\nif true; then\n",
			want: []hit{{RuleParseError, 2, ""}}},
		{name: "not a scheduled file", path: "bin/report.sh", src: "sudo id\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertHits(t, tc.path, env.CheckScheduledFile(tc.path, []byte(tc.src)), tc.want)
		})
	}
	// The package-level function knows no environment: billing is external.
	assertHits(t, "cron.d/ping", CheckScheduledFile("cron.d/ping", []byte("@hourly deploy curl http://billing/\n")),
		[]hit{{RuleExternalEndpoint, 1, "billing"}, {RuleScheduledTask, 1, ""}})
}

func TestScheduledKind(t *testing.T) {
	for p, want := range map[string]scheduledFileKind{
		"cron/billing-report": systemCrontab, "etc/cron.d/x": systemCrontab, "/etc/crontab": systemCrontab,
		"jobs/billing.cron": systemCrontab, "var/spool/cron/crontabs/deploy": userCrontab, "crontabs/deploy": userCrontab,
		"etc/cron.daily/x": runPartsScript, "x.timer": timerUnit, "bin/x": notScheduled, "etc/cron.allow": notScheduled,
	} {
		if got := scheduledKind(p); got != want {
			t.Errorf("scheduledKind(%q) = %d, want %d", p, got, want)
		}
	}
}

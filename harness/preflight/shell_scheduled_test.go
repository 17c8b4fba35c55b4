package preflight

import "testing"

func TestScheduledTaskRule(t *testing.T) {
	runShellCases(t, []shellCase{
		{name: "crontab FILE", src: "crontab cron/billing\ncrontab -u deploy /tmp/jobs\n",
			want: []hit{{RuleScheduledTask, 1, "installs cron/billing"}, {RuleScheduledTask, 2, "installs /tmp/jobs"}}},
		{name: "crontab -e", src: "crontab -e\n", want: []hit{{RuleScheduledTask, 1, "edits a crontab"}}},
		{name: "crontab - from a pipe", src: "(crontab -l; echo '0 * * * * /x') | crontab -\n",
			want: []hit{{RuleScheduledTask, 1, "standard input"}}},
		{name: "crontab - from a heredoc: its jobs are checked", src: "crontab - <<EOF\n0 3 * * * curl https://ping.example/x\nEOF\n",
			want: []hit{{RuleScheduledTask, 1, "standard input"}, {RuleExternalEndpoint, 2, "ping.example"}, {RuleScheduledTask, 2, "0 3 * * *"}}},
		{name: "crontab -l and -r do not install", src: "crontab -l\ncrontab -r\n"},
		{name: "a redirection into /etc/cron.d", src: "echo '*/5 * * * * root /opt/x' > /etc/cron.d/x\n",
			want: []hit{{RuleScheduledTask, 1, "/etc/cron.d/x"}, {RuleScheduledTask, 1, "*/5 * * * *"}}},
		{name: "appending to /etc/crontab", src: "printf '%s\\n' \"$JOB\" >> /etc/crontab\n",
			want: []hit{{RuleScheduledTask, 1, "/etc/crontab"}}},
		{name: "tee into the spool", src: "echo x | sudo tee -a /var/spool/cron/crontabs/deploy\n",
			want: []hit{{RuleScheduledTask, 1, "/var/spool/cron/crontabs/deploy"}, {RuleSudo, 1, ""}}},
		{name: "cron.allow is not a job", src: "echo deploy >> /etc/cron.allow\n"},
		{name: "cp, install and ln into cron directories", src: "cp cron/billing /etc/cron.d/\ninstall -m 0644 cron/x /etc/cron.daily/x\nln -s /opt/x /etc/cron.hourly/x\ncp -t /etc/cron.d a b\n",
			want: []hit{{RuleScheduledTask, 1, "copies"}, {RuleScheduledTask, 2, "installs"}, {RuleScheduledTask, 3, "links"}, {RuleScheduledTask, 4, "copies"}}},
		{name: "install -d only makes a directory", src: "install -d /etc/cron.d\n"},
		{name: "a heredoc script into cron.daily is checked as a script", src: "cat > /etc/cron.daily/report <<'EOF'\n#!/bin/sh\nsudo /opt/report\nEOF\n",
			want: []hit{{RuleScheduledTask, 1, "/etc/cron.daily/report"}, {RuleSudo, 3, ""}}},
		{name: "a timer copied into a unit directory", src: "cp units/report.timer units/report.service /etc/systemd/system/\ninstall -m644 x.timer /lib/systemd/system/x.timer\ncp units/report.service /etc/systemd/system/\n",
			want: []hit{{RuleScheduledTask, 1, "systemd timer"}, {RuleScheduledTask, 2, "systemd timer"}}},
		{name: "a timer written from a heredoc", src: "cat > /etc/systemd/system/r.timer <<EOF\n[Timer]\nOnCalendar=daily\nEOF\n",
			want: []hit{{RuleScheduledTask, 1, "r.timer"}}},
		{name: "systemctl enable --now of a timer", src: "systemctl enable --now report.timer\nsystemctl start report.timer\nsystemctl stop report.timer\nsystemctl enable report.service\n",
			want: []hit{{RuleScheduledTask, 1, "enables the timer"}, {RuleScheduledTask, 2, "starts the timer"}}},
		{name: "systemd-run --on-calendar", src: "systemd-run --on-calendar='*-*-* 02:00' /opt/report\nsystemd-run /opt/once\n",
			want: []hit{{RuleScheduledTask, 1, "--on-calendar"}}},
		{name: "at", src: "echo /opt/x | at now + 5 minutes\nat -l\n", want: []hit{{RuleScheduledTask, 1, "with at"}}},
		{name: "a variable destination is not guessed", src: "cp x \"$DEST\"\n"},
	})
}

// TestScheduledTaskWriters: a cron path written by any common writer, not
// only a redirection.
func TestScheduledTaskWriters(t *testing.T) {
	runShellCases(t, []shellCase{
		{name: "sed -i", src: "sed -i 's/^#0/0/' /etc/crontab\nsed -i.bak -e 's/a/b/' /etc/cron.d/x\nsed --in-place=.orig 's/a/b/' /var/spool/cron/crontabs/app\nsed -ni 's/a/b/p' /etc/cron.d/y\n",
			want: []hit{{RuleScheduledTask, 1, "sed -i"}, {RuleScheduledTask, 2, "/etc/cron.d/x"}, {RuleScheduledTask, 3, "/var/spool/cron/crontabs/app"}, {RuleScheduledTask, 4, "/etc/cron.d/y"}}},
		{name: "sed without -i only reads", src: "sed 's/a/b/' /etc/crontab > /tmp/x\nsed -e 's/a/b/' -n /etc/cron.d/x\n"},
		{name: "perl -i", src: "perl -pi -e 's/a/b/' /etc/cron.d/x\n", want: []hit{{RuleScheduledTask, 1, "/etc/cron.d/x"}}},
		{name: "dd of=", src: "dd if=job of=/etc/cron.d/x status=none\ndd if=/etc/crontab of=/tmp/x\n",
			want: []hit{{RuleScheduledTask, 1, "/etc/cron.d/x"}}},
		{name: "dd of= from a heredoc: its jobs are checked", src: "dd of=/etc/cron.d/x <<EOF\n0 1 * * * root sudo /opt/x\nEOF\n",
			want: []hit{{RuleScheduledTask, 1, "/etc/cron.d/x"}, {RuleScheduledTask, 2, "0 1 * * *"}, {RuleSudo, 2, ""}}},
		{name: "tee and sponge", src: "echo '0 1 * * * root /x' | tee /etc/cron.d/x >/dev/null\necho x | sponge /etc/cron.d/y\n",
			want: []hit{{RuleScheduledTask, 1, "/etc/cron.d/x"}, {RuleScheduledTask, 2, "/etc/cron.d/y"}}},
		{name: "install into a cron directory", src: "install -D -o root -m 0644 cron/billing /etc/cron.d/\ninstall -t /etc/cron.daily report\n",
			want: []hit{{RuleScheduledTask, 1, "installs"}, {RuleScheduledTask, 2, "installs"}}},
	})
}

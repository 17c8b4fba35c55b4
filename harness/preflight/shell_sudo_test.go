package preflight

import "testing"

func TestSudoRule(t *testing.T) {
	runShellCases(t, []shellCase{
		{name: "sudo", src: "sudo systemctl restart billing-api\n", want: []hit{{RuleSudo, 1, "switches to root"}}},
		{name: "sudo by path", src: "/usr/bin/sudo -n true\n", want: []hit{{RuleSudo, 1, ""}}},
		{name: "sudo -u", src: "sudo -u postgres -- psql -c 'select 1'\n", want: []hit{{RuleSudo, 1, "switches to postgres"}}},
		{name: "sudo --user=", src: "sudo --user=deploy id\n", want: []hit{{RuleSudo, 1, "switches to deploy"}}},
		{name: "doas", src: "doas -u www id\n", want: []hit{{RuleSudo, 1, "switches to www"}}},
		{name: "pkexec", src: "pkexec --user admin id\n", want: []hit{{RuleSudo, 1, "switches to admin"}}},
		{name: "su -c, and its command is read", src: "su - postgres -c 'sudo id'\n",
			want: []hit{{RuleSudo, 1, "su - postgres"}, {RuleSudo, 1, "sudo id"}}},
		{name: "su with a heredoc", src: "su postgres <<EOF\n\nsudo id\nEOF\n",
			want: []hit{{RuleSudo, 1, "switches to postgres"}, {RuleSudo, 3, "sudo id"}}},
		{name: "runuser -u", src: "runuser -u app -- id\n", want: []hit{{RuleSudo, 1, "switches to app"}}},
		{name: "sudo sh -c reads the string", src: "sudo sh -c 'doas id'\n",
			want: []hit{{RuleSudo, 1, "doas id"}, {RuleSudo, 1, "sudo sh -c"}}},
		{name: "the word sudo as an argument is not a command", src: "echo sudo\ngrep -q sudo /etc/group\napt-get install -y sudo\n"},
		{name: "a comment", src: "# sudo systemctl restart x\n"},
		{name: "a function named like a command is still its call", src: "s() { :; }\ns sudo\n"},
	})
}

// TestSudoRuleSwitchers: the other ways to run a command as another user,
// and commands that hide a switcher (an alias, env -S).
func TestSudoRuleSwitchers(t *testing.T) {
	runShellCases(t, []shellCase{
		{name: "gosu", src: "exec gosu app:app /opt/billing/bin/api\n", want: []hit{{RuleSudo, 1, "switches to app"}}},
		{name: "su-exec", src: "su-exec postgres pg_ctl start\n", want: []hit{{RuleSudo, 1, "switches to postgres"}}},
		{name: "setuidgid", src: "setuidgid billing ./run\n", want: []hit{{RuleSudo, 1, "switches to billing"}}},
		{name: "setpriv --reuid", src: "setpriv --reuid=1000 --regid=1000 --init-groups id\nsetpriv --nnp id\n",
			want: []hit{{RuleSudo, 1, "switches to 1000"}}},
		{name: "chpst -u, not -U", src: "chpst -u app:app ./run\nchpst -U app ./run\n", want: []hit{{RuleSudo, 1, "switches to app"}}},
		{name: "runuser and doas", src: "runuser -u app -- id\nrunuser app -c id\ndoas id\n",
			want: []hit{{RuleSudo, 1, "switches to app"}, {RuleSudo, 2, "switches to app"}, {RuleSudo, 3, "switches to root"}}},
		{name: "the command a switcher runs is checked", src: "gosu app sh -c 'sudo id'\n",
			want: []hit{{RuleSudo, 1, "gosu app"}, {RuleSudo, 1, "`sudo id`"}}},
		{name: "an alias to sudo", src: "alias s=sudo; s id\n", want: []hit{{RuleSudo, 1, "`sudo id`"}}},
		{name: "an alias's value is a command line", src: "alias up='cd /opt && sudo -u deploy make'\n\nup install\n",
			want: []hit{{RuleSudo, 3, "switches to deploy"}}},
		{name: "an alias to an alias", src: "alias s=sudo\nalias root='s -i'\nroot\n",
			want: []hit{{RuleSudo, 3, "`sudo -i`"}}},
		{name: "an alias that names itself stops", src: "alias sudo='sudo -E'\nsudo id\n",
			want: []hit{{RuleSudo, 2, "`sudo -E id`"}, {RuleSudo, 2, "`sudo id`"}}},
		{name: "an alias used before it is defined is not one", src: "s id\nalias s=sudo\n"},
		{name: "a quoted name is not an alias", src: "alias s=sudo\n's' id\n"},
		{name: "an alias built at run time", src: "alias s=\"$SWITCH\"\ns id\n", want: []hit{{RuleCannotTell, 2, "alias"}}},
		{name: "env -S", src: "env -S 'sudo -u app' id\nenv --split-string='doas id'\nenv -S\"$CMD\"\nenv -S \"$CMD\" x\n",
			want: []hit{{RuleSudo, 1, "`sudo -u app id`"}, {RuleSudo, 2, "`doas id`"}, {RuleCannotTell, 3, "env -S"}, {RuleCannotTell, 4, "env -S"}}},
		{name: "env -i and env NAME=VALUE still wrap", src: "env -i PATH=/bin sudo id\n", want: []hit{{RuleSudo, 1, "`sudo id`"}}},
	})
}

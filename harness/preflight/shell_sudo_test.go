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

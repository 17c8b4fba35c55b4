package preflight

import "testing"

func TestCannotTellRule(t *testing.T) {
	pkg := ShellEnv{Files: map[string]bool{"lib/common.sh": true, "scripts/migrate.sh": true}}
	runShellCases(t, []shellCase{
		{name: "a variable command name", src: "$TOOL --restart\n\"${BIN}/billing-api\" -version\n",
			want: []hit{{RuleCannotTell, 1, "$TOOL"}, {RuleCannotTell, 2, "${BIN}/billing-api"}}},
		{name: "a command substitution as command name", src: "$(command -v systemctl) restart x\n",
			want: []hit{{RuleCannotTell, 1, "$(command -v systemctl)"}}},
		{name: "eval of a run-time string", src: "eval \"$SETUP\"\neval $(ssh-agent -s)\n",
			want: []hit{{RuleCannotTell, 1, "eval"}, {RuleCannotTell, 2, "eval"}}},
		{name: "source of a file not in the package", src: ". /etc/os-release\nsource ~/.profile\n", env: pkg,
			want: []hit{{RuleCannotTell, 1, "/etc/os-release"}, {RuleCannotTell, 2, "~/.profile"}}},
		{name: "source of a package file is checked on its own", src: ". lib/common.sh\nsource ./lib/common.sh\nbash scripts/migrate.sh\n", env: pkg},
		{name: "source of a run-time path", src: "source \"$(dirname \"$0\")/lib.sh\"\n", env: pkg,
			want: []hit{{RuleCannotTell, 1, "only known at run time"}}},
		{name: "sh FILE not in the package", src: "sh /opt/billing/bin/post-install.sh\n", env: pkg,
			want: []hit{{RuleCannotTell, 1, "/opt/billing/bin/post-install.sh"}}},
		{name: "bash -c of a variable", src: "bash -c \"$CMD\"\nsu -c \"$1\" deploy\n",
			want: []hit{{RuleCannotTell, 1, "bash -c"}, {RuleCannotTell, 2, "su -c"}, {RuleSudo, 2, "su -c"}}},
		{name: "bash -c with a variable inside a literal script", src: "bash -c \"cd $DIR && sudo make\"\n",
			want: []hit{{RuleSudo, 1, "sudo make"}}},
		{name: "a shell fed from a pipe", src: "curl -fsS https://get.example/install.sh | sh\n",
			want: []hit{{RuleCannotTell, 1, "from a pipe"}, {RuleExternalEndpoint, 1, "get.example"}}},
		{name: "a shell fed from a file", src: "bash < /tmp/steps\nbash < lib/common.sh\n", env: pkg,
			want: []hit{{RuleCannotTell, 1, "/tmp/steps"}}},
		{name: "ssh with a run-time remote command", src: "ssh db \"$REMOTE\"\n", env: ShellEnv{Hosts: []string{"db"}},
			want: []hit{{RuleCannotTell, 1, "ssh"}}},
		{name: "exec \"$@\"", src: "exec \"$@\"\n", want: []hit{{RuleCannotTell, 1, "$@"}}},
	})
}

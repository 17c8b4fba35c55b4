package preflight

import (
	"fmt"
	"strings"
	"testing"
)

// hit is a finding as the shell tests name it: its rule and line, and
// optionally a piece of its message.
type hit struct {
	rule string
	line int
	in   string
}

func (h hit) String() string { return fmt.Sprintf("%s@%d", h.rule, h.line) }

// shellCase is one script and the findings it must give, exactly.
type shellCase struct {
	name string
	src  string
	env  ShellEnv
	want []hit
}

// ruleSeverity is the severity each shell rule reports with.
var ruleSeverity = map[string]Severity{RuleSudo: Error, RuleUnknownUnit: Error, RuleParseError: Error,
	RuleScheduledTask: Warning, RuleExternalEndpoint: Warning, RuleCannotTell: Info}

// runShellCases checks each script as a whole file (line 1 of s.sh).
func runShellCases(t *testing.T, cases []shellCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Helper()
			assertHits(t, "s.sh", CheckScript("s.sh", 1, []byte(tc.src), tc.env), tc.want)
		})
	}
}

// assertHits compares findings, in order, with the wanted hits, and
// checks what every finding must have: the file, the rule's severity, a
// message and a fix.
func assertHits(t *testing.T, file string, got []Finding, want []hit) {
	t.Helper()
	var g, w []string
	for _, f := range got {
		g = append(g, hit{rule: f.Rule, line: f.Line}.String())
		if f.File != file || f.Severity != ruleSeverity[f.Rule] || f.Message == "" || f.Fix == "" {
			t.Errorf("finding %+v: want file %s, severity %s, a message and a fix", f, file, ruleSeverity[f.Rule])
		}
	}
	for _, h := range want {
		w = append(w, h.String())
	}
	if strings.Join(g, " ") != strings.Join(w, " ") {
		for _, f := range got {
			t.Logf("%d %s: %s", f.Line, f.Rule, f.Message)
		}
		t.Fatalf("findings\n got: %v\nwant: %v", g, w)
	}
	for i, h := range want {
		if h.in != "" && !strings.Contains(got[i].Message, h.in) {
			t.Errorf("finding %d (%s) message %q does not name %q", i, h, got[i].Message, h.in)
		}
	}
}

// TestCheckScriptHonest is issue 10's done-when: sudo inside a function, a
// heredoc, a bash -c '...' string, a sh -c in a cron line, and a variable
// command name: found where a parser can see it, cannot-tell where not.
func TestCheckScriptHonest(t *testing.T) {
	runShellCases(t, []shellCase{
		{name: "in a function", src: "#!/bin/sh\nrestart() {\n  if true; then\n    sudo systemctl restart billing\n  fi\n}\nrestart\n",
			want: []hit{{RuleSudo, 4, "sudo systemctl restart billing"}}},
		{name: "in a heredoc fed to bash", src: "echo start\nbash <<EOF\necho one\nsudo -u postgres psql -c 'select 1'\nEOF\n",
			want: []hit{{RuleSudo, 4, "switches to postgres"}}},
		{name: "in a heredoc fed to ssh", src: "ssh deploy@billing <<'EOF'\n  cd /opt\n  sudo reboot\nEOF\n",
			env:  ShellEnv{Hosts: []string{"billing"}},
			want: []hit{{RuleSudo, 3, "sudo reboot"}}},
		{name: "in a heredoc fed to ssh's remote shell", src: "ssh db sudo bash -s <<'EOF'\n  cd /opt\n  doas reboot\nEOF\n",
			env:  ShellEnv{Hosts: []string{"db"}},
			want: []hit{{RuleSudo, 1, "sudo bash -s"}, {RuleSudo, 3, "doas reboot"}}},
		{name: "a heredoc that is data", src: "cat > /tmp/notes <<EOF\nsudo is not run here\nEOF\n"},
		{name: "but a data heredoc's command substitution runs", src: "cat > /tmp/notes <<EOF\nuser: $(sudo id -un)\nEOF\n",
			want: []hit{{RuleSudo, 2, "sudo id -un"}}},
		{name: "in a bash -c string", src: "set -e\nbash -c 'echo one\n  sudo rm -rf /var/cache/billing'\n",
			want: []hit{{RuleSudo, 3, "sudo rm"}}},
		{name: "in a double-quoted sh -c string", src: "sh -c \"cd /opt && doas make install\"\n",
			want: []hit{{RuleSudo, 1, "doas make install"}}},
		{name: "nested two deep", src: "\n\nbash -c 'sh -c \"pkexec id\"'\n",
			want: []hit{{RuleSudo, 3, "pkexec id"}}},
		{name: "in a sh -c of a cron line written by the script", src: "cat > /etc/cron.d/report <<'EOF'\nMAILTO=ops\n15 2 * * * deploy sh -c 'sudo /opt/report'\nEOF\n",
			want: []hit{{RuleScheduledTask, 1, "/etc/cron.d/report"}, {RuleScheduledTask, 3, "15 2 * * *"}, {RuleSudo, 3, "sudo /opt/report"}}},
		{name: "a variable command name", src: "CMD=$1\n$CMD systemctl restart billing\n",
			want: []hit{{RuleCannotTell, 2, "$CMD"}}},
		{name: "a command substitution as command name", src: "echo\n$(which sudo) id\n",
			want: []hit{{RuleCannotTell, 2, "$(which sudo)"}}},
		{name: "a variable the script set to a literal", src: "SUDO=sudo\n$SUDO id\n",
			want: []hit{{RuleSudo, 2, "$SUDO id"}}},
		{name: "bash -c of a variable", src: "CMD=\"$1\"\nbash -c \"$CMD\"\n",
			want: []hit{{RuleCannotTell, 2, "\"$CMD\""}}},
		{name: "subshells, pipelines, $(...), loops and case", src: "(sudo id)\necho x | sudo tee /tmp/x\nv=$(sudo id)\nwhile read l; do sudo echo \"$l\"; done < f\ncase $1 in\n  a) sudo id ;;\nesac\n",
			want: []hit{{RuleSudo, 1, ""}, {RuleSudo, 2, ""}, {RuleSudo, 3, ""}, {RuleSudo, 4, ""}, {RuleSudo, 6, ""}}},
		{name: "through wrappers", src: "env A=1 nohup timeout -s KILL 5 sudo id\nfind /tmp -name x -exec sudo rm {} \\;\nls | xargs -0 -n1 sudo rm\nexec sudo id\ncommand sudo id\ntime sudo id\n",
			want: []hit{{RuleSudo, 1, ""}, {RuleSudo, 2, ""}, {RuleSudo, 3, ""}, {RuleSudo, 4, ""}, {RuleSudo, 5, ""}, {RuleSudo, 6, ""}}},
		{name: "command -v only looks", src: "command -v sudo\n"},
		{name: "eval of a literal is read", src: "eval 'sudo id'\neval \"$(ssh-agent)\"\n",
			want: []hit{{RuleSudo, 1, ""}, {RuleCannotTell, 2, "eval"}}},
	})
}

// TestCheckScriptLines: findings name lines of the file a script starts
// in, for a manifest step's command on its YAML line.
func TestCheckScriptLines(t *testing.T) {
	got := CheckScript("upgrade.yaml", 40, []byte("echo a &&\n  sudo id &&\n  bash -c 'x\nsudo y'"), ShellEnv{})
	assertHits(t, "upgrade.yaml", got, []hit{{RuleSudo, 41, "sudo id"}, {RuleSudo, 43, "sudo y"}})
}

func TestCheckScriptParseError(t *testing.T) {
	runShellCases(t, []shellCase{
		{name: "an unterminated if", src: "sudo id\nif true; then\n  echo\n",
			want: []hit{{RuleParseError, 2, "must end with `fi`"}}},
		{name: "an unclosed quote", src: "echo 'a\nsudo id\n",
			want: []hit{{RuleParseError, 1, "reached EOF"}}},
		{name: "a bad bash -c string: the rest still checked", src: "sudo id\nbash -c 'if then'\n",
			want: []hit{{RuleSudo, 1, ""}, {RuleParseError, 2, ""}}},
	})
	got := CheckScript("upgrade.yaml", 10, []byte("echo (\nsudo id"), ShellEnv{})
	assertHits(t, "upgrade.yaml", got, []hit{{RuleParseError, 10, ""}})
}

// TestCheckScriptOrder: findings come sorted and once each, however the
// script is walked.
func TestCheckScriptOrder(t *testing.T) {
	src := "bash -c \"echo $(sudo id)\"\nsudo a\ncurl https://b.example/ https://a.example/\n"
	got := CheckScript("s.sh", 1, []byte(src), ShellEnv{})
	assertHits(t, "s.sh", got, []hit{{RuleSudo, 1, "sudo id"}, {RuleSudo, 2, ""},
		{RuleExternalEndpoint, 3, "a.example"}, {RuleExternalEndpoint, 3, "b.example"}})
}

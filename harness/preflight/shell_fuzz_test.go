package preflight

import (
	"strings"
	"testing"

	"mvdan.cc/sh/v3/syntax"
)

// FuzzCheckScript: any input gives findings (never a panic), sorted, each
// on a line of the input; a script whose top level does not parse gives
// exactly one finding, its parse-error (a string inside it that does not
// parse, bash -c 'if', may come with others).
func FuzzCheckScript(f *testing.F) {
	for _, s := range []string{
		"sudo systemctl restart billing\n",
		"bash <<EOF\nsudo id\nEOF\n",
		"bash -c 'sh -c \"pkexec id\"'\n",
		"cat > /etc/cron.d/x <<'EOF'\n15 2 * * * root sh -c 'curl https://x.example/'\nEOF\n",
		"$CMD x\neval \"$X\"\nsource /etc/os-release\n",
		"su -c\nsudo -u\nssh\nssh -J\ncrontab\ncp\nsystemctl\nservice\nfind -exec\nxargs\nenv\ntimeout\n",
		"curl 'http://[::1'\ncurl http://\ncurl -x\npsql -h\nrsync a: b\nscp :x y\n",
		"echo '0 0 * * *' > /etc/cron.d/x\necho '@daily' >> /etc/crontab\n",
		"f() { sudo id; }\n(f) | bash\nbash < x\nbash <<< 'sudo id'\n",
		". -:0\nsource\nbash < -x\n",
		"sudo id\nbash -c 'if then'\n",
		"echo 'a\nsudo id\n",
		`bash -c "echo $(bash -c "echo $(sudo id)")"` + "\n",
		"alias s=sudo a='s -i'; s id\nalias b=b; b\nenv -S 'sudo id'\nenv -S\ngosu\nsetpriv --reuid\nchpst -u\n",
		"exec 3<>/dev/tcp/x.example/1\ncurl --resolve a:1:b -K f\nwget -i\nsed -i s/a/b/ /etc/crontab\ndd of=/etc/cron.d/x\n",
		"zsh -c 'x'\nbusybox sh -c 'sudo id'\nbusybox\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		got := CheckScript("s.sh", 7, []byte(src), ShellEnv{Units: map[string]bool{"a.service": true}, Hosts: []string{"db"}})
		lines := 7 + strings.Count(src, "\n")
		if _, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "s.sh"); err != nil {
			if len(got) != 1 || got[0].Rule != RuleParseError {
				t.Errorf("the script does not parse (%v): want its parse-error alone, got %v", err, got)
			}
		}
		for i, g := range got {
			if g.Line < 7 || g.Line > lines {
				t.Errorf("finding %+v: line outside the script (7 to %d)", g, lines)
			}
			if i > 0 {
				p := got[i-1]
				if p.Line > g.Line || p.Line == g.Line && p.Rule > g.Rule {
					t.Errorf("findings out of order: %v then %v", p, g)
				}
			}
		}
	})
}

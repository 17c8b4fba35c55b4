package preflight

import (
	"strings"
	"testing"
)

// FuzzCheckScript: any input gives findings (never a panic), sorted, each
// on a line of the input, and a parse-error comes alone.
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
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		got := CheckScript("s.sh", 7, []byte(src), ShellEnv{Units: map[string]bool{"a.service": true}, Hosts: []string{"db"}})
		lines := 7 + strings.Count(src, "\n")
		for i, g := range got {
			if g.Line < 7 || g.Line > lines {
				t.Errorf("finding %+v: line outside the script (7 to %d)", g, lines)
			}
			if g.Rule == RuleParseError && len(got) > 1 && !nestedParseError(got) {
				t.Errorf("a parse-error of the whole script comes alone: %v", got)
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

// nestedParseError says whether findings other than parse-errors come with
// a parse error: a bash -c string that does not parse inside a script that
// does.
func nestedParseError(fs []Finding) bool {
	for _, f := range fs {
		if f.Rule != RuleParseError {
			return true
		}
	}
	return false
}

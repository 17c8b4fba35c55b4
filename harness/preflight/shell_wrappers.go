package preflight

import (
	"regexp"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// wrapperSpec says how a command that runs another command (env, nohup,
// timeout, xargs, sudo, ...) finds it.
type wrapperSpec struct {
	opts     optSpec
	skip     int      // positionals before the command (timeout's duration)
	assign   bool     // NAME=VALUE words before the command (env)
	none     string   // short flags after which no command runs (command -v)
	noneLong []string // long options after which no command runs
	only     []string // options without one of which no command runs (watch -x)
	verb     string   // the first positional that makes it a wrapper (machinectl shell); counted in skip
}

// wrappers are the commands whose command is checked like any other.
var wrappers = map[string]wrapperSpec{
	"env":     {opts: optSpec{short: "uCS", long: []string{"unset", "chdir", "split-string"}}, assign: true, none: "S", noneLong: []string{"--split-string"}},
	"nohup":   {},
	"timeout": {opts: optSpec{short: "sk", long: []string{"signal", "kill-after"}}, skip: 1},
	"xargs": {opts: optSpec{short: "aEILnPsd", long: []string{"arg-file", "delimiter", "max-lines", "max-args",
		"max-procs", "max-chars", "process-slot-var"}}},
	"exec":      {opts: optSpec{short: "a"}},
	"command":   {none: "vV"},
	"builtin":   {},
	"time":      {opts: optSpec{short: "fo", long: []string{"format", "output"}}},
	"nice":      {opts: optSpec{short: "n", long: []string{"adjustment"}}},
	"ionice":    {opts: optSpec{short: "cnPpu", long: []string{"class", "classdata"}}, none: "pPu"},
	"stdbuf":    {opts: optSpec{short: "ioe", long: []string{"input", "output", "error"}}},
	"setsid":    {},
	"chroot":    {opts: optSpec{long: []string{"userspec", "groups"}}, skip: 1},
	"flock":     {opts: optSpec{short: "wEc", long: []string{"timeout", "conflict-exit-code", "command"}}, skip: 1, none: "c", noneLong: []string{"--command"}},
	"sudo":      {opts: optSpec{short: "ugpCrtUDRhT", long: []string{"user", "group", "prompt", "chdir", "chroot", "host", "other-user", "role", "type", "close-from", "command-timeout"}}, assign: true},
	"doas":      {opts: optSpec{short: "uC"}},
	"pkexec":    {opts: optSpec{long: []string{"user"}}},
	"runuser":   {opts: optSpec{short: "ugGcsw", long: []string{"user", "group", "supp-group", "command", "shell", "whitelist-environment"}}, none: "c", noneLong: []string{"--command"}},
	"gosu":      {skip: 1},
	"su-exec":   {skip: 1},
	"setuidgid": {skip: 1},
	"setpriv": {opts: optSpec{long: []string{"reuid", "regid", "ruid", "euid", "rgid", "egid", "groups", "inh-caps", "ambient-caps",
		"bounding-set", "securebits", "pdeathsig", "selinux-label", "apparmor-profile", "landlock-access", "landlock-rule", "seccomp-filter"}}},
	"chpst":   {opts: optSpec{short: "uUbe/CnlLmdopfcrt"}},
	"busybox": {},
	// Namespaces and containers: the command runs in another namespace
	// (the same host) or machine, checked all the same.
	"nsenter": {opts: optSpec{short: "tSG", long: []string{"target", "setuid", "setgid"}}},
	"unshare": {opts: optSpec{short: "SGRw", long: []string{"setuid", "setgid", "root", "wd", "map-user", "map-group",
		"map-users", "map-groups", "propagation", "setgroups"}}},
	"machinectl": {opts: optSpec{short: "MEH", long: []string{"machine", "setenv", "uid", "host"}}, verb: "shell", skip: 2},
	// watch -x runs its words as a command; without -x, as a script
	// (sh -c): findInner reads that.
	"watch": {opts: optSpec{short: "nq", long: []string{"interval", "equexit"}}, only: []string{"-x", "--exec"}},
}

// parallelOpts are GNU parallel's options that take a value; its command
// (run by a shell) is the words before ::: (findInner).
var parallelOpts = optSpec{short: "jSadIEnNLs", long: []string{"jobs", "sshlogin", "arg-file", "delimiter", "replace",
	"eof", "max-args", "max-replace-args", "max-lines", "max-chars", "timeout", "joblog", "results", "tmpdir", "workdir",
	"colsep", "halt", "delay", "retries", "memfree", "load", "nice", "tag-string", "basefile", "return", "transfer-file",
	"sshloginfile", "shebang-wrap"}}

// codeInterpreters run a program given on their command line (python3 -c
// CODE): its language, and the options that take that program.
var codeInterpreters = map[string]struct {
	lang  string
	flags optSpec // the code options (all valued), and no other
}{
	"python": {"python", optSpec{short: "cWXm"}}, "python2": {"python", optSpec{short: "cWXm"}}, "python3": {"python", optSpec{short: "cWXm"}},
	"perl": {"perl", optSpec{short: "eEIMmx"}}, "ruby": {"ruby", optSpec{short: "eIrCE"}},
	"node": {"node", optSpec{short: "epr", long: []string{"eval", "print", "require"}}}, "nodejs": {"node", optSpec{short: "epr", long: []string{"eval", "print", "require"}}},
	"php": {"php", optSpec{short: "rcdz"}},
}

// perlSubstitutions are perl programs that only edit text, as sed does
// (perl -pi -e 's/a/b/g'): s/// or y/// with one of the usual delimiters
// and no e flag (which runs the replacement as code).
var perlSubstitutions = func() []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, d := range []string{"/", "|", "#", "!", ",", ":"} {
		q := regexp.QuoteMeta(d)
		part := `(?:[^` + q + `\\]|\\.)*`
		out = append(out, regexp.MustCompile(`^\s*(?:s|y|tr)`+q+part+q+part+q+`[a-df-zA-Z]*\s*;?\s*$`))
	}
	return out
}()

func perlSubstitution(code string) bool {
	return slices.ContainsFunc(perlSubstitutions, func(r *regexp.Regexp) bool { return r.MatchString(code) })
}

// codeFlags are the options of codeInterpreters that hold a program.
var codeFlags = map[string][]string{"python": {"-c"}, "perl": {"-e", "-E"}, "ruby": {"-e"}, "node": {"-e", "-p", "--eval", "--print"}, "php": {"-r"}}

// unwrap is the command (or find's -exec commands) a wrapper runs.
func (c *command) unwrap() []*command {
	name := c.name()
	if name == "find" {
		return c.findExec()
	}
	w, ok := wrappers[name]
	if !ok {
		return nil
	}
	args := c.sc.args(c.words[1:], w.opts, true)
	if name == "runuser" {
		if _, ok := lastOpt(args, "-u", "--user"); !ok {
			return nil // runuser USER -c CMD, like su
		}
	}
	if len(w.only) > 0 && !slices.ContainsFunc(args, func(a shellArg) bool { return slices.Contains(w.only, a.opt) }) {
		return nil
	}
	skip, base := w.skip, 1 // base: the index in c.words of args' first word
	if w.verb != "" {
		pos := positionals(args)
		if len(pos) == 0 || !pos[0].ok || pos[0].val != w.verb {
			return nil
		}
		// The verb's own options follow it: machinectl shell --uid=app M CMD.
		base += pos[0].at + 1
		args = c.sc.args(c.words[base:], w.opts, true)
		skip--
	}
	for _, a := range args {
		if a.opt != "" {
			if len(a.opt) == 2 && w.none != "" && strings.Contains(w.none, a.opt[1:]) {
				return nil
			}
			if slices.Contains(w.noneLong, a.opt) {
				return nil
			}
			continue
		}
		if w.assign && a.ok && isAssignment(a.val) {
			continue
		}
		if name == "env" && envSplitRuntime(a) {
			return nil // env -S"$CMD": its inner script is cannot-tell
		}
		if skip > 0 {
			skip--
			continue
		}
		return []*command{c.with(c.words[base+a.at:])}
	}
	return nil
}

// findExec are the commands of find's -exec, -execdir, -ok and -okdir.
func (c *command) findExec() []*command {
	var out []*command
	for i := 1; i < len(c.words); i++ {
		switch s, _ := c.sc.text(c.words[i]); s {
		case "-exec", "-execdir", "-ok", "-okdir":
			j := i + 1
			for ; j < len(c.words); j++ {
				if t, _ := c.sc.text(c.words[j]); t == ";" || t == "+" {
					break
				}
			}
			if j > i+1 {
				out = append(out, c.with(c.words[i+1:j]))
			}
			i = j
		}
	}
	return out
}

func (c *command) with(words []*syntax.Word) *command {
	return &command{sc: c.sc, words: words, redirs: c.redirs, piped: c.piped, wrapped: true}
}

// isAssignment says whether s is NAME=VALUE.
func isAssignment(s string) bool {
	name, _, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return false
	}
	for i, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

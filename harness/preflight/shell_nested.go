package preflight

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// innerScript is a script a command runs from a string (bash -c '...'),
// a heredoc or here-string fed to a shell, ssh's remote command, eval's
// arguments, or a file. The walker parses text; cannot-tell reports
// unseen.
type innerScript struct {
	text    string                // the script, "" when it cannot be seen
	line    int                   // file line where text starts
	remote  string                // host it runs on, "" for the target host
	unseen  string                // what cannot be seen, when text is ""
	at      syntax.Node           // where to report unseen
	aliases map[string][]aliasDef // the shell.s aliases, for an alias.s expansion; nil in a new shell
}

// inner is the script the command runs, nil when it runs none.
func (c *command) inner() *innerScript {
	if !c.innerDone {
		c.innerDone = true
		c.innerV = c.findInner()
		if c.innerV != nil && c.innerV.remote == "" {
			c.innerV.remote = c.sc.remote
		}
	}
	return c.innerV
}

func (c *command) findInner() *innerScript {
	if in := c.aliasInner(); in != nil {
		return in
	}
	name := c.name()
	if name == "" {
		return nil
	}
	what := "`" + name + "`"
	rest := c.words[1:]
	switch {
	case shells[name]:
		args := c.sc.args(rest, optSpec{short: "oO", long: []string{"rcfile", "init-file"}, plus: true}, true)
		pos := positionals(args)
		_, dashC := lastOpt(args, "-c")
		_, dashS := lastOpt(args, "-s")
		switch {
		case dashC && len(pos) > 0:
			return c.fromWord(pos[0].word, "`"+name+" -c`")
		case dashC:
			return nil
		case len(pos) > 0 && !dashS && pos[0].val != "-":
			return c.fromFile(pos[0], what+" runs")
		}
		return c.fromStdin(what)
	case name == "su" || name == "runuser":
		args := c.sc.args(rest, wrappers["runuser"].opts, false)
		if name == "runuser" {
			if _, ok := lastOpt(args, "-u", "--user"); ok {
				return nil // a wrapper
			}
		}
		if a, ok := lastOpt(args, "-c", "--command"); ok {
			return c.fromWord(a.word, "`"+name+" -c`")
		}
		return c.fromStdin(what)
	case name == "sudo" || name == "doas":
		args := c.sc.args(rest, wrappers[name].opts, true)
		_, login := lastOpt(args, "-i", "-s", "--login", "--shell")
		if len(positionals(args)) == 0 && login {
			return c.fromStdin(what)
		}
	case name == "flock":
		args := c.sc.args(rest, wrappers["flock"].opts, false)
		if a, ok := lastOpt(args, "-c", "--command"); ok {
			return c.fromWord(a.word, "`"+name+" -c`")
		}
	case name == "ssh":
		args := c.sc.args(rest, sshOpts, true)
		pos := positionals(args)
		if len(pos) == 0 {
			return nil
		}
		host := "a host named at run time"
		if h, ok := sshHost(pos[0].val); ok && pos[0].ok {
			host = h
		}
		if _, ok := lastOpt(args, "-N"); ok {
			return nil
		}
		var in *innerScript
		if len(pos) > 1 {
			in = c.fromWords(rest[pos[1].at:], what+" to "+host)
			if body, line, ok := c.stdinHeredoc(); ok && in.text != "" {
				in.text = withStdin(in.text, in.line, body, line)
			}
		} else {
			in = c.fromStdin(what + " to " + host)
		}
		if in != nil {
			in.remote = host
		}
		return in
	case name == "eval":
		if len(rest) > 0 {
			return c.fromWords(rest, what)
		}
	case name == "source" || name == ".":
		if len(rest) > 0 {
			return c.fromFile(c.sc.word(rest[0]), what+" reads")
		}
	case name == "env":
		return c.envSplit()
	case unreadShells[name]:
		return c.unreadShell(name)
	case name == "watch":
		args := c.sc.args(rest, wrappers["watch"].opts, true)
		if _, x := lastOpt(args, "-x", "--exec"); x {
			return nil // a wrapper
		}
		if pos := positionals(args); len(pos) > 0 {
			return c.fromWords(rest[pos[0].at:], what) // run by sh -c
		}
	case name == "sg":
		// sg [-] GROUP [-c] COMMAND: the command is run by sh -c.
		i := 0
		if i < len(rest) {
			if s, _ := c.sc.text(rest[i]); s == "-" {
				i++
			}
		}
		i++ // the group
		if i < len(rest) {
			if s, _ := c.sc.text(rest[i]); s == "-c" {
				i++
			}
		}
		if i < len(rest) {
			return c.fromWords(rest[i:], what)
		}
	case name == "parallel":
		// parallel [OPTIONS] COMMAND ::: ARGS: the command (a template,
		// {} for the argument) is run by a shell.
		pos := positionals(c.sc.args(rest, parallelOpts, true))
		if len(pos) == 0 {
			return nil
		}
		end := len(rest)
		for i := pos[0].at; i < len(rest); i++ {
			if s, ok := c.sc.text(rest[i]); ok && (s == ":::" || s == "::::" || s == ":::+" || s == "::::+") {
				end = i
				break
			}
		}
		if end > pos[0].at {
			return c.fromWords(rest[pos[0].at:end], what)
		}
	default:
		if ci, ok := codeInterpreters[name]; ok {
			for _, a := range c.sc.args(rest, ci.flags, true) {
				if slices.Contains(codeFlags[ci.lang], a.opt) && !(ci.lang == "perl" && a.ok && perlSubstitution(a.val)) {
					return &innerScript{at: c.words[0], unseen: fmt.Sprintf("`%s` runs %s code preflight does not read: its commands are not seen",
						oneLine(c.source()), ci.lang)}
				}
			}
		}
	}
	return nil
}

// fromWord is the script in one word (bash -c WORD).
func (c *command) fromWord(w *syntax.Word, what string) *innerScript {
	if w == nil {
		return nil
	}
	text, seen := c.sc.scriptText(w)
	if !seen {
		return &innerScript{at: w, unseen: fmt.Sprintf("%s runs `%s`, a script only known at run time: its commands are not seen",
			what, oneLine(c.sc.wordSource(w)))}
	}
	return &innerScript{text: text, line: c.sc.line(w.Pos())}
}

// fromWords is the script in words joined by spaces (eval, ssh's remote
// command); a word on a later line stays on its line.
func (c *command) fromWords(ws []*syntax.Word, what string) *innerScript {
	var b strings.Builder
	seenAny := false
	for i, w := range ws {
		if i > 0 {
			b.WriteByte(' ')
			if gap := c.sc.line(w.Pos()) - c.sc.line(ws[i-1].End()); gap > 0 {
				b.WriteString(strings.Repeat("\\\n", gap))
			}
		}
		t, seen := c.sc.scriptText(w)
		seenAny = seenAny || seen
		b.WriteString(t)
	}
	if !seenAny {
		return &innerScript{at: ws[0], unseen: fmt.Sprintf("%s runs `%s`, a script only known at run time: its commands are not seen",
			what, oneLine(c.sc.raw(ws[0].Pos(), ws[len(ws)-1].End())))}
	}
	return &innerScript{text: b.String(), line: c.sc.line(ws[0].Pos())}
}

// fromFile is a script file a shell runs or sources: one in the package is
// checked on its own; any other cannot be seen.
func (c *command) fromFile(a shellArg, what string) *innerScript {
	if !a.ok {
		return &innerScript{at: a.word, unseen: fmt.Sprintf("%s a script whose path, `%s`, is only known at run time: its commands are not seen",
			what, oneLine(c.sc.wordSource(a.word)))}
	}
	if c.sc.check.inPackage(a.val) {
		return nil
	}
	return &innerScript{at: a.word, unseen: fmt.Sprintf("%s %s, which is not in the package: its commands are not seen", what, a.val)}
}

// fromStdin is the script a shell reads on its standard input: a heredoc
// or here-string is parsed, a file or a pipe cannot be seen.
func (c *command) fromStdin(what string) *innerScript {
	var in *syntax.Redirect
	for _, r := range c.redirs {
		if r.N != nil && r.N.Value != "0" {
			continue
		}
		switch r.Op {
		case syntax.RdrIn, syntax.Hdoc, syntax.DashHdoc, syntax.WordHdoc:
			in = r
		}
	}
	switch {
	case in == nil && c.piped:
		return &innerScript{at: c.words[0], unseen: what + " runs a script read from a pipe: its commands are not seen"}
	case in == nil:
		return nil
	case in.Op == syntax.WordHdoc:
		return c.fromWord(in.Word, what+" with a here-string")
	case in.Op == syntax.RdrIn:
		return c.fromFile(c.sc.word(in.Word), what+" runs")
	case in.Hdoc == nil:
		return nil
	}
	text, seen := c.sc.partsSource(in.Hdoc.Parts), false
	for _, p := range in.Hdoc.Parts {
		if l, ok := p.(*syntax.Lit); ok && strings.TrimSpace(l.Value) != "" {
			seen = true
		}
	}
	if !seen {
		return &innerScript{at: in, unseen: what + " runs a heredoc that is only known at run time: its commands are not seen"}
	}
	return &innerScript{text: text, line: c.sc.line(in.Hdoc.Pos())}
}

// inPackage says whether a script path names one of the package's files.
func (c *shellCheck) inPackage(p string) bool {
	if c.env.Files == nil {
		return false
	}
	return c.env.Files[p] || c.env.Files[path.Clean(p)]
}

// sshOpts are ssh's options that take a value.
var sshOpts = optSpec{short: "BbcDEeFIiJLlmOopQRSWw"}

// sshHost is the host of ssh's destination ([user@]host, ssh://user@host:port).
func sshHost(dest string) (string, bool) {
	if strings.HasPrefix(dest, "ssh://") {
		return urlHost(dest)
	}
	if i := strings.LastIndexByte(dest, '@'); i >= 0 {
		dest = dest[i+1:]
	}
	return dest, dest != ""
}

// stdinDelim ends the heredoc withStdin gives a remote command.
const stdinDelim = "__rehearse_stdin__"

// withStdin gives a remote command (ssh host 'bash -s' <<EOF) the heredoc
// ssh feeds it, its body kept on its own lines (blank lines fill the gap).
func withStdin(cmd string, cmdLine int, body string, bodyLine int) string {
	next := cmdLine + strings.Count(cmd, "\n") + 1
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return cmd + " <<'" + stdinDelim + "'\n" + strings.Repeat("\n", max(bodyLine-next, 0)) + body + stdinDelim + "\n"
}

// aliasInner is the command line an alias the script defined (alias
// s=sudo) expands to: its value and the command's other words, read as a
// script in the same shell (its other aliases in force, this one not, as
// bash does not expand an alias inside itself). Bash expands aliases in
// scripts only with shopt -s expand_aliases, sh always: an alias the
// script defines is taken to be used. Only an unquoted, unwrapped
// command name is an alias.
func (c *command) aliasInner() *innerScript {
	if c.wrapped || len(c.words) == 0 || len(c.sc.aliases) == 0 {
		return nil
	}
	name := c.words[0].Lit()
	d, ok := c.sc.alias(name, c.words[0].Pos())
	if name == "" || !ok {
		return nil
	}
	if !d.ok {
		return &innerScript{at: c.words[0], unseen: fmt.Sprintf("`%s` is an alias whose value is only known at run time: what it runs is not seen", name)}
	}
	text := d.value
	if len(c.words) > 1 {
		text += " " + c.sc.raw(c.words[1].Pos(), c.words[len(c.words)-1].End())
	}
	aliases := make(map[string][]aliasDef, len(c.sc.aliases))
	for n, ds := range c.sc.aliases {
		if n != name {
			aliases[n] = ds
		}
	}
	return &innerScript{text: text, line: c.sc.line(c.words[0].Pos()), aliases: aliases}
}

// envSplit is the command line of env -S STRING (--split-string): env
// splits the string into words as a shell would, and runs them with the
// arguments after it.
func (c *command) envSplit() *innerScript {
	rest := c.words[1:]
	args := c.sc.args(rest, wrappers["env"].opts, true)
	a, ok := lastOpt(args, "-S", "--split-string")
	if p := positionals(args); !ok && len(p) > 0 && envSplitRuntime(p[0]) {
		a, ok = p[0], true // -S"$CMD": an option only known at run time
	}
	if !ok || a.word == nil {
		return nil
	}
	if !a.ok {
		return &innerScript{at: a.word, unseen: fmt.Sprintf("`env -S` runs `%s`, a command line only known at run time: what it runs is not seen",
			oneLine(c.sc.wordSource(a.word)))}
	}
	text := a.val
	if a.at+1 < len(rest) {
		text += " " + c.sc.raw(rest[a.at+1].Pos(), rest[len(rest)-1].End())
	}
	return &innerScript{text: text, line: c.sc.line(a.word.Pos())}
}

// envSplitRuntime says whether env's first positional is in fact -S with
// a string only known at run time (-S"$CMD", --split-string="$CMD").
func envSplitRuntime(a shellArg) bool {
	return !a.ok && (strings.HasPrefix(a.val, "-S") || strings.HasPrefix(a.val, "--split-string="))
}

// unreadShell is what a shell preflight does not parse (zsh, fish, csh)
// runs: a -c string, a file, or its standard input, none of it seen.
func (c *command) unreadShell(name string) *innerScript {
	args := c.sc.args(c.words[1:], optSpec{short: "oO"}, true)
	runs := len(positionals(args)) > 0 || c.piped
	for _, r := range c.redirs {
		if (r.N == nil || r.N.Value == "0") && (r.Op == syntax.RdrIn || r.Op == syntax.Hdoc || r.Op == syntax.DashHdoc || r.Op == syntax.WordHdoc) {
			runs = true
		}
	}
	if !runs {
		return nil
	}
	return &innerScript{at: c.words[0], unseen: fmt.Sprintf("`%s` runs a %s script, which preflight does not read: its commands are not seen", oneLine(c.source()), name)}
}

package preflight

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// ShellEnv is what the shell rules know of the target environment.
type ShellEnv struct {
	// Units is the target host's systemd unit inventory (names such as
	// "billing-api.service"); nil when it is not known (unknown-unit is
	// then not judged).
	Units map[string]bool
	// Hosts are the environment's own host names (compose services,
	// localhost): calls to them are not external.
	Hosts []string
	// Allow is the allow-list of external hosts or domains (".example.com"
	// matches subdomains).
	Allow []string
	// Files are the package's files (slash paths relative to its root). A
	// script sourced or run with `sh FILE` from among them is checked on
	// its own, so it is not cannot-tell; nil when none are known.
	Files map[string]bool
}

// CheckScript checks one shell script. line is the line in file where src
// starts (1 for a whole file; a manifest step's command starts on its
// YAML line); findings name lines of file. A script with a syntax error
// gives one parse-error finding and nothing else.
//
// A NUL byte anywhere in src is removed before it is read (bash and dash
// skip it; mvdan's parser reads on too, but the message and the commands
// around it are not what the shell sees), with a cannot-tell naming its
// line.
func CheckScript(file string, line int, src []byte, env ShellEnv) []Finding {
	return CheckScriptContext(context.Background(), file, line, src, env)
}

// CheckScriptContext is CheckScript that stops when ctx is done (checked
// between statements and before each nested script); the findings are
// then partial, and ctx.Err() says so.
func CheckScriptContext(ctx context.Context, file string, line int, src []byte, env ShellEnv) []Finding {
	src, nul, hasNUL := stripNUL(file, line, src)
	c := newShellCheck(file, env, len(src))
	c.ctx = ctx
	if hasNUL {
		c.add(nul)
	}
	c.script(src, line, "")
	return c.result()
}

// shellRule is one shell rule: it looks at one simple command at a time,
// each link of a wrapper chain (env sudo systemctl ...) on its own.
type shellRule interface {
	check(c *command)
}

// shellRules run on every command, in this order.
var shellRules = []shellRule{sudoRule{}, unitRule{}, scheduledRule{}, endpointRule{}, cannotTellRule{}}

// maxNesting bounds scripts inside scripts (bash -c "sh -c '...'").
const maxNesting = 8

// shellCheck collects the findings of one file.
type shellCheck struct {
	ctx    context.Context // nil: never cancelled
	file   string
	env    ShellEnv
	units  map[string]bool // env.Units, names normalised; nil when unknown
	parser *syntax.Parser
	depth  int
	out    []Finding
	seen   map[Finding]bool

	parsed int                   // bytes handed to the parser so far
	budget int                   // bytes the parser may be handed for this file (shellBudget)
	read   map[scriptKey]bool    // scripts read, and whether they parsed
	cut    map[scriptKey]Finding // scripts past maxNesting not read by a shorter route (yet)
}

// shellBudget is how many bytes of scripts the parser may read for a
// file of n bytes, nested scripts included: 8 times the file, and 1 MiB.
func shellBudget(n int) int { return 8*n + 1<<20 }

// newShellCheck checks a file of size bytes.
func newShellCheck(file string, env ShellEnv, size int) *shellCheck {
	c := &shellCheck{file: file, env: env, seen: map[Finding]bool{}, budget: shellBudget(size),
		read: map[scriptKey]bool{}, cut: map[scriptKey]Finding{},
		parser: syntax.NewParser(syntax.Variant(syntax.LangBash))}
	if env.Units != nil {
		c.units = make(map[string]bool, len(env.Units))
		for u, ok := range env.Units {
			if ok {
				c.units[unitName(u)] = true
			}
		}
	}
	return c
}

// script parses src, whose first line is line base of the file, and checks
// it. remote names the host the script runs on when it is not the target
// (ssh host '...'). It reports false when src has a syntax error.
func (c *shellCheck) script(src []byte, base int, remote string) bool {
	return c.scriptIn(src, base, remote, nil)
}

// scriptIn is script with the aliases of the shell it runs in (an alias's
// expansion runs in the shell that defined it; bash -c in a new one).
func (c *shellCheck) scriptIn(src []byte, base int, remote string, aliases map[string][]aliasDef) bool {
	key := scriptKey{text: string(src), base: base, remote: remote, aliased: aliases != nil}
	if ok, done := c.read[key]; done {
		return ok
	}
	if c.cancelled() {
		return true
	}
	if c.depth >= maxNesting {
		if _, dup := c.cut[key]; !dup {
			c.cut[key] = Finding{Rule: RuleCannotTell, Severity: Info, Line: base,
				Message: fmt.Sprintf("a script nested deeper than %d scripts inside the file (a shell's -c string, heredoc or eval inside another) is not read: its commands are not seen", maxNesting-1),
				Fix:     "unnest it (put the inner script in the package as a file) or check it by hand"}
		}
		return true
	}
	if c.parsed+len(src) > c.budget {
		c.add(Finding{Rule: RuleCannotTell, Severity: Info, Line: base,
			Message: fmt.Sprintf("nested scripts beyond preflight's budget (%d bytes parsed for this file): not read, their commands are not seen", c.budget),
			Fix:     "unnest the scripts (put them in the package as files) or check them by hand"})
		return true
	}
	c.parsed += len(src)
	c.read[key] = true // before the walk: a script that reaches itself stops here
	delete(c.cut, key)
	c.depth++
	defer func() { c.depth-- }()
	f, err := c.parser.Parse(bytes.NewReader(src), c.file)
	if err != nil {
		c.read[key] = false
		c.parseError(err, src, base)
		return false
	}
	sc := &script{check: c, src: src, base: base, remote: remote}
	sc.vars = sc.collectVars(f, aliases)
	sc.walk(f)
	return true
}

// scriptKey names a script by its text and where it runs. The same text
// on the same line gives the same findings, so it is read once: a bash -c
// string inside $(...) is reached by the walk of the script around it and
// again by the parse of every string around that, which nested n deep is
// exponential work.
type scriptKey struct {
	text    string
	base    int
	remote  string
	aliased bool // an alias's expansion (run with its shell's aliases)
}

// cancelled says whether the check's context is done: the walk stops.
func (c *shellCheck) cancelled() bool { return c.ctx != nil && c.ctx.Err() != nil }

func (c *shellCheck) parseError(err error, src []byte, base int) {
	line, text := base, err.Error()
	var pe syntax.ParseError
	var le syntax.LangError
	var lines sqlLineIndex
	switch {
	case errors.As(err, &pe):
		line, text = base+srcLine(pe.Pos, src, &lines)-1, pe.Text
	case errors.As(err, &le):
		line, text = base+srcLine(le.Pos, src, &lines)-1, strings.TrimPrefix(le.Error(), le.Filename+":"+le.Pos.String()+": ")
	}
	c.add(Finding{Rule: RuleParseError, Severity: Error, Line: line,
		Message: fmt.Sprintf("shell syntax error: %s", text),
		Fix:     "fix the script's syntax (`bash -n` shows the same error); nothing else in it was checked"})
}

// add records a finding once (a command substitution inside a string that
// is also parsed as a script is seen twice).
func (c *shellCheck) add(f Finding) {
	f.File = c.file
	if c.seen[f] {
		return
	}
	c.seen[f] = true
	c.out = append(c.out, f)
}

// result is the file's findings in stable order; a parse-error of the
// whole file stands alone.
func (c *shellCheck) result() []Finding {
	for _, f := range c.cut {
		c.add(f)
	}
	c.cut = map[scriptKey]Finding{}
	Sort(c.out)
	return c.out
}

// script is one parsed script: a file, a step's command, or a script
// inside one (bash -c '...', a heredoc fed to a shell).
type script struct {
	check   *shellCheck
	src     []byte
	base    int    // file line of the script's first line
	remote  string // host it runs on, when not the target host
	vars    map[string]varDef
	aliases map[string][]aliasDef // by name, in the order defined
	lines   sqlLineIndex          // src's line starts, made when first needed
}

// line is the file line of a position in the script.
func (sc *script) line(p syntax.Pos) int {
	return sc.base + srcLine(p, sc.src, &sc.lines) - 1
}

// srcLine is the 1-based line of p in src. mvdan's Pos keeps lines in 18
// bits: past line 262,143 Line() is 0, so the line is counted from the
// byte offset instead (lines, an index of src's newlines, is made on the
// first such position). An unknown position is line 1.
func srcLine(p syntax.Pos, src []byte, lines *sqlLineIndex) int {
	if l := p.Line(); l > 0 {
		return int(l)
	}
	off := int(p.Offset())
	if off <= 0 || off > len(src) {
		return 1
	}
	if *lines == nil {
		*lines = newSQLLineIndex(string(src))
	}
	return lines.line(off)
}

func (sc *script) report(rule string, sev Severity, at syntax.Node, msg, fix string) {
	line := sc.base
	if at != nil {
		line = sc.line(at.Pos())
	}
	sc.check.add(Finding{Rule: rule, Severity: sev, Line: line, Message: msg, Fix: fix})
}

// walk visits every statement: function bodies, subshells, pipelines,
// command substitutions, if/while/case bodies and heredoc expansions.
func (sc *script) walk(root syntax.Node) {
	piped := map[*syntax.Stmt]bool{}
	syntax.Walk(root, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.BinaryCmd:
			if n.Op == syntax.Pipe || n.Op == syntax.PipeAll {
				piped[n.Y] = true
			}
		case *syntax.Stmt:
			if sc.check.cancelled() {
				return false
			}
			sc.stmt(n, piped[n])
		}
		return true
	})
}

// stmt checks one statement's command and each command it wraps, and the
// scripts it runs from strings or heredocs.
func (sc *script) stmt(s *syntax.Stmt, piped bool) {
	var words []*syntax.Word
	if ce, ok := s.Cmd.(*syntax.CallExpr); ok {
		words = ce.Args
	}
	if len(words) == 0 && len(s.Redirs) == 0 {
		return
	}
	todo := []*command{{sc: sc, words: words, redirs: s.Redirs, piped: piped}}
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		for _, r := range shellRules {
			r.check(c)
		}
		if in := c.inner(); in != nil && in.text != "" {
			sc.check.scriptIn([]byte(in.text), in.line, in.remote, in.aliases)
		}
		todo = append(todo, c.unwrap()...)
	}
}

// command is one simple command: its words (words[0] is its name) and the
// redirections of its statement.
type command struct {
	sc      *script
	words   []*syntax.Word
	redirs  []*syntax.Redirect
	piped   bool // its standard input is a pipe
	wrapped bool // run by a wrapper (env, sudo, ...): the statement's redirections are the wrapper's

	innerDone bool
	innerV    *innerScript
}

// name is the command's name without its directory ("/usr/bin/sudo" is
// "sudo"), or "" when it is only known at run time.
func (c *command) name() string {
	if len(c.words) == 0 {
		return ""
	}
	s, ok := c.sc.text(c.words[0])
	if !ok {
		return ""
	}
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// source is the command as written, on one line and shortened for a
// message.
func (c *command) source() string {
	if len(c.words) == 0 {
		return ""
	}
	return oneLine(c.sc.raw(c.words[0].Pos(), c.words[len(c.words)-1].End()))
}

// short puts text on one line and cuts it for a message.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\\\n", " ")), " ")
	if r := []rune(s); len(r) > 72 {
		s = string(r[:71]) + "…"
	}
	return s
}

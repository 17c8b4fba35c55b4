package preflight

import (
	"fmt"
	"path"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// scheduledRule finds scripts that install scheduled jobs: crontab edits,
// files written or copied into /etc/cron* or /var/spool/cron, systemd
// timers enabled, started or copied into a unit directory, systemd-run
// timers and at jobs. The rehearsal runs on a copy of production: a job
// installed there runs there, on its schedule, against whatever it calls.
type scheduledRule struct{}

const scheduledFix = "keep the job out of the rehearsal (install it disabled, or after the upgrade is proven), or make it call only the environment's services"

func (scheduledRule) check(c *command) {
	if !c.wrapped {
		for _, r := range c.redirs {
			switch r.Op {
			case syntax.RdrOut, syntax.AppOut, syntax.RdrClob, syntax.RdrAll, syntax.AppAll:
				if p, ok := c.sc.text(r.Word); ok {
					c.scheduledWrite(r.Word, p, "writes", r.Op.String())
				}
			}
		}
	}
	switch name := c.name(); name {
	case "crontab":
		c.crontabEdit()
	case "tee", "sponge":
		for _, a := range positionals(c.sc.args(c.words[1:], optSpec{long: []string{"output-error"}}, false)) {
			if a.ok {
				c.scheduledWrite(a.word, a.val, "writes", "")
			}
		}
	case "dd":
		for _, w := range c.words[1:] {
			if s, ok := c.sc.text(w); ok && strings.HasPrefix(s, "of=") {
				c.scheduledWrite(w, s[3:], "writes", "")
			}
		}
	case "sed", "perl":
		for _, a := range c.inPlace(name) {
			if cronPath(a.val) {
				c.sc.report(RuleScheduledTask, Warning, a.word,
					fmt.Sprintf("`%s` edits %s in place: cron on the rehearsal's host would run its jobs", c.source(), a.val), scheduledFix)
			}
		}
	case "cp", "mv", "ln", "install", "rsync":
		c.copyInto(name)
	case "systemctl":
		us, _ := c.units()
		for _, u := range us {
			if strings.HasSuffix(u.name, ".timer") && timerVerbs[u.verb] {
				c.sc.report(RuleScheduledTask, Warning, u.word,
					fmt.Sprintf("`%s` %s the timer %s: the rehearsal's host would run its unit on schedule", c.source(), timerVerbs2[u.verb], u.name), scheduledFix)
			}
		}
	case "systemd-run":
		for _, a := range c.sc.args(c.words[1:], optSpec{short: "upEMHs", long: []string{"unit", "property", "description",
			"slice", "setenv", "uid", "gid", "nice", "working-directory", "on-active", "on-boot", "on-startup", "on-unit-active",
			"on-unit-inactive", "on-calendar", "timer-property", "host", "machine", "service-type", "path-property", "socket-property"}}, true) {
			if strings.HasPrefix(a.opt, "--on-") {
				c.sc.report(RuleScheduledTask, Warning, c.words[0],
					fmt.Sprintf("`%s` starts a transient timer (%s): the rehearsal's host would run the command on schedule", c.source(), a.opt), scheduledFix)
				break
			}
		}
	case "at", "batch":
		args := c.sc.args(c.words[1:], optSpec{short: "qfmMt"}, false)
		if _, ok := lastOpt(args, "-l", "-d", "-r", "-c"); !ok {
			c.sc.report(RuleScheduledTask, Warning, c.words[0],
				fmt.Sprintf("`%s` schedules a job with %s: the rehearsal's host would run it", c.source(), name), scheduledFix)
		}
	}
}

// timerVerbs are the systemctl verbs that make a timer run.
var timerVerbs = map[string]bool{"enable": true, "start": true, "reenable": true, "restart": true, "try-restart": true,
	"reload-or-restart": true, "try-reload-or-restart": true, "unmask": true}

var timerVerbs2 = map[string]string{"enable": "enables", "start": "starts", "reenable": "enables", "restart": "starts",
	"try-restart": "restarts", "reload-or-restart": "starts", "try-reload-or-restart": "restarts", "unmask": "unmasks"}

// crontabEdit reports crontab FILE, crontab -e and crontab - (a crontab
// on standard input, whose jobs are checked when it is a heredoc).
func (c *command) crontabEdit() {
	args := c.sc.args(c.words[1:], optSpec{short: "uTcn"}, false)
	if _, ok := lastOpt(args, "-e"); ok {
		c.sc.report(RuleScheduledTask, Warning, c.words[0],
			fmt.Sprintf("`%s` edits a crontab: cron on the rehearsal's host would run its jobs", c.source()), scheduledFix)
		return
	}
	if _, ok := lastOpt(args, "-l", "-r", "-V", "-T", "-c"); ok {
		return
	}
	pos := positionals(args)
	if len(pos) > 0 && pos[0].val != "-" {
		c.sc.report(RuleScheduledTask, Warning, c.words[0],
			fmt.Sprintf("`%s` installs %s as a crontab: cron on the rehearsal's host would run its jobs", c.source(), oneLine(c.sc.wordSource(pos[0].word))), scheduledFix)
		return
	}
	c.sc.report(RuleScheduledTask, Warning, c.words[0],
		fmt.Sprintf("`%s` installs a crontab from its standard input: cron on the rehearsal's host would run its jobs", c.source()), scheduledFix)
	if body, line, ok := c.stdinHeredoc(); ok {
		c.sc.check.crontab(body, line, false)
	}
}

// copyInto reports cp, mv, ln, install and rsync into a cron directory,
// or of a timer into a systemd unit directory.
func (c *command) copyInto(name string) {
	spec := optSpec{short: "St", long: []string{"target-directory", "suffix"}}
	switch name {
	case "install":
		spec = optSpec{short: "gmoStC", long: []string{"group", "mode", "owner", "suffix", "target-directory", "strip-program"}}
	case "rsync":
		spec = clientOpts["rsync"]
	}
	args := c.sc.args(c.words[1:], spec, false)
	if _, dirs := lastOpt(args, "-d", "--directory"); dirs && name == "install" {
		return
	}
	pos := positionals(args)
	dest, ok := lastOpt(args, "-t", "--target-directory")
	if !ok {
		if len(pos) < 2 {
			return
		}
		dest, pos = pos[len(pos)-1], pos[:len(pos)-1]
	}
	if !dest.ok {
		return
	}
	verb := map[string]string{"cp": "copies", "mv": "moves", "ln": "links", "install": "installs", "rsync": "copies"}[name]
	if cronPath(dest.val) {
		c.sc.report(RuleScheduledTask, Warning, dest.word,
			fmt.Sprintf("`%s` %s a job into %s: cron on the rehearsal's host would run it", c.source(), verb, dest.val), scheduledFix)
		return
	}
	if !unitDir(dest.val) {
		return
	}
	timer := strings.HasSuffix(dest.val, ".timer")
	for _, p := range pos {
		timer = timer || strings.HasSuffix(p.val, ".timer")
	}
	if timer {
		c.sc.report(RuleScheduledTask, Warning, dest.word,
			fmt.Sprintf("`%s` %s a systemd timer into %s: once enabled, the rehearsal's host runs its unit on schedule", c.source(), verb, dest.val), scheduledFix)
	}
}

// scheduledWrite reports a write into a cron directory or of a timer unit;
// a crontab written from a heredoc or by echo has its jobs checked, a
// cron.daily script written from a heredoc is checked as a script.
func (c *command) scheduledWrite(w *syntax.Word, p, verb, redir string) {
	what := c.source()
	if redir != "" {
		what = strings.TrimSpace(what + " " + redir + " " + oneLine(c.sc.wordSource(w)))
	}
	switch {
	case cronPath(p):
		c.sc.report(RuleScheduledTask, Warning, w,
			fmt.Sprintf("`%s` puts a job where cron reads it (%s): cron on the rehearsal's host would run it", what, p), scheduledFix)
		kind := scheduledKind(p)
		body, line, ok := c.stdinHeredoc()
		if !ok && c.name() == "echo" && len(c.words) > 1 {
			if in := c.fromWords(c.words[1:], ""); in.text != "" {
				body, line, ok = in.text, in.line, true
			}
		}
		switch {
		case !ok:
		case kind == runPartsScript:
			c.sc.check.script([]byte(body), line, c.sc.remote)
		default:
			c.sc.check.crontab(body, line, kind == systemCrontab)
		}
	case unitDir(p) && strings.HasSuffix(p, ".timer"):
		c.sc.report(RuleScheduledTask, Warning, w,
			fmt.Sprintf("`%s` %s the systemd timer %s: once enabled, the rehearsal's host runs its unit on schedule", what, verb, p), scheduledFix)
	}
}

// inPlace are the files sed -i or perl -i edits in place (GNU sed's -i,
// -i.bak, -ni, --in-place[=SUF]; perl -pi -e), nil without -i. The first
// positional is the program unless -e (or sed's -f) gave it.
func (c *command) inPlace(name string) []shellArg {
	valued := "efl" // sed -e SCRIPT, -f FILE, -l N
	if name == "perl" {
		valued = "eE"
	}
	in, program := false, false
	var pos []shellArg
	words := c.words[1:]
	opts := true
	for i := 0; i < len(words); i++ {
		s, ok := c.sc.text(words[i])
		switch {
		case !opts || !ok || len(s) < 2 || s[0] != '-':
			pos = append(pos, shellArg{val: s, ok: ok, word: words[i], at: i})
		case s == "--":
			opts = false
		case strings.HasPrefix(s, "--"):
			long, _, eq := strings.Cut(s[2:], "=")
			switch long {
			case "in-place":
				in = true
			case "expression", "file", "line-length":
				program = program || long != "line-length"
				if !eq {
					i++
				}
			}
		default:
		flags:
			for j := 1; j < len(s); j++ {
				switch f := s[j]; {
				case f == 'i':
					in = true
					break flags // the rest is a backup suffix
				case strings.IndexByte(valued, f) >= 0:
					program = program || f != 'l'
					if j+1 == len(s) {
						i++ // the value is the next word
					}
					break flags
				case name == "perl" && strings.IndexByte("0lIMmxCd", f) >= 0:
					break flags // a value attached to the flag
				}
			}
		}
	}
	if !in {
		return nil
	}
	if !program && len(pos) > 0 {
		pos = pos[1:]
	}
	var out []shellArg
	for _, a := range pos {
		if a.ok {
			out = append(out, a)
		}
	}
	return out
}

// stdinHeredoc is the body of the heredoc on the command's standard input.
func (c *command) stdinHeredoc() (string, int, bool) {
	var in *syntax.Redirect
	for _, r := range c.redirs {
		if (r.N == nil || r.N.Value == "0") && (r.Op == syntax.Hdoc || r.Op == syntax.DashHdoc || r.Op == syntax.RdrIn || r.Op == syntax.WordHdoc) {
			in = r
		}
	}
	switch {
	case in == nil || in.Op == syntax.RdrIn:
		return "", 0, false
	case in.Op == syntax.WordHdoc:
		t, seen := c.sc.scriptText(in.Word)
		return t, c.sc.line(in.Word.Pos()), seen
	case in.Hdoc == nil:
		return "", 0, false
	}
	return c.sc.partsSource(in.Hdoc.Parts), c.sc.line(in.Hdoc.Pos()), true
}

// cronPath says whether a path is where cron reads jobs.
func cronPath(p string) bool {
	p = path.Clean(p)
	switch {
	case p == "/etc/cron.allow" || p == "/etc/cron.deny":
		return false
	case strings.HasPrefix(p, "/etc/cron"), p == "/etc/anacrontab", strings.HasPrefix(p, "/var/spool/cron"):
		return true
	}
	return false
}

// systemdUnitDirs are where systemd reads units.
var systemdUnitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system",
	"/usr/local/lib/systemd/system", "/etc/systemd/user", "/usr/lib/systemd/user", "~/.config/systemd/user"}

func unitDir(p string) bool {
	p = path.Clean(p)
	for _, d := range systemdUnitDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return strings.Contains(p, "/.config/systemd/user")
}

package preflight

import (
	"fmt"
	"path"
	"strings"
)

// scheduledKindOf is what a path holds for cron or systemd.
type scheduledFileKind int

const (
	notScheduled   scheduledFileKind = iota
	systemCrontab                    // /etc/crontab, /etc/cron.d/*: a user field before the command
	userCrontab                      // /var/spool/cron/*, crontab -: no user field
	runPartsScript                   // /etc/cron.daily/*: a script cron runs whole
	timerUnit                        // *.timer
)

// scheduledKind classifies a path, absolute (a script's target) or
// relative to a package's root (cron/, cron.d/, crontabs/, crontab,
// *.cron, *.timer). A package's cron/ files are read as /etc/cron.d files,
// with a user field: that is where packages install them.
func scheduledKind(p string) scheduledFileKind {
	p = strings.ToLower(path.Clean(p))
	base := path.Base(p)
	if path.Ext(base) == ".timer" {
		return timerUnit
	}
	dirs := strings.Split(path.Dir(p), "/")
	for _, d := range dirs {
		switch d {
		case "cron.hourly", "cron.daily", "cron.weekly", "cron.monthly", "cron.yearly":
			return runPartsScript
		}
	}
	for _, d := range dirs {
		if d == "crontabs" || strings.Contains(p, "spool/cron") {
			return userCrontab
		}
	}
	if base == "crontab" || base == "anacrontab" || path.Ext(base) == ".cron" || path.Ext(base) == ".crontab" {
		return systemCrontab
	}
	for _, d := range dirs {
		if d == "cron" || d == "cron.d" || d == "crontab" {
			return systemCrontab
		}
	}
	return notScheduled
}

// CheckScheduledFile checks a package's file that IS a scheduled job: a
// crontab (under cron/, cron.d/, crontabs/, named crontab or *.cron), a
// cron.daily-style script, or a systemd *.timer. Each job is a
// scheduled-task finding on its line, and a crontab's job commands are
// checked with CheckScript on their lines (a cron.daily script whole).
// Any other path gives nothing. The environment is not known here: hosts
// of the environment count as external; ShellEnv.CheckScheduledFile knows
// them.
func CheckScheduledFile(path string, src []byte) []Finding {
	return ShellEnv{}.CheckScheduledFile(path, src)
}

// CheckScheduledFile is CheckScheduledFile with what the environment's
// shell rules know (hosts, allow-list, units).
func (env ShellEnv) CheckScheduledFile(path string, src []byte) []Finding {
	c := newShellCheck(path, env, len(src))
	switch scheduledKind(path) {
	case timerUnit:
		c.timerFile(path, string(src))
	case runPartsScript:
		if c.script(src, 1, "") {
			c.add(Finding{Rule: RuleScheduledTask, Severity: Warning,
				Message: fmt.Sprintf("%s is a script cron runs from %s: the rehearsal's host would run it", path, cronDir(path)),
				Fix:     scheduledFix})
		}
	case systemCrontab:
		c.crontab(string(src), 1, true)
	case userCrontab:
		c.crontab(string(src), 1, false)
	}
	return c.result()
}

func cronDir(p string) string {
	for _, d := range strings.Split(path.Dir(p), "/") {
		if strings.HasPrefix(d, "cron.") {
			return d
		}
	}
	return path.Dir(p)
}

// crontab checks a crontab's jobs: each is a scheduled-task, and its
// command (up to an unescaped %, cron's stdin marker) is a script run on
// its line. base is the file line of the crontab's first line; system
// crontabs have a user field before the command.
func (c *shellCheck) crontab(text string, base int, system bool) {
	for i, l := range strings.Split(text, "\n") {
		line := base + i
		t := strings.TrimLeft(l, " \t")
		if t == "" || t[0] == '#' || cronVariable(t) {
			continue
		}
		n := 5
		if t[0] == '@' {
			n = 1
		}
		if system {
			n++
		}
		fields, rest := cutFields(t, n)
		if len(fields) < n || strings.TrimSpace(rest) == "" {
			c.add(Finding{Rule: RuleParseError, Severity: Error, Line: line,
				Message: fmt.Sprintf("cron line %q has no command after its %d fields", oneLine(t), n),
				Fix:     "give the schedule (5 fields or @daily)" + map[bool]string{true: ", the user", false: ""}[system] + " and the command"})
			continue
		}
		sched, user := strings.Join(fields[:min(n, len(fields))], " "), ""
		if system {
			sched, user = strings.Join(fields[:n-1], " "), " as "+fields[n-1]
		}
		cmd := cronCommand(rest)
		c.add(Finding{Rule: RuleScheduledTask, Severity: Warning, Line: line,
			Message: fmt.Sprintf("cron job `%s` runs `%s`%s: cron on the rehearsal's host would run it", sched, oneLine(cmd), user),
			Fix:     scheduledFix})
		c.script([]byte(cmd), line, "")
	}
}

// cronVariable says whether a crontab line sets a variable (MAILTO=...).
func cronVariable(t string) bool {
	name, _, ok := strings.Cut(t, "=")
	return ok && isAssignment(strings.TrimSpace(name)+"=")
}

// cutFields splits the first n whitespace-separated fields off s.
func cutFields(s string, n int) ([]string, string) {
	var fields []string
	for len(fields) < n {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		fields = append(fields, s[:end])
		s = s[end:]
	}
	return fields, strings.TrimLeft(s, " \t")
}

// cronCommand is the shell command of a cron job: up to the first
// unescaped % (the rest is its standard input), with \% as %.
func cronCommand(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '%':
			b.WriteByte('%')
			i++
		case s[i] == '%':
			return b.String()
		default:
			b.WriteByte(s[i])
		}
	}
	return strings.TrimRight(b.String(), "\r")
}

// timerFile reports a shipped systemd timer on the line of its first
// trigger (OnCalendar=, OnBootSec=, ...).
func (c *shellCheck) timerFile(p, text string) {
	name := path.Base(p)
	unit := strings.TrimSuffix(name, ".timer") + ".service"
	line, trigger, section := 0, "", ""
	for i, l := range strings.Split(text, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			section = t
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok || section != "[Timer]" {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case k == "Unit":
			unit = v
		case strings.HasPrefix(k, "On") && line == 0:
			line, trigger = i+1, k+"="+v
		}
	}
	what := "a timer"
	if trigger != "" {
		what = trigger
	}
	c.add(Finding{Rule: RuleScheduledTask, Severity: Warning, Line: line,
		Message: fmt.Sprintf("ships the systemd timer %s (%s): once installed, the rehearsal's host runs %s on schedule", name, what, unit),
		Fix:     scheduledFix})
}

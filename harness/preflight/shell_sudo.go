package preflight

import (
	"fmt"
	"strings"
)

// sudoRule finds commands that switch user: sudo, doas, su, runuser,
// pkexec, and the container-world switchers gosu, su-exec, setuidgid,
// setpriv --reuid and chpst -u. A script that switches user by itself
// needs a password, a sudoers entry or root that an unattended upgrade
// does not have (or that the rehearsal's host has and production's does
// not), and it hides which user the step really needs: the manifest's
// user: says that in the open.
type sudoRule struct{}

// switcher says how a command names the user it switches to.
type switcher struct {
	opts     []string // options naming the user
	first    bool     // else the first positional names it (su, gosu USER CMD)
	required bool     // no switch without one of opts (setpriv, chpst)
}

// switchers are the commands that run something as another user.
var switchers = map[string]switcher{
	"sudo":      {opts: []string{"-u", "--user"}},
	"doas":      {opts: []string{"-u"}},
	"pkexec":    {opts: []string{"--user"}},
	"runuser":   {opts: []string{"-u", "--user"}, first: true},
	"su":        {first: true}, // su [options] [USER]
	"gosu":      {first: true}, // gosu USER[:GROUP] CMD
	"su-exec":   {first: true}, // su-exec USER[:GROUP] CMD
	"setuidgid": {first: true}, // daemontools: setuidgid USER CMD
	"setpriv":   {opts: []string{"--reuid", "--ruid", "--euid", "--regid", "--rgid", "--egid"}, required: true},
	"chpst":     {opts: []string{"-u"}, required: true}, // -U only sets $UID and $GID
}

func (sudoRule) check(c *command) {
	name := c.name()
	sw, ok := switchers[name]
	if !ok {
		return
	}
	user := "root"
	spec := wrappers[name].opts
	if name == "su" {
		spec = wrappers["runuser"].opts
	}
	args := c.sc.args(c.words[1:], spec, name != "su" && name != "runuser")
	if a, ok := lastOpt(args, sw.opts...); ok && a.ok {
		user = a.val
	} else if sw.required && !ok {
		return
	} else if sw.first {
		for _, p := range positionals(args) {
			if p.val != "-" && p.ok {
				user = p.val
				break
			}
		}
	}
	if name != "setpriv" {
		user, _, _ = strings.Cut(user, ":") // USER:GROUP
	}
	c.sc.report(RuleSudo, Error, c.words[0],
		fmt.Sprintf("`%s` switches to %s inside the script", c.source(), user),
		fmt.Sprintf("run the step as the user it needs (the manifest step's `user: %s`) and drop `%s`: an unattended upgrade cannot answer a password prompt, and the rehearsal's sudoers is not production's", user, name))
}

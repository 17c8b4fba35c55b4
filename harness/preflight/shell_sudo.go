package preflight

import "fmt"

// sudoRule finds sudo, doas, su, runuser and pkexec run as commands. A
// script that switches user by itself needs a password or a sudoers entry
// that an unattended upgrade does not have (or that the rehearsal's host
// has and production's does not), and it hides which user the step really
// needs: the manifest's user: says that in the open.
type sudoRule struct{}

// switchers are the commands that run something as another user, with
// the option naming that user.
var switchers = map[string][]string{
	"sudo":    {"-u", "--user"},
	"doas":    {"-u"},
	"pkexec":  {"--user"},
	"runuser": {"-u", "--user"},
	"su":      nil, // su [options] [USER]
}

func (sudoRule) check(c *command) {
	name := c.name()
	userOpts, ok := switchers[name]
	if !ok {
		return
	}
	user := "root"
	spec := wrappers[name].opts
	if name == "su" {
		spec = wrappers["runuser"].opts
	}
	args := c.sc.args(c.words[1:], spec, name != "su" && name != "runuser")
	if a, ok := lastOpt(args, userOpts...); ok && a.ok {
		user = a.val
	} else if name == "su" || name == "runuser" {
		for _, p := range positionals(args) {
			if p.val != "-" && p.ok {
				user = p.val
				break
			}
		}
	}
	c.sc.report(RuleSudo, Error, c.words[0],
		fmt.Sprintf("`%s` switches to %s inside the script", c.source(), user),
		fmt.Sprintf("run the step as the user it needs (the manifest step's `user: %s`) and drop `%s`: an unattended upgrade cannot answer a password prompt, and the rehearsal's sudoers is not production's", user, name))
}

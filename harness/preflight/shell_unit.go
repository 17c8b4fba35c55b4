package preflight

import (
	"fmt"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// unitRule finds systemctl and service naming a unit the target host does
// not have. A renamed unit (billing.service became billing-api.service)
// is the classic upgrade failure: the restart step fails, or worse, a
// `systemctl stop` of the old name succeeds at nothing and the old
// process keeps running.
type unitRule struct{}

// unitVerbs are the systemctl verbs whose arguments are units.
var unitVerbs = map[string]bool{
	"start": true, "stop": true, "restart": true, "reload": true, "try-restart": true, "reload-or-restart": true,
	"try-reload-or-restart": true, "condrestart": true, "force-reload": true, "enable": true, "disable": true,
	"reenable": true, "is-active": true, "is-enabled": true, "is-failed": true, "status": true, "mask": true,
	"unmask": true, "kill": true, "show": true, "cat": true, "preset": true, "freeze": true, "thaw": true,
	"clean": true, "revert": true, "edit": true, "isolate": true, "restart-or-reload": true, "reload-or-try-restart": true,
}

// systemctlOpts are systemctl's options that take a value.
var systemctlOpts = optSpec{short: "tpsHMnoP", long: []string{"type", "property", "signal", "host", "machine",
	"lines", "output", "state", "root", "kill-whom", "kill-value", "job-mode", "what", "preset-mode", "message",
	"timestamp", "boot-loader-entry", "boot-loader-menu", "reboot-argument", "drop-in", "image", "image-policy"}}

// unitArg is a unit a command names.
type unitArg struct {
	word *syntax.Word
	name string // normalised; "" when named at run time
	verb string
}

// units are the units a systemctl or service command acts on, and
// whether they are the target host's system units (not --user, not
// another host).
func (c *command) units() (us []unitArg, local bool) {
	local = c.sc.remote == ""
	switch c.name() {
	case "systemctl":
		args := c.sc.args(c.words[1:], systemctlOpts, false)
		if _, ok := lastOpt(args, "--user", "-H", "--host", "-M", "--machine", "--global", "--root"); ok {
			local = false
		}
		pos := positionals(args)
		if len(pos) < 2 || !pos[0].ok || !unitVerbs[pos[0].val] {
			return nil, local
		}
		for _, p := range pos[1:] {
			us = append(us, unitArg{word: p.word, name: unitArgName(p), verb: pos[0].val})
		}
	case "service", "invoke-rc.d":
		args := c.sc.args(c.words[1:], optSpec{}, true)
		if _, ok := lastOpt(args, "--status-all", "--help", "--version"); ok {
			return nil, local
		}
		pos := positionals(args)
		if len(pos) == 0 {
			return nil, local
		}
		verb := ""
		if len(pos) > 1 {
			verb = pos[1].val
		}
		us = append(us, unitArg{word: pos[0].word, name: unitArgName(pos[0]), verb: verb})
	}
	return us, local
}

// unitArgName normalises a unit argument; "" when it is named at run
// time, "*" for a glob or a path (not judged).
func unitArgName(a shellArg) string {
	if !a.ok {
		return ""
	}
	if strings.ContainsAny(a.val, "*?[/") || a.val == "" {
		return "*"
	}
	return unitName(a.val)
}

// unitName adds .service to a unit name without a type, as systemctl does.
func unitName(u string) string {
	for _, s := range UnitTypes {
		if strings.HasSuffix(u, s) {
			return u
		}
	}
	return u + ".service"
}

// hasUnit says whether the inventory has a unit, an instance of a
// template (foo@bar.service) counting when the template (foo@.service)
// is there.
func hasUnit(units map[string]bool, u string) bool {
	if units[u] {
		return true
	}
	if at := strings.IndexByte(u, '@'); at >= 0 {
		if dot := strings.LastIndexByte(u, '.'); dot > at {
			return units[u[:at+1]+u[dot:]]
		}
	}
	return false
}

func (unitRule) check(c *command) {
	units := c.sc.check.units
	if units == nil {
		return
	}
	us, local := c.units()
	if !local {
		return
	}
	for _, u := range us {
		switch {
		case u.name == "":
			c.sc.report(RuleCannotTell, Info, u.word,
				fmt.Sprintf("`%s` names a unit only known at run time (`%s`): whether the host has it is not judged", c.source(), oneLine(c.sc.wordSource(u.word))),
				"name the unit literally, or check by hand that the host has every unit the variable can hold")
		case u.name == "*" || hasUnit(units, u.name):
		default:
			fix := "name a unit the host has (`systemctl list-unit-files` on the target)"
			if near := nearUnits(units, u.name); len(near) > 0 {
				fix += "; did it become " + strings.Join(near, " or ") + "?"
			}
			c.sc.report(RuleUnknownUnit, Error, u.word,
				fmt.Sprintf("`%s` names %s, which the target host does not have", c.source(), u.name), fix)
		}
	}
}

// nearUnits are the host's units of the same type that share the unit's
// stem (billing.service and billing-api.service), at most three.
func nearUnits(units map[string]bool, u string) []string {
	dot := strings.LastIndexByte(u, '.')
	stem, typ := u[:dot], u[dot:]
	if i := strings.IndexAny(stem, "@"); i >= 0 {
		stem = stem[:i]
	}
	var near []string
	for h := range units {
		hd := strings.LastIndexByte(h, '.')
		if hd < 0 || h[hd:] != typ {
			continue
		}
		hs := h[:hd]
		if strings.HasPrefix(hs, stem) || strings.HasPrefix(stem, hs) || strings.Contains(hs, stem) {
			near = append(near, h)
		}
	}
	slices.Sort(near)
	if len(near) > 3 {
		near = near[:3]
	}
	return near
}

package preflight

// ShellInterpreters are the shells whose scripts preflight reads (with
// mvdan.cc/sh's bash parser): a file whose #! line names one is a shell
// script, and a command named by one runs a script (bash -c '...', sh
// FILE, a heredoc fed to dash). busybox counts as a #! interpreter
// (#!/bin/busybox sh); as a command it runs its applet (busybox sh -c
// '...' is sh -c '...'). Other shells (zsh, fish, csh, tcsh) are not read:
// a script they run is cannot-tell.
var ShellInterpreters = []string{"sh", "bash", "dash", "ash", "ksh", "mksh", "busybox"}

// UnitTypes are the unit types systemd knows, as unit name suffixes: a
// unit named without one is a .service.
var UnitTypes = []string{".service", ".socket", ".target", ".timer", ".path", ".mount", ".automount", ".swap", ".slice", ".scope", ".device"}

// shells are the commands that run a script given with -c, as a file, or
// on standard input, read by preflight: ShellInterpreters but busybox,
// which wraps its applet.
var shells = map[string]bool{}

// unreadShells run scripts preflight does not read: what they run is
// cannot-tell.
var unreadShells = map[string]bool{"zsh": true, "fish": true, "csh": true, "tcsh": true}

func init() {
	for _, s := range ShellInterpreters {
		if s != "busybox" {
			shells[s] = true
		}
	}
}

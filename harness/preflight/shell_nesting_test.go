package preflight

import (
	"fmt"
	"strings"
	"testing"
)

// substNest is `bash -c "echo; echo $(...)"` nested n deep around inner:
// each level's string holds the next inside a command substitution, so
// the walk of every level reaches every deeper one. (The review's `true;
// $(...)` runs each level's output as a command: a cannot-tell a level.)
func substNest(n int, inner string) string {
	s := inner
	for range n {
		s = `bash -c "echo; echo $(` + s + `)"`
	}
	return s
}

// quoteNest is `bash -c '...'` nested n deep around inner, each level
// single-quoted inside the one around it.
func quoteNest(n int, inner string) string {
	s := inner
	for range n {
		s = "bash -c '" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

// heredocNest is a heredoc fed to bash nested n deep around inner.
func heredocNest(n int, inner string) string {
	s := inner + "\n"
	for i := n; i > 0; i-- {
		s = fmt.Sprintf("bash <<'E%d'\n%sE%d\n", i, s, i)
	}
	return s
}

// TestOtherShells: busybox runs its applet; a shell preflight does not
// parse (zsh, fish, csh) is cannot-tell when it runs a script.
func TestOtherShells(t *testing.T) {
	runShellCases(t, []shellCase{
		{name: "busybox sh -c is sh -c", src: "busybox sh -c 'sudo id'\n/bin/busybox ash <<EOF\ndoas id\nEOF\n",
			want: []hit{{RuleSudo, 1, "sudo id"}, {RuleSudo, 3, "doas id"}}},
		{name: "zsh, fish and csh scripts are not read", src: "zsh -c 'sudo id'\nfish < setup.fish\ncurl -s x | tcsh\nzsh --version\n",
			want: []hit{{RuleCannotTell, 1, "zsh script"}, {RuleCannotTell, 2, "fish script"}, {RuleCannotTell, 3, "tcsh script"}}},
	})
	if len(shells) != len(ShellInterpreters)-1 || shells["busybox"] || !shells["sh"] || !shells["bash"] {
		t.Errorf("shells = %v, want ShellInterpreters %v but busybox", shells, ShellInterpreters)
	}
}

// checkWork checks src as a whole file and says how many bytes the parser
// was handed.
func checkWork(src string) ([]Finding, int) {
	c := newShellCheck("s.sh", ShellEnv{}, len(src))
	c.script([]byte(src), 1, "")
	return c.result(), c.parsed
}

// TestNestedSubstitutionWork: scripts nested in command substitutions are
// parsed once each, not once per route to them (the walk of every outer
// level reaches them, and so does the parse of every string around them):
// the work stays near the sum of the levels' sizes, within the budget,
// and the sudo at the bottom is found.
func TestNestedSubstitutionWork(t *testing.T) {
	for _, n := range []int{4, 12, 24} {
		src := substNest(n, "sudo id") + "\n"
		got, parsed := checkWork(src)
		if bound := (n + 2) * len(src); parsed > bound || parsed > shellBudget(len(src)) {
			t.Errorf("%d deep (%d bytes): parsed %d bytes, want at most %d (each level once) and the budget %d",
				n, len(src), parsed, bound, shellBudget(len(src)))
		}
		assertHits(t, "s.sh", got, []hit{{RuleSudo, 1, "sudo id"}})
	}
}

// TestNestedBudget: past the file's parse budget, a nested script is not
// read, and the file says so.
func TestNestedBudget(t *testing.T) {
	src := quoteNest(3, "sudo id") + "\n"
	c := newShellCheck("s.sh", ShellEnv{}, len(src))
	c.budget = len(src) + 10 // the file, not the strings inside it
	c.script([]byte(src), 1, "")
	if c.parsed > c.budget {
		t.Errorf("parsed %d bytes, over the budget %d", c.parsed, c.budget)
	}
	assertHits(t, "s.sh", c.result(), []hit{{RuleCannotTell, 1, "budget"}})
	if b := shellBudget(1000); b != 8*1000+1<<20 {
		t.Errorf("shellBudget(1000) = %d, want 8 × the source + 1 MiB", b)
	}
}

// TestNestedTooDeep: a script nested past maxNesting is not read, and
// the file says where; one level less is read.
func TestNestedTooDeep(t *testing.T) {
	deepest := maxNesting - 1 // scripts inside the file
	runShellCases(t, []shellCase{
		{name: "bash -c at the limit", src: quoteNest(deepest, "sudo id") + "\n",
			want: []hit{{RuleSudo, 1, "sudo id"}}},
		{name: "bash -c past the limit", src: quoteNest(deepest+1, "sudo id") + "\n",
			want: []hit{{RuleCannotTell, 1, fmt.Sprintf("nested deeper than %d", deepest)}}},
		{name: "bash -c far past the limit", src: quoteNest(9, "sudo id") + "\n",
			want: []hit{{RuleCannotTell, 1, "not read"}}},
		{name: "heredocs at the limit", src: heredocNest(deepest, "sudo id"),
			want: []hit{{RuleSudo, deepest + 1, "sudo id"}}},
		{name: "heredocs past the limit", src: heredocNest(deepest+1, "sudo id"),
			want: []hit{{RuleCannotTell, deepest + 2, "not read"}}},
		// Reached too deep by one route (the strings around it), read by a
		// shorter one (the file's own $(...)): nothing to report but sudo.
		{name: "too deep one way, read another", src: substNest(deepest+3, "sudo id") + "\n",
			want: []hit{{RuleSudo, 1, "sudo id"}}},
	})
}

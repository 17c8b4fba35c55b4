package preflight

import "testing"

// TestWrappersMore: commands that run another command (namespace and
// container entry, watch, GNU parallel, sg) are looked through; an inline
// program for another language's interpreter is cannot-tell.
func TestWrappersMore(t *testing.T) {
	runShellCases(t, []shellCase{
		{name: "nsenter", src: "nsenter -t 1 -m -u -i -n -p sudo id\nnsenter --target=1 --mount -- sudo id\n",
			want: []hit{{RuleSudo, 1, "`sudo id`"}, {RuleSudo, 2, "`sudo id`"}}},
		{name: "unshare -r", src: "unshare -r sudo id\nunshare --map-user 0 -m sudo id\n",
			want: []hit{{RuleSudo, 1, "`sudo id`"}, {RuleSudo, 2, "`sudo id`"}}},
		{name: "watch runs its words with sh -c", src: "watch -n 5 'sudo id'\nwatch -x sudo id\nwatch -n 1 sudo id\n",
			want: []hit{{RuleSudo, 1, "`sudo id`"}, {RuleSudo, 2, "`sudo id`"}, {RuleSudo, 3, "`sudo id`"}}},
		{name: "parallel", src: "parallel -j 4 sudo rm {} ::: a b\nparallel 'sudo rm {}' ::: a\n",
			want: []hit{{RuleSudo, 1, "sudo rm"}, {RuleSudo, 2, "sudo rm"}}},
		{name: "sg", src: "sg docker -c 'sudo id'\nsg docker 'sudo id'\n",
			want: []hit{{RuleSudo, 1, "`sudo id`"}, {RuleSudo, 2, "`sudo id`"}}},
		{name: "machinectl shell", src: "machinectl shell root@ /bin/sh -c 'sudo id'\nmachinectl shell --uid=app web sudo id\nmachinectl status sudo\n",
			want: []hit{{RuleSudo, 1, "`sudo id`"}, {RuleSudo, 2, "`sudo id`"}}},
		{name: "inline code", src: "python3 -c 'import os; os.system(\"sudo id\")'\nperl -e 'system q(sudo id)'\nruby -e 'x'\nnode -e 'x'\npython3 tool.py\nperl -w\n",
			want: []hit{{RuleCannotTell, 1, "runs python code preflight does not read"}, {RuleCannotTell, 2, "runs perl code"},
				{RuleCannotTell, 3, "runs ruby code"}, {RuleCannotTell, 4, "runs node code"}}},
		{name: "a perl substitution edits text, as sed does", src: "perl -pi -e 's/a/b/g' f\nperl -pi -e 's|a|b|' f\nperl -pi -e 's/a/`id`/e' f\nperl -ne 'print if /x/' f\n",
			want: []hit{{RuleCannotTell, 3, "runs perl code"}, {RuleCannotTell, 4, "runs perl code"}}},
	})
}

package preflight

import "fmt"

// cannotTellRule says where the parser cannot see: a command named by a
// variable or a command substitution, eval of a string built at run time,
// a sourced file that is not in the package, bash -c "$CMD", a shell fed
// from a pipe. Guessing there would either miss a hazard or invent one;
// an info finding tells the reviewer exactly what to read by hand.
type cannotTellRule struct{}

func (cannotTellRule) check(c *command) {
	if len(c.words) == 0 {
		return
	}
	if _, ok := c.sc.text(c.words[0]); !ok {
		c.sc.report(RuleCannotTell, Info, c.words[0],
			fmt.Sprintf("the command `%s` is named at run time (`%s`): what it runs is not seen", c.source(), oneLine(c.sc.wordSource(c.words[0]))),
			"name the command literally, or check by hand every command the expansion can name")
		return
	}
	if in := c.inner(); in != nil && in.unseen != "" {
		c.sc.report(RuleCannotTell, Info, in.at, in.unseen,
			"put the script in the package (or in a literal string) so preflight can read it, or check it by hand")
	}
}

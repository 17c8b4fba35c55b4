package scenarios

import (
	"regexp"
	"strings"
	"testing"
)

// Every documented example is a line its own pattern matches, and no other.
func TestStepExamplesMatchTheirPatterns(t *testing.T) {
	for _, s := range Steps {
		_, text, ok := strings.Cut(s.Example, " ")
		if !ok {
			t.Fatalf("example %q has no keyword", s.Example)
		}
		matches := 0
		for _, other := range Steps {
			if regexp.MustCompile(other.Pattern).MatchString(text) {
				matches++
				if other.Pattern != s.Pattern {
					t.Errorf("example %q also matches %s", s.Example, other.Pattern)
				}
			}
		}
		if matches == 0 {
			t.Errorf("example %q does not match its pattern %s", s.Example, s.Pattern)
		}
	}
}

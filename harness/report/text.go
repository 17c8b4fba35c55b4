package report

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// ansi matches terminal escape sequences (colours, cursor moves) that
// container logs carry.
var ansi = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])`)

// clean strips terminal escapes and every character XML 1.0 cannot hold
// (control characters but tab, newline and carriage return; lone
// surrogates; U+FFFE, U+FFFF), so log text survives a JUnit file and reads
// the same in Markdown.
func clean(s string) string {
	if strings.IndexByte(s, 0x1b) >= 0 {
		s = ansi.ReplaceAllString(s, "")
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
			return -1
		case r == 0x7f:
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// cleanScenario is s with clean run over every text it holds but its
// events (its error, log tails, output and steps), for a view that shows
// them; s itself is left as it is. The events are many: a view cleans the
// few of their texts it shows.
func cleanScenario(s Scenario) Scenario {
	s.Name, s.FeatureName, s.Feature = clean(s.Name), clean(s.FeatureName), clean(s.Feature)
	s.Error, s.Output, s.Kept, s.Reproduce = clean(s.Error), clean(s.Output), clean(s.Kept), clean(s.Reproduce)
	s.RunID, s.Shard = clean(s.RunID), clean(s.Shard)
	s.Tags = cleanAll(s.Tags)
	s.Logs = slices.Clone(s.Logs)
	for i, l := range s.Logs {
		s.Logs[i] = LogTail{Service: clean(l.Service), Text: clean(l.Text)}
	}
	s.Steps = slices.Clone(s.Steps)
	for i := range s.Steps {
		st := &s.Steps[i]
		st.Keyword, st.Text, st.Error = clean(st.Keyword), clean(st.Text), clean(st.Error)
	}
	return s
}

// cleanAll is clean over each of ss, in a new slice.
func cleanAll(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = clean(s)
	}
	return out
}

// firstLine is the first non-empty line of s.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// failureText is everything a reader needs about a failed scenario, as
// plain text: the failing step, the error, each container's log tail, the
// scenario's own output, how to reach a kept environment, and the command
// that reproduces it.
func failureText(s Scenario) string {
	var b strings.Builder
	if st, ok := failingStep(s); ok {
		fmt.Fprintf(&b, "step %s%s (%s:%d)\n", st.Keyword, st.Text, s.Feature, st.Line)
	}
	if s.Error != "" {
		b.WriteString(strings.TrimRight(s.Error, "\n"))
		b.WriteString("\n")
	}
	for _, l := range s.Logs {
		fmt.Fprintf(&b, "\n--- log of %s (last lines) ---\n%s\n", l.Service, strings.TrimRight(l.Text, "\n"))
	}
	if s.Output != "" {
		fmt.Fprintf(&b, "\n--- output (last lines) ---\n%s\n", strings.TrimRight(s.Output, "\n"))
	}
	if s.Kept != "" {
		fmt.Fprintf(&b, "\n--- environment kept ---\n%s\n", strings.TrimRight(s.Kept, "\n"))
	}
	if s.Reproduce != "" {
		fmt.Fprintf(&b, "\nreproduce: %s\n", s.Reproduce)
	}
	return clean(b.String())
}

// failingStep is the first step that did not pass or skip: the failed,
// undefined or pending one.
func failingStep(s Scenario) (Step, bool) {
	for _, st := range s.Steps {
		switch st.Status {
		case StatusFailed, StatusUndefined, StatusPending:
			return st, true
		}
	}
	return Step{}, false
}

// why says in one line why a scenario did not pass: its error's first
// line, or its undefined or pending step.
func why(s Scenario) string {
	if l := firstLine(s.Error); l != "" {
		return clean(l)
	}
	if st, ok := failingStep(s); ok {
		if st.Error != "" {
			return clean(firstLine(st.Error))
		}
		return clean(st.Status + " step: " + st.Keyword + st.Text)
	}
	return s.Status
}

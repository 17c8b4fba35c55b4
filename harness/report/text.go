package report

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/rehearse/rehearse/harness/timeline"
)

// writeEvents writes events one a line, times relative to the first, in
// the layout of timeline.Timeline.WriteText (the .txt timelines).
func writeEvents(w io.Writer, events []timeline.Event) error {
	if len(events) == 0 {
		return nil
	}
	events = append([]timeline.Event(nil), events...)
	sort.SliceStable(events, func(i, j int) bool { return events[i].Start.Before(events[j].Start) })
	t0 := events[0].Start
	for _, e := range events {
		line := fmt.Sprintf("%8.3fs %7.3fs  %-11s %-12s %s", e.Start.Sub(t0).Seconds(), e.Duration().Seconds(), e.Kind, e.Actor, e.Name)
		if len(e.Fields) > 0 {
			keys := make([]string, 0, len(e.Fields))
			for k := range e.Fields {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var kv []string
			for _, k := range keys {
				kv = append(kv, k+"="+e.Fields[k])
			}
			line += "  " + strings.Join(kv, " ")
		}
		if e.Err != "" {
			line += "  error: " + strings.ReplaceAll(e.Err, "\n", " ")
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

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

package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// openListUpTo is the number of scenarios up to which Markdown shows the
// full list open; past it the list is folded under <details>.
const openListUpTo = 20

// maxCell bounds a table cell's text: one long error must not push the
// table off the page.
const maxCell = 200

// mdStatus is each status as a reader scans for it.
var mdStatus = map[string]string{
	StatusPassed:    "✅ passed",
	StatusFailed:    "❌ failed",
	StatusSkipped:   "⏭️ skipped",
	StatusUndefined: "❓ undefined",
	StatusPending:   "🚧 pending",
}

// Markdown writes a summary for a pull request or a CI step summary: the
// totals in a heading, a table of the scenarios that did not pass (with
// the command that reproduces each), then every scenario, folded when
// there are many. It is written whole, however long: AppendStepSummaryTo
// bounds what it appends.
func Markdown(w io.Writer, r *Report) error {
	return markdown(w, r, 0)
}

// markdown is Markdown within limit bytes when limit > 0: each list is
// cut where it would pass it, with a line saying how many it leaves out.
// The totals are always written whole.
func markdown(w io.Writer, r *Report, limit int) error {
	var b bytes.Buffer
	c := r.Counts()
	mark := "✅"
	if !r.OK() {
		mark = "❌"
	}
	parts := []string{fmt.Sprintf("%d passed", c.Passed)}
	for _, p := range []struct {
		n    int
		word string
	}{{c.Failed, "failed"}, {c.Undefined, "undefined"}, {c.Pending, "pending"}, {c.Skipped, "skipped"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.word))
		}
	}
	fmt.Fprintf(&b, "## %s rehearse: %s of %d %s", mark, strings.Join(parts, ", "), c.Total, plural(c.Total, "scenario"))
	if c.Errors > 0 {
		fmt.Fprintf(&b, "; %d feature %s not read", c.Errors, plural(c.Errors, "file"))
	}
	if r.Interrupted() {
		b.WriteString("; interrupted")
	}
	b.WriteString("\n\n")
	facts := []string{"wall time " + human(r.Wall()), "scenario time " + human(r.Duration())}
	if n := r.Shards(); n > 0 {
		facts = append(facts, fmt.Sprintf("%d %s", n, plural(n, "shard")))
	}
	if tags := runTags(r); tags != "" {
		facts = append(facts, "tags "+code(tags))
	}
	b.WriteString(strings.Join(facts, " · ") + "\n\n")

	// fits says whether line still fits within limit, with room to spare
	// for the lines that say what was left out and the sections after.
	fits := func(line string) bool { return limit <= 0 || b.Len()+len(line)+mdReserve <= limit }
	if errs := r.Errors(); len(errs) > 0 {
		fmt.Fprintf(&b, "### ❌ %d feature %s could not be read\n\n", len(errs), plural(len(errs), "file"))
		b.WriteString("Their scenarios ran nowhere.\n\n")
		for i, e := range errs {
			line := "- " + cell(e) + "\n"
			if !fits(line) {
				n := len(errs) - i
				fmt.Fprintf(&b, "- … %d more feature %s: %s\n", n, plural(n, "file"), seeWhole)
				break
			}
			b.WriteString(line)
		}
		b.WriteString("\n")
	}

	var bad []Scenario
	for _, s := range r.Scenarios {
		switch s.Status {
		case StatusFailed, StatusUndefined, StatusPending:
			bad = append(bad, s)
		}
	}
	if len(bad) > 0 {
		b.WriteString("### Did not pass\n\n| Scenario | Name | Error | Reproduce |\n| --- | --- | --- | --- |\n")
		for i, s := range bad {
			repro := ""
			if s.Reproduce != "" {
				repro = code(s.Reproduce)
			}
			line := fmt.Sprintf("| %s %s | %s | %s | %s |\n", mdStatus[s.Status], code(s.Location()), cell(s.Name), cell(why(s)), repro)
			if !fits(line) {
				n := len(bad) - i
				fmt.Fprintf(&b, "\n… %d more %s: %s\n", n, plural(n, "scenario"), seeWhole)
				break
			}
			b.WriteString(line)
		}
		b.WriteString("\n")
	}

	if len(r.Scenarios) > 0 {
		open := ""
		if len(r.Scenarios) <= openListUpTo {
			open = " open"
		}
		fmt.Fprintf(&b, "<details%s><summary>All %d %s</summary>\n\n", open, c.Total, plural(c.Total, "scenario"))
		b.WriteString("| Status | Scenario | Name | Duration |\n| --- | --- | --- | --- |\n")
		for i, s := range r.Scenarios {
			line := fmt.Sprintf("| %s | %s | %s | %s |\n", mdStatus[s.Status], code(s.Location()), cell(s.Name), human(s.Duration()))
			if !fits(line) {
				n := len(r.Scenarios) - i
				fmt.Fprintf(&b, "\n… %d more %s: %s\n", n, plural(n, "scenario"), seeWhole)
				break
			}
			b.WriteString(line)
		}
		b.WriteString("\n</details>\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Bounds of the Markdown appended to a GitHub step summary.
const (
	// maxStepSummary is the most a step summary may hold after
	// AppendStepSummaryTo: GitHub refuses one past 1 MiB, and the step
	// with it.
	maxStepSummary = 900 << 10
	// minStepSummary is the least AppendStepSummaryTo appends (the
	// totals and a line per list), however full the file is already.
	minStepSummary = 4 << 10
	// mdReserve is the room a bounded summary keeps for the lines that
	// say what was left out, and the headings of the sections after.
	mdReserve = 1 << 10
	// seeWhole is where the whole of a cut list is.
	seeWhole = "see report.html / summary.md"
)

// AppendStepSummaryTo appends the Markdown summary to the file at path,
// creating it, as GitHub Actions shows $GITHUB_STEP_SUMMARY under a job;
// it does nothing when path is "". The file stays within maxStepSummary
// (900 KiB; GitHub allows 1 MiB): the lists are cut where they would pass
// it, each ending "… N more scenarios: see report.html / summary.md".
// The scenarios that did not pass come before the list of all.
func AppendStepSummaryTo(path string, r *Report) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append step summary: %w", err)
	}
	limit := maxStepSummary
	if st, err := f.Stat(); err == nil {
		limit = int(max(int64(maxStepSummary)-st.Size(), minStepSummary))
	}
	var b bytes.Buffer
	if err := markdown(&b, r, limit); err != nil {
		f.Close()
		return err
	}
	_, err = f.Write(b.Bytes())
	return errors.Join(wrapErr("append step summary", err), wrapErr("append step summary", f.Close()))
}

func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// runTags is the tag filter the runs share, if any.
func runTags(r *Report) string {
	for _, run := range r.Runs {
		if run.Tags != "" {
			return run.Tags
		}
	}
	return ""
}

// cell makes text safe in a table cell: one line, pipes escaped, HTML
// not interpreted, at most maxCell characters.
func cell(s string) string {
	s = strings.Join(strings.Fields(clean(s)), " ")
	if rs := []rune(s); len(rs) > maxCell {
		s = string(rs[:maxCell-1]) + "…"
	}
	s = strings.NewReplacer(`\`, `\\`, "|", `\|`, "<", "&lt;", ">", "&gt;", "&", "&amp;", "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`).Replace(s)
	return s
}

// code is text as inline code in a table cell: one line, pipes escaped
// (GitHub reads \| as | inside code in tables), fenced with more
// backticks than it holds.
func code(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ", "|", `\|`).Replace(strings.TrimSpace(clean(s)))
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// human is a duration rounded for people: 1m23.4s, 850ms.
func human(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

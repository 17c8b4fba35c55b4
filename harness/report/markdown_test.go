package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func markdownOf(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := Markdown(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestMarkdown(t *testing.T) {
	md := markdownOf(t, loadTest(t, "single"))
	golden(t, "single.summary.md", []byte(md))
	for _, want := range []string{
		"## ❌ rehearse: 2 passed, 1 failed, 1 undefined of 4 scenarios\n",
		"wall time 3m15s · scenario time 2m55s\n",
		"| ❌ failed `features/upgrade.feature:19` | The package as shipped breaks invoicing | upgrade step \"restart\" failed: exit 1 | `rehearse run features/upgrade.feature:19 --keep-on-failure` |\n",
		"| ❓ undefined `features/rollback.feature:15` | Rollback with an undefined step | undefined step: When the moon is full |  |\n",
		"<details open><summary>All 4 scenarios</summary>",
		"| ✅ passed | `features/rollback.feature:8` | Rollback restores data \\| config | 51.3s |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	// The table of what did not pass comes before the full list.
	if strings.Index(md, "### Did not pass") > strings.Index(md, "<details") {
		t.Error("failures are not first")
	}
}

func TestMarkdownMergedShards(t *testing.T) {
	md := markdownOf(t, loadTest(t, "shard-1", "shard-2"))
	golden(t, "merged.summary.md", []byte(md))
	if !strings.Contains(md, "wall time 3m6s · scenario time 2m55s · 2 shards\n") {
		t.Errorf("no shard count in:\n%s", md)
	}
}

// TestMarkdownMany: a nightly of 200 scenarios folds its full list, and
// every table row stays one line.
func TestMarkdownMany(t *testing.T) {
	t0 := time.Date(2025, 6, 3, 2, 0, 0, 0, time.UTC)
	r := &Report{}
	for i := range 200 {
		s := Scenario{Schema: Schema, Feature: fmt.Sprintf("features/f%02d.feature", i/10), Line: 10 + i%10, Name: fmt.Sprintf("scenario %d", i),
			Status: StatusPassed, Start: t0, End: t0.Add(time.Duration(i) * time.Second)}
		if i%50 == 7 {
			s.Status, s.Error, s.Reproduce = StatusFailed, "line one | with a pipe\nline two", "rehearse run "+s.Location()
		}
		r.Scenarios = append(r.Scenarios, s)
	}
	md := markdownOf(t, r)
	if !strings.Contains(md, "<details><summary>All 200 scenarios</summary>") {
		t.Errorf("the full list is not folded:\n%s", md[:min(len(md), 500)])
	}
	rows := 0
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| ---") && !strings.HasPrefix(l, "| Status") && !strings.HasPrefix(l, "| Scenario") {
			rows++
		}
	}
	if rows != 204 {
		t.Errorf("%d table rows, want 4 failures + 200 scenarios", rows)
	}
	if !strings.Contains(md, "| line one \\| with a pipe |") {
		t.Errorf("error cell not its first line with the pipe escaped")
	}
}

func TestMarkdownCells(t *testing.T) {
	for _, tt := range []struct{ in, cell, code string }{
		{"a|b", `a\|b`, "`a\\|b`"},
		{"two\nlines\r\n", "two lines", "`two lines`"},
		{"<script>&", "&lt;script&gt;&amp;", "`<script>&`"},
		{"run `x`", "run \\`x\\`", "`` run `x` ``"},
		{"a_b*c", `a\_b\*c`, "`a_b*c`"},
		{strings.Repeat("x", 300), strings.Repeat("x", maxCell-1) + "…", "`" + strings.Repeat("x", 300) + "`"},
	} {
		if got := cell(tt.in); got != tt.cell {
			t.Errorf("cell(%q) = %q, want %q", tt.in, got, tt.cell)
		}
		if got := code(tt.in); got != tt.code {
			t.Errorf("code(%q) = %q, want %q", tt.in, got, tt.code)
		}
	}
}

// TestMarkdownFeatureFileErrors: feature files the runs could not read
// are listed before the tables, and make the report red.
func TestMarkdownFeatureFileErrors(t *testing.T) {
	r := loadTest(t, "shard-1", "shard-2")
	r.Runs[0].Errors = []string{"features/broken.feature:3: expected a step | got <Whn>"}
	r.Runs[1].Errors = []string{"features/broken.feature:3: expected a step | got <Whn>", "features/gone.feature: permission denied"}
	if c := r.Counts(); c.Errors != 2 {
		t.Errorf("counts %+v, want 2 errors", c)
	}
	md := markdownOf(t, r)
	section := "### ❌ 2 feature files could not be read\n\nTheir scenarios ran nowhere.\n\n" +
		"- features/broken.feature:3: expected a step \\| got &lt;Whn&gt;\n" +
		"- features/gone.feature: permission denied\n\n"
	i := strings.Index(md, section)
	if i < 0 {
		t.Fatalf("no errors section:\n%s", md)
	}
	if j := strings.Index(md, "### Did not pass"); j < i {
		t.Errorf("the errors section is not before the tables:\n%s", md)
	}
	if !strings.HasPrefix(md, "## ❌ rehearse: 2 passed, 1 failed, 1 undefined of 4 scenarios; 2 feature files not read\n") {
		t.Errorf("heading:\n%s", md)
	}

	// Errors alone make a report red.
	ok := &Report{Runs: []Run{{Schema: RunSchema, Errors: []string{"features/x.feature: bad"}}}}
	if ok.OK() {
		t.Error("OK with a feature file not read")
	}
	if md := markdownOf(t, ok); !strings.HasPrefix(md, "## ❌") {
		t.Errorf("heading of a report with errors only:\n%s", md)
	}
}

// manyFailures is a report of n failed scenarios with long errors and
// feature files that could not be read: a Markdown summary of well over
// 1 MiB.
func manyFailures(n int) *Report {
	t0 := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	r := &Report{Runs: []Run{{Schema: RunSchema, Start: t0, End: t0.Add(time.Hour)}}}
	for i := range n {
		loc := fmt.Sprintf("features/many.feature:%d", i+1)
		r.Scenarios = append(r.Scenarios, Scenario{
			Schema: Schema, Feature: "features/many.feature", Line: i + 1, Name: fmt.Sprintf("scenario number %d", i+1),
			Status: StatusFailed, Start: t0, End: t0.Add(time.Second),
			Error:     strings.Repeat("the upgrade broke invoicing again ", 6),
			Reproduce: "rehearse run " + loc + " --keep-on-failure",
		})
		if i%10 == 0 {
			r.Runs[0].Errors = append(r.Runs[0].Errors, fmt.Sprintf("features/broken-%d.feature:3: expected a step, got %q", i, strings.Repeat("x", 100)))
		}
	}
	return r
}

// TestAppendStepSummaryBounded: GitHub refuses a step summary past 1 MiB;
// the summary appended stays within maxStepSummary (what the file held
// already counted), its lists cut with a line saying how many are left
// out, while summary.md (Markdown) stays whole.
func TestAppendStepSummaryBounded(t *testing.T) {
	r := manyFailures(5000)
	whole := markdownOf(t, r)
	if len(whole) <= 1<<20 || !strings.Contains(whole, "features/many.feature:5000") {
		t.Fatalf("the whole summary is %d bytes; want more than 1 MiB, every scenario in it", len(whole))
	}
	for _, earlier := range []int{0, 300 << 10, 899 << 10} {
		path := filepath.Join(t.TempDir(), "step_summary")
		if err := os.WriteFile(path, bytes.Repeat([]byte("x"), earlier), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := AppendStepSummaryTo(path, r); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got := string(data[earlier:])
		if limit := max(maxStepSummary, earlier+minStepSummary); len(data) > limit {
			t.Errorf("after %d bytes: the step summary is %d bytes, more than %d", earlier, len(data), limit)
		}
		if !strings.HasPrefix(got, "## ❌ rehearse: 0 passed, 5000 failed of 5000 scenarios; 500 feature files not read\n") {
			t.Errorf("after %d bytes: heading %.100q", earlier, got)
		}
		// Each list is cut with a line saying how many it leaves out.
		cut := regexp.MustCompile(`(?m)^… (\d+) more scenarios: see report\.html / summary\.md$`)
		m := cut.FindAllStringSubmatch(got, -1)
		if len(m) != 2 {
			t.Errorf("after %d bytes: %d cut lines, want 2 (did not pass, all)", earlier, len(m))
			continue
		}
		shown := strings.Count(got, "| ❌ failed `features/many.feature:")
		if n, _ := strconv.Atoi(m[0][1]); n+shown != 5000 || shown == 0 && earlier == 0 {
			t.Errorf("after %d bytes: %d failures shown and %d said left out, want 5000 in all", earlier, shown, n)
		}
		if earlier == 0 && !strings.Contains(got, "- features/broken-0.feature:3") {
			t.Errorf("the feature files not read are left out")
		}
		if !strings.HasSuffix(got, "\n</details>\n") {
			t.Errorf("after %d bytes: the summary does not end its list: %q", earlier, got[max(0, len(got)-100):])
		}
	}
}

func TestAppendStepSummary(t *testing.T) {
	r := loadTest(t, "single")
	path := filepath.Join(t.TempDir(), "step_summary")
	if err := os.WriteFile(path, []byte("# earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_STEP_SUMMARY", filepath.Join(t.TempDir(), "not this one"))
	if err := AppendStepSummaryTo(path, r); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# earlier step\n" + markdownOf(t, r); string(got) != want {
		t.Errorf("step summary:\n%s\nwant\n%s", got, want)
	}
	if _, err := os.Stat(os.Getenv("GITHUB_STEP_SUMMARY")); err == nil {
		t.Error("AppendStepSummaryTo wrote to $GITHUB_STEP_SUMMARY, not the path given")
	}

	if err := AppendStepSummaryTo("", r); err != nil {
		t.Errorf("no path: %v", err)
	}
}

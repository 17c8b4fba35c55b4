package report_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/rehearse/rehearse/harness/report"
	"github.com/rehearse/rehearse/harness/timeline"
)

// htmlRunDir is a hand-written output directory of rehearse run: one
// failed scenario (a step exits 1 while a fault makes a probe go down),
// one passed with three probes and a network cut, one skipped.
const htmlRunDir = "testdata/html/run"

// readScenarios decodes DIR/timelines/*.json without report.Load, so the
// renderer's tests depend on nothing else in the package.
func readScenarios(t *testing.T, dir string) []report.Scenario {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, report.TimelinesDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no timelines in %s (%v)", dir, err)
	}
	var out []report.Scenario
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s report.Scenario
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, s)
	}
	return out
}

func render(t *testing.T, scenarios []report.Scenario, opts report.HTMLOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := report.HTML(&b, scenarios, opts); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func parse(t *testing.T, page string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// findAll returns the element nodes under n for which match is true.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	return out
}

func byAttr(key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool { v, ok := attr(n, key); return ok && v == val }
}

func hasClass(n *html.Node, class string) bool {
	v, _ := attr(n, "class")
	return slices.Contains(strings.Fields(v), class)
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

func hostileScenario() report.Scenario {
	t0 := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	return report.Scenario{
		Schema: report.Schema, Feature: `features/"quoted' & <b>.feature`, Line: 7,
		FeatureName: `</title><script>alert("feature")</script>`,
		Name:        `</script><script>alert(1)</script>`,
		Tags:        []string{`@x"onmouseover="alert(2)`},
		Status:      report.StatusFailed, Start: at(0), End: at(10),
		Steps: []report.Step{{Keyword: "When ", Text: `"<img src=x onerror=alert(3)>" is applied`, Line: 8,
			Status: report.StatusFailed, Error: `]]></pre><script>alert(4)</script>`}},
		Error:     "it broke: <iframe src=\"https://evil.example/\"></iframe>\n'single' \"double\"",
		Logs:      []report.LogTail{{Service: `db"><svg onload=alert(5)>`, Text: "</pre><script src=https://evil.example/x.js></script>"}},
		Reproduce: `bin/rehearse run 'features/"quoted'"'"' & <b>.feature:7'`,
		Events: []timeline.Event{
			{Kind: "upgrade-step", Actor: `billing"/>`, Name: `</title></rect><script>alert(6)</script>`, Start: at(1), End: at(2), Fields: map[string]string{"exit": "1"}, Err: "exit 1"},
			{Kind: "probe", Actor: `p'"><`, Name: "outage", Start: at(3), End: at(4), Err: "<b>down</b>"},
			{Kind: "fault", Actor: "db", Name: `pause "db" <now>`, Start: at(2), End: at(5)},
			{Kind: `weird"kind<`, Actor: "x", Name: "y", Start: at(6), End: at(6)},
		},
	}
}

func TestHTMLEscapesHostileText(t *testing.T) {
	s := hostileScenario()
	page := render(t, []report.Scenario{s}, report.HTMLOptions{Title: `<script>alert("title")</script>`})
	doc := parse(t, page)

	scripts := findAll(doc, func(n *html.Node) bool { return n.Data == "script" })
	if len(scripts) != 2 {
		t.Fatalf("%d script elements, want 2 (the JSON data and the page's own script)", len(scripts))
	}
	if typ, _ := attr(scripts[0], "type"); typ != "application/json" {
		t.Errorf("first script's type is %q, want application/json", typ)
	}
	var data []struct {
		ID, Status, Location, Search string
		Tags                         []string
	}
	if err := json.Unmarshal([]byte(text(scripts[0])), &data); err != nil {
		t.Fatalf("the JSON block does not parse: %v\n%s", err, text(scripts[0]))
	}
	if len(data) != 1 || data[0].Location != s.Location() || !slices.Equal(data[0].Tags, s.Tags) || !strings.Contains(data[0].Search, strings.ToLower(s.Name)) {
		t.Errorf("JSON block = %+v, want the hostile scenario's strings intact", data)
	}
	if strings.Contains(text(scripts[0]), "</script") {
		t.Error("the JSON block contains </script")
	}

	for _, n := range findAll(doc, func(*html.Node) bool { return true }) {
		if n.Data == "img" || n.Data == "iframe" || n.Data == "svg" && n.Parent.Data != "div" {
			t.Errorf("a hostile string became a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "src" {
				t.Errorf("<%s> has attribute %s=%q", n.Data, a.Key, a.Val)
			}
		}
	}
	// The strings are shown as they are, as text.
	links := findAll(doc, func(n *html.Node) bool { h, _ := attr(n, "href"); return n.Data == "a" && strings.HasPrefix(h, "#s-") })
	if len(links) != 1 || text(links[0]) != s.Name {
		t.Errorf("index link texts: want one reading %q", s.Name)
	}
	pres := findAll(doc, byAttr("data-role", "error"))
	if len(pres) != 1 || text(pres[0]) != s.Error {
		t.Errorf("error block: want one reading %q", s.Error)
	}
	var logs []string
	for _, n := range findAll(doc, func(n *html.Node) bool { return hasClass(n, "log") }) {
		logs = append(logs, text(n))
	}
	if len(logs) != 1 || !strings.Contains(logs[0], s.Logs[0].Service) || !strings.Contains(logs[0], s.Logs[0].Text) {
		t.Errorf("log sections %q, want one with %q and %q", logs, s.Logs[0].Service, s.Logs[0].Text)
	}
	tags := findAll(doc, func(n *html.Node) bool { return hasClass(n, "tag") })
	if len(tags) == 0 || text(tags[0]) != s.Tags[0] {
		t.Errorf("tag chips: want %q", s.Tags[0])
	}
	if title := findAll(doc, func(n *html.Node) bool { return n.Data == "title" && n.Parent.Data == "head" }); len(title) != 1 || text(title[0]) != `<script>alert("title")</script>` {
		t.Errorf("page title not kept as text")
	}
	lanes := laneIDs(doc)
	if !slices.Contains(lanes, `step:billing"/>/</title></rect><script>alert(6)</script>`) || !slices.Contains(lanes, `probe:p'"><`) {
		t.Errorf("lanes %q: the hostile step and probe names should be kept in data-lane", lanes)
	}
}

func laneIDs(n *html.Node) []string {
	var out []string
	for _, l := range findAll(n, func(n *html.Node) bool { _, ok := attr(n, "data-lane"); return ok }) {
		v, _ := attr(l, "data-lane")
		out = append(out, v)
	}
	return out
}

// urlish is anything a browser could load: a scheme or a
// scheme-relative reference.
var urlish = regexp.MustCompile(`(?i)https?:|//|url\(|@import`)

func TestHTMLLoadsNothing(t *testing.T) {
	t.Run("page", func(t *testing.T) {
		page := render(t, readScenarios(t, htmlRunDir), report.HTMLOptions{})
		if m := urlish.FindAllString(page, -1); m != nil {
			for _, loc := range urlish.FindAllStringIndex(page, 3) {
				t.Errorf("the page holds %q: %q", page[loc[0]:loc[1]], page[max(loc[0]-60, 0):min(loc[1]+60, len(page))])
			}
		}
	})
	t.Run("hostile", func(t *testing.T) {
		// A URL in the data is text, never a reference.
		doc := parse(t, render(t, []report.Scenario{hostileScenario()}, report.HTMLOptions{}))
		for _, n := range findAll(doc, func(*html.Node) bool { return true }) {
			for _, a := range n.Attr {
				switch a.Key {
				case "href":
					if !strings.HasPrefix(a.Val, "#") {
						t.Errorf("<%s href=%q>: only in-page links", n.Data, a.Val)
					}
				case "src", "srcset", "action", "formaction", "poster", "data", "background", "xlink:href":
					t.Errorf("<%s %s=%q>", n.Data, a.Key, a.Val)
				}
			}
		}
	})
	t.Run("csp", func(t *testing.T) {
		doc := parse(t, render(t, readScenarios(t, htmlRunDir), report.HTMLOptions{}))
		metas := findAll(doc, byAttr("http-equiv", "Content-Security-Policy"))
		if len(metas) != 1 {
			t.Fatalf("%d CSP meta tags, want 1", len(metas))
		}
		csp, _ := attr(metas[0], "content")
		hash := func(n *html.Node) string {
			sum := sha256.Sum256([]byte(text(n)))
			return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		}
		style := findAll(doc, func(n *html.Node) bool { return n.Data == "style" })
		script := findAll(doc, func(n *html.Node) bool { _, typed := attr(n, "type"); return n.Data == "script" && !typed })
		if len(style) != 1 || len(script) != 1 {
			t.Fatalf("%d style and %d script elements, want one each", len(style), len(script))
		}
		want := "default-src 'none'; style-src " + hash(style[0]) + "; script-src " + hash(script[0]) + "; img-src data:;"
		if !strings.HasPrefix(csp, want) {
			t.Errorf("CSP %q, want it to start with %q", csp, want)
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("CSP %q allows unsafe sources", csp)
		}
	})
}

func TestHTMLLanes(t *testing.T) {
	doc := parse(t, render(t, readScenarios(t, htmlRunDir), report.HTMLOptions{}))
	section := func(loc string) *html.Node {
		for _, n := range findAll(doc, func(n *html.Node) bool { return n.Data == "details" && hasClass(n, "scenario") }) {
			if code := findAll(n, func(n *html.Node) bool { return hasClass(n, "s-loc") }); len(code) == 1 && text(code[0]) == loc {
				return n
			}
		}
		t.Fatalf("no section for %s", loc)
		return nil
	}
	tests := []struct {
		loc   string
		lanes []string
	}{
		{"features/upgrade.feature:31", []string{"environment", "dataset:billing", "package", "faults",
			"step:billing/stop-service", "step:billing/migrate", "step:billing/restore-config/rollback", "step:billing/start-service/rollback",
			"probe:invoicing", "snapshots", "command"}},
		{"features/faults.feature:23", []string{"environment", "dataset:billing", "faults", "probe:invoicing", "probe:billing", "probe:db"}},
		{"features/rollback.feature:40", nil},
	}
	for _, tt := range tests {
		t.Run(tt.loc, func(t *testing.T) {
			if got := laneIDs(section(tt.loc)); !slices.Equal(got, tt.lanes) {
				t.Errorf("lanes\n got %q\nwant %q", got, tt.lanes)
			}
		})
	}
	t.Run("step colours", func(t *testing.T) {
		want := map[string]string{
			"step:billing/stop-service":            "bar step ok",
			"step:billing/migrate":                 "bar step fail",
			"step:billing/restore-config/rollback": "bar step ok rollback",
		}
		for lane, class := range want {
			ls := findAll(section("features/upgrade.feature:31"), byAttr("data-lane", lane))
			rects := findAll(ls[0], func(n *html.Node) bool { return n.Data == "rect" })
			if got, _ := attr(rects[0], "class"); len(rects) != 1 || got != class {
				t.Errorf("%s: %d bars, class %q, want one of class %q", lane, len(rects), got, class)
			}
		}
	})
	t.Run("outage", func(t *testing.T) {
		ls := findAll(section("features/upgrade.feature:31"), byAttr("data-lane", "probe:invoicing"))
		outages := findAll(ls[0], byAttr("data-kind", "outage"))
		// 15.9s to 19.8s of 40s
		if len(outages) != 1 || attrs(outages[0], "x", "width", "data-start-ms", "data-end-ms") != "39.7500% 9.7500% 15900 19800" {
			t.Errorf("outage bars: %d, first %q", len(outages), attrs(outages[0], "x", "width", "data-start-ms", "data-end-ms"))
		}
	})
}

func attrs(n *html.Node, keys ...string) string {
	var vals []string
	for _, k := range keys {
		v, _ := attr(n, k)
		vals = append(vals, v)
	}
	return strings.Join(vals, " ")
}

func TestHTMLFaultBands(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := report.Scenario{Schema: report.Schema, Feature: "f.feature", Line: 1, Name: "bands", Status: report.StatusPassed, Start: at(0), End: at(8000),
		Events: []timeline.Event{
			{Kind: "fault", Actor: "db", Name: "pause db", Start: at(2000), End: at(3000)},
			{Kind: "fault", Actor: "armed", Name: "pause db", Start: at(1000), End: at(1000)},     // a mark, not a band
			{Kind: "fault", Actor: "db", Name: "kill db", Start: at(-1000), End: at(1000)},        // clamped at 0
			{Kind: "fault", Actor: "api", Name: "cut api <-> db", Start: at(7000), End: at(9000)}, // clamped at the end
			{Kind: "fault", Actor: "api", Name: "stop api", Start: at(1), End: at(3)},
		}}
	doc := parse(t, render(t, []report.Scenario{s}, report.HTMLOptions{}))
	var got []string
	for _, b := range findAll(doc, byAttr("data-kind", "fault-band")) {
		got = append(got, attrs(b, "x", "width", "data-start-ms", "data-end-ms"))
	}
	want := []string{
		"25.0000% 12.5000% 2000 3000",
		"0.0000% 12.5000% 0 1000",
		"87.5000% 12.5000% 7000 8000",
		"0.0125% 0.0250% 1 3",
	}
	if !slices.Equal(got, want) {
		t.Errorf("fault bands\n got %q\nwant %q", got, want)
	}
}

// TestHTMLEventsOutsideTheScenario: events before the scenario's start or
// after its end are drawn and described clamped to it, saying so; no
// negative offset, nor the 292 years of a saturated duration.
func TestHTMLEventsOutsideTheScenario(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	year1 := time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)
	s := report.Scenario{Schema: report.Schema, Feature: "f.feature", Line: 1, Name: "outside", Status: report.StatusPassed, Start: at(0), End: at(10000),
		Events: []timeline.Event{
			{Kind: "fault", Actor: "db", Name: "pause db", Start: at(-5000), End: at(2000)},
			{Kind: "probe", Actor: "api", Name: "down", Start: at(-3000), End: at(-3000)},
			{Kind: "upgrade-step", Actor: "billing", Name: "migrate", Start: at(8000), End: at(15000), Fields: map[string]string{"exit": "0"}},
			{Kind: "snapshot", Actor: "db", Name: "take", Start: at(-20000), End: at(20000)},
			{Kind: "dataset", Actor: "billing", Name: "load", Start: year1, End: year1},
			{Kind: "dataset", Actor: "billing", Name: "check", Start: at(12000), End: at(13000)},
		}}
	doc := parse(t, render(t, []report.Scenario{s}, report.HTMLOptions{}))
	var titles []string
	for _, n := range findAll(doc, func(n *html.Node) bool { return n.Data == "title" && n.Parent.Data == "rect" }) {
		titles = append(titles, text(n))
	}
	for _, want := range []string{
		"db: pause db at 0s for 2.0s (from before the scenario's start)",
		"api down at 0s (before the scenario's start)",
		"migrate at 8s for 2.0s (until after the scenario's end)",
		"db take at 0s for 10.0s (from before the scenario's start to after its end)",
		"load at 0s (before the scenario's start)",
		"check at 10s (after the scenario's end)",
		"api watched from 0s",
	} {
		if !slices.ContainsFunc(titles, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("no bar titled %q in\n%q", want, titles)
		}
	}
	hours := regexp.MustCompile(`\d+h`)
	for _, title := range titles {
		if strings.Contains(title, " -") || hours.MatchString(title) {
			t.Errorf("title %q: a negative offset or hours of a 10 s scenario", title)
		}
	}
}

func TestHTMLIndex(t *testing.T) {
	doc := parse(t, render(t, readScenarios(t, htmlRunDir), report.HTMLOptions{Title: "nightly"}))
	var rows []string
	for _, r := range findAll(doc, func(n *html.Node) bool { return n.Data == "tr" && hasClass(n, "row") }) {
		st, _ := attr(r, "data-status")
		loc := findAll(r, func(n *html.Node) bool { return hasClass(n, "c-loc") })
		rows = append(rows, st+" "+text(loc[0]))
	}
	want := []string{"failed features/upgrade.feature:31", "passed features/faults.feature:23", "skipped features/rollback.feature:40"}
	if !slices.Equal(rows, want) {
		t.Errorf("index rows (failed first)\n got %q\nwant %q", rows, want)
	}
	var counts []string
	for _, b := range findAll(doc, func(n *html.Node) bool { return hasClass(n, "status-filter") }) {
		counts = append(counts, strings.Join(strings.Fields(text(b)), " "))
	}
	if want := []string{"✗ 1 failed", "? 0 undefined", "? 0 pending", "✓ 1 passed", "– 1 skipped"}; !slices.Equal(counts, want) {
		t.Errorf("status counts %q, want %q", counts, want)
	}
	open := findAll(doc, func(n *html.Node) bool {
		_, ok := attr(n, "open")
		return n.Data == "details" && hasClass(n, "scenario") && ok
	})
	if len(open) != 1 {
		t.Errorf("%d scenarios open, want the failed one only", len(open))
	}
	errLine := findAll(doc, func(n *html.Node) bool { return hasClass(n, "err-line") })
	if len(errLine) == 0 || text(errLine[0]) != `the upgrade failed at step "migrate" (exit 1):` {
		t.Errorf("the failed row does not show the error's first line")
	}
}

// TestHTMLStripsTerminalEscapes: the error, log tails, output, step errors
// and event texts are shown without terminal escapes or control
// characters, as in JUnit and Markdown.
func TestHTMLStripsTerminalEscapes(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	s := report.Scenario{
		Schema: report.Schema, Feature: "features/x.feature", Line: 3, Name: "esc\x1b[1mname\x1b[0m", Status: report.StatusFailed,
		Start: t0, End: t0.Add(10 * time.Second),
		Steps:  []report.Step{{Keyword: "When ", Text: "it \x1b[32mruns\x1b[0m", Line: 4, Status: report.StatusFailed, Error: "step \x1b[31mred\x1b[0m\x07"}},
		Error:  "\x1b[31mboom\x1b[0m\x00 here",
		Logs:   []report.LogTail{{Service: "db\x1b[0m", Text: "\x1b[2K\rline one\x1b]0;title\x07\nline two\x08"}},
		Output: "\x1b[1;33mwarn\x1b[0m output",
		Events: []timeline.Event{
			{Kind: "upgrade-step", Actor: "billing", Name: "migrate\x1b[0m", Start: t0.Add(time.Second), End: t0.Add(3 * time.Second),
				Err: "exit \x1b[31m1\x1b[0m", Fields: map[string]string{"exit": "1", "phase": "upgrade"}},
			{Kind: "upgrade-output", Actor: "migrate", Name: "\x1b[32mmigrating\x1b[0m 3 tables", Start: t0.Add(2 * time.Second), End: t0.Add(2 * time.Second),
				Fields: map[string]string{"phase": "upgrade"}},
			{Kind: "probe", Actor: "api", Name: "outage", Start: t0.Add(4 * time.Second), End: t0.Add(5 * time.Second), Err: "\x1b[31mdown\x1b[0m"},
		},
	}
	page := render(t, []report.Scenario{s}, report.HTMLOptions{})
	if i := strings.IndexAny(page, "\x1b\x07\x00\x08"); i >= 0 {
		t.Errorf("the page keeps a terminal escape or control character: %q", page[max(0, i-40):min(len(page), i+40)])
	}
	doc := parse(t, page)
	if pres := findAll(doc, byAttr("data-role", "error")); len(pres) != 1 || text(pres[0]) != "boom here" {
		t.Errorf("error block: want one reading %q", "boom here")
	}
	for _, want := range []string{"line one", "line two", "warn output", "step red", "migrating 3 tables", "exit 1", "down"} {
		if !strings.Contains(text(doc), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// TestHTMLErrorsBanner: feature files the runs could not read are listed
// in a banner at the top, once each.
func TestHTMLErrorsBanner(t *testing.T) {
	runs := []report.Run{
		{Schema: report.RunSchema, Shard: "1/2", Errors: []string{"features/broken.feature:3: expected a step, got \x1b[31m<Whn>\x1b[0m", "features/gone.feature: permission denied"}},
		{Schema: report.RunSchema, Shard: "2/2", Errors: []string{"features/gone.feature: permission denied"}},
	}
	doc := parse(t, render(t, readScenarios(t, htmlRunDir), report.HTMLOptions{Runs: runs}))
	banners := findAll(doc, func(n *html.Node) bool { return hasClass(n, "errors-banner") })
	if len(banners) != 1 {
		t.Fatalf("%d error banners, want 1", len(banners))
	}
	var items []string
	for _, li := range findAll(banners[0], func(n *html.Node) bool { return n.Data == "li" }) {
		items = append(items, text(li))
	}
	if want := []string{"features/broken.feature:3: expected a step, got <Whn>", "features/gone.feature: permission denied"}; !slices.Equal(items, want) {
		t.Errorf("banner items %q, want %q", items, want)
	}
	if h := findAll(banners[0], func(n *html.Node) bool { return n.Data == "h2" }); len(h) != 1 || !strings.HasPrefix(text(h[0]), "2 feature files could not be read") {
		t.Errorf("banner heading: %q", text(banners[0]))
	}
	// The banner comes before everything else in the header.
	if top := findAll(doc, func(n *html.Node) bool { return hasClass(n, "top") }); len(top) != 1 || top[0].FirstChild == nil ||
		top[0].FirstChild.NextSibling == nil || !hasClass(top[0].FirstChild.NextSibling, "errors-banner") {
		t.Error("the banner is not at the top of the header")
	}

	clean := parse(t, render(t, readScenarios(t, htmlRunDir), report.HTMLOptions{Runs: runs[:0]}))
	if n := findAll(clean, func(n *html.Node) bool { return hasClass(n, "errors-banner") }); len(n) != 0 {
		t.Error("a banner without errors")
	}
}

// updateGolden is the package's -update flag (defined by its internal
// tests, in the same test binary), or REHEARSE_UPDATE_GOLDEN=1.
func updateGolden() bool {
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		return true
	}
	return os.Getenv("REHEARSE_UPDATE_GOLDEN") == "1"
}

// TestHTMLGolden compares the whole page with testdata/html/report.html;
// go test -update (or REHEARSE_UPDATE_GOLDEN=1) writes it.
func TestHTMLGolden(t *testing.T) {
	got := render(t, readScenarios(t, htmlRunDir), report.HTMLOptions{Title: "rehearse nightly", Runs: []report.Run{{
		Schema: report.RunSchema, Total: 3, Selected: []string{"a", "b", "c"}, Args: []string{"rehearse", "run", "features"},
		Start: time.Date(2026, 3, 2, 2, 9, 8, 0, time.UTC), End: time.Date(2026, 3, 2, 2, 10, 41, 0, time.UTC),
	}}})
	golden := filepath.Join("testdata", "html", "report.html")
	if updateGolden() {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("the page differs from %s (go test -update rewrites it after a deliberate change)", golden)
	}
}

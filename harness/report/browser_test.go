package report_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/rehearse/rehearse/harness/report"
)

// browserInput is the output directory of rehearse run whose report the
// browser test opens. It must hold a failed scenario with a failing
// upgrade step, a fault and a probe.
var browserInput = func(t *testing.T) string { return htmlRunDir }

// chromiumPaths are where Debian's packages put Chromium; the first on
// PATH or on disk wins. REHEARSE_CHROMIUM names another.
var chromiumPaths = []string{
	"chromium-headless-shell", "chromium", "chromium-browser",
	"/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/chromium",
}

// findChromium returns the browser to drive: absent, the test fails under
// CI=true (.ci/run installs chromium-headless-shell) and skips elsewhere.
func findChromium(t *testing.T) string {
	t.Helper()
	candidates := chromiumPaths
	if p := os.Getenv("REHEARSE_CHROMIUM"); p != "" {
		candidates = []string{p}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("no Chromium (looked for %s; REHEARSE_CHROMIUM names another): on Debian, apt-get install chromium-headless-shell fonts-dejavu-core", strings.Join(candidates, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// pageWatch collects what the page should never do: write an error or a
// warning to the console, throw, or ask for anything but file: and data:.
type pageWatch struct {
	mu       sync.Mutex
	problems []string
	requests []string
}

func (w *pageWatch) listen(ev any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeWarning, runtime.ConsoleAPICalledTypeAssert:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			w.problems = append(w.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		w.problems = append(w.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
	case *log.EventEntryAdded:
		// CSP violations and failed loads are browser log entries.
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			w.problems = append(w.problems, fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		w.requests = append(w.requests, ev.Request.URL)
	}
}

func (w *pageWatch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.problems {
		t.Errorf("the page reported: %s", p)
	}
	if len(w.requests) == 0 {
		t.Error("saw no request at all: the network events are not watched")
	}
	for _, u := range w.requests {
		if !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page asked for %s: only file: and data: may be loaded", u)
		}
	}
}

// repoRoot is the directory of go.mod above the test's.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// TestHTMLInBrowser opens the report of a run with a failure in headless
// Chromium from file:// and checks what a person sees.
func TestHTMLInBrowser(t *testing.T) {
	chromium := findChromium(t)
	rep, err := report.Load(browserInput(t))
	if err != nil {
		t.Fatal(err)
	}
	var failed *report.Scenario
	for i := range rep.Scenarios {
		if rep.Scenarios[i].Status == report.StatusFailed && failed == nil {
			failed = &rep.Scenarios[i]
		}
	}
	if failed == nil {
		t.Fatal("the input has no failed scenario")
	}

	page := filepath.Join(t.TempDir(), report.HTMLFile)
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := report.HTML(f, rep.Scenarios, report.HTMLOptions{Title: "rehearse nightly", Runs: rep.Runs}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	var watch pageWatch
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithListener(watch.listen))
	defer cancelTab()

	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page)); err != nil {
		t.Fatalf("open %s in %s: %v", page, chromium, err)
	}
	eval := func(t *testing.T, js string, v any) {
		t.Helper()
		res, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		if err := remarshal(res, v); err != nil {
			t.Fatal(err)
		}
	}
	// Visible rows of the index, as a person reads them.
	rows := func(t *testing.T) []string {
		var out []string
		eval(t, `[...document.querySelectorAll("#index tbody tr")].filter(r => r.offsetParent !== null).map(r => r.querySelector(".badge").innerText.trim() + " " + r.querySelector(".c-loc").innerText.trim())`, &out)
		return out
	}

	t.Run("index", func(t *testing.T) {
		want := wantRows(rep.Scenarios)
		if got := rows(t); !slices.Equal(got, want) {
			t.Errorf("index rows\n got %q\nwant %q", got, want)
		}
		var counts string
		eval(t, `document.getElementById("counts").innerText`, &counts)
		c := rep.Counts()
		for _, w := range []string{
			fmt.Sprintf("%d scenarios", c.Total), fmt.Sprintf("%d failed", c.Failed),
			fmt.Sprintf("%d passed", c.Passed), fmt.Sprintf("%d skipped", c.Skipped),
		} {
			if !strings.Contains(counts, w) {
				t.Errorf("status counts %q do not say %q", counts, w)
			}
		}
	})

	id := sectionID(t, eval, failed.Location())
	sel := "#" + cssEscape(id)

	t.Run("failing error", func(t *testing.T) {
		var shown struct {
			Text    string
			W, H    float64
			Visible bool
		}
		eval(t, `(() => { const e = document.querySelector(`+jsString(sel+` pre[data-role="error"]`)+`); if (!e) return {};
			const r = e.getBoundingClientRect(); return {Text: e.innerText, W: r.width, H: r.height, Visible: e.checkVisibility()}; })()`, &shown)
		if !shown.Visible || shown.W < 100 || shown.H < 10 {
			t.Errorf("the failing scenario's error is not visible: %+v", shown)
		}
		if strings.TrimSpace(shown.Text) != strings.TrimSpace(failed.Error) {
			t.Errorf("error shown %q, want %q", shown.Text, failed.Error)
		}
		var indexErr string
		eval(t, `document.querySelector('#index tr[data-id=`+jsString(id)+`] .err-line').innerText`, &indexErr)
		if first, _, _ := strings.Cut(failed.Error, "\n"); strings.TrimSpace(indexErr) != first {
			t.Errorf("the index shows %q for the failed scenario, want its error's first line %q", indexErr, first)
		}
	})

	t.Run("lanes", func(t *testing.T) {
		wantProbes, wantSteps := 0, 0
		probes := map[string]bool{}
		for _, e := range failed.Events {
			switch {
			case e.Kind == "probe" && !probes[e.Actor]:
				probes[e.Actor] = true
				wantProbes++
			case e.Kind == "upgrade-step":
				wantSteps++
			}
		}
		if wantProbes == 0 || wantSteps == 0 {
			t.Fatalf("the failed scenario has %d probes and %d upgrade steps: the input does not exercise the chart", wantProbes, wantSteps)
		}
		var got struct {
			Probes, Steps, Failing, Visible int
			Labels                          []string
		}
		eval(t, `(() => { const c = document.querySelector(`+jsString(sel+" .chart")+`);
			const lanes = [...c.querySelectorAll(".lane[data-lane]")];
			const seen = l => l.checkVisibility() && l.getBoundingClientRect().height > 10;
			return {
				Probes: lanes.filter(l => l.dataset.laneKind === "probe" && seen(l)).length,
				Steps: lanes.filter(l => l.dataset.laneKind === "upgrade-step" && seen(l)).length,
				Failing: c.querySelectorAll(".lane[data-lane-kind='upgrade-step'] rect.fail").length,
				Visible: lanes.filter(seen).length,
				Labels: lanes.map(l => l.querySelector(".l-name").innerText),
			}; })()`, &got)
		if got.Probes != wantProbes || got.Steps != wantSteps {
			t.Errorf("visible lanes: %d probe and %d upgrade step, want %d and %d (labels %q)", got.Probes, got.Steps, wantProbes, wantSteps, got.Labels)
		}
		if got.Failing == 0 {
			t.Error("no upgrade step bar is drawn as failed")
		}
	})

	t.Run("fault band", func(t *testing.T) {
		total := failed.End.Sub(failed.Start).Seconds()
		type box struct{ Left, Width float64 }
		var bands []box
		var plot box
		eval(t, `(() => { const p = document.querySelector(`+jsString(sel+" .chart .plot")+`).getBoundingClientRect(); return {Left: p.left, Width: p.width}; })()`, &plot)
		eval(t, `[...document.querySelectorAll(`+jsString(sel+" .chart .plot rect.band")+`)].map(b => { const r = b.getBoundingClientRect(); return {Left: r.left, Width: r.width}; })`, &bands)
		var want []box
		for _, e := range failed.Events {
			if e.Kind == "fault" && e.Actor != "armed" {
				want = append(want, box{
					Left:  e.Start.Sub(failed.Start).Seconds() / total * plot.Width,
					Width: e.End.Sub(e.Start).Seconds() / total * plot.Width,
				})
			}
		}
		if len(want) == 0 || plot.Width < 500 {
			t.Fatalf("%d faults on a plot %.0fpx wide: nothing to measure", len(want), plot.Width)
		}
		if len(bands) != len(want) {
			t.Fatalf("%d fault bands on screen, want %d", len(bands), len(want))
		}
		for i, w := range want {
			got := box{bands[i].Left - plot.Left, bands[i].Width}
			if math.Abs(got.Left-w.Left) > 1.5 || math.Abs(got.Width-w.Width) > 1.5 {
				t.Errorf("fault band %d at %.1fpx, %.1fpx wide; the timeline says %.1fpx, %.1fpx wide", i, got.Left, got.Width, w.Left, w.Width)
			}
		}
	})

	t.Run("filters", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.status-filter[data-status="failed"]`))); err != nil {
			t.Fatal(err)
		}
		got := rows(t)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.status-filter[data-status="failed"]`))); err != nil {
			t.Fatal(err)
		}
		if len(got) != rep.Counts().Failed || !strings.HasPrefix(got[0], "✗ failed") {
			t.Errorf("rows with the failed filter on: %q", got)
		}
		if all := rows(t); len(all) != len(rep.Scenarios) {
			t.Errorf("%d rows after the filter is off again, want %d", len(all), len(rep.Scenarios))
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		root := repoRoot(t)
		// The whole page too, for a person checking the layout by eye.
		full, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "out"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "out", "report-full.png"), full, 0o644); err != nil {
			t.Fatal(err)
		}
		targets := []string{filepath.Join(root, "out", "report-screenshot.png")}
		if os.Getenv("REHEARSE_UPDATE_SCREENSHOT") == "1" {
			targets = append(targets, filepath.Join(root, "docs", "report.png"))
		}
		for _, p := range targets {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s (%d KB)", p, len(png)/1024)
		}
	})

	watch.check(t)
}

// wantRows is the index as the report should list it: failed first, then
// undefined and pending, then passed and skipped, each in the report's order.
func wantRows(ss []report.Scenario) []string {
	rank := func(s report.Scenario) int {
		switch s.Status {
		case report.StatusFailed:
			return 0
		case report.StatusPassed, report.StatusSkipped:
			return 2
		}
		return 1
	}
	sorted := slices.Clone(ss)
	slices.SortStableFunc(sorted, func(a, b report.Scenario) int { return rank(a) - rank(b) })
	marks := map[string]string{report.StatusPassed: "✓", report.StatusFailed: "✗", report.StatusSkipped: "–"}
	var out []string
	for _, s := range sorted {
		m, ok := marks[s.Status]
		if !ok {
			m = "?"
		}
		out = append(out, m+" "+s.Status+" "+s.Location())
	}
	return out
}

// remarshal decodes an evaluated JavaScript value into v.
func remarshal(from, v any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// cssEscape makes an id (letters, digits, '.', '_', '-': see the
// report's anchors) usable in a selector.
func cssEscape(id string) string { return strings.ReplaceAll(id, ".", `\.`) }

// sectionID finds the id of the scenario's section from its index row.
func sectionID(t *testing.T, eval func(*testing.T, string, any), location string) string {
	t.Helper()
	var id string
	eval(t, `[...document.querySelectorAll("#index tr.row")].filter(r => r.querySelector(".c-loc code").innerText === `+jsString(location)+`).map(r => r.dataset.id)[0] || ""`, &id)
	if id == "" {
		t.Fatalf("no index row for %s", location)
	}
	return id
}

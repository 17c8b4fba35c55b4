package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/scenarios"
)

// nightlyFeatures is what TestNightlyInBrowser runs, from the repository
// root: a scenario that fails at a row count after an upgrade under a
// fault, with a probe, and one that passes.
const nightlyFeatures = "harness/report/testdata/nightly"

// The nightly's failure, as billing.feature makes it: anything else means
// the run did not go as the feature intends, and the report would not show
// what the test means to look at.
const (
	nightlyFailed     = "harness/report/testdata/nightly/billing.feature:11"
	nightlyFailedLine = 21
	nightlyError      = "table invoices on db has 5000 rows, want 4999"
)

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

// ensurePackages builds the bundled upgrade packages and their PKI (make
// packages) when they are missing, as features/features_test.go does.
func ensurePackages(t *testing.T, root string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, "out", "packages", "billing-3.0-rehearsed.zip.p7s")); err == nil {
		return
	}
	cmd := exec.Command("go", "run", "./fixtures/billing/packages/build", "-out", "out")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the upgrade packages: %v\n%s", err, out)
	}
}

// TestNightlyInBrowser runs a small nightly against the bundled billing
// world (one scenario fails at an assertion after an upgrade under a
// fault, one passes), opens the report.html that run wrote in headless
// Chromium from file://, and checks what a person sees. Its screenshot is
// out/report-screenshot.png, and docs/report.png with
// REHEARSE_UPDATE_SCREENSHOT=1.
func TestNightlyInBrowser(t *testing.T) {
	chromium := findChromium(t)
	enginetest.Connect(t) // fails under CI without an engine, skips elsewhere
	root := repoRoot(t)
	ensurePackages(t, root)
	// From the repository root, so that the records and the reproduce
	// command name the feature as a run from there does.
	t.Chdir(root)

	out := t.TempDir()
	var console bytes.Buffer
	o := scenarios.RunOptions{Paths: []string{nightlyFeatures}, OutDir: out,
		Command: "go run ./cmd/rehearse", Stdout: &console, Stderr: &console,
		Args: []string{"go", "test", "-run", "TestNightlyInBrowser", "./harness/report/"}} // how this report was made, in its header
	if testing.Verbose() {
		o.Stdout, o.Stderr = io.MultiWriter(&console, os.Stdout), io.MultiWriter(&console, os.Stderr)
	}
	sum, err := scenarios.Run(t.Context(), o)
	if err != nil {
		t.Fatalf("rehearse run %s: %v", nightlyFeatures, err)
	}
	if sum.ReportErr != nil {
		t.Fatalf("rehearse run %s wrote no report: %v", nightlyFeatures, sum.ReportErr)
	}
	if len(sum.Failures) != 1 || sum.Failures[0].Line != nightlyFailedLine || sum.Failures[0].Err != nightlyError {
		var s bytes.Buffer
		sum.WriteSummary(&s)
		t.Fatalf("the nightly should fail once, at line %d with %q; it ended with:\n%s\n%s", nightlyFailedLine, nightlyError, s.String(), console.String())
	}

	rep, err := report.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Counts()
	if c.Total != 2 || c.Failed != 1 || c.Passed != 1 {
		t.Fatalf("the nightly's records count %+v, want 2 scenarios, 1 failed and 1 passed", c)
	}
	failed := firstFailed(t, rep)
	if failed.Location() != nightlyFailed || failed.Error != nightlyError || failed.FailedLine != nightlyFailedLine {
		t.Fatalf("the failed record is %s, failed at line %d with %q; want %s, line %d, %q",
			failed.Location(), failed.FailedLine, failed.Error, nightlyFailed, nightlyFailedLine, nightlyError)
	}
	checkInBrowser(t, chromium, rep, filepath.Join(out, report.HTMLFile), true)
}

// TestHTMLInBrowser is the fast variant of TestNightlyInBrowser, without
// an engine: the report of hand-written records (testdata/html/run, whose
// failed scenario also has a failing upgrade step), rendered by report.HTML.
func TestHTMLInBrowser(t *testing.T) {
	chromium := findChromium(t)
	rep, err := report.Load(htmlRunDir)
	if err != nil {
		t.Fatal(err)
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
	checkInBrowser(t, chromium, rep, page, false)
}

// firstFailed is the report's first failed scenario.
func firstFailed(t *testing.T, rep *report.Report) *report.Scenario {
	t.Helper()
	for i := range rep.Scenarios {
		if rep.Scenarios[i].Status == report.StatusFailed {
			return &rep.Scenarios[i]
		}
	}
	t.Fatal("the report has no failed scenario")
	return nil
}

// checkInBrowser opens page, the HTML report of rep, in headless Chromium
// from file:// and checks what a person sees: the index with its statuses
// and filters, the first failed scenario's error, one chart lane per probe
// and per upgrade step, the fault bands where the timeline puts them, no
// console errors and no request but file: and data:. With screenshots it
// saves the top of the page (see TestNightlyInBrowser).
func checkInBrowser(t *testing.T, chromium string, rep *report.Report, page string, screenshots bool) {
	t.Helper()
	failed := firstFailed(t, rep)

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
		wantProbes, wantSteps, wantFailing := 0, 0, 0
		probes := map[string]bool{}
		for _, e := range failed.Events {
			switch {
			case e.Kind == "probe" && !probes[e.Actor]:
				probes[e.Actor] = true
				wantProbes++
			case e.Kind == "upgrade-step":
				wantSteps++
				if exit := e.Fields["exit"]; e.Err != "" || (exit != "" && exit != "0") {
					wantFailing++
				}
			}
		}
		if wantProbes == 0 || wantSteps == 0 {
			t.Fatalf("the failed scenario has %d probes and %d upgrade steps: the input does not exercise the chart", wantProbes, wantSteps)
		}
		var got struct {
			Probes, Steps, Failing, OK, Visible int
			Labels                              []string
		}
		eval(t, `(() => { const c = document.querySelector(`+jsString(sel+" .chart")+`);
			const lanes = [...c.querySelectorAll(".lane[data-lane]")];
			const seen = l => l.checkVisibility() && l.getBoundingClientRect().height > 10;
			return {
				Probes: lanes.filter(l => l.dataset.laneKind === "probe" && seen(l)).length,
				Steps: lanes.filter(l => l.dataset.laneKind === "upgrade-step" && seen(l)).length,
				Failing: c.querySelectorAll(".lane[data-lane-kind='upgrade-step'] rect.fail").length,
				OK: c.querySelectorAll(".lane[data-lane-kind='upgrade-step'] rect.ok").length,
				Visible: lanes.filter(seen).length,
				Labels: lanes.map(l => l.querySelector(".l-name").innerText),
			}; })()`, &got)
		if got.Probes != wantProbes || got.Steps != wantSteps {
			t.Errorf("visible lanes: %d probe and %d upgrade step, want %d and %d (labels %q)", got.Probes, got.Steps, wantProbes, wantSteps, got.Labels)
		}
		if got.Failing != wantFailing || got.OK != wantSteps-wantFailing {
			t.Errorf("upgrade step bars: %d drawn as failed and %d as passed, want %d and %d", got.Failing, got.OK, wantFailing, wantSteps-wantFailing)
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

	if screenshots {
		t.Run("screenshot", func(t *testing.T) { saveScreenshots(t, ctx) })
	}

	watch.check(t)
}

// saveScreenshots saves the top of the page (1280x900: the index and the
// first failed scenario's chart) as out/report-screenshot.png, and as
// docs/report.png with REHEARSE_UPDATE_SCREENSHOT=1; the whole page as
// out/report-full.png, for a person checking the layout by eye.
func saveScreenshots(t *testing.T, ctx context.Context) {
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	full, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	root := repoRoot(t)
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
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d KB)", p, len(png)/1024)
	}
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

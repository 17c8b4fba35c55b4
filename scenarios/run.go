package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/rehearse/rehearse/harness/report"
	"github.com/rehearse/rehearse/internal/term"
)

// Formats rehearse run accepts, with the extension of their report file.
var Formats = map[string]string{"pretty": "txt", "progress": "txt", "junit": "xml", "cucumber": "json", "markdown": "md"}

// RunOptions configures Run.
type RunOptions struct {
	// Paths are feature files, directories and FILE:LINE (the scenario or
	// example row at that line); default "features".
	Paths []string
	// Shard runs only this shard of the selected scenarios; the zero value
	// runs them all.
	Shard Shard
	// Tags keeps the scenarios that match a godog tag expression, such as
	// "@smoke && ~@slow" (see MatchTags), before sharding.
	Tags   string
	Format string // pretty, progress, junit, cucumber, markdown; default pretty
	// OutDir, when set, receives every scenario's timeline and record
	// (OUT/timelines), OUT/run.json, and the reports: report.html,
	// rehearse.xml (JUnit), summary.md, and rehearse.json (cucumber) with
	// --format cucumber. The records of an earlier run there
	// (OUT/timelines/*.json and *.txt, OUT/run.json, OUT/rehearse.json) are
	// removed first, so that its reports are of this run alone.
	OutDir        string
	Concurrency   int // scenarios run at once; default 1
	KeepOnFailure bool
	Fresh         bool // ignore cached seeded states (Config.Fresh)
	// Command is how reproduce commands call rehearse (Config.Command).
	Command string
	// StepSummary, when set, is a file the Markdown summary of the run is
	// appended to, such as $GITHUB_STEP_SUMMARY in GitHub Actions.
	StepSummary string
	// Args is the command line, for OUT/run.json.
	Args   []string
	Stdout io.Writer
	Stderr io.Writer
}

// Summary is the outcome of a run.
type Summary struct {
	Failures      []Failure       // failed scenarios, located in their files
	FeatureErrors []*FeatureError // feature files that could not be parsed
	Report        string          // the report file, when OutDir was set
	ReportErr     error           // writing the records, reports or step summary failed
	GodogStatus   int
}

// Passed reports whether every scenario passed and every file parsed.
func (s Summary) Passed() bool {
	return s.GodogStatus == 0 && len(s.Failures) == 0 && len(s.FeatureErrors) == 0 && s.ReportErr == nil
}

// Run runs feature files with the rehearse step vocabulary. A feature file
// with a syntax error fails on its own; the others still run.
func Run(ctx context.Context, o RunOptions) (Summary, error) {
	var sum Summary
	if o.Format == "" {
		o.Format = "pretty"
	}
	if _, ok := Formats[o.Format]; !ok {
		return sum, fmt.Errorf("format %q: use pretty, progress, junit, cucumber or markdown", o.Format)
	}
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	sel, err := Select(o.Paths, o.Shard, o.Tags)
	if err != nil {
		return sum, err
	}
	sum.FeatureErrors = sel.Errors
	cfg := &Config{KeepOnFailure: o.KeepOnFailure, OutDir: o.OutDir, Fresh: o.Fresh, Command: o.Command,
		sel: sel, shard: o.Shard.String()}
	if o.Concurrency == 1 {
		cfg.Live = o.Stderr
	}

	// The console: pretty or progress as asked; progress beside a report
	// format. Markdown, and JUnit without OutDir, are rendered from the
	// records and printed at the end on stdout: their console goes to
	// stderr. godog's own cucumber goes to stdout without OutDir, to
	// OUT/rehearse.json with it; with OutDir, JUnit comes from the records
	// (report.JUnit) into OUT/rehearse.xml.
	console := "progress"
	if o.Format == "pretty" || o.Format == "progress" {
		console = o.Format
	}
	output := o.Stdout
	format := console
	switch {
	case o.Format == "markdown", o.Format == "junit" && o.OutDir == "":
		output = o.Stderr
	case o.OutDir == "" && o.Format == "cucumber":
		format = o.Format
		cfg.FailureBlocks = BlocksOff
	case o.Format == "cucumber":
		format += ",cucumber:" + filepath.Join(o.OutDir, report.CucumberFile)
	}
	if cfg.FailureBlocks != BlocksOff && console == "progress" {
		cfg.FailureBlocks = BlocksAtEnd
	}
	format += "," + cfg.Format()

	if o.OutDir != "" {
		if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
			return sum, err
		}
		if err := clearRecords(o.OutDir); err != nil {
			return sum, err
		}
		switch o.Format {
		case "junit":
			sum.Report = filepath.Join(o.OutDir, report.JUnitFile)
		case "cucumber":
			sum.Report = filepath.Join(o.OutDir, report.CucumberFile)
		case "markdown":
			sum.Report = filepath.Join(o.OutDir, report.MarkdownFile)
		default:
			sum.Report = filepath.Join(o.OutDir, report.HTMLFile)
		}
	}
	run := report.Run{Schema: report.RunSchema, Shard: o.Shard.String(), Digest: sel.Digest(), Total: len(sel.All),
		Selected: []string{}, Tags: o.Tags, Args: o.Args, Start: time.Now()}
	for _, p := range sel.Selected {
		run.Selected = append(run.Selected, p.Key())
	}
	for _, fe := range sel.Errors {
		run.Errors = append(run.Errors, featureErrorLine(fe))
	}
	if run.Args == nil {
		run.Args = []string{}
	}
	if len(sel.Selected) == 0 {
		fmt.Fprintln(o.Stderr, nothingToRun(sel, o.Tags))
	}
	if len(sel.Paths) > 0 {
		// Select has applied the tags already: godog runs what it selected.
		suite := godog.TestSuite{
			Name:                "rehearse",
			ScenarioInitializer: Initializer(cfg),
			Options: &godog.Options{
				Format:         format,
				FS:             sel.FS,
				Paths:          sel.Paths,
				Concurrency:    o.Concurrency,
				Strict:         true,
				Output:         output,
				NoColors:       !term.IsTerminal(output),
				DefaultContext: ctx,
			},
		}
		sum.GodogStatus = suite.Run()
	}
	run.End = time.Now()
	cfg.recordUnrun(run.Start, run.End, ctx.Err() != nil)
	sum.Failures = cfg.Failures()
	sum.ReportErr = cfg.recordErr()

	recs := cfg.Records()
	slices.SortStableFunc(recs, func(a, b report.Scenario) int {
		return cmpScenario(a, b)
	})
	r := &report.Report{Runs: []report.Run{run}, Scenarios: recs}
	if o.OutDir != "" {
		err := writeJSON(filepath.Join(o.OutDir, report.RunFile), run)
		if err == nil {
			r, err = writeReports(o.OutDir)
		}
		if err != nil {
			sum.ReportErr = errors.Join(sum.ReportErr, err)
			return sum, nil
		}
	}
	if err := report.AppendStepSummaryTo(o.StepSummary, r); err != nil {
		sum.ReportErr = errors.Join(sum.ReportErr, err)
	}
	switch {
	case o.Format == "markdown":
		err = report.Markdown(o.Stdout, r)
	case o.Format == "junit" && o.OutDir == "":
		err = report.JUnit(o.Stdout, r)
	}
	if err != nil {
		sum.ReportErr = errors.Join(sum.ReportErr, err)
	}
	return sum, nil
}

// cmpScenario orders records as reports list them: by feature, then line.
func cmpScenario(a, b report.Scenario) int {
	if c := strings.Compare(a.Feature, b.Feature); c != 0 {
		return c
	}
	return a.Line - b.Line
}

// nothingToRun says why a run has no scenario to run.
func nothingToRun(sel *Selection, tags string) string {
	switch {
	case sel.Shard.Count > 0 && len(sel.All) > 0:
		return fmt.Sprintf("shard %s has no scenarios (%d scenarios over %d shards)", sel.Shard, len(sel.All), sel.Shard.Count)
	case tags != "":
		return fmt.Sprintf("no scenarios to run: none matches --tags %q", tags)
	}
	return "no scenarios to run"
}

// featureErrorLine is a feature file that could not be read or parsed as
// run.json's Errors name it: "FILE:LINE: message", or "FILE: message"
// when no line is known.
func featureErrorLine(fe *FeatureError) string {
	msg := fe.Err.Error()
	// parseFeature words a syntax error "gherkin syntax error: FILE:LINE: ...".
	if rest, ok := strings.CutPrefix(msg, "gherkin syntax error: "); ok {
		if after, ok := strings.CutPrefix(rest, fe.File+":"); ok {
			if line, text, ok := strings.Cut(after, ": "); ok && digits(line) {
				return fmt.Sprintf("%s:%s: gherkin syntax error: %s", fe.File, line, text)
			}
		}
	}
	return fe.Error()
}

// clearRecords removes what an earlier run left in an output directory
// that this run's reports would otherwise count: the scenario records and
// text timelines (OUT/timelines/*.json and *.txt), OUT/run.json and
// OUT/rehearse.json. Only regular files go; links are not followed, and
// nothing else is touched.
func clearRecords(dir string) error {
	var errs []error
	remove := func(path string) {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove the earlier run's %s: %w", path, err))
		}
	}
	tl := filepath.Join(dir, report.TimelinesDir)
	if st, err := os.Lstat(tl); err == nil && st.IsDir() {
		entries, err := os.ReadDir(tl)
		if err != nil {
			return fmt.Errorf("remove the earlier run's records: %w", err)
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); e.Type().IsRegular() && (ext == ".json" || ext == ".txt") {
				remove(filepath.Join(tl, e.Name()))
			}
		}
	}
	for _, name := range []string{report.RunFile, report.CucumberFile} {
		p := filepath.Join(dir, name)
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() {
			remove(p)
		}
	}
	return errors.Join(errs...)
}

// writeReports renders the reports of an output directory from its
// records (report.html, rehearse.xml, summary.md).
func writeReports(dir string) (*report.Report, error) {
	r, err := report.Load(dir)
	if err != nil {
		return nil, err
	}
	return r, report.Write(dir, r)
}

// WriteSummary prints each failure and unparsable file on one line, then
// the report file, or why the reports could not be written.
func (s Summary) WriteSummary(w io.Writer) {
	for _, fe := range s.FeatureErrors {
		fmt.Fprintln(w, fe.Err.Error())
	}
	for _, f := range s.Failures {
		fmt.Fprintln(w, f.String())
	}
	switch {
	case s.ReportErr != nil:
		fmt.Fprintf(w, "report: %v\n", s.ReportErr)
	case s.Report != "":
		fmt.Fprintf(w, "report: %s\n", s.Report)
	}
}

package scenarios

import (
	"bytes"
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

	"github.com/rehearse/rehearse/harness/env"
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
	// --format cucumber. The records and reports of an earlier run there
	// are removed first, so that its reports are of this run alone; Run
	// refuses, before running anything, a directory whose run.json or
	// timelines are not rehearse's (see checkOutDir). With OutDir, Stdout
	// gets the console (pretty, or progress for a report format); without
	// it, junit, cucumber and markdown go to Stdout and the console to
	// Stderr (none with cucumber).
	OutDir string
	// Concurrency is how many scenarios run at once, each in its own
	// environment; 0 (or less) means 1. AutoConcurrency runs as many as
	// the machine that runs the environments holds and says so on Stderr
	// (rehearse run's default).
	Concurrency int
	// Capacity, for AutoConcurrency, reports what the machine that runs
	// the environments has; nil means FindCapacity.
	Capacity      func(context.Context) Capacity
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
	// Interrupted is set when the run's context was cancelled (Ctrl-C):
	// NotRun scenarios were left, skipped, and the run did not pass.
	Interrupted bool
	NotRun      int
}

// Passed reports whether every scenario passed, every file parsed, and
// the run was not interrupted.
func (s Summary) Passed() bool {
	return s.GodogStatus == 0 && len(s.Failures) == 0 && len(s.FeatureErrors) == 0 && s.ReportErr == nil && !s.Interrupted
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
	var earlier *earlierRun
	if o.OutDir != "" {
		if earlier, err = checkOutDir(o.OutDir); err != nil {
			return sum, err
		}
	}
	var start string // the line that says how many run at a time, and why
	switch {
	case o.Concurrency == AutoConcurrency && len(sel.Selected) > 0:
		o.Concurrency, start = autoConcurrency(ctx, len(sel.Selected), o.Capacity)
	case o.Concurrency < 1:
		o.Concurrency = 1
	}
	if o.Concurrency > 1 {
		// godog replays concurrent scenarios' output as each ends, on its
		// goroutine: several at once.
		out := &syncWriter{w: o.Stdout}
		if o.Stderr == o.Stdout {
			o.Stdout, o.Stderr = out, out
		} else {
			o.Stdout, o.Stderr = out, &syncWriter{w: o.Stderr}
		}
	}
	sum.FeatureErrors = sel.Errors
	cfg := &Config{KeepOnFailure: o.KeepOnFailure, OutDir: o.OutDir, Fresh: o.Fresh, Command: o.Command,
		sel: sel, shard: o.Shard.String()}
	if o.Concurrency == 1 {
		cfg.Live = o.Stderr
	} else {
		// Scenario output is kept until a scenario ends; images being made
		// for an environment say how far they are as it happens.
		cfg.StartOptions = append(cfg.StartOptions, env.WithImageProgress(o.Stderr)) // a syncWriter here
	}

	// The console: pretty or progress as asked; progress beside a report
	// format. With OutDir the console goes to stdout whatever the format,
	// and the reports to their files: JUnit and Markdown from the records,
	// cucumber from godog's formatter (OUT/rehearse.json). Without OutDir
	// the report goes to stdout: JUnit and Markdown rendered from the
	// records at the end, their console on stderr; godog's cucumber alone.
	console := "progress"
	if o.Format == "pretty" || o.Format == "progress" {
		console = o.Format
	}
	output := o.Stdout
	format := console
	switch {
	case o.OutDir == "" && (o.Format == "markdown" || o.Format == "junit"):
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
		if err := earlier.clear(); err != nil {
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
	} else if start != "" {
		fmt.Fprintln(o.Stderr, start)
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
	sum.Interrupted = ctx.Err() != nil
	run.Interrupted = sum.Interrupted
	cfg.recordUnrun(run.Start, sum.Interrupted)
	sum.Failures = cfg.Failures()
	sum.ReportErr = cfg.recordErr()

	recs := cfg.Records()
	slices.SortStableFunc(recs, func(a, b report.Scenario) int {
		return cmpScenario(a, b)
	})
	for _, rec := range recs {
		if rec.Error == errInterrupted {
			sum.NotRun++
		}
	}
	r := &report.Report{Runs: []report.Run{run}, Scenarios: recs}
	if o.OutDir != "" {
		var err error
		r, err = writeReports(o.OutDir, r)
		sum.ReportErr = errors.Join(sum.ReportErr, err)
	}
	if err := report.AppendStepSummaryTo(o.StepSummary, r); err != nil {
		sum.ReportErr = errors.Join(sum.ReportErr, err)
	}
	if o.OutDir == "" {
		switch o.Format {
		case "markdown":
			err = report.Markdown(o.Stdout, r)
		case "junit":
			err = report.JUnit(o.Stdout, r)
		}
		if err != nil {
			sum.ReportErr = errors.Join(sum.ReportErr, err)
		}
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

// loadReport reads an output directory's records back: report.Load, but
// in tests.
var loadReport = report.Load

// writeReports writes the run's OUT/run.json, then the reports
// (report.html, rehearse.xml, summary.md) of the records in OUT as
// rehearse report reads them, and returns the report. When the records
// cannot be read back, the reports are of mem, the records the run holds,
// and the error comes with them: an earlier run's reports, removed before
// the run, never stand for this one.
func writeReports(dir string, mem *report.Report) (*report.Report, error) {
	runErr := writeJSON(filepath.Join(dir, report.RunFile), mem.Runs[0])
	r, err := loadReport(dir)
	if err == nil && runErr == nil {
		return r, report.Write(dir, r)
	}
	if err != nil {
		err = fmt.Errorf("read the run's records back: %w (the reports are of the records in memory)", err)
	}
	return mem, errors.Join(runErr, err, writeReportFiles(dir, mem))
}

// writeReportFiles writes the reports of r into dir, and nothing else.
func writeReportFiles(dir string, r *report.Report) error {
	render := []struct {
		name string
		fn   func(io.Writer) error
	}{
		{report.HTMLFile, func(w io.Writer) error { return report.HTML(w, r.Scenarios, report.HTMLOptions{Runs: r.Runs}) }},
		{report.JUnitFile, func(w io.Writer) error { return report.JUnit(w, r) }},
		{report.MarkdownFile, func(w io.Writer) error { return report.Markdown(w, r) }},
	}
	var errs []error
	for _, f := range render {
		var b bytes.Buffer
		err := f.fn(&b)
		if err == nil {
			err = report.WriteFileAtomic(filepath.Join(dir, f.name), b.Bytes(), 0o644)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("write %s: %w", f.name, err))
		}
	}
	return errors.Join(errs...)
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
	if s.Interrupted {
		fmt.Fprintf(w, "interrupted: %d scenarios not run (skipped)\n", s.NotRun)
	}
	switch {
	case s.ReportErr != nil:
		fmt.Fprintf(w, "report: %v\n", s.ReportErr)
	case s.Report != "":
		fmt.Fprintf(w, "report: %s\n", s.Report)
	}
}

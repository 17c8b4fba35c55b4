package scenarios

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
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
	Shard  Shard
	Tags   string // godog tag expression, such as "@smoke && ~@slow"
	Format string // pretty, progress, junit, cucumber, markdown; default pretty
	// OutDir, when set, receives every scenario's timeline and record
	// (OUT/timelines), OUT/run.json, and the reports: report.html,
	// rehearse.xml (JUnit), summary.md, and rehearse.json (cucumber) with
	// --format cucumber.
	OutDir        string
	Concurrency   int // scenarios run at once; default 1
	KeepOnFailure bool
	Fresh         bool // ignore cached seeded states (Config.Fresh)
	// Command is how reproduce commands call rehearse (Config.Command).
	Command string
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
	ReportErr     error           // writing the reports of OutDir failed
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
	sel, err := Select(o.Paths, o.Shard)
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
	// format. godog's own junit and cucumber go to stdout without OutDir;
	// with it, cucumber goes to OUT/rehearse.json and JUnit comes from the
	// records (report.JUnit). Markdown is printed at the end, on stdout:
	// its console goes to stderr.
	console := "progress"
	if o.Format == "pretty" || o.Format == "progress" {
		console = o.Format
	}
	output := o.Stdout
	format := console
	switch {
	case o.Format == "markdown":
		output = o.Stderr
	case o.OutDir == "" && (o.Format == "junit" || o.Format == "cucumber"):
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
	if run.Args == nil {
		run.Args = []string{}
	}
	if len(sel.Paths) > 0 {
		suite := godog.TestSuite{
			Name:                "rehearse",
			ScenarioInitializer: Initializer(cfg),
			Options: &godog.Options{
				Format:         format,
				FS:             sel.FS,
				Paths:          sel.Paths,
				Tags:           o.Tags,
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
	sum.Failures = cfg.Failures()

	r := &report.Report{Runs: []report.Run{run}, Scenarios: cfg.Records()}
	if o.OutDir != "" {
		if err := writeJSON(filepath.Join(o.OutDir, report.RunFile), run); err != nil {
			sum.ReportErr = err
			return sum, nil
		}
		loaded, err := writeReports(o.OutDir)
		if err != nil {
			sum.ReportErr = err
			return sum, nil
		}
		r = loaded
	}
	if o.Format == "markdown" {
		sort.SliceStable(r.Scenarios, func(i, j int) bool {
			a, b := r.Scenarios[i], r.Scenarios[j]
			if a.Feature != b.Feature {
				return a.Feature < b.Feature
			}
			return a.Line < b.Line
		})
		if err := report.Markdown(o.Stdout, r); err != nil {
			sum.ReportErr = err
		}
	}
	return sum, nil
}

// writeReports renders the reports of an output directory from its
// records (report.html, rehearse.xml, summary.md), and appends the Markdown
// summary to $GITHUB_STEP_SUMMARY when that is set.
func writeReports(dir string) (*report.Report, error) {
	r, err := report.Load(dir)
	if err != nil {
		return nil, err
	}
	if err := report.Write(dir, r); err != nil {
		return r, err
	}
	return r, report.AppendStepSummary(r)
}

// WriteSummary prints each failure and unparsable file on one line.
func (s Summary) WriteSummary(w io.Writer) {
	for _, fe := range s.FeatureErrors {
		fmt.Fprintln(w, fe.Err.Error())
	}
	for _, f := range s.Failures {
		fmt.Fprintln(w, f.String())
	}
	if s.ReportErr != nil {
		fmt.Fprintf(w, "report: %v\n", s.ReportErr)
	}
	if s.Report != "" {
		fmt.Fprintf(w, "report: %s\n", s.Report)
	}
}

package scenarios

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cucumber/godog"

	"github.com/rehearse/rehearse/internal/term"
)

// Formats rehearse run accepts.
var Formats = map[string]string{"pretty": "txt", "progress": "txt", "junit": "xml", "cucumber": "json"}

// RunOptions configures Run.
type RunOptions struct {
	Paths         []string // feature files or directories; default "features"
	Tags          string   // godog tag expression, such as "@smoke && ~@slow"
	Format        string   // pretty, progress, junit, cucumber; default pretty
	OutDir        string   // when set, the report goes to OUT/rehearse.<ext> and timelines to OUT/timelines
	Concurrency   int      // scenarios run at once; default 1
	KeepOnFailure bool
	Fresh         bool // ignore cached seeded states (Config.Fresh)
	Stdout        io.Writer
	Stderr        io.Writer
}

// Summary is the outcome of a run.
type Summary struct {
	Failures      []Failure       // failed scenarios, located in their files
	FeatureErrors []*FeatureError // feature files that could not be parsed
	Report        string          // the report file, when OutDir was set
	GodogStatus   int
}

// Passed reports whether every scenario passed and every file parsed.
func (s Summary) Passed() bool {
	return s.GodogStatus == 0 && len(s.Failures) == 0 && len(s.FeatureErrors) == 0
}

// Run runs feature files with the rehearse step vocabulary. A feature file
// with a syntax error fails on its own; the others still run.
func Run(ctx context.Context, o RunOptions) (Summary, error) {
	var sum Summary
	if o.Format == "" {
		o.Format = "pretty"
	}
	ext, ok := Formats[o.Format]
	if !ok {
		return sum, fmt.Errorf("format %q: use pretty, progress, junit or cucumber", o.Format)
	}
	if len(o.Paths) == 0 {
		o.Paths = []string{"features"}
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
	files, err := ExpandPaths(o.Paths)
	if err != nil {
		return sum, err
	}
	var good []string
	for _, f := range files {
		if err := CheckFeature(f); err != nil {
			fe, _ := err.(*FeatureError)
			sum.FeatureErrors = append(sum.FeatureErrors, fe)
			continue
		}
		good = append(good, f)
	}
	cfg := &Config{KeepOnFailure: o.KeepOnFailure, OutDir: o.OutDir, Fresh: o.Fresh}
	if o.Concurrency == 1 {
		cfg.Live = o.Stderr
	}
	format := o.Format + "," + cfg.Format()
	if o.OutDir != "" {
		if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
			return sum, err
		}
		sum.Report = filepath.Join(o.OutDir, "rehearse."+ext)
		console := "progress"
		if o.Format == "pretty" || o.Format == "progress" {
			console = o.Format
		}
		format = console + "," + o.Format + ":" + sum.Report + "," + cfg.Format()
	}
	if len(good) > 0 {
		suite := godog.TestSuite{
			Name:                "rehearse",
			ScenarioInitializer: Initializer(cfg),
			Options: &godog.Options{
				Format:         format,
				Paths:          good,
				Tags:           o.Tags,
				Concurrency:    o.Concurrency,
				Strict:         true,
				Output:         o.Stdout,
				NoColors:       !term.IsTerminal(o.Stdout),
				DefaultContext: ctx,
			},
		}
		sum.GodogStatus = suite.Run()
	}
	sum.Failures = cfg.Failures()
	return sum, nil
}

// WriteSummary prints each failure and unparsable file on one line.
func (s Summary) WriteSummary(w io.Writer) {
	for _, fe := range s.FeatureErrors {
		fmt.Fprintln(w, fe.Err.Error())
	}
	for _, f := range s.Failures {
		fmt.Fprintln(w, f.String())
	}
	if s.Report != "" {
		fmt.Fprintf(w, "report: %s\n", s.Report)
	}
}

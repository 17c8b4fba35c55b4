package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/scenarios"
)

// errScenariosFailed is returned (exit 1) when any scenario failed; the
// failures are already printed.
var errScenariosFailed = errors.New("rehearsal failed")

func newRun() *cobra.Command {
	var o scenarios.RunOptions
	var shard, concurrency string
	cmd := &cobra.Command{
		Use:   "run [PATHS...]",
		Short: "Run rehearsal scenarios from .feature files (default: ./features)",
		Long: `Run rehearsal scenarios from .feature files and directories (default: ./features).
FILE:LINE runs the scenario, or Scenario Outline example row, at that line.
--tags keeps the scenarios matching a tag expression, before --shard I/N runs
the I-th of N disjoint parts of them, the same on every machine; rehearse report
merges the shards' --out directories.
Each scenario gets its own environment. By default as many run at once as
the Docker engine's machine holds, by its cores and memory (this machine's
when no engine answers), as the first line on stderr says; --concurrency N
sets it.
With --out, stdout shows the console (pretty, or progress for the report
formats) whatever --format is, and the report files are in DIR; without
--out, --format junit, cucumber and markdown print that report on stdout
and the console (but for cucumber) on stderr.
Every failed scenario ends with the command that reproduces it; it calls
rehearse as you did when that was a path (bin/rehearse), else "rehearse"
(go run's binary, in a go-build directory or $GOCACHE, is no command to
keep). REHEARSE_COMMAND, when set, replaces it, such as
REHEARSE_COMMAND="go run ./cmd/rehearse".
When $GITHUB_STEP_SUMMARY is set, the Markdown summary of the run is
appended to that file.
Ctrl-C stops the run: the scenario running is torn down, the scenarios
not started are recorded as skipped, and the run fails.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, ok := scenarios.Formats[o.Format]; !ok {
				return usageError{fmt.Errorf("run: --format must be pretty, progress, junit, cucumber or markdown, not %q", o.Format)}
			}
			n, err := parseConcurrency(concurrency)
			if err != nil {
				return usageError{fmt.Errorf("run: --concurrency: %w", err)}
			}
			o.Concurrency = n
			if err := scenarios.CheckTags(o.Tags); err != nil {
				return usageError{fmt.Errorf("run: --tags: %w", err)}
			}
			if shard != "" {
				s, err := scenarios.ParseShard(shard)
				if err != nil {
					return usageError{fmt.Errorf("run: --shard: %w", err)}
				}
				o.Shard = s
			}
			o.Paths = args
			o.Command = invokedAs(os.Args[0], os.Getenv)
			o.StepSummary = os.Getenv("GITHUB_STEP_SUMMARY")
			o.Args = os.Args
			o.Stdout, o.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			sum, err := scenarios.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			sum.WriteSummary(cmd.ErrOrStderr())
			if !sum.Passed() {
				return errScenariosFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Tags, "tags", "", `run scenarios matching a tag expression, such as "@smoke && ~@slow"`)
	f.StringVar(&o.Format, "format", "pretty", "report format: pretty, progress, junit, cucumber or markdown; junit, cucumber and markdown go to stdout without --out, to their file in DIR with it (stdout then shows progress)")
	f.StringVar(&o.OutDir, "out", "", "write scenario timelines, run.json and the reports (report.html, rehearse.xml, summary.md) to DIR; replaces the records and reports of an earlier run in DIR, and refuses a DIR whose run.json or timelines are not rehearse's")
	f.StringVar(&shard, "shard", "", "run only shard I of N (I/N, such as 2/3): a split by feature path and line, stable across machines")
	f.StringVar(&concurrency, "concurrency", "auto", "scenarios to run at once, each in its own environment: `N`, or auto for as many as the Docker engine's cores and memory hold (said at the start)")
	f.BoolVar(&o.KeepOnFailure, "keep-on-failure", false, "leave a failed scenario's environment up (ignored when CI is set)")
	f.BoolVar(&o.Fresh, "fresh", false, "load every dataset from scratch, ignoring cached seeded states (the new state replaces the cached one)")
	return cmd
}

// parseConcurrency reads --concurrency: "auto" (scenarios.AutoConcurrency)
// or a number of at least 1.
func parseConcurrency(s string) (int, error) {
	if s == "auto" {
		return scenarios.AutoConcurrency, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf(`want "auto" or a number of at least 1, not %q`, s)
	}
	return n, nil
}

// commandEnv, when set, is how reproduce commands call rehearse, verbatim
// (such as "go run ./cmd/rehearse").
const commandEnv = "REHEARSE_COMMAND"

// invokedAs is how reproduce commands call rehearse: $REHEARSE_COMMAND
// when set; else the program as the user ran it when that was a path
// (bin/rehearse, ./rehearse, /opt/rehearse/bin/rehearse), quoted for a
// shell; else "rehearse" (found on PATH). A binary go run built is
// "rehearse" too: go run's path is no command to give anyone (see
// goRunBinary).
func invokedAs(arg0 string, getenv func(string) string) string {
	if c := strings.TrimSpace(getenv(commandEnv)); c != "" {
		return c
	}
	if !strings.ContainsRune(arg0, '/') || goRunBinary(arg0, getenv) {
		return "rehearse"
	}
	return scenarios.ShellQuote(arg0)
}

// goRunBinary reports whether a path is where go run builds: under a
// directory named go-build* (the temporary $GOTMPDIR/go-build123/ of
// Go before 1.24, and the default build cache, os.UserCacheDir()/go-build,
// where Go 1.24 and later keep go run's executables), or under $GOCACHE
// when that is set. The temporary one is deleted when the program exits;
// the cached one is named by a hash and goes with the cache.
func goRunBinary(path string, getenv func(string) string) bool {
	path = filepath.Clean(path)
	for _, c := range strings.Split(filepath.ToSlash(path), "/") {
		if strings.HasPrefix(c, "go-build") {
			return true
		}
	}
	cache := getenv("GOCACHE")
	if cache == "" || cache == "off" || !filepath.IsAbs(cache) {
		return false
	}
	rel, err := filepath.Rel(filepath.Clean(cache), path)
	return err == nil && rel != ".." && !strings.HasPrefix(filepath.ToSlash(rel), "../") && filepath.IsAbs(path)
}

func newSteps() *cobra.Command {
	return &cobra.Command{
		Use:   "steps",
		Short: "Print every step phrase with an example",
		Args:  exactArgs(0),
		Run: func(cmd *cobra.Command, _ []string) {
			for _, s := range scenarios.Steps {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n    %s\n    e.g. %s\n\n", s.Phrase, s.Help, s.Example)
			}
		},
	}
}

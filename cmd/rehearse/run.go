package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/scenarios"
)

// errScenariosFailed is returned (exit 1) when any scenario failed; the
// failures are already printed.
var errScenariosFailed = errors.New("rehearsal failed")

func newRun() *cobra.Command {
	var o scenarios.RunOptions
	var shard string
	cmd := &cobra.Command{
		Use:   "run [PATHS...]",
		Short: "Run rehearsal scenarios from .feature files (default: ./features)",
		Long: `Run rehearsal scenarios from .feature files and directories (default: ./features).
FILE:LINE runs the scenario, or Scenario Outline example row, at that line.
--shard I/N runs the I-th of N disjoint parts of the selected scenarios, the same
on every machine; rehearse report merges the shards' --out directories.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, ok := scenarios.Formats[o.Format]; !ok {
				return usageError{fmt.Errorf("run: --format must be pretty, progress, junit, cucumber or markdown, not %q", o.Format)}
			}
			if o.Concurrency < 1 {
				return usageError{fmt.Errorf("run: --concurrency must be at least 1")}
			}
			if shard != "" {
				s, err := scenarios.ParseShard(shard)
				if err != nil {
					return usageError{fmt.Errorf("run: --shard: %w", err)}
				}
				o.Shard = s
			}
			o.Paths = args
			o.Command = invokedAs(os.Args[0])
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
	f.StringVar(&o.Format, "format", "pretty", "report format: pretty, progress, junit, cucumber or markdown (printed at the end)")
	f.StringVar(&o.OutDir, "out", "", "write scenario timelines, run.json and the reports (report.html, rehearse.xml, summary.md) to this directory")
	f.StringVar(&shard, "shard", "", "run only shard I of N (I/N, such as 2/3): a split by feature path and line, stable across machines")
	f.IntVar(&o.Concurrency, "concurrency", 1, "scenarios to run at once, each in its own environment")
	f.BoolVar(&o.KeepOnFailure, "keep-on-failure", false, "leave a failed scenario's environment up (ignored when CI is set)")
	f.BoolVar(&o.Fresh, "fresh", false, "load every dataset from scratch, ignoring cached seeded states (the new state replaces the cached one)")
	return cmd
}

// invokedAs is how reproduce commands call rehearse: the program as the
// user ran it when that was a path (bin/rehearse, ./rehearse), else
// "rehearse" (found on PATH).
func invokedAs(arg0 string) string {
	if !strings.ContainsRune(arg0, '/') {
		return "rehearse"
	}
	return shellQuote(arg0)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
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

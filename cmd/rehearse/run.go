package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/scenarios"
)

// errScenariosFailed is returned (exit 1) when any scenario failed; the
// failures are already printed.
var errScenariosFailed = errors.New("rehearsal failed")

func newRun() *cobra.Command {
	var o scenarios.RunOptions
	cmd := &cobra.Command{
		Use:   "run [PATHS...]",
		Short: "Run rehearsal scenarios from .feature files (default: ./features)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, ok := scenarios.Formats[o.Format]; !ok {
				return usageError{fmt.Errorf("run: --format must be pretty, progress, junit or cucumber, not %q", o.Format)}
			}
			if o.Concurrency < 1 {
				return usageError{fmt.Errorf("run: --concurrency must be at least 1")}
			}
			o.Paths = args
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
	f.StringVar(&o.Format, "format", "pretty", "report format: pretty, progress, junit or cucumber")
	f.StringVar(&o.OutDir, "out", "", "write the report (rehearse.<ext>) and scenario timelines to this directory")
	f.IntVar(&o.Concurrency, "concurrency", 1, "scenarios to run at once, each in its own environment")
	f.BoolVar(&o.KeepOnFailure, "keep-on-failure", false, "leave a failed scenario's environment up (ignored when CI is set)")
	f.BoolVar(&o.Fresh, "fresh", false, "load every dataset from scratch, ignoring cached seeded states (the new state replaces the cached one)")
	return cmd
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

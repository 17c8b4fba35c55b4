package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/harness/engine"
	"github.com/rehearse/rehearse/harness/runs"
)

func newDown() *cobra.Command {
	var runID string
	cmd := &cobra.Command{
		Use:   "down --run-id ID",
		Short: "Remove every container, network and volume of a run",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runID == "" {
				return usageError{errors.New("down: --run-id is required")}
			}
			cli, err := engine.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			if err := runs.Remove(cmd.Context(), cli, runID); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s removed\n", runID)
			return nil
		},
	}
	cmd.Flags().StringVar(&runID, "run-id", "", "the run to remove")
	return cmd
}

func newGC() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "gc [--all]",
		Short: "Remove leftovers of runs whose owner process is gone (--all: every run)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cli, err := engine.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			removed, err := runs.GC(cmd.Context(), cli, all)
			for _, r := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed run %s (%d containers, %d networks, %d volumes)\n",
					r.ID, len(r.Containers), len(r.Networks), len(r.Volumes))
			}
			if len(removed) == 0 && err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to remove")
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every run, including live and kept ones")
	return cmd
}

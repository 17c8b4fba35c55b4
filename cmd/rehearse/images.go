package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/harness/engine"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/image"
)

func newImages() *cobra.Command {
	var (
		file     string
		profiles []string
		verbose  bool
	)
	cmd := &cobra.Command{
		Use:   "images -f FILE",
		Short: "Make every image a compose file needs exist locally (build, pack, bootstrap)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("images: -f FILE is required")}
			}
			plan, err := loadPlan(cmd.Context(), file, profiles)
			if err != nil {
				return err
			}
			cli, err := engine.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			var opts []image.Option
			if verbose {
				opts = append(opts, image.WithLog(cmd.ErrOrStderr()))
			}
			b, err := image.NewBuilder(cli, opts...)
			if err != nil {
				return err
			}
			results, err := env.EnsureImages(cmd.Context(), plan, cli, b)
			for _, r := range results {
				fmt.Fprintf(cmd.OutOrStdout(), "%-8s %s %.19s\n", r.Action, r.Ref, r.ID)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "compose file")
	cmd.Flags().StringSliceVar(&profiles, "profile", nil, "compose profiles to activate")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "stream build output to stderr")
	return cmd
}

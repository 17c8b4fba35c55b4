package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/harness/engine"
	"github.com/rehearse/rehearse/harness/fault"
	"github.com/rehearse/rehearse/harness/gateway"
	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/internal/progress"
)

func newImages() *cobra.Command {
	var (
		file     string
		profiles []string
		verbose  bool
	)
	cmd := &cobra.Command{
		Use:   "images -f FILE",
		Short: "Make every image a compose file and the harness need exist locally (build, pack, bootstrap)",
		Long: `Make every image a compose file's services run exist locally, and the
harness's own (the port gateway, the network fault helper, the toxiproxy
server, the Debian base of the snapshot copy helpers), so that no scenario
builds one. Images that do not need each other are made concurrently.

Progress goes to stderr: one spinner per image on a terminal, otherwise a
status line at least every 10 s. At the end: each image, its own build
time, and the wall time against the sum of the builds.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("images: -f FILE is required")}
			}
			start := time.Now()
			plan, err := loadPlan(cmd.Context(), file, profiles)
			if err != nil {
				return err
			}
			cli, err := engine.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			board := progress.NewBoard("images")
			opts := []image.Option{image.WithProgress(board)}
			if verbose {
				opts = append(opts, image.WithLog(cmd.ErrOrStderr()))
			}
			b, err := image.NewBuilder(cli, opts...)
			if err != nil {
				return err
			}
			harness, err := harnessImages(cmd.Context())
			if err != nil {
				return err
			}
			specs := append(plan.Images(), harness...)
			if _, err := b.Plan(specs...); err != nil {
				return err
			}
			var stop func()
			if verbose { // build output on stderr: lines between it, no bars
				stop = progress.Lines(cmd.ErrOrStderr(), board)
			} else {
				stop = progress.Show(cmd.ErrOrStderr(), board)
			}
			_, err = b.Ensure(cmd.Context(), specs...)
			stop()
			writeImagesSummary(cmd.OutOrStdout(), b.Made(), time.Since(start))
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "compose file")
	cmd.Flags().StringSliceVar(&profiles, "profile", nil, "compose profiles to activate")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "stream build output to stderr")
	return cmd
}

// harnessImages are the images the harness runs besides the services':
// the Debian base the snapshot copy helpers run, the port gateway, and
// the network fault helper with the toxiproxy server on it. Made by
// rehearse images, they are found cached when a scenario needs them.
func harnessImages(ctx context.Context) ([]image.Spec, error) {
	gw, err := gateway.ImageSpec()
	if err != nil {
		return nil, err
	}
	faults, err := fault.ImageSpecs(ctx)
	if err != nil {
		return nil, err
	}
	specs := []image.Spec{{Ref: image.DebianBase, Origin: "rehearse snapshot copy helper"}, gw}
	return append(specs, faults...), nil
}

// writeImagesSummary lists each image made, with its own time when it
// was built, and the wall time against the sum of the builds: "built 7
// images in 3m12s (sum of the builds 5m40s)".
func writeImagesSummary(w io.Writer, made []image.Result, wall time.Duration) {
	var built int
	var sum time.Duration
	for _, r := range made {
		took := ""
		if r.Action == image.Built {
			built++
			sum += r.Took
			took = progress.Duration(r.Took)
		}
		fmt.Fprintf(w, "%-8s %-40s %.19s %s\n", r.Action, r.Ref, r.ID, took)
	}
	switch built {
	case 0:
		fmt.Fprintf(w, "all %d images ready in %s, none built\n", len(made), progress.Duration(wall))
	default:
		fmt.Fprintf(w, "built %d of %d images in %s (sum of the builds %s)\n", built, len(made), progress.Duration(wall), progress.Duration(sum))
	}
}

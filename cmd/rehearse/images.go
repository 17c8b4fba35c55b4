package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/harness/engine"
	"github.com/rehearse/rehearse/harness/fault"
	"github.com/rehearse/rehearse/harness/gateway"
	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/snapshot"
	"github.com/rehearse/rehearse/internal/progress"
)

func newImages() *cobra.Command {
	var (
		file     string
		profiles []string
		verbose  bool
		jobs     int
	)
	cmd := &cobra.Command{
		Use:   "images -f FILE",
		Short: "Make every image a compose file and the harness need exist locally (build, pack, bootstrap)",
		Long: `Make every image a compose file's services run exist locally, and the
harness's own (the port gateway, the network fault helper, the toxiproxy
server, the Debian base of the snapshot copy helpers), so that no scenario
builds one. Images that do not need each other are made concurrently, at
most --jobs engine builds at once.

Progress goes to stderr: one spinner per image on a terminal, otherwise a
status line at least every 10 s. At the end: each image and its own time
(the time its work ran, waits left out), and the wall time against the
sum of those own times. Images built side by side share the machine, so
that sum is more than the same images built one at a time would take.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("images: -f FILE is required")}
			}
			if jobs < 1 {
				return usageError{fmt.Errorf("images: --jobs %d: want at least 1", jobs)}
			}
			start := time.Now()
			// The board shows at once, while the plan is read and the
			// harness's images found (go list may download a module).
			board := progress.NewBoard("images")
			var stop func()
			if verbose { // build output on stderr: lines between it, no bars
				stop = progress.Lines(cmd.ErrOrStderr(), board)
			} else {
				stop = progress.Show(cmd.ErrOrStderr(), board)
			}
			defer stop()
			plan, err := loadPlan(cmd.Context(), file, profiles)
			if err != nil {
				return err
			}
			cli, err := engine.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			opts := []image.Option{image.WithProgress(board), image.WithBuildSlots(jobs)}
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
			nodes, err := b.Plan(specs...)
			if err != nil {
				return err
			}
			_, err = b.Ensure(cmd.Context(), specs...)
			stop()
			failed := 0
			for _, s := range board.Snapshot() {
				if s.Status == progress.Failed {
					failed++
				}
			}
			interrupted := cmd.Context().Err() != nil || errors.Is(err, context.Canceled)
			writeImagesSummary(cmd.OutOrStdout(), imagesSummary{made: b.Made(), planned: len(nodes),
				failed: failed, wall: time.Since(start), err: err, interrupted: interrupted})
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "compose file")
	cmd.Flags().StringSliceVar(&profiles, "profile", nil, "compose profiles to activate")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "stream build output to stderr")
	cmd.Flags().IntVar(&jobs, "jobs", image.DefaultBuildSlots, "engine builds (and Debian bootstraps) at once")
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
	specs := append(snapshot.ImageSpecs(), gw)
	return append(specs, faults...), nil
}

// imagesSummary is what rehearse images did.
type imagesSummary struct {
	made        []image.Result // ready, in the order they were
	planned     int            // images of the graph
	failed      int            // images whose own work failed
	wall        time.Duration
	err         error // Ensure's
	interrupted bool  // by ctrl-C (its context ended)
}

// writeImagesSummary lists each image made, with its own time when it
// was built, and ends with one line: the wall time against the sum of
// the builds' own times, "built 7 of 9 images in 3m12s (their own times
// add up to 5m40s while building side by side)"; or, when not every
// image was made, how many were not: "6 of 9 images ready, 1 failed, 2
// not made".
func writeImagesSummary(w io.Writer, s imagesSummary) {
	var built int
	var sum time.Duration
	for _, r := range s.made {
		took := ""
		if r.Action == image.Built {
			built++
			sum += r.Took
			took = progress.Duration(r.Took)
		}
		fmt.Fprintf(w, "%-8s %-40s %.19s %s\n", r.Action, r.Ref, r.ID, took)
	}
	wall := progress.Duration(s.wall)
	switch {
	case s.err != nil:
		parts := []string{fmt.Sprintf("%d of %d images ready", len(s.made), s.planned)}
		if s.failed > 0 {
			parts = append(parts, fmt.Sprintf("%d failed", s.failed))
		}
		if notMade := s.planned - len(s.made) - s.failed; notMade > 0 {
			parts = append(parts, fmt.Sprintf("%d not made", notMade))
		}
		line := strings.Join(parts, ", ")
		if s.interrupted {
			line += ": interrupted"
		}
		fmt.Fprintf(w, "%s (after %s)\n", line, wall)
	case built == 0:
		fmt.Fprintf(w, "all %d images ready in %s, none built\n", len(s.made), wall)
	case built == 1:
		fmt.Fprintf(w, "built 1 of %d images in %s (its own time %s)\n", len(s.made), wall, progress.Duration(sum))
	default:
		fmt.Fprintf(w, "built %d of %d images in %s (their own times add up to %s while building side by side)\n",
			built, len(s.made), wall, progress.Duration(sum))
	}
}

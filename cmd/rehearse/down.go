package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/rehearse/rehearse/harness/engine"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/harness/snapshot"
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
	var all, keepCache bool
	cmd := &cobra.Command{
		Use:   "gc [--all] [--keep-cache]",
		Short: "Remove leftovers of runs whose owner process is gone (--all: every run), and cached seeded states",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cli, err := engine.Connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			return gc(cmd.Context(), cmd.OutOrStdout(), cli, all, keepCache)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every run, including live and kept ones")
	cmd.Flags().BoolVar(&keepCache, "keep-cache", false, "keep the cached seeded states")
	return cmd
}

// gcEngine is what gc needs of the engine: runs and cache volumes.
type gcEngine interface {
	runs.Engine
	env.CacheEngine
}

// gc removes dead runs (every run with all) and, unless keepCache, every
// cached state not in use, saying what it removed. A seeded state that may
// be being stored (its maker lives: snapshot.SeedEntryMayBeStoring) is
// kept unless all.
func gc(ctx context.Context, out io.Writer, cli gcEngine, all, keepCache bool) error {
	removed, err := runs.GC(ctx, cli, all)
	for _, r := range removed {
		fmt.Fprintf(out, "removed run %s (%d containers, %d networks, %d volumes)\n",
			r.ID, len(r.Containers), len(r.Networks), len(r.Volumes))
	}
	n := len(removed)
	if !keepCache {
		vols, lerr := env.ListCacheVolumes(ctx, cli, "", nil)
		err = errors.Join(err, lerr)
		now := time.Now()
		for _, v := range vols {
			if !all && snapshot.SeedEntryMayBeStoring(v, now) {
				fmt.Fprintf(out, "kept cached state %s: %s may still be storing it (--all removes it)\n", v.Name, gcMaker(v))
				continue
			}
			ok, rerr := env.RemoveCacheVolume(ctx, cli, v.Name)
			switch {
			case errors.Is(rerr, env.ErrCacheVolumeInUse):
				fmt.Fprintf(out, "kept cached state %s: in use\n", v.Name)
			case rerr != nil:
				err = errors.Join(err, rerr)
			case ok:
				fmt.Fprintf(out, "removed cached state %s (%s)\n", v.Name, gcDescribe(v))
				n++
			}
		}
	}
	if n == 0 && err == nil {
		fmt.Fprintln(out, "nothing to remove")
	}
	return err
}

// gcMaker names the process that made a cache volume.
func gcMaker(v env.CacheVolume) string {
	if o, ok := v.Owner(); ok {
		return "its maker " + o.String()
	}
	return "its maker"
}

// gcDescribe names what a cached state holds, from its labels.
func gcDescribe(v env.CacheVolume) string {
	l := func(k string) string { return v.Labels[env.LabelCachePrefix+k] }
	if v.Kind == "seed" {
		return fmt.Sprintf("dataset %s at scale %s in %s of %s", l("dataset"), l("scale"), l("service"), l("compose"))
	}
	return v.Kind
}

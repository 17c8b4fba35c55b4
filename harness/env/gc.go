package env

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Engine is the part of the Docker API that teardown and gc need.
type Engine interface {
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerRemove(ctx context.Context, id string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	NetworkList(ctx context.Context, options client.NetworkListOptions) (client.NetworkListResult, error)
	NetworkRemove(ctx context.Context, id string, options client.NetworkRemoveOptions) (client.NetworkRemoveResult, error)
	VolumeList(ctx context.Context, options client.VolumeListOptions) (client.VolumeListResult, error)
	VolumeRemove(ctx context.Context, id string, options client.VolumeRemoveOptions) (client.VolumeRemoveResult, error)
}

// RunInfo describes the resources of one run found in the engine.
type RunInfo struct {
	ID         string
	Owner      Owner
	HasOwner   bool
	Kept       bool
	Containers []string // names
	Networks   []string
	Volumes    []string
}

// Runs lists every run that has resources in the engine.
func Runs(ctx context.Context, cli Engine) ([]RunInfo, error) {
	return listRuns(ctx, cli, client.Filters{}.Add("label", LabelRun))
}

func listRuns(ctx context.Context, cli Engine, f client.Filters) ([]RunInfo, error) {
	runs := map[string]*RunInfo{}
	get := func(labels map[string]string) *RunInfo {
		id := labels[LabelRun]
		r, ok := runs[id]
		if !ok {
			r = &RunInfo{ID: id}
			runs[id] = r
		}
		if o, ok := ownerFromLabels(labels); ok && !r.HasOwner {
			r.Owner, r.HasOwner = o, true
		}
		return r
	}
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.Items {
		r := get(c.Labels)
		name := shortID(c.ID)
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		r.Containers = append(r.Containers, name)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns.Items {
		r := get(n.Labels)
		r.Networks = append(r.Networks, n.Name)
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vs.Items {
		r := get(v.Labels)
		r.Volumes = append(r.Volumes, v.Name)
		if v.Labels[LabelKept] == "true" {
			r.Kept = true
		}
	}
	out := make([]RunInfo, 0, len(runs))
	for _, r := range runs {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Remove deletes every container, network and volume of a run: containers
// first (newest first, so dependents go before what they depend on), then
// networks, then volumes. Resources already gone are not an error.
func Remove(ctx context.Context, cli Engine, runID string) error {
	f := client.Filters{}.Add("label", LabelRun+"="+runID)
	var errs []error
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("remove run %s: list containers: %w", runID, err)
	}
	items := cs.Items
	sort.SliceStable(items, func(i, j int) bool { return items[i].Created > items[j].Created })
	for _, c := range items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", shortID(c.ID), err))
		}
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("remove run %s: list networks: %w", runID, err)
	}
	for _, n := range ns.Items {
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
		}
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("remove run %s: list volumes: %w", runID, err)
	}
	for _, v := range vs.Items {
		if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove run %s: %w", runID, err)
	}
	return nil
}

func gone(err error) bool {
	return cerrdefs.IsNotFound(err) || (err != nil && strings.Contains(err.Error(), "is already in progress"))
}

// GC removes the runs whose owner process is gone and that were not kept on
// purpose; with all, it removes every run. It returns the runs it removed.
func GC(ctx context.Context, cli Engine, all bool) ([]RunInfo, error) {
	runs, err := Runs(ctx, cli)
	if err != nil {
		return nil, err
	}
	var removed []RunInfo
	var errs []error
	for _, r := range runs {
		if !all && (r.Kept || (r.HasOwner && r.Owner.Alive())) {
			continue
		}
		if err := Remove(ctx, cli, r.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, r)
	}
	return removed, errors.Join(errs...)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Package runs owns the identity and the lifetime of rehearsal runs in the
// engine: run ids, the labels every resource of a run carries, who owns a
// run and whether that owner still lives, listing runs, removing them, the
// sweep of dead owners' leftovers (gc) and the watchdog that removes a run
// when its owner dies without tearing it down.
package runs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Labels on every container, network and volume a run creates.
const (
	LabelRun   = "rehearse.run"   // the run id
	LabelOwner = "rehearse.owner" // <host>/<pid> of the process that owns the run
	// LabelOwnerStart is the owner's start time in clock ticks since boot, so
	// a reused pid is not mistaken for a live owner.
	LabelOwnerStart = "rehearse.owner.start"
	// LabelOwnerPIDNS is the owner's pid namespace (pid:[4026531836]): two CI
	// jobs in containers on one daemon may share host name and pid.
	LabelOwnerPIDNS = "rehearse.owner.pidns"
	// LabelOwnerBoot is the boot id of the owner's kernel.
	LabelOwnerBoot = "rehearse.owner.boot"
	// LabelKept marks the volume that says a run was deliberately left up
	// (rehearse up, --keep); gc leaves such runs alone unless --all.
	LabelKept = "rehearse.kept"
)

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,39}$`)

// NewID returns a fresh random run id.
func NewID() string {
	b := make([]byte, 5)
	rand.Read(b)
	return "r" + hex.EncodeToString(b)
}

// ValidID checks a user-chosen run id: lowercase letters, digits, '.', '_'
// and '-', at most 40 characters.
func ValidID(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("run id %q: use lowercase letters, digits, '.', '_' and '-' (at most 40)", id)
	}
	return nil
}

// Engine is the part of the Docker API that listing, removal and gc need.
type Engine interface {
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerRemove(ctx context.Context, id string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	NetworkList(ctx context.Context, options client.NetworkListOptions) (client.NetworkListResult, error)
	NetworkRemove(ctx context.Context, id string, options client.NetworkRemoveOptions) (client.NetworkRemoveResult, error)
	VolumeList(ctx context.Context, options client.VolumeListOptions) (client.VolumeListResult, error)
	VolumeRemove(ctx context.Context, id string, options client.VolumeRemoveOptions) (client.VolumeRemoveResult, error)
}

// Info describes the resources of one run found in the engine.
type Info struct {
	ID         string
	Owner      Owner
	HasOwner   bool
	Kept       bool
	Containers []string // names
	Networks   []string
	Volumes    []string
}

// List lists every run that has resources in the engine.
func List(ctx context.Context, cli Engine) ([]Info, error) {
	return list(ctx, cli, client.Filters{}.Add("label", LabelRun))
}

// Exists reports whether a run has any container, network or volume.
func Exists(ctx context.Context, cli Engine, runID string) (bool, error) {
	rs, err := list(ctx, cli, client.Filters{}.Add("label", LabelRun+"="+runID))
	return len(rs) > 0, err
}

func list(ctx context.Context, cli Engine, f client.Filters) ([]Info, error) {
	runs := map[string]*Info{}
	get := func(labels map[string]string) *Info {
		id := labels[LabelRun]
		r, ok := runs[id]
		if !ok {
			r = &Info{ID: id}
			runs[id] = r
		}
		if o, ok := OwnerFromLabels(labels); ok && !r.HasOwner {
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
	out := make([]Info, 0, len(runs))
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
	return remove(ctx, cli, runID, client.Filters{}.Add("label", LabelRun+"="+runID))
}

func remove(ctx context.Context, cli Engine, runID string, f client.Filters) error {
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

// GC removes the runs whose owner process is gone (see Owner.Alive) and that
// were not kept on purpose; with all, it removes every run. A run whose
// owner label is missing or unreadable counts as alive, as Alive counts an
// owner it cannot judge: only all removes it. It returns the runs it removed.
func GC(ctx context.Context, cli Engine, all bool) ([]Info, error) {
	return gc(ctx, cli, all, localProbe())
}

func gc(ctx context.Context, cli Engine, all bool, p probe) ([]Info, error) {
	runs, err := List(ctx, cli)
	if err != nil {
		return nil, err
	}
	var removed []Info
	var errs []error
	for _, r := range runs {
		if !all && (r.Kept || !r.HasOwner || p.alive(r.Owner)) {
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

// VolumeCreator is the part of the Docker API that Keep needs.
type VolumeCreator interface {
	VolumeCreate(ctx context.Context, options client.VolumeCreateOptions) (client.VolumeCreateResult, error)
}

// Keep marks a run as deliberately left up: gc skips it unless told all.
func Keep(ctx context.Context, cli VolumeCreator, runID string, owner Owner) error {
	labels := owner.Labels(runID)
	labels[LabelKept] = "true"
	name := "rehearse-" + runID + ".kept"
	res, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: labels})
	if err != nil {
		return fmt.Errorf("keep run %s: %w", runID, err)
	}
	// The engine hands back an existing volume of that name as it is: a
	// marker that is not ours (another run's volume that happens to share
	// the name) would keep nothing.
	if got := res.Volume.Labels; got[LabelRun] != runID || got[LabelKept] != "true" {
		return fmt.Errorf("keep run %s: volume %s already exists and belongs to run %q, not this one", runID, name, got[LabelRun])
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

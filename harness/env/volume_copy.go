package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/runs"
)

// LabelSpare marks a volume the harness adds to a run to keep something of
// its own (a snapshot's copy of a service's data); its value says what.
// Spare volumes carry the run's labels too, so removing the run (Down, the
// watchdog, gc) removes them.
const LabelSpare = "rehearse.spare"

// HelperSparePath is where a helper run by RunWithVolumes sees the spare
// volume.
const HelperSparePath = "/rehearse-spare"

// helperVolumesMemory bounds a volume helper's memory: cp and sh, and the
// page cache its copy fills, which is charged to it and reclaimed within
// the bound.
const helperVolumesMemory int64 = 1 << 30

// SpareVolume is a volume of the run that no service mounts.
type SpareVolume struct {
	Name     string // the engine's name: rehearse-<run>-<name>
	e        *Environment
	readOnly bool
}

// ReadOnly is the same volume, mounted read-only by RunWithVolumes: a
// helper that only reads it (a restore from a cached state) cannot change
// it.
func (v *SpareVolume) ReadOnly() *SpareVolume {
	if v == nil {
		return nil
	}
	c := *v
	c.readOnly = true
	return &c
}

// ErrHelperNotRun is a RunWithVolumes whose helper never ran: its image
// is missing, or the engine refused to create or start it. Nothing was
// read or written in the volumes.
var ErrHelperNotRun = errors.New("the helper did not run")

// CreateSpareVolume creates an empty volume of the run, named
// rehearse-<run>-<name>, with the run's labels and LabelSpare=what. It
// fails when a volume of that name exists already (the engine would hand it
// back as it is).
func (e *Environment) CreateSpareVolume(ctx context.Context, name, what string) (*SpareVolume, error) {
	if name == "" || strings.ContainsAny(name, "/ ") {
		return nil, fmt.Errorf("spare volume %q: not a volume name", name)
	}
	full := e.resourceName(name)
	labels := e.owner.Labels(e.RunID)
	labels[LabelSpare] = what
	if _, err := e.cli.VolumeInspect(ctx, full, client.VolumeInspectOptions{}); err == nil {
		return nil, fmt.Errorf("spare volume %s: it exists already", full)
	}
	if _, err := e.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: full, Labels: labels}); err != nil {
		return nil, fmt.Errorf("create spare volume %s: %w", full, err)
	}
	ins, err := e.cli.VolumeInspect(ctx, full, client.VolumeInspectOptions{})
	if err != nil {
		// Ours (just created): removed, not left to the run's removal.
		_, rerr := e.cli.VolumeRemove(context.WithoutCancel(ctx), full, client.VolumeRemoveOptions{Force: true})
		if rerr != nil && !cerrdefs.IsNotFound(rerr) {
			err = errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("create spare volume %s: inspect: %w", full, err)
	}
	if got := ins.Volume.Labels; got[runs.LabelRun] != e.RunID || got[LabelSpare] != what {
		return nil, fmt.Errorf("create spare volume %s: the engine holds another volume of that name (run %q)", full, got[runs.LabelRun])
	}
	return &SpareVolume{Name: full, e: e}, nil
}

// Remove removes the spare volume; one already gone is no error.
func (v *SpareVolume) Remove(ctx context.Context) error {
	if v == nil {
		return nil
	}
	_, err := v.e.cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove spare volume %s: %w", v.Name, err)
	}
	return nil
}

// VolumeMount is one volume of the run that RunWithVolumes mounts: Volume
// is the plan's name of a volume the service mounts (ServicePlan.Mounts,
// Type "volume": a compose volume name, or <service>.anon<N>), mounted at
// Target in the helper.
type VolumeMount struct {
	Volume   string
	Target   string
	ReadOnly bool
}

// RunWithVolumes runs cmd in a short-lived helper container of image that
// mounts exactly the given volumes of the service (by their names in the
// engine, never the service's bind mounts: a bind's source may have been
// swapped for a symbolic link since the service's create, and the engine
// follows links when it mounts) and the spare volume at HelperSparePath,
// waits for it to exit, and removes it. Use a harness-built image (the
// service's own image is the project's, untrusted, and the helper has
// capabilities). The service is best stopped: the helper then sees its
// files at rest (a database's data directory after a clean shutdown). The
// helper joins no network, runs as root (uid 0) with no capability but
// capAdd (CHOWN, DAC_OVERRIDE, FOWNER, FSETID to copy files keeping their
// owners and modes) and cannot gain any, LC_ALL=C, and may use 1GiB of
// memory, the page cache it fills included (a lower bound makes a large
// copy wait for writeback). Like every helper it carries the run's labels
// and LabelHelper. A helper that exits non-zero is not an error: read
// ExitCode. A helper that never ran (its image missing, its create or
// start refused) is an error wrapping ErrHelperNotRun; any other error
// leaves unknown what the helper did.
func (c *Container) RunWithVolumes(ctx context.Context, image string, cmd []string, capAdd []string, spare *SpareVolume, vols ...VolumeMount) (ExecResult, error) {
	what := fmt.Sprintf("run %q on the volumes of %s", strings.Join(cmd, " "), c.svc.Name)
	mounts, err := c.helperMounts(vols)
	if err != nil {
		return ExecResult{}, fmt.Errorf("%s: %w: %w", what, ErrHelperNotRun, err)
	}
	if spare != nil {
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: spare.Name, Target: HelperSparePath,
			ReadOnly: spare.readOnly, VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
	}
	hc := &container.HostConfig{
		NetworkMode: "none",
		Mounts:      mounts,
		Resources:   container.Resources{Memory: helperVolumesMemory, MemorySwap: helperVolumesMemory},
	}
	if _, err := c.cli().ImageInspect(ctx, image); err != nil {
		return ExecResult{}, fmt.Errorf("%s: helper image %s: %w: %w", what, image, ErrHelperNotRun, err)
	}
	return c.runHelper(ctx, what, "volumes", image, cmd, capAdd, hc)
}

// helperMounts checks that each volume is one the service mounts and
// names it as the engine does.
func (c *Container) helperMounts(vols []VolumeMount) ([]mount.Mount, error) {
	e := c.svc.env
	sp := e.Plan.Service(c.svc.Name)
	var out []mount.Mount
	for _, v := range vols {
		if !path.IsAbs(v.Target) || path.Clean(v.Target) != v.Target || v.Target == "/" ||
			v.Target == HelperSparePath || strings.HasPrefix(v.Target, HelperSparePath+"/") {
			return nil, fmt.Errorf("volume %s: target %q is not an absolute, clean path of its own", v.Volume, v.Target)
		}
		ok := false
		if sp != nil {
			for _, m := range sp.Mounts {
				if m.Type == "volume" && m.Source == v.Volume {
					ok = true
				}
			}
		}
		if !ok {
			return nil, fmt.Errorf("volume %q is not a volume service %s mounts", v.Volume, c.svc.Name)
		}
		out = append(out, mount.Mount{Type: mount.TypeVolume, Source: e.resourceName(v.Volume), Target: v.Target,
			ReadOnly: v.ReadOnly, VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
	}
	return out, nil
}

// ExtractTree writes a tar archive into the service at dir, as the engine
// extracts it (docker cp): each entry keeps the owner, group and mode its
// header gives (numeric ids; nothing is mapped by name), and names are
// relative to dir. Use it to put back what ReadTree read: an entry's Name
// there is absolute, so make it relative to the directory above the path
// read. An existing directory is merged into; a file replaces a file.
func (s *Service) ExtractTree(ctx context.Context, dir string, archive io.Reader) error {
	if !path.IsAbs(dir) || path.Clean(dir) != dir {
		return fmt.Errorf("extract into %s:%s: not an absolute, clean path", s.Name, dir)
	}
	_, err := s.env.cli.CopyToContainer(ctx, s.ContainerID, client.CopyToContainerOptions{DestinationPath: dir, Content: archive})
	if err != nil {
		return fmt.Errorf("extract into %s:%s: %w", s.Name, dir, err)
	}
	return nil
}

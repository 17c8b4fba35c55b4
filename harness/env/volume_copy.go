package env

import (
	"context"
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
	Name string // the engine's name: rehearse-<run>-<name>
	e    *Environment
}

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

// RunWithVolumes runs cmd in a short-lived helper container of image that
// mounts every volume and bind mount of the service at the service's own
// paths (the engine's volumes-from) and the spare volume at
// HelperSparePath, waits for it to exit, and removes it. The service is
// best stopped: the helper then sees its files at rest (a database's data
// directory after a clean shutdown). The helper joins no network, runs as
// the image's user with no capability but capAdd (CHOWN, DAC_OVERRIDE,
// FOWNER, FSETID to copy files keeping their owners and modes) and cannot
// gain any, and may use 1GiB of memory, the page cache it fills included
// (a lower bound makes a large copy wait for writeback). Like every helper
// it carries the run's labels and LabelHelper. A helper that exits
// non-zero is not an error: read ExitCode.
func (c *Container) RunWithVolumes(ctx context.Context, image string, cmd []string, capAdd []string, spare *SpareVolume) (ExecResult, error) {
	what := fmt.Sprintf("run %q on the volumes of %s", strings.Join(cmd, " "), c.svc.Name)
	hc := &container.HostConfig{
		NetworkMode: "none",
		VolumesFrom: []string{c.id()},
		Resources:   container.Resources{Memory: helperVolumesMemory, MemorySwap: helperVolumesMemory},
	}
	if spare != nil {
		hc.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: spare.Name, Target: HelperSparePath,
			VolumeOptions: &mount.VolumeOptions{NoCopy: true}}}
	}
	return c.runHelper(ctx, what, "volumes", image, cmd, capAdd, hc)
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

package env

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/rehearse/rehearse/harness/sandbox"
)

// MaxDiskSize bounds one declared disk, and MaxDisksTotal the disks of
// one compose file together: a disk is a tmpfs, so it lives in the engine
// host's memory, and a disk-full fault writes all of it (a fill that,
// unlike the service's own writes, no memory limit of the service
// bounds). The point of a disk is to run out of room soon, so a size just
// above what the service writes during the rehearsal is the useful one;
// 1GiB is plenty for that, and two full ones still fit next to the
// services on a small CI machine that other runs share.
const (
	MaxDiskSize   int64 = 1 << 30
	MaxDisksTotal int64 = 2 << 30
)

// HelperMemorySlack is the memory a disk helper (Container.RunOnDisk) may
// use beyond its disk's size: its shell and tools. Writing the whole disk
// fits; nothing else the helper does can tie up more of the host.
const HelperMemorySlack int64 = 32 << 20

// HelperDiskPath is where a disk helper (Container.RunOnDisk) sees the
// service's disk.
const HelperDiskPath = "/disk"

// Disk is a service's size-limited mount, declared as x-rehearse: {disk:
// {path: /var/lib/app, size: 64m}}: a volume of the run (local driver,
// type tmpfs, size=Size) mounted at Path, so that a helper container can
// mount the same volume and fill it (a disk-full fault) without any tool
// in the service's image.
//
// A tmpfs lives in the engine host's memory (hence MaxDiskSize) and only
// while a container uses it: the disk starts empty each time the service
// starts, and a service that stops (a kill, a restart) loses what it wrote
// there. The run's removal (Down, the watchdog, gc) removes the volume
// with the run's others.
type Disk struct {
	Path   string // inside the service's container
	Size   int64  // bytes
	Volume string // the plan's volume name: <service>.disk
}

// diskVolume is the plan's name of a service's disk volume.
func diskVolume(service string) string { return service + ".disk" }

// check validates a declared disk on its own: the path is absolute, clean
// and not /; the size is a positive size of at most MaxDiskSize. planDisk
// checks the rest.
func (d *DiskSpec) check() error {
	if d == nil {
		return nil
	}
	if err := d.checkPath(); err != nil {
		return err
	}
	_, err := d.bytes()
	return err
}

func (d *DiskSpec) checkPath() error {
	p := d.Path
	switch {
	case p == "":
		return errors.New("path: missing (an absolute path in the container, such as /var/lib/app)")
	case !path.IsAbs(p):
		return fmt.Errorf("path: %q is not absolute", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path: %q is not clean (write %q)", p, path.Clean(p))
	case p == "/":
		return errors.New("path: a disk cannot be mounted on / (name a directory)")
	}
	return nil
}

// bytes parses the size (go-units RAMInBytes: 64m, 1g, 512MiB; a bare
// number is bytes).
func (d *DiskSpec) bytes() (int64, error) {
	if d.Size == "" {
		return 0, errors.New("size: missing (such as 64m or 1g)")
	}
	n, err := units.RAMInBytes(d.Size)
	if err != nil {
		return 0, fmt.Errorf("size: %q is not a size (such as 64m or 1g)", d.Size)
	}
	if n <= 0 || n > MaxDiskSize {
		return 0, fmt.Errorf("size: %q is out of range (more than 0, at most %s: the disk lives in memory)", d.Size, units.BytesSize(float64(MaxDiskSize)))
	}
	return n, nil
}

// planDisk gives a service with a declared disk its volume and mount. The
// disk may not cover the kernel's /proc or /sys (the sandbox's rule for
// every mount), nor overlap another mount of the service (a volume, bind,
// secret, config or tmpfs target at, above or below its path). It runs
// after every other mount is planned.
func planDisk(file string, p *types.Project, s types.ServiceConfig, sp *ServicePlan) error {
	spec := sp.Ext.Disk
	if spec == nil {
		return nil
	}
	key := []string{"services", s.Name, ExtensionKey, "disk", "path"}
	size, err := spec.bytes()
	if err != nil { // ExtensionOf checked it already
		return keyError(file, key[:4], "%v", err)
	}
	if p := spec.Path; sandbox.KernelTarget(p) {
		fe := keyError(file, key, "a disk on %s is %v (service %q): it would cover the kernel's /proc or /sys", p, ErrSandbox, s.Name)
		fe.Err = ErrSandbox
		return fe
	}
	overlaps := func(target string) bool {
		t := path.Clean("/" + target)
		return t == spec.Path || t == "/" || strings.HasPrefix(t, spec.Path+"/") || strings.HasPrefix(spec.Path, t+"/")
	}
	for _, m := range sp.Mounts {
		if overlaps(m.Target) {
			return keyError(file, key, "the disk on %s overlaps the %s mount on %s of service %s: give the disk a path of its own", spec.Path, m.Type, m.Target, s.Name)
		}
	}
	for _, t := range sortedKeys(sp.Tmpfs) {
		if overlaps(t) {
			return keyError(file, key, "the disk on %s overlaps the tmpfs on %s of service %s: give the disk a path of its own", spec.Path, t, s.Name)
		}
	}
	vol := diskVolume(s.Name)
	if _, taken := p.Volumes[vol]; taken {
		return keyError(file, []string{"volumes", vol}, "volume name %q is the name a run gives the disk of service %s (x-rehearse disk); rename it", vol, s.Name)
	}
	sp.Disk = &Disk{Path: spec.Path, Size: size, Volume: vol}
	sp.Mounts = append(sp.Mounts, Mount{Type: types.VolumeTypeVolume, Source: vol, Target: spec.Path, NoCopy: true})
	return nil
}

// checkDiskTotal fails when the plan's disks add up to more than
// MaxDisksTotal, naming the disk (in service order) that crosses it.
func checkDiskTotal(file string, p *Plan) error {
	var total int64
	for _, s := range p.Services {
		if s.Disk == nil {
			continue
		}
		total += s.Disk.Size
		if total > MaxDisksTotal {
			return keyError(file, []string{"services", s.Name, ExtensionKey, "disk", "size"},
				"with the disk of service %s the disks of the file add up to %s, more than the %s a run may hold (disks live in the engine host's memory): make them smaller",
				s.Name, units.BytesSize(float64(total)), units.BytesSize(float64(MaxDisksTotal)))
		}
	}
	return nil
}

// volumeOptions are the local driver's options for a volume of the plan:
// a tmpfs of the disk's size for a disk volume, none for the others.
func (p *Plan) volumeOptions(v string) map[string]string {
	for _, s := range p.Services {
		if s.Disk != nil && s.Disk.Volume == v {
			return map[string]string{"type": "tmpfs", "device": "tmpfs", "o": fmt.Sprintf("size=%d,nosuid,nodev", s.Disk.Size)}
		}
	}
	return nil
}

// Disk is the service's size-limited mount, and false when its compose
// file declares none.
func (s *Service) Disk() (Disk, bool) {
	sp := s.env.Plan.Service(s.Name)
	if sp == nil || sp.Disk == nil {
		return Disk{}, false
	}
	return *sp.Disk, true
}

// RunOnDisk runs cmd in a short-lived helper container of image that
// mounts the service's disk volume at HelperDiskPath, waits for it to exit,
// and removes it. The helper joins no network, has no capabilities but
// capAdd (DAC_OVERRIDE to write into a directory the service owns) and
// cannot gain any, and may use at most the disk's size plus
// HelperMemorySlack of memory, swap included: the tmpfs pages it writes
// are charged to it. Like every helper it carries the run's labels and
// LabelHelper, so the run's removal removes one a killed process left
// behind. A helper that exits non-zero is not an error: read ExitCode.
//
// The service should be running (or paused, State.Live): a tmpfs volume
// that no container uses is unmounted, and the helper would see a fresh,
// empty one.
func (c *Container) RunOnDisk(ctx context.Context, image string, cmd []string, capAdd []string) (ExecResult, error) {
	what := fmt.Sprintf("run %q on the disk of %s", strings.Join(cmd, " "), c.svc.Name)
	d, ok := c.svc.Disk()
	if !ok {
		return ExecResult{}, fmt.Errorf("%s: service %s declares no disk (x-rehearse: {disk: {path: ..., size: ...}}) in %s", what, c.svc.Name, c.svc.env.Plan.File)
	}
	limit := d.Size + HelperMemorySlack
	return c.runHelper(ctx, what, "disk", image, cmd, capAdd, &container.HostConfig{
		NetworkMode: "none",
		Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: c.svc.env.resourceName(d.Volume), Target: HelperDiskPath,
			VolumeOptions: &mount.VolumeOptions{NoCopy: true}}},
		Resources: container.Resources{Memory: limit, MemorySwap: limit},
	})
}

// checkDiskImage refuses a disk whose path lies above a VOLUME of the
// service's image, which must exist. The engine gives every image volume
// that is not exactly a mount's target an anonymous volume of its own,
// mounted over the disk: the service's writes below it would land there,
// and a full disk would go unnoticed by the very files it was declared
// for. It runs at start, before the service's container is created.
func (e *Environment) checkDiskImage(ctx context.Context, sp *ServicePlan) error {
	if sp.Disk == nil {
		return nil
	}
	vols, err := e.imageVolumes(ctx, sp.Image.Ref)
	if err != nil {
		return fmt.Errorf("service %s: inspect image %s for its disk: %w", sp.Name, sp.Image.Ref, err)
	}
	for _, v := range vols {
		if strings.HasPrefix(v, sp.Disk.Path+"/") {
			return keyError(e.Plan.File, []string{"services", sp.Name, ExtensionKey, "disk", "path"},
				"the disk on %s lies above the VOLUME %s of image %s (service %s): the engine mounts a volume of its own there, and what the service writes below it would never fill the disk; give the disk the path %s",
				sp.Disk.Path, v, sp.Image.Ref, sp.Name, v)
		}
	}
	return nil
}

// imageVolumes are the VOLUMEs an image (a reference or an ID) declares,
// as clean absolute paths, sorted.
func (e *Environment) imageVolumes(ctx context.Context, ref string) ([]string, error) {
	ins, err := e.cli.ImageInspect(ctx, ref)
	if err != nil {
		return nil, err
	}
	if ins.Config == nil {
		return nil, nil
	}
	var out []string
	for _, v := range sortedKeys(ins.Config.Volumes) {
		out = append(out, path.Clean("/"+v))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ImageVolumes are the VOLUMEs declared by the image the container runs
// (ImageID), as clean absolute paths, sorted. The engine mounts a volume
// of its own at each one that no mount of the service targets exactly (an
// anonymous volume, not in ServicePlan.Mounts): a path there is a mount
// point, whatever the compose file says.
func (c *Container) ImageVolumes(ctx context.Context) ([]string, error) {
	id, err := c.ImageID(ctx)
	if err != nil {
		return nil, err
	}
	vols, err := c.svc.env.imageVolumes(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("inspect the image of %s: %w", c.svc.Name, err)
	}
	return vols, nil
}

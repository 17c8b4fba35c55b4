package fault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/rehearse/rehearse/harness/env"
)

// fillPrefix starts the name of every fill file; the disk is the run's own
// volume, so every such file on it is the run's.
const fillPrefix = ".rehearse-fill-"

// diskCaps let the helper write into a disk directory the service owns
// (a data directory of mode 700, say): it runs as root with nothing else.
var diskCaps = []string{"DAC_OVERRIDE"}

// fillScript fills the disk mounted at $1 with the file $1/$2 until the
// file system has no block left: large writes, then page-sized ones for
// the rest (dd stops at "No space left on device"). It fails unless the
// disk is full at the end, with dd's own messages.
const fillScript = `set -u
f="$1/$2"
dd if=/dev/zero of="$f" bs=1M 2>/tmp/big
dd if=/dev/zero of="$f" bs=4096 oflag=append conv=notrunc 2>/tmp/small
free=$(stat -f -c %a "$1") || exit 2
if [ "$free" != 0 ]; then
	echo "$free blocks still free after filling:" $(cat /tmp/big /tmp/small) >&2
	exit 1
fi`

// DiskFull fills a service's disk (x-rehearse: {disk: {path, size}}, see
// env.Disk) to the last block, so that the service's own writes there fail
// with "No space left on device", and Heal frees it again. A helper
// container mounts the disk's volume and writes one fill file,
// .rehearse-fill-<id>, at its top; the service's image needs no tools, and
// what the service wrote stays.
//
// The disk is a tmpfs that lives while the service runs: the service must
// be running (or paused) to be filled, and a service that stops while full
// comes back with an empty disk.
type DiskFull struct {
	e    *env.Environment
	svc  *env.Service
	disk env.Disk
	file string

	mu     sync.Mutex
	filled bool // a helper may have written the fill file
}

// NewDiskFull prepares filling a service's disk. It takes no options, and
// fails for a service whose compose file declares no disk.
func NewDiskFull(e *env.Environment, service string, opts ...Option) (*DiskFull, error) {
	if _, err := apply("disk full "+service, opts); err != nil {
		return nil, err
	}
	s, err := lookup(e, "disk full", service)
	if err != nil {
		return nil, err
	}
	d, ok := s.Disk()
	if !ok {
		return nil, fmt.Errorf("disk full %s: service %s declares no disk in %s (x-rehearse: {disk: {path: /data, size: 64m}})", service, service, e.Plan.File)
	}
	return &DiskFull{e: e, svc: s, disk: d, file: fillPrefix + newID()}, nil
}

// Name is "disk full SVC".
func (d *DiskFull) Name() string { return "disk full " + d.svc.Name }

// Targets is the service whose disk is filled.
func (d *DiskFull) Targets() []string { return []string{d.svc.Name} }

// Disk is the disk filled.
func (d *DiskFull) Disk() env.Disk { return d.disk }

// File is the fill file's path in the service's container.
func (d *DiskFull) File() string { return d.disk.Path + "/" + d.file }

// Inject fills the disk. The helper image is built first if it is missing.
func (d *DiskFull) Inject(ctx context.Context) error {
	if err := running(ctx, d.svc); err != nil {
		return err
	}
	if _, err := EnsureImage(ctx, d.e); err != nil {
		return err
	}
	d.mu.Lock()
	d.filled = true
	d.mu.Unlock()
	return onDisk(ctx, d.svc, "fill", []string{"sh", "-c", fillScript, "fill", env.HelperDiskPath, d.file})
}

// Heal deletes the fill file. Healing twice, a fault never injected, or a
// service that is no longer running (its disk went with it) does nothing.
func (d *DiskFull) Heal(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.filled {
		return nil
	}
	if err := empty(ctx, d.e, d.svc, d.file, false); err != nil {
		return err
	}
	d.filled = false
	return nil
}

// running fails unless the service runs (or is paused): only then does its
// disk exist.
func running(ctx context.Context, s *env.Service) error {
	st, err := s.State(ctx)
	if err != nil {
		return err
	}
	if !st.Live() {
		return fmt.Errorf("service %s is %s: its disk exists only while it runs", s.Name, st.Status)
	}
	return nil
}

// emptyScript deletes, from the disk mounted at $1, the file named $2 or,
// with a third argument, every file whose name starts with $2. The names
// are arguments, never part of the script.
const emptyScript = `if [ $# -gt 2 ]; then rm -f -- "$1/$2"*; else rm -f -- "$1/$2"; fi`

// emptyCmd is the helper command that deletes name (every name starting
// with it, for prefix) from a disk.
func emptyCmd(name string, prefix bool) []string {
	cmd := []string{"sh", "-c", emptyScript, "empty", env.HelperDiskPath, name}
	if prefix {
		cmd = append(cmd, "prefix")
	}
	return cmd
}

// empty deletes the file name (every file whose name starts with it, for
// prefix) from the top of a service's disk, if the service still has one.
func empty(ctx context.Context, e *env.Environment, s *env.Service, name string, prefix bool) error {
	st, err := s.State(ctx)
	if err != nil {
		return err
	}
	if !st.Live() {
		return nil
	}
	if _, err := EnsureImage(ctx, e); err != nil {
		return err
	}
	return onDisk(ctx, s, "empty", emptyCmd(name, prefix))
}

// onDisk runs a command in a helper that mounts the service's disk.
func onDisk(ctx context.Context, s *env.Service, what string, cmd []string) error {
	res, err := s.Container().RunOnDisk(ctx, Image, cmd, diskCaps)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("%s the disk of %s: helper exited %d: %s", what, s.Name, res.ExitCode, strings.TrimSpace(res.Stderr+res.Stdout))
	}
	return nil
}

// sweepDisks deletes every fill file from the disks of e's running
// services, for Sweep.
func sweepDisks(ctx context.Context, e *env.Environment) error {
	var errs []error
	for _, s := range e.Services() {
		if _, ok := s.Disk(); !ok {
			continue
		}
		if err := empty(ctx, e, s, fillPrefix, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

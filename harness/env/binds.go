package env

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/sandbox"
)

// labelBinds records, on a service's container, the bind sources its
// create resolved, each with its device and inode (JSON of []bindSource):
// every later start checks them again (checkBinds). The sandbox refuses
// rehearse.* labels in a compose file, and a container's labels do not
// change after its create: only the harness sets this one.
const labelBinds = "rehearse.binds"

// bindSource is one bind source as the create resolved it.
type bindSource struct {
	Path   string `json:"path"` // resolved: what the engine mounts
	Target string `json:"target"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
}

// fileID is a file's device and inode (following links).
func fileID(p string) (dev, ino uint64, err error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, 0, err
	}
	return statID(p, fi)
}

// statID is the device and inode of what fi describes (the file at p).
func statID(p string, fi os.FileInfo) (dev, ino uint64, err error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("stat %s: no device and inode on this system", p)
	}
	return uint64(st.Dev), uint64(st.Ino), nil
}

// checkBinds runs before every start of a service's container (the first,
// and each after a stop, kill or restart: Container.Start): the engine
// mounts each bind source again at every start, by the path the create
// resolved, following any symbolic link that was put in that path since.
// Each source must still resolve to itself (no component became a link),
// lie inside the project directory, and be the file the create resolved
// (same device and inode: a directory replaced by another, or moved away
// and back, is not). Otherwise the start is refused, naming the compose
// file, service and path, and what changed. A bind mount the harness did
// not record (another party's container) is refused too. It covers only
// the starts the harness makes: a start the engine makes itself (a
// restart policy after the process exits, the daemon restarting with its
// containers) mounts the sources unchecked, and a source swapped between
// this check and ContainerStart is not seen.
func (e *Environment) checkBinds(ctx context.Context, sp *ServicePlan, id string) error {
	ins, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("service %s: inspect before the start: %w", sp.Name, err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("service %s in %s: %s: %w", sp.Name, e.Plan.File, fmt.Sprintf(format, args...), ErrSandbox)
	}
	recorded := map[string]bindSource{}
	if cfg := ins.Container.Config; cfg != nil && cfg.Labels[labelBinds] != "" {
		var binds []bindSource
		if err := json.Unmarshal([]byte(cfg.Labels[labelBinds]), &binds); err != nil {
			return fail("the container's record of its bind sources (label %s) is unreadable: %v", labelBinds, err)
		}
		for _, b := range binds {
			recorded[b.Path+"\x00"+b.Target] = b
		}
	}
	hc := ins.Container.HostConfig
	if hc == nil {
		return fmt.Errorf("service %s: inspect before the start: no host config", sp.Name)
	}
	if len(hc.Binds) > 0 {
		return fail("the container has bind mounts the harness did not make (%s)", strings.Join(hc.Binds, ", "))
	}
	for _, m := range hc.Mounts {
		if m.Type != mount.TypeBind {
			continue
		}
		if sp.Ext.Init == "systemd" && m.Source == cgroupMount && m.Target == cgroupMount && m.ReadOnly {
			continue
		}
		b, ok := recorded[m.Source+"\x00"+m.Target]
		if !ok {
			return fail("bind mount %s (target %s) was not resolved by the harness at create", m.Source, m.Target)
		}
		if err := b.check(e.Plan.Dir); err != nil {
			return fail("bind mount %s (target %s): %v", b.Path, b.Target, err)
		}
	}
	return nil
}

// check reports how a bind source differs from what the create resolved.
func (b bindSource) check(dir string) error {
	real, err := filepath.EvalSymlinks(b.Path)
	if err != nil {
		return fmt.Errorf("resolve the source again: %w", err)
	}
	if real != b.Path {
		where := ""
		if !sandbox.Inside(dir, real) {
			where = ", outside the project directory " + dir
		}
		return fmt.Errorf("the source now resolves to %s%s: a symbolic link was put in its path since the container was created", real, where)
	}
	if !sandbox.Inside(dir, real) {
		return fmt.Errorf("the source is no longer inside the project directory %s", dir)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	dev, ino, err := statID(real, fi)
	if err != nil {
		return err
	}
	if dev != b.Dev || ino != b.Ino {
		// Innocent as often as not: an editor saves a bound file by writing
		// a new one and renaming it over the old. The container mounts
		// what the create found; the harness mounts no other source.
		kind := "file"
		if fi.IsDir() {
			kind = "directory"
		}
		return fmt.Errorf("the %s was replaced (a new inode): recreate the environment to mount the new one (replaced since the container was created, as an editor's atomic save does: device %d inode %d then, device %d inode %d now)",
			kind, b.Dev, b.Ino, dev, ino)
	}
	return nil
}

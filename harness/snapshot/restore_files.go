package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/rehearse/rehearse/harness/env"
)

// restoreFiles is one service's archived paths.
type restoreFiles struct {
	service string
	roots   []restoreRoot
	units   bool
}

// restoreRoot is one declared path: absent, or the engine's archive of it
// with names relative to the directory above it.
type restoreRoot struct {
	path    string
	absent  bool
	archive []byte
}

// The crontab paths a service declaring crontab: true has archived.
var restoreCronPaths = []string{configSystemCrontab, configCronD, configCronSpool}

// takeFiles archives a service's declared paths (and crontabs).
func (s *Snapshot) takeFiles(ctx context.Context, sp *env.ServicePlan, svc *env.Service) error {
	f := &restoreFiles{service: sp.Name, units: sp.Ext.Config.Units}
	roots := slices.Clone(sp.Ext.Config.Files)
	if sp.Ext.Config.Crontab {
		roots = append(roots, restoreCronPaths...)
	}
	vols, err := svc.Container().ImageVolumes(ctx)
	if err != nil {
		return err
	}
	if err := restoreCheckRoots(s.e.Plan.File, sp, roots, vols); err != nil {
		return err
	}
	budget := &configBudget{maxEntries: configMaxEntries, maxBytes: configMaxBytes, what: "files under " + strings.Join(roots, ", ")}
	err = s.phase(sp.Name+": archive files", func() error {
		for _, root := range roots {
			r, err := restoreArchive(ctx, svc, root, budget)
			if err != nil {
				return fmt.Errorf("%s: archive %s: %w", sp.Name, root, err)
			}
			if err := s.holdArchive(int64(len(r.archive))); err != nil {
				return fmt.Errorf("%s: archive %s: %w", sp.Name, root, err)
			}
			f.roots = append(f.roots, r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = append(s.files, f)
	return nil
}

// restoreMaxArchives bounds the archives one snapshot holds in memory,
// summed over its services (each service's reading is bounded on its own
// by configMaxBytes and configMaxEntries).
var restoreMaxArchives int64 = 512 << 20

// holdArchive counts an archive against restoreMaxArchives.
func (s *Snapshot) holdArchive(n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.archived += n
	if s.archived > restoreMaxArchives {
		return fmt.Errorf("the snapshot's archives of declared files exceed %d MiB in memory (summed over every service): declare fewer or smaller paths (x-rehearse config files)", restoreMaxArchives>>20)
	}
	return nil
}

// restoreCheckRoots refuses declared paths that are a mount point or have
// one inside them: Restore removes a path and puts it back, which a mount
// point does not allow (it would be emptied, then the removal fail). The
// mount points are the plan's (volumes, binds, tmpfs) and imageVolumes,
// the VOLUMEs of the image the service runs (env.Container.ImageVolumes):
// the engine mounts an anonymous volume at each, which the plan does not
// list.
func restoreCheckRoots(file string, sp *env.ServicePlan, roots, imageVolumes []string) error {
	targets := slices.Sorted(maps.Keys(sp.Tmpfs))
	for _, m := range sp.Mounts {
		targets = append(targets, m.Target)
	}
	covers := func(root, t string) bool {
		return t == root || root == "/" || strings.HasPrefix(t, root+"/")
	}
	for _, root := range roots {
		root = path.Clean(root)
		for _, t := range targets {
			if t = path.Clean(t); covers(root, t) {
				return fmt.Errorf("%s: declared path %s (x-rehearse config files) is or holds the mount point %s in %s: a snapshot cannot put it back; declare the files inside the mount instead", sp.Name, root, t, file)
			}
		}
		for _, v := range imageVolumes {
			if v = path.Clean(v); covers(root, v) {
				return fmt.Errorf("%s: declared path %s (x-rehearse config files) is or holds %s, a VOLUME of its image %s, where the engine mounts an anonymous volume (service %s in %s): a snapshot cannot put it back; declare the files inside the volume instead, or give the service a named volume there",
					sp.Name, root, v, sp.Image.Ref, sp.Name, file)
			}
		}
	}
	return nil
}

// restoreArchive reads one path of a service into a tar archive whose
// names are relative to the directory above it, as the engine extracts
// them there.
func restoreArchive(ctx context.Context, svc *env.Service, root string, budget *configBudget) (restoreRoot, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	parent := path.Dir(root)
	err := svc.ReadTree(ctx, root, func(h *tar.Header, r io.Reader) error {
		if err := budget.entry(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
			if err := budget.take(h.Size); err != nil {
				return err
			}
		}
		h.Name = strings.TrimPrefix(strings.TrimPrefix(h.Name, parent), "/")
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%q: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
			if _, err := io.Copy(tw, r); err != nil {
				return fmt.Errorf("read %q: %w", h.Name, err)
			}
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return restoreRoot{path: root, absent: true}, nil
	}
	if err != nil {
		return restoreRoot{}, err
	}
	if err := tw.Close(); err != nil {
		return restoreRoot{}, err
	}
	return restoreRoot{path: root, archive: buf.Bytes()}, nil
}

// restoreFiles puts one service's archived paths back, then its units'
// states.
func (s *Snapshot) restoreFiles(ctx context.Context, f *restoreFiles) error {
	svc := s.e.Service(f.service)
	if svc == nil {
		return fmt.Errorf("service %s is not running", f.service)
	}
	// What changed, for the units to restart: the declared files' items
	// now against the snapshot's.
	var changed []string
	err := s.phase(f.service+": compare files", func() error {
		if !f.units {
			return nil
		}
		spec := s.e.Plan.Service(f.service).Ext.Config
		if len(spec.Files) == 0 {
			return nil
		}
		now, err := configFiles(ctx, svc, spec.Files)
		if err != nil {
			return err
		}
		for i := range now {
			now[i].Service = f.service
		}
		was := &ConfigPrint{}
		for _, it := range s.config.Items {
			if it.Service == f.service && strings.HasPrefix(it.Name, "/") {
				was.Items = append(was.Items, it)
			}
		}
		for _, c := range was.Diff(&ConfigPrint{Items: configNumber(now)}) {
			changed = append(changed, c.Item)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = s.phase(f.service+": put files back", func() error {
		for _, r := range f.roots {
			cctx, cancel := context.WithTimeout(ctx, restoreCmdTimeout)
			_, err := configExec(cctx, svc, "sh", "-c", `rm -rf -- "$1" && mkdir -p -- "$2"`, "sh", r.path, path.Dir(r.path))
			cancel()
			if err != nil {
				return fmt.Errorf("remove %s: %w", r.path, err)
			}
			if r.absent {
				continue
			}
			if err := svc.ExtractTree(ctx, path.Dir(r.path), bytes.NewReader(r.archive)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || !f.units {
		return err
	}
	return s.restoreUnits(ctx, svc, changed)
}

// restoreUnits reloads systemd and brings each unit back to the state and
// enablement the snapshot recorded; a unit active at both ends restarts
// when a path it names lies under a changed one.
func (s *Snapshot) restoreUnits(ctx context.Context, svc *env.Service, changed []string) error {
	run := func(args ...string) error {
		cctx, cancel := context.WithTimeout(ctx, restoreCmdTimeout)
		defer cancel()
		_, err := configExec(cctx, svc, append([]string{"systemctl", "--no-ask-password"}, args...)...)
		return err
	}
	if err := s.phase(svc.Name+": daemon-reload", func() error { return run("daemon-reload") }); err != nil {
		return err
	}
	was := map[string]ConfigItem{}
	for _, it := range s.config.Items {
		if it.Service == svc.Name && strings.HasPrefix(it.Name, "unit ") {
			was[strings.TrimPrefix(it.Name, "unit ")] = it
		}
	}
	nowItems, err := configUnits(ctx, svc)
	if err != nil {
		return err
	}
	now := map[string]ConfigItem{}
	for _, it := range nowItems {
		now[strings.TrimPrefix(it.Name, "unit ")] = it
	}
	var errs []error
	// Units the snapshot did not have: stopped if they run.
	for _, u := range slices.Sorted(maps.Keys(now)) {
		if _, ok := was[u]; !ok && restoreActive(restoreAttr(now[u], "state")) {
			errs = append(errs, run("stop", "--", u))
		}
	}
	for _, u := range slices.Sorted(maps.Keys(was)) {
		want, cur := was[u], now[u]
		wantEn, curEn := restoreAttr(want, "enabled"), restoreAttr(cur, "enabled")
		if wantEn != curEn {
			if curEn == "masked" {
				errs = append(errs, run("unmask", "--", u))
			}
			switch wantEn {
			case "enabled":
				errs = append(errs, run("enable", "--", u))
			case "disabled":
				errs = append(errs, run("disable", "--", u))
			case "masked":
				errs = append(errs, run("mask", "--", u))
			}
		}
		wantSt, curSt := restoreAttr(want, "state"), restoreAttr(cur, "state")
		switch {
		case wantSt == "active" && curSt != "active":
			if curSt == "failed" {
				errs = append(errs, run("reset-failed", "--", u))
			}
			errs = append(errs, run("start", "--", u))
		case wantSt == "active":
			if len(changed) > 0 {
				affected, err := restoreUnitAffected(ctx, svc, u, changed)
				if err == nil && affected {
					err = run("restart", "--", u)
				}
				errs = append(errs, err)
			}
		case !restoreActive(wantSt) && restoreActive(curSt):
			errs = append(errs, run("stop", "--", u))
		}
	}
	return errors.Join(errs...)
}

func restoreActive(state string) bool {
	return state == "active" || state == "activating" || state == "reloading"
}

func restoreAttr(it ConfigItem, name string) string {
	for _, a := range it.Attrs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// restoreUnitPathRE finds absolute paths in systemctl show's values.
var restoreUnitPathRE = regexp.MustCompile(`(?:^|[\s=])(/[^\s;]+)`)

// restoreUnitAffected reports whether a unit names a path under (or
// above) one that changed: its unit file, drop-ins, environment files,
// and the paths in its commands.
func restoreUnitAffected(ctx context.Context, svc *env.Service, unit string, changed []string) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, restoreCmdTimeout)
	defer cancel()
	out, err := configExec(cctx, svc, "systemctl", "show", "--value",
		"-p", "FragmentPath", "-p", "DropInPaths", "-p", "EnvironmentFiles",
		"-p", "ExecStartPre", "-p", "ExecStart", "-p", "ExecStartPost", "-p", "ExecReload", "--", unit)
	if err != nil {
		return false, err
	}
	for _, m := range restoreUnitPathRE.FindAllStringSubmatch(out, -1) {
		p := path.Clean(m[1])
		for _, c := range changed {
			if p == c || strings.HasPrefix(p, c+"/") || strings.HasPrefix(c, p+"/") {
				return true, nil
			}
		}
	}
	return false, nil
}

package snapshot

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/rehearse/rehearse/harness/env"
)

// Bounds of the files part of one service's fingerprint: more is an error
// (a fingerprint that skipped files would miss their changes), so declare
// the directories that hold configuration, not data.
const (
	configMaxBytes    = 256 << 20 // file content hashed
	configMaxName     = 4096      // bytes of one path
	configMaxUserFile = 1 << 20   // /etc/passwd, /etc/group
)

// configMaxEntries bounds the files, directories and links (a variable
// for a test to lower: making 20,000 files takes long).
var configMaxEntries int64 = 20000

// configBudget counts what one part has read against its bounds.
type configBudget struct {
	entries, bytes int64
	maxEntries     int64
	maxBytes       int64
	what           string // "files under /etc/billing"
}

func (b *configBudget) entry(h *tar.Header) error {
	b.entries++
	if b.entries > b.maxEntries {
		return fmt.Errorf("more than %d %s: declare narrower paths", b.maxEntries, b.what)
	}
	if len(h.Name) > configMaxName {
		return fmt.Errorf("a path of %d bytes (at most %d): %q...", len(h.Name), configMaxName, h.Name[:200])
	}
	return nil
}

func (b *configBudget) take(n int64) error {
	if n < 0 || b.bytes+n > b.maxBytes {
		return fmt.Errorf("more than %d MiB in %s: declare narrower paths", b.maxBytes>>20, b.what)
	}
	b.bytes += n
	return nil
}

// configFiles records every entry under the declared paths: type, owner,
// mode, and a regular file's sha256 or a link's target. A declared path
// that does not exist is one item of type "absent", so that its creation
// is a change too.
func configFiles(ctx context.Context, svc *env.Service, roots []string) ([]ConfigItem, error) {
	owners, err := configOwners(ctx, svc)
	if err != nil {
		return nil, err
	}
	budget := &configBudget{maxEntries: configMaxEntries, maxBytes: configMaxBytes, what: "files under " + strings.Join(roots, ", ")}
	var items []ConfigItem
	for _, root := range roots {
		sums := map[string]string{} // regular files read so far, for hard links to them
		err := svc.ReadTree(ctx, root, func(h *tar.Header, r io.Reader) error {
			if err := budget.entry(h); err != nil {
				return err
			}
			it := ConfigItem{Name: h.Name}
			typ, extra := "", ConfigAttr{}
			switch h.Typeflag {
			case tar.TypeReg, tar.TypeRegA:
				if err := budget.take(h.Size); err != nil {
					return err
				}
				sum := sha256.New()
				if _, err := io.Copy(sum, r); err != nil {
					return fmt.Errorf("read %q: %w", h.Name, err)
				}
				typ, extra = "file", ConfigAttr{"sha256", hex.EncodeToString(sum.Sum(nil))}
				sums[h.Name] = extra.Value
			case tar.TypeLink: // a hard link to a file archived before it
				target := path.Join(path.Dir(root), h.Linkname)
				sum, ok := sums[target]
				if !ok {
					return fmt.Errorf("%q: a hard link to %q, which the archive did not hold before it", h.Name, target)
				}
				typ, extra = "file", ConfigAttr{"sha256", sum}
			case tar.TypeSymlink:
				typ, extra = "link", ConfigAttr{"target", h.Linkname}
			case tar.TypeDir:
				typ = "dir"
			case tar.TypeFifo:
				typ = "fifo"
			case tar.TypeChar:
				typ = "char device"
			case tar.TypeBlock:
				typ = "block device"
			default:
				typ = "type " + strconv.Quote(string(h.Typeflag))
			}
			it.Attrs = []ConfigAttr{
				{"mode", fmt.Sprintf("%04o", h.Mode&0o7777)},
				{"owner", owners.name(h.Uid, h.Gid)},
			}
			if extra.Name != "" {
				it.Attrs = append(it.Attrs, extra)
			}
			it.Attrs = append(it.Attrs, ConfigAttr{"type", typ})
			items = append(items, it)
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			items = append(items, ConfigItem{Name: root, Attrs: []ConfigAttr{{"type", "absent"}}})
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	return items, nil
}

// configUsers maps the service's uids and gids to names, as its own
// /etc/passwd and /etc/group have them.
type configUsers struct{ users, groups map[int]string }

func (u configUsers) name(uid, gid int) string {
	user, ok := u.users[uid]
	if !ok {
		user = strconv.Itoa(uid)
	}
	group, ok := u.groups[gid]
	if !ok {
		group = strconv.Itoa(gid)
	}
	return user + ":" + group
}

func configOwners(ctx context.Context, svc *env.Service) (configUsers, error) {
	u := configUsers{users: map[int]string{}, groups: map[int]string{}}
	for file, m := range map[string]map[int]string{"/etc/passwd": u.users, "/etc/group": u.groups} {
		data, err := configReadFile(ctx, svc, file, configMaxUserFile)
		if errors.Is(err, fs.ErrNotExist) {
			continue // owners stay numeric
		}
		if err != nil {
			return u, err
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) < 3 {
				continue
			}
			id, err := strconv.Atoi(f[2])
			if _, dup := m[id]; err != nil || dup || f[0] == "" {
				continue
			}
			m[id] = f[0]
		}
	}
	return u, nil
}

// configReadFile reads one regular file of the service, at most max bytes.
func configReadFile(ctx context.Context, svc *env.Service, file string, max int64) ([]byte, error) {
	var data []byte
	err := svc.ReadTree(ctx, file, func(h *tar.Header, r io.Reader) error {
		if h.Name != file || (h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA) {
			return nil
		}
		if h.Size > max {
			return fmt.Errorf("%s holds %d bytes (at most %d)", file, h.Size, max)
		}
		var err error
		data, err = io.ReadAll(io.LimitReader(r, max))
		return err
	})
	return data, err
}

// Where cron finds crontabs: the system's (entries name their user) and
// the users' (Debian's crontabs/USER, Red Hat's USER).
const (
	configSystemCrontab = "/etc/crontab"
	configCronD         = "/etc/cron.d"
	configCronSpool     = "/var/spool/cron"
)

// configMaxCron bounds the crontabs read.
const (
	configMaxCronFiles = 1000
	configMaxCronBytes = 4 << 20
)

// configCrontab records every crontab entry (a line that is neither blank
// nor a comment, environment settings included) as an item "crontab FILE:
// LINE". Missing places hold none.
func configCrontab(ctx context.Context, svc *env.Service) ([]ConfigItem, error) {
	budget := &configBudget{maxEntries: configMaxCronFiles, maxBytes: configMaxCronBytes, what: "crontab files"}
	var items []ConfigItem
	for _, root := range []string{configSystemCrontab, configCronD, configCronSpool} {
		err := svc.ReadTree(ctx, root, func(h *tar.Header, r io.Reader) error {
			if err := budget.entry(h); err != nil {
				return err
			}
			if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
				return nil
			}
			dir := path.Dir(h.Name)
			switch {
			case h.Name == configSystemCrontab, dir == configCronD,
				dir == configCronSpool, dir == configCronSpool+"/crontabs":
			default:
				return nil // at jobs, deeper files: not crontabs
			}
			if err := budget.take(h.Size); err != nil {
				return err
			}
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 0, 4096), configMaxName)
			for sc.Scan() {
				line := strings.TrimSpace(sc.Text())
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				items = append(items, ConfigItem{Name: "crontab " + h.Name + ": " + line})
			}
			if err := sc.Err(); err != nil {
				return fmt.Errorf("read %q: %w", h.Name, err)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return items, nil
}

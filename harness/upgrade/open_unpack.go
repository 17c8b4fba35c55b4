package upgrade

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// maxLinkHops is how many links os.Root follows in one path: a longer chain
// could not be read through the workspace root anyway.
const maxLinkHops = 8

// unpacker writes a package's entries into the workspace root. It is the one
// place the opening policy lives: names, counts, sizes, links, refusals.
type unpacker struct {
	archive string
	ws      *workspace
	root    *os.Root
	limits  Limits
	entries int
	total   int64
	kinds   map[string]entryKind // what is at each cleaned name (directories made for parents too)
	names   map[string]string    // cleaned name -> the name as the source spells it
	links   map[string]string    // cleaned name of a symlink -> its target
}

func newUnpacker(archive string, ws *workspace, l Limits) *unpacker {
	return &unpacker{archive: archive, ws: ws, root: ws.root, limits: l,
		kinds: map[string]entryKind{}, names: map[string]string{}, links: map[string]string{}}
}

// record notes what the package puts at name; a new top-level name is the
// workspace's to remove on Close.
func (u *unpacker) record(name string, k entryKind, spelled string) {
	if !strings.Contains(name, "/") {
		u.ws.claim(name)
	}
	u.kinds[name], u.names[name] = k, spelled
}

func (u *unpacker) refuse(entry, format string, args ...any) error {
	return &EntryError{Archive: u.archive, Entry: entry, Reason: fmt.Sprintf(format, args...)}
}

func (u *unpacker) bomb(entry string) error {
	return u.refuse(entry, "expands more than %d times its compressed size, or the archive's (zip bomb)", u.limits.Ratio)
}

// unpack writes every entry, then resolves every link of the result inside
// the workspace: the guarantee behind the checks made entry by entry.
func (u *unpacker) unpack(es entries) error {
	for e, err := range es {
		if errors.Is(err, errExpanded) {
			return u.bomb(e.name)
		}
		if err != nil {
			return err
		}
		if err := u.add(e); err != nil {
			return err
		}
	}
	return u.checkTree()
}

func (u *unpacker) add(e entry) error {
	name, reason := u.cleanName(e.name)
	if reason != "" {
		return u.refuse(e.name, "%s", reason)
	}
	if u.entries++; u.entries > u.limits.Entries {
		return u.refuse(e.name, "more than %d entries", u.limits.Entries)
	}
	if name == "." {
		if e.kind == kindDir {
			return nil
		}
		return u.refuse(e.name, "a %s cannot replace the workspace itself", e.kind)
	}
	if err := u.place(e, name); err != nil {
		return err
	}
	u.record(name, e.kind, e.name)
	switch e.kind {
	case kindDir:
		return u.do(e, u.root.MkdirAll(name, 0o755))
	case kindRegular:
		return u.write(e, name)
	case kindSymlink:
		return u.symlink(e, name)
	case kindHardlink:
		return u.hardlink(e, name)
	default:
		return u.refuse(e.name, "special file (%s) not allowed", e.what)
	}
}

// cleanName checks an entry name and returns it relative to the workspace
// ("." for the workspace itself), or why it is refused.
func (u *unpacker) cleanName(name string) (string, string) {
	if name == "" {
		return "", "empty name"
	}
	if reason := u.tooLong("name", name); reason != "" {
		return "", reason
	}
	if strings.ContainsRune(name, 0) {
		return "", "NUL in name"
	}
	slashed := strings.ReplaceAll(name, `\`, "/")
	if path.IsAbs(slashed) || filepath.IsAbs(name) || (len(slashed) > 1 && slashed[1] == ':') {
		return "", "absolute path"
	}
	for part := range strings.SplitSeq(slashed, "/") {
		if part == ".." {
			return "", "path escapes the workspace (..)"
		}
	}
	return path.Clean(slashed), ""
}

// tooLong says why a name or link target is over Limits.NameBytes or
// Limits.Depth ("" when it is not): each is walked component by component.
func (u *unpacker) tooLong(what, name string) string {
	if len(name) > u.limits.NameBytes {
		return fmt.Sprintf("%s is %d bytes, over the limit of %d (Limits.NameBytes)", what, len(name), u.limits.NameBytes)
	}
	if n := strings.Count(strings.ReplaceAll(name, `\`, "/"), "/") + 1; n > u.limits.Depth {
		return fmt.Sprintf("%s has %d components, over the limit of %d (Limits.Depth)", what, n, u.limits.Depth)
	}
	return ""
}

// place makes sure name is new and its parents are directories made by the
// package (never links: nothing is written through a link), and makes them.
func (u *unpacker) place(e entry, name string) error {
	if k, ok := u.kinds[name]; ok && (k != kindDir || e.kind != kindDir) {
		return u.refuse(e.name, "already in the package (as a %s)", k)
	}
	var missing []string
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		switch k, ok := u.kinds[dir]; {
		case !ok:
			missing = append(missing, dir)
		case k == kindSymlink:
			return u.refuse(e.name, "path goes through the link %q (nothing is written through a link)", u.names[dir])
		case k != kindDir:
			return u.refuse(e.name, "path goes through %q, a %s", u.names[dir], k)
		}
	}
	for _, dir := range missing {
		u.record(dir, kindDir, dir)
	}
	if len(missing) > 0 {
		return u.do(e, u.root.MkdirAll(path.Dir(name), 0o755))
	}
	return nil
}

// do turns a failed workspace operation into a refusal of the entry: the
// root refuses whatever would leave it.
func (u *unpacker) do(e entry, err error) error {
	if err != nil {
		return u.refuse(e.name, "%v", err)
	}
	return nil
}

// write copies a file's content into the workspace within the limits
// (declared sizes can lie, so they are counted as it goes).
func (u *unpacker) write(e entry, name string) (err error) {
	r, err := e.open()
	if err != nil {
		return fmt.Errorf("%s: entry %s: %w", u.archive, shown(e.name), err)
	}
	defer r.Close()
	f, err := u.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, e.mode.Perm()|0o600)
	if err != nil {
		return u.do(e, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("%s: entry %s: %w", u.archive, shown(e.name), cerr)
		}
	}()
	left := u.limits.TotalBytes - u.total
	n, err := io.Copy(f, io.LimitReader(r, min(left, math.MaxInt64-1)+1))
	u.total += n
	switch {
	case errors.Is(err, errExpanded):
		return u.bomb(e.name)
	case err != nil:
		return fmt.Errorf("%s: entry %s: %w", u.archive, shown(e.name), err)
	case n > left:
		return u.refuse(e.name, "unpacks past the limit of %d bytes", u.limits.TotalBytes)
	}
	return nil
}

// symlink refuses a link whose own text leaves the workspace (a clear early
// message); checkTree resolves the links together once all are made.
func (u *unpacker) symlink(e entry, name string) error {
	t := e.link
	switch slashed := strings.ReplaceAll(t, `\`, "/"); {
	case t == "":
		return u.refuse(e.name, "link with an empty target")
	case u.tooLong("link target", t) != "":
		return u.refuse(e.name, "%s", u.tooLong("link target", t))
	case strings.ContainsRune(t, 0):
		return u.refuse(e.name, "NUL in link target")
	case path.IsAbs(slashed):
		return u.refuse(e.name, "link to an absolute path (%s)", shown(t))
	case escapes(path.Join(path.Dir(name), slashed)):
		return u.refuse(e.name, "link points outside the workspace (%s)", shown(t))
	}
	u.links[name] = t
	return u.do(e, u.root.Symlink(t, name))
}

// hardlink links name to an earlier file of the package, and nothing else.
func (u *unpacker) hardlink(e entry, name string) error {
	if e.link == "" {
		return u.refuse(e.name, "hard link to a file outside the package")
	}
	target, reason := u.cleanName(e.link)
	if reason != "" {
		return u.refuse(e.name, "hard link target %s: %s", shown(e.link), reason)
	}
	if k, ok := u.kinds[target]; !ok || k != kindRegular {
		return u.refuse(e.name, "hard link to %s, which is not a file earlier in the package", shown(e.link))
	}
	return u.do(e, u.root.Link(target, name))
}

func escapes(p string) bool { return p == ".." || strings.HasPrefix(p, "../") }

// checkTree walks the unpacked workspace: only what the unpacker made may
// be there (directories, regular files, links that resolve inside it).
func (u *unpacker) checkTree() error {
	err := walkTree(u.root, u.limits.Depth, func(p string, info fs.FileInfo, dir *os.Root) error {
		k, made := u.kinds[p]
		switch t := info.Mode().Type(); {
		case !made:
			return u.refuse(p, "not made by the unpacker: the workspace changed while it was unpacked")
		case t.IsDir(), t.IsRegular():
			return nil
		case t == fs.ModeSymlink:
			if target, err := dir.Readlink(path.Base(p)); err != nil || k != kindSymlink || target != u.links[p] {
				return u.refuse(u.entry(p), "link changed while the package was unpacked")
			}
			return u.checkLink(p)
		default:
			return u.refuse(u.entry(p), "special file (%s) not allowed", describe(t))
		}
	})
	if err != nil && !errors.Is(err, ErrUnsafe) {
		return fmt.Errorf("%s: check the unpacked package: %w", u.archive, err)
	}
	return err
}

func (u *unpacker) entry(p string) string {
	if n, ok := u.names[p]; ok {
		return n
	}
	return p
}

// checkLink refuses a link that does not resolve inside the workspace. Its
// own walk names the reason and catches dangling links that would climb out
// once their target exists; root.Stat, which follows links as the kernel
// does, is the guarantee.
func (u *unpacker) checkLink(name string) error {
	if reason := u.resolve(name); reason != "" {
		return u.refuse(u.entry(name), "%s", reason)
	}
	_, err := u.root.Stat(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return u.refuse(u.entry(name), "link does not resolve inside the workspace: %v", err)
	}
	return nil
}

// resolve follows the link at name one component at a time, as the kernel
// does, and says why it leaves the workspace ("" when it stays inside).
// Past a missing component the rest is followed by its text. It looks up
// what the unpacker made (checkTree has matched it with the disk) rather
// than the disk, so a link costs time linear in its components.
func (u *unpacker) resolve(name string) string {
	var at []string // where the walk is: names below the root, none of them a link
	var followed []string
	todo := strings.Split(name, "/")
	missing := false
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(at) == 0 {
				return "link resolves outside the workspace (" + chain(followed) + ")"
			}
			at = at[:len(at)-1]
			continue
		}
		at = append(at, c)
		if missing {
			continue
		}
		p := strings.Join(at, "/")
		k, ok := u.kinds[p]
		if !ok {
			missing = true // dangling from here on
			continue
		}
		if k != kindSymlink {
			continue
		}
		target := u.links[p]
		if followed = append(followed, shown(u.entry(p))+" -> "+shown(target)); len(followed) > maxLinkHops {
			return fmt.Sprintf("links loop, or more than %d follow each other (%s)", maxLinkHops, chain(followed))
		}
		if strings.HasPrefix(target, "/") {
			return "link resolves to an absolute path (" + chain(followed) + ")"
		}
		at = at[:len(at)-1]
		todo = append(strings.Split(target, "/"), todo...)
	}
	return ""
}

// chain shows the links followed, shortened when long.
func chain(links []string) string {
	if len(links) > 4 {
		links = append(links[:2:2], "...", links[len(links)-1])
	}
	return strings.Join(links, ", ")
}

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
	root    *os.Root
	limits  Limits
	entries int
	total   int64
	kinds   map[string]entryKind // what is at each cleaned name (directories made for parents too)
	names   map[string]string    // cleaned name -> the name as the source spells it
}

func newUnpacker(archive string, root *os.Root, l Limits) *unpacker {
	return &unpacker{archive: archive, root: root, limits: l, kinds: map[string]entryKind{}, names: map[string]string{}}
}

func (u *unpacker) refuse(entry, format string, args ...any) error {
	return &EntryError{Archive: u.archive, Entry: entry, Reason: fmt.Sprintf(format, args...)}
}

func (u *unpacker) bomb(entry string) error {
	return u.refuse(entry, "expands more than %d times its compressed size (zip bomb)", u.limits.Ratio)
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
	name, reason := cleanName(e.name)
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
	u.kinds[name], u.names[name] = e.kind, e.name
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
func cleanName(name string) (string, string) {
	if name == "" {
		return "", "empty name"
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
		u.kinds[dir], u.names[dir] = kindDir, dir
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
		return fmt.Errorf("%s: entry %q: %w", u.archive, e.name, err)
	}
	defer r.Close()
	f, err := u.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, e.mode.Perm()|0o600)
	if err != nil {
		return u.do(e, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("%s: entry %q: %w", u.archive, e.name, cerr)
		}
	}()
	left := u.limits.TotalBytes - u.total
	n, err := io.Copy(f, io.LimitReader(r, min(left, math.MaxInt64-1)+1))
	u.total += n
	switch {
	case errors.Is(err, errExpanded):
		return u.bomb(e.name)
	case err != nil:
		return fmt.Errorf("%s: entry %q: %w", u.archive, e.name, err)
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
	case strings.ContainsRune(t, 0):
		return u.refuse(e.name, "NUL in link target")
	case path.IsAbs(slashed):
		return u.refuse(e.name, "link to an absolute path (%s)", t)
	case escapes(path.Join(path.Dir(name), slashed)):
		return u.refuse(e.name, "link points outside the workspace (%s)", t)
	}
	return u.do(e, u.root.Symlink(t, name))
}

// hardlink links name to an earlier file of the package, and nothing else.
func (u *unpacker) hardlink(e entry, name string) error {
	if e.link == "" {
		return u.refuse(e.name, "hard link to a file outside the package")
	}
	target, reason := cleanName(e.link)
	if reason != "" {
		return u.refuse(e.name, "hard link points outside the workspace (%s)", e.link)
	}
	if k, ok := u.kinds[target]; !ok || k != kindRegular {
		return u.refuse(e.name, "hard link to %s, which is not a file earlier in the package", e.link)
	}
	return u.do(e, u.root.Link(target, name))
}

func escapes(p string) bool { return p == ".." || strings.HasPrefix(p, "../") }

// checkTree walks the unpacked workspace: only directories, regular files
// and links that resolve inside it may be there.
func (u *unpacker) checkTree() error {
	return fs.WalkDir(u.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%s: check the unpacked package: %w", u.archive, err)
		}
		switch t := d.Type(); {
		case t.IsDir(), t.IsRegular():
			return nil
		case t == fs.ModeSymlink:
			return u.checkLink(p)
		default:
			return u.refuse(u.entry(p), "special file (%s) not allowed", describe(t))
		}
	})
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
// Past a missing component the rest is followed by its text.
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
		p := path.Join(at...)
		info, err := u.root.Lstat(p)
		if err != nil {
			missing = true // dangling from here on
			continue
		}
		if info.Mode().Type() != fs.ModeSymlink {
			continue
		}
		target, err := u.root.Readlink(p)
		if err != nil {
			return fmt.Sprintf("read link %s: %v", p, err)
		}
		if followed = append(followed, u.entry(p)+" -> "+target); len(followed) > maxLinkHops {
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

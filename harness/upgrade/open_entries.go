package upgrade

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"math"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

// entryKind is what an entry makes in the workspace.
type entryKind int

const (
	kindDir entryKind = iota
	kindRegular
	kindSymlink
	kindHardlink
	kindOther // devices, fifos, sockets and the rest: always refused
)

func (k entryKind) String() string {
	return [...]string{"directory", "file", "symbolic link", "hard link", "special file"}[k]
}

// entry is one member of a package, whatever its source (zip, tgz or
// directory): the unpacker applies one policy to all of them.
type entry struct {
	name string // as the source spells it
	kind entryKind
	// link is a symlink's target, or the name of the earlier entry a hard
	// link shares its content with ("" when that file is outside the package).
	link string
	mode fs.FileMode // permission bits
	what string      // kindOther: what it is ("block device", "fifo", ...)
	// open reads a regular file; reading past the source's ratio limit fails
	// with errExpanded.
	open func() (io.ReadCloser, error)
}

// entries yields a package's entries in order. With an error it yields the
// entry that was being read (maybe only its name), and stops.
type entries = iter.Seq2[entry, error]

// errExpanded: content expanded more than Limits.Ratio times its compressed size.
var errExpanded = errors.New("expands past the ratio limit")

// zipEntries reads a zip archive from memory. Each entry may expand to
// l.Ratio times its own compressed size, and all of them together to
// l.Ratio times the archive's size: entries may share compressed bytes
// (overlapping entries, David Fifield's zip bomb).
func zipEntries(archive string, data []byte, l Limits) entries {
	return func(yield func(entry, error) bool) {
		total := mulSat(max(int64(len(data)), 1), l.Ratio)
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // insecure names: our own policy refuses them by name
			yield(entry{}, fmt.Errorf("open package %s: read zip: %w", archive, err))
			return
		}
		for _, f := range zr.File {
			mode := f.Mode()
			e := entry{name: f.Name, mode: mode.Perm()}
			switch {
			case mode.IsDir():
				e.kind = kindDir
			case mode.Type() == fs.ModeSymlink:
				e.kind = kindSymlink
				if e.link, err = zipLinkTarget(f, l.NameBytes); err != nil {
					yield(e, fmt.Errorf("open package %s: entry %s: read link target: %w", archive, shown(f.Name), err))
					return
				}
			case mode.IsRegular():
				e.kind = kindRegular
				compressed := int64(min(f.CompressedSize64, uint64(len(data))))
				e.open = func() (io.ReadCloser, error) {
					rc, err := f.Open()
					if err != nil {
						return nil, err
					}
					own := capTo(rc, mulSat(max(compressed, 1), l.Ratio))
					return readCloser{&capped{own, &total}, rc}, nil
				}
			default:
				e.kind, e.what = kindOther, describe(mode)
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// zipLinkTarget reads a zip symlink's target, stored as its content; the
// unpacker refuses one over limit bytes, by name.
func zipLinkTarget(f *zip.File, limit int) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	target, err := io.ReadAll(io.LimitReader(rc, int64(limit)+1))
	return string(target), err
}

// tgzEntries reads a gzip-compressed tar archive from memory. The stream is
// compressed as a whole, so the ratio limit applies to all of it. Global
// pax headers (git archive writes one holding the commit) are skipped:
// archive/tar does not apply them to later entries either.
func tgzEntries(archive string, data []byte, l Limits) entries {
	return func(yield func(entry, error) bool) {
		gz, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			yield(entry{}, fmt.Errorf("open package %s: read gzip: %w", archive, err))
			return
		}
		tr := tar.NewReader(capTo(gz, mulSat(max(int64(len(data)), 1), l.Ratio)))
		last := "" // Next skips the rest of the previous entry: a bomb found there is that entry's
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return
			}
			if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && h != nil) {
				if !errors.Is(err, errExpanded) {
					err = fmt.Errorf("open package %s: read tar: %w", archive, err)
				}
				yield(entry{name: last}, err)
				return
			}
			last = h.Name
			if h.Typeflag == tar.TypeXGlobalHeader {
				continue
			}
			e := entry{name: h.Name, link: h.Linkname, mode: h.FileInfo().Mode().Perm()}
			switch h.Typeflag {
			case tar.TypeDir:
				e.kind = kindDir
			case tar.TypeReg:
				e.kind, e.open = kindRegular, func() (io.ReadCloser, error) { return io.NopCloser(tr), nil }
			case tar.TypeSymlink:
				e.kind = kindSymlink
			case tar.TypeLink:
				e.kind = kindHardlink
			case tar.TypeChar:
				e.kind, e.what = kindOther, "character device"
			case tar.TypeBlock:
				e.kind, e.what = kindOther, "block device"
			case tar.TypeFifo:
				e.kind, e.what = kindOther, "fifo"
			default:
				e.kind, e.what = kindOther, fmt.Sprintf("tar entry type %q", h.Typeflag)
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// dirEntries reads a package directory through its own root, so nothing
// outside it is read even if the tree changes meanwhile. A file with hard
// links is one file and hard links to it, or, when some of its links are
// outside the directory, a hard link to outside (refused). The walk stops
// after the first entry over l.Entries or l.Depth: the unpacker refuses it.
func dirEntries(dir string, root *os.Root, l Limits) entries {
	return func(yield func(entry, error) bool) {
		type item struct {
			rel, link string
			info      fs.FileInfo
		}
		var items []item
		inside := map[fileID]uint64{} // links of each multiply-linked file found in the tree
		err := walkTree(root, l.Depth, func(p string, info fs.FileInfo, d *os.Root) (err error) {
			it := item{rel: p, info: info}
			if info.Mode().Type() == fs.ModeSymlink {
				if it.link, err = d.Readlink(path.Base(p)); err != nil {
					return err
				}
			}
			items = append(items, it)
			if id, links := identify(info); links > 1 && info.Mode().IsRegular() {
				inside[id]++
			}
			if len(items) > l.Entries || depth(p) > l.Depth {
				return fs.SkipAll
			}
			return nil
		})
		if err != nil {
			yield(entry{}, fmt.Errorf("open package %s: %w", dir, err))
			return
		}
		first := map[fileID]string{}
		for _, it := range items {
			mode := it.info.Mode()
			e := entry{name: it.rel, mode: mode.Perm()}
			switch id, links := identify(it.info); {
			case mode.IsDir():
				e.kind = kindDir
			case mode.Type() == fs.ModeSymlink:
				e.kind, e.link = kindSymlink, it.link
			case mode.IsRegular() && links > inside[id] && links > 1:
				e.kind = kindHardlink // to a file outside the directory: link ""
			case mode.IsRegular() && first[id] != "":
				e.kind, e.link = kindHardlink, first[id]
			case mode.IsRegular():
				if links > 1 {
					first[id] = it.rel
				}
				e.kind, e.open = kindRegular, openSame(root, it.rel, it.info)
			default:
				e.kind, e.what = kindOther, describe(mode)
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// walkTree calls fn for every name below root (slash-separated, parents
// before children, sorted), with the directory holding it. Each directory
// is opened once, through its parent's handle, so a walk costs time linear
// in the tree, whatever its depth: fs.WalkDir over root.FS() opens every
// path again component by component (quadratic in the depth). Directories
// deeper than maxDepth are shown to fn but not entered (their names are the
// first too deep). fn returning
// fs.SkipAll ends the walk.
func walkTree(root *os.Root, maxDepth int, fn func(name string, info fs.FileInfo, dir *os.Root) error) error {
	var walk func(dir *os.Root, prefix string, depth int) error
	walk = func(dir *os.Root, prefix string, depth int) error {
		f, err := dir.Open(".")
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return fmt.Errorf("read directory %s: %w", cmp.Or(prefix, "."), err)
		}
		slices.Sort(names)
		for _, n := range names {
			name := n
			if prefix != "" {
				name = prefix + "/" + n
			}
			info, err := dir.Lstat(n)
			if err != nil {
				return err
			}
			if err := fn(name, info, dir); err != nil {
				return err
			}
			if !info.IsDir() || depth > maxDepth {
				continue
			}
			sub, err := dir.OpenRoot(n)
			if err != nil {
				return err
			}
			err = walk(sub, name, depth+1)
			sub.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, "", 1); err != fs.SkipAll {
		return err
	}
	return nil
}

// depth is the number of components of a cleaned slash-separated name.
func depth(name string) int { return strings.Count(name, "/") + 1 }

// openSame opens name, refusing a file that is not the one walked (it was
// swapped, maybe for a fifo or a link, since). O_NONBLOCK: a fifo swapped in
// must not block the open.
func openSame(root *os.Root, name string, walked fs.FileInfo) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err == nil && !os.SameFile(st, walked) {
			err = fmt.Errorf("%s changed while the package was being read", name)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
}

type fileID struct{ dev, ino uint64 }

// identify returns a file's identity and its number of hard links (1 where
// the system does not say).
func identify(info fs.FileInfo) (fileID, uint64) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, 1
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, uint64(st.Nlink)
}

// describe names a special file's type.
func describe(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeCharDevice != 0:
		return "character device"
	case mode&fs.ModeDevice != 0:
		return "block device"
	case mode&fs.ModeNamedPipe != 0:
		return "fifo"
	case mode&fs.ModeSocket != 0:
		return "socket"
	default:
		return fmt.Sprintf("irregular file %s", mode.Type())
	}
}

// capped fails with errExpanded once more than *left bytes were read
// through it; several readers may draw on one budget.
type capped struct {
	r    io.Reader
	left *int64
}

// capTo caps r at n bytes of its own.
func capTo(r io.Reader, n int64) *capped { return &capped{r, &n} }

func (c *capped) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if *c.left -= int64(n); *c.left < 0 {
		return n, errExpanded
	}
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// mulSat multiplies two non-negative numbers, saturating at math.MaxInt64.
func mulSat(a, b int64) int64 {
	if b != 0 && a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

package upgrade

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"math"
	"os"
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

// maxLinkTarget bounds a zip symlink's target, stored as its content.
const maxLinkTarget = 4096

// zipEntries reads a zip archive from memory. Each entry may expand to
// ratio times its own compressed size.
func zipEntries(archive string, data []byte, ratio int64) entries {
	return func(yield func(entry, error) bool) {
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
				if e.link, err = zipLinkTarget(f); err != nil {
					yield(e, fmt.Errorf("open package %s: entry %q: read link target: %w", archive, f.Name, err))
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
					return readCloser{&capped{r: rc, n: mulSat(max(compressed, 1), ratio)}, rc}, nil
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

func zipLinkTarget(f *zip.File) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	target, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
	if err != nil {
		return "", err
	}
	if len(target) > maxLinkTarget {
		return "", fmt.Errorf("longer than %d bytes", maxLinkTarget)
	}
	return string(target), nil
}

// tgzEntries reads a gzip-compressed tar archive from memory. The stream is
// compressed as a whole, so the ratio limit applies to all of it.
func tgzEntries(archive string, data []byte, ratio int64) entries {
	return func(yield func(entry, error) bool) {
		gz, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			yield(entry{}, fmt.Errorf("open package %s: read gzip: %w", archive, err))
			return
		}
		tr := tar.NewReader(&capped{r: gz, n: mulSat(max(int64(len(data)), 1), ratio)})
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
// outside the directory, a hard link to outside (refused).
func dirEntries(dir string, root *os.Root, maxEntries int) entries {
	return func(yield func(entry, error) bool) {
		type item struct {
			rel  string
			info fs.FileInfo
		}
		var items []item
		inside := map[fileID]uint64{} // links of each multiply-linked file found in the tree
		err := fs.WalkDir(root.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
			if err != nil || p == "." {
				return err
			}
			info, err := root.Lstat(p)
			if err != nil {
				return err
			}
			items = append(items, item{p, info})
			if id, links := identify(info); links > 1 && info.Mode().IsRegular() {
				inside[id]++
			}
			if len(items) > maxEntries { // the unpacker refuses the last one
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
				e.kind = kindSymlink
				if e.link, err = root.Readlink(it.rel); err != nil {
					yield(e, fmt.Errorf("open package %s: %w", dir, err))
					return
				}
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

// capped fails with errExpanded once more than n bytes were read through it.
type capped struct {
	r io.Reader
	n int64
}

func (c *capped) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= int64(n); c.n < 0 {
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

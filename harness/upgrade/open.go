// Package upgrade is the vendor's upgrade package: opened safely into a
// private workspace, its manifest read, its signature verified against a
// trust store, and its steps applied to an environment one by one.
package upgrade

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrUnsafe is wrapped by every refusal to open a package entry.
var ErrUnsafe = errors.New("unsafe package entry")

// EntryError names the entry of an archive that was refused.
type EntryError struct {
	Archive string
	Entry   string
	Reason  string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("%s: entry %q: %s", e.Archive, e.Entry, e.Reason)
}

func (e *EntryError) Unwrap() error { return ErrUnsafe }

// Limits bound what an archive may unpack to (zip bombs).
type Limits struct {
	Entries    int   // at most this many entries
	TotalBytes int64 // at most this many bytes unpacked
	Ratio      int64 // unpacked size at most Ratio times the archive's size (zip entries: each entry's own ratio)
}

// DefaultLimits are generous for real packages and stop bombs.
var DefaultLimits = Limits{Entries: 20_000, TotalBytes: 2 << 30, Ratio: 200}

// OpenOption configures Open.
type OpenOption func(*openOptions)

type openOptions struct {
	limits Limits
	dir    string
}

// WithLimits sets the unpacking limits. Default: DefaultLimits.
func WithLimits(l Limits) OpenOption { return func(o *openOptions) { o.limits = l } }

// WithWorkspace unpacks into dir, which must be empty or missing.
// Default: a new temporary directory.
func WithWorkspace(dir string) OpenOption { return func(o *openOptions) { o.dir = dir } }

// Package is an opened upgrade package.
type Package struct {
	Source   string    // what was opened
	Dir      string    // the private workspace holding its files
	Manifest *Manifest // nil when the package has no upgrade.yaml
}

// Close removes the workspace.
func (p *Package) Close() error { return os.RemoveAll(p.Dir) }

// Open unpacks a .zip, .tar.gz/.tgz or a directory into a private workspace.
// Entries that escape it (../, absolute paths, links pointing out), device
// files and archives over the limits are refused with the entry named, and
// nothing is left behind.
func Open(source string, opts ...OpenOption) (*Package, error) {
	o := openOptions{limits: DefaultLimits}
	for _, opt := range opts {
		opt(&o)
	}
	st, err := os.Stat(source)
	if err != nil {
		return nil, fmt.Errorf("open package: %w", err)
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "rehearse-package-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer root.Close()
	u := &unpacker{archive: source, root: root, limits: o.limits}
	switch name := strings.ToLower(source); {
	case st.IsDir():
		err = u.dir(source)
	case strings.HasSuffix(name, ".zip"):
		err = u.zip(source, st.Size())
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		err = u.tgz(source, st.Size())
	default:
		err = fmt.Errorf("open package %s: not a .zip, .tar.gz, .tgz or directory", source)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &Package{Source: source, Dir: dir}
	if p.Manifest, err = readManifest(dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return p, nil
}

type unpacker struct {
	archive string
	root    *os.Root
	limits  Limits
	entries int
	total   int64
}

func (u *unpacker) refuse(entry, format string, args ...any) error {
	return &EntryError{Archive: u.archive, Entry: entry, Reason: fmt.Sprintf(format, args...)}
}

// clean checks an entry name and returns it relative to the workspace.
func (u *unpacker) clean(name string) (string, error) {
	if name == "" {
		return "", u.refuse(name, "empty name")
	}
	if strings.ContainsRune(name, 0) {
		return "", u.refuse(name, "NUL in name")
	}
	slashed := strings.ReplaceAll(name, `\`, "/")
	if path.IsAbs(slashed) || filepath.IsAbs(name) || (len(slashed) > 1 && slashed[1] == ':') {
		return "", u.refuse(name, "absolute path")
	}
	for _, part := range strings.Split(slashed, "/") {
		if part == ".." {
			return "", u.refuse(name, "path escapes the workspace (..)")
		}
	}
	c := path.Clean(slashed)
	if c == "." {
		return "", nil
	}
	return c, nil
}

func (u *unpacker) count(entry string) error {
	u.entries++
	if u.entries > u.limits.Entries {
		return u.refuse(entry, "more than %d entries", u.limits.Entries)
	}
	return nil
}

// checkLink refuses a symlink whose target leaves the workspace.
func (u *unpacker) checkLink(name, target string) error {
	t := strings.ReplaceAll(target, `\`, "/")
	if path.IsAbs(t) {
		return u.refuse(name, "link to an absolute path (%s)", target)
	}
	resolved := path.Join(path.Dir(name), t)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return u.refuse(name, "link points outside the workspace (%s)", target)
	}
	return nil
}

// write copies r into the workspace, enforcing the size limits as it goes
// (declared sizes can lie).
func (u *unpacker) write(name string, mode fs.FileMode, r io.Reader, maxBytes int64) error {
	if err := u.root.MkdirAll(path.Dir(name), 0o755); err != nil && path.Dir(name) != "." {
		return u.refuse(name, "%v", err)
	}
	f, err := u.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode.Perm()|0o600)
	if err != nil {
		return u.refuse(name, "%v", err)
	}
	defer f.Close()
	limit := min(maxBytes, u.limits.TotalBytes-u.total)
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	u.total += n
	if err != nil {
		return fmt.Errorf("%s: entry %q: %w", u.archive, name, err)
	}
	if n > limit {
		if u.total > u.limits.TotalBytes {
			return u.refuse(name, "unpacks past the limit of %d bytes", u.limits.TotalBytes)
		}
		return u.refuse(name, "expands more than %d times its compressed size (zip bomb)", u.limits.Ratio)
	}
	return nil
}

func (u *unpacker) zip(source string, size int64) error {
	zr, err := zip.OpenReader(source)
	if err != nil {
		return fmt.Errorf("open package %s: %w", source, err)
	}
	defer zr.Close()
	if len(zr.File) > u.limits.Entries {
		return u.refuse(zr.File[u.limits.Entries].Name, "more than %d entries", u.limits.Entries)
	}
	for _, f := range zr.File {
		name, err := u.clean(f.Name)
		if err != nil {
			return err
		}
		if err := u.count(f.Name); err != nil {
			return err
		}
		if name == "" {
			continue
		}
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := u.root.MkdirAll(name, 0o755); err != nil {
				return u.refuse(f.Name, "%v", err)
			}
		case mode&fs.ModeSymlink != 0:
			rc, err := f.Open()
			if err != nil {
				return u.refuse(f.Name, "%v", err)
			}
			target, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return u.refuse(f.Name, "%v", err)
			}
			if err := u.link(f.Name, name, string(target)); err != nil {
				return err
			}
		case mode.IsRegular():
			rc, err := f.Open()
			if err != nil {
				return u.refuse(f.Name, "%v", err)
			}
			maxBytes := max(int64(f.CompressedSize64), 1) * u.limits.Ratio
			err = u.write(name, mode, rc, maxBytes)
			rc.Close()
			if err != nil {
				return err
			}
		default:
			return u.refuse(f.Name, "special file (%s) not allowed", mode.Type())
		}
	}
	return nil
}

func (u *unpacker) link(entry, name, target string) error {
	if err := u.checkLink(name, target); err != nil {
		return err
	}
	if err := u.root.MkdirAll(path.Dir(name), 0o755); err != nil && path.Dir(name) != "." {
		return u.refuse(entry, "%v", err)
	}
	if err := u.root.Symlink(target, name); err != nil {
		return u.refuse(entry, "%v", err)
	}
	return nil
}

func (u *unpacker) tgz(source string, size int64) error {
	f, err := os.Open(source)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("open package %s: %w", source, err)
	}
	// The whole stream is compressed at once: the ratio limit applies to it.
	budget := max(size, 1) * u.limits.Ratio
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("open package %s: %w", source, err)
		}
		name, err := u.clean(h.Name)
		if err != nil {
			return err
		}
		if err := u.count(h.Name); err != nil {
			return err
		}
		if name == "" {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := u.root.MkdirAll(name, 0o755); err != nil {
				return u.refuse(h.Name, "%v", err)
			}
		case tar.TypeSymlink:
			if err := u.link(h.Name, name, h.Linkname); err != nil {
				return err
			}
		case tar.TypeLink:
			target, err := u.clean(h.Linkname)
			if err != nil {
				return u.refuse(h.Name, "hard link points outside the workspace (%s)", h.Linkname)
			}
			if err := u.root.Link(target, name); err != nil {
				return u.refuse(h.Name, "%v", err)
			}
		case tar.TypeReg:
			if err := u.write(name, fs.FileMode(h.Mode), tr, budget-u.total); err != nil {
				return err
			}
		default:
			return u.refuse(h.Name, "special file (type %q) not allowed", string(h.Typeflag))
		}
	}
}

// dir copies a package directory, refusing links that point outside it and
// special files, within the same limits.
func (u *unpacker) dir(source string) error {
	return filepath.WalkDir(source, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(source, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if err := u.count(rel); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			return u.root.MkdirAll(rel, 0o755)
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return u.link(rel, rel, target)
		case mode.IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return u.write(rel, mode, f, u.limits.TotalBytes)
		default:
			return u.refuse(rel, "special file (%s) not allowed", mode.Type())
		}
	})
}

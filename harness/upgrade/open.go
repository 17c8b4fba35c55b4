// Package upgrade is the vendor's upgrade package: opened safely into a
// private workspace, its manifest read, its signature verified against a
// trust store, and its steps applied to an environment one by one.
package upgrade

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// Limits bound what an archive may unpack to (zip bombs). A zero field
// given to WithLimits keeps its default from DefaultLimits.
type Limits struct {
	Entries      int   // at most this many entries
	TotalBytes   int64 // at most this many bytes unpacked
	Ratio        int64 // unpacked size at most Ratio times the archive's size (zip entries: each entry's own ratio)
	ArchiveBytes int64 // the archive file itself at most this many bytes (it is held in memory)
}

// DefaultLimits are generous for real packages and stop bombs.
var DefaultLimits = Limits{Entries: 20_000, TotalBytes: 2 << 30, Ratio: 200, ArchiveBytes: 1 << 30}

// OpenOption configures Open.
type OpenOption func(*openOptions) error

type openOptions struct {
	limits Limits
	dir    string // "" : a new temporary directory
}

// defaultOpenOptions is the one place Open's defaults are set.
func defaultOpenOptions() openOptions { return openOptions{limits: DefaultLimits} }

// WithLimits sets the unpacking limits; zero fields keep their default.
// Default: DefaultLimits.
func WithLimits(l Limits) OpenOption {
	return func(o *openOptions) error {
		if l.Entries < 0 || l.TotalBytes < 0 || l.Ratio < 0 || l.ArchiveBytes < 0 {
			return fmt.Errorf("limits %+v: a limit cannot be negative", l)
		}
		d := DefaultLimits
		o.limits = Limits{
			Entries:      cmpOr(l.Entries, d.Entries),
			TotalBytes:   cmpOr(l.TotalBytes, d.TotalBytes),
			Ratio:        cmpOr(l.Ratio, d.Ratio),
			ArchiveBytes: cmpOr(l.ArchiveBytes, d.ArchiveBytes),
		}
		return nil
	}
}

// WithWorkspace unpacks into dir, which must be an empty directory or not
// exist yet; Close (or a failed Open) removes only what Open created: dir
// itself when Open made it, else only its contents. Package.Dir is its
// absolute path. Default: a new temporary directory.
func WithWorkspace(dir string) OpenOption {
	return func(o *openOptions) (err error) {
		if dir == "" {
			err = errors.New("empty name")
		} else if o.dir, err = filepath.Abs(dir); err == nil {
			return nil
		}
		return fmt.Errorf("workspace %q: %w", dir, err)
	}
}

func cmpOr[T int | int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Package is an opened upgrade package.
type Package struct {
	Source   string    // what was opened
	Dir      string    // the private workspace holding its files
	Manifest *Manifest // nil when the package has no upgrade.yaml

	// archive is exactly the bytes that were unpacked, read once (nil for a
	// directory package): the signature is checked over these bytes.
	archive []byte
	// signature is the verdict of the last Verify of this package (nil: never verified).
	signature *Result

	ws *workspace // nil for a Package that Open did not make
}

// Close removes the workspace: the directory Open created, or only the
// contents of the empty directory given to WithWorkspace. Closing twice is
// harmless.
func (p *Package) Close() error {
	if p.ws == nil {
		return nil
	}
	return p.ws.close()
}

// Open unpacks a .zip, .tar.gz/.tgz or a directory into a private workspace
// through an os.Root, so no entry can write or read outside it. An archive is
// read into memory once and unpacked from those bytes. Entries that escape
// (../, absolute paths, links that resolve outside, also through a chain of
// links), devices, fifos, hard links to files outside the package and
// archives over the limits are refused with an *EntryError naming the entry;
// nothing is left behind on failure.
func Open(source string, opts ...OpenOption) (_ *Package, err error) {
	o := defaultOpenOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("open package %s: %w", source, err)
		}
	}
	src, err := readSource(source, o.limits)
	if err != nil {
		return nil, fmt.Errorf("open package %s: %w", source, err)
	}
	defer src.close()
	ws, err := newWorkspace(o.dir)
	if err != nil {
		return nil, fmt.Errorf("open package %s: %w", source, err)
	}
	p := &Package{Source: source, Dir: ws.dir, archive: src.data, ws: ws}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Close())
		}
	}()
	u := newUnpacker(source, ws.root, o.limits)
	if err := u.unpack(src.entries); err != nil {
		return nil, err
	}
	if p.Manifest, err = readManifest(ws.root); err != nil {
		return nil, fmt.Errorf("open package %s: %w", source, err)
	}
	return p, nil
}

// source is what Open unpacks: the archive's bytes (read once) or a
// directory opened as a root, as one sequence of entries.
type source struct {
	data    []byte
	entries entries
	close   func()
}

func readSource(name string, l Limits) (*source, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		root, err := os.OpenRoot(name)
		if err != nil {
			return nil, err
		}
		return &source{entries: dirEntries(name, root, l.Entries), close: func() { root.Close() }}, nil
	}
	var unpack func(archive string, data []byte, ratio int64) entries
	switch lower := strings.ToLower(name); {
	case strings.HasSuffix(lower, ".zip"):
		unpack = zipEntries
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		unpack = tgzEntries
	default:
		return nil, errors.New("not a .zip, .tar.gz, .tgz or directory")
	}
	data, err := readArchive(name, l.ArchiveBytes)
	if err != nil {
		return nil, err
	}
	return &source{data: data, entries: unpack(name, data, l.Ratio), close: func() {}}, nil
}

// readArchive reads the whole archive file, refusing one over limit bytes.
func readArchive(name string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0) // a fifo must not block the open
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file but a %s", describe(st.Mode()))
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("archive is %d bytes, over the limit of %d (Limits.ArchiveBytes)", st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("archive grew past the limit of %d bytes (Limits.ArchiveBytes) while being read", limit)
	}
	return data, nil
}

// Package upgrade is the vendor's upgrade package: opened safely into a
// private workspace, its manifest read, its signature verified against a
// trust store, and its steps applied to an environment one by one.
package upgrade

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
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
	return fmt.Sprintf("%s: entry %s: %s", e.Archive, shown(e.Entry), e.Reason)
}

// maxShown bounds how much of a name a message shows: a hostile name may
// be a megabyte long.
const maxShown = 200

// shown quotes a name for a message, its middle cut out when it is long.
func shown(name string) string {
	if len(name) <= maxShown {
		return strconv.Quote(name)
	}
	return fmt.Sprintf("%q...%q (%d bytes)", name[:maxShown*3/4], name[len(name)-maxShown/4:], len(name))
}

func (e *EntryError) Unwrap() error { return ErrUnsafe }

// Limits bound what an archive may unpack to (zip bombs). A zero field
// given to WithLimits keeps its default from DefaultLimits.
type Limits struct {
	Entries    int   // at most this many entries
	TotalBytes int64 // at most this many bytes unpacked
	// Ratio: unpacked size at most Ratio times the archive's size; a zip
	// entry also at most Ratio times its own compressed size.
	Ratio        int64
	ArchiveBytes int64 // the archive file itself at most this many bytes (it is held in memory)
	// NameBytes and Depth bound an entry's name and a link's target: each
	// name is walked component by component, so a deep one costs time.
	NameBytes int // at most this many bytes
	Depth     int // at most this many components (a/b/c is 3)
}

// DefaultLimits are generous for real packages and stop bombs.
var DefaultLimits = Limits{Entries: 20_000, TotalBytes: 2 << 30, Ratio: 200, ArchiveBytes: 1 << 30, NameBytes: 4096, Depth: 64}

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
		if l.Entries < 0 || l.TotalBytes < 0 || l.Ratio < 0 || l.ArchiveBytes < 0 || l.NameBytes < 0 || l.Depth < 0 {
			return fmt.Errorf("limits %+v: a limit cannot be negative", l)
		}
		d := DefaultLimits
		o.limits = Limits{
			Entries:      cmp.Or(l.Entries, d.Entries),
			TotalBytes:   cmp.Or(l.TotalBytes, d.TotalBytes),
			Ratio:        cmp.Or(l.Ratio, d.Ratio),
			ArchiveBytes: cmp.Or(l.ArchiveBytes, d.ArchiveBytes),
			NameBytes:    cmp.Or(l.NameBytes, d.NameBytes),
			Depth:        cmp.Or(l.Depth, d.Depth),
		}
		return nil
	}
}

// WithWorkspace unpacks into dir, which must be an empty directory or not
// exist yet; Close (or a failed Open) removes only what Open created: dir
// itself when Open made it, else only the names Open put in it (what others
// add beside them stays). Package.Dir is its absolute path. Default: a new temporary directory.
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

// Package is an opened upgrade package. Its workspace and manifest are
// read-only to callers: the verdict of Verify is about what Open unpacked,
// and Apply copies and runs exactly that.
type Package struct {
	Source   string // what was opened
	dir      string
	manifest *Manifest

	// archive is exactly the bytes that were unpacked, read once (nil for a
	// directory package): the signature is checked over these bytes.
	archive []byte
	// signature is the verdict of the last Verify of this package (nil: never verified).
	signature *Result

	ws *workspace // nil for a Package that Open did not make
}

// Dir is the private workspace holding the package's files.
func (p *Package) Dir() string { return p.dir }

// Manifest returns a copy of the package's manifest; nil when the package
// has no upgrade.yaml.
func (p *Package) Manifest() *Manifest { return p.manifest.clone() }

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
	p := &Package{Source: source, dir: ws.dir, archive: src.data, ws: ws}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Close())
		}
	}()
	u := newUnpacker(source, ws, o.limits)
	if err := u.unpack(src.entries); err != nil {
		return nil, err
	}
	if p.manifest, err = readManifest(ws.root); err != nil {
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
		return &source{entries: dirEntries(name, root, l), close: func() { root.Close() }}, nil
	}
	var unpack func(archive string, data []byte, l Limits) entries
	switch lower := strings.ToLower(name); {
	case strings.HasSuffix(lower, ".zip"):
		unpack = zipEntries
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		unpack = tgzEntries
	default:
		return nil, errors.New("not a .zip, .tar.gz, .tgz or directory")
	}
	data, err := readArchive(name, l.ArchiveBytes, "Limits.ArchiveBytes")
	if err != nil {
		return nil, err
	}
	return &source{data: data, entries: unpack(name, data, l), close: func() {}}, nil
}

// readArchive reads a whole file once: an archive, or a signature. It
// refuses anything but a regular file (a fifo would block) and one over
// limit bytes, which limitName names.
func readArchive(name string, limit int64, limitName string) ([]byte, error) {
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
		return nil, fmt.Errorf("%s is not a regular file but a %s", name, describe(st.Mode()))
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, over the limit of %d (%s)", name, st.Size(), limit, limitName)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s grew past the limit of %d bytes (%s) while being read", name, limit, limitName)
	}
	return data, nil
}

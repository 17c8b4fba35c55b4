package upgrade

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// workspace is the private directory a package is unpacked into, opened as
// the os.Root that every read and write of package content goes through.
type workspace struct {
	dir  string
	root *os.Root
	// created is what close removes whole: dir, or the topmost missing
	// ancestor Open made for it. "" when dir already existed.
	created string
	// ours: dir already existed and was found empty, so the names Open put
	// in it (made) are ours to remove, and dir and anything else are not.
	ours   bool
	made   []string // top-level names the unpacker made
	closed bool
}

// claim records a top-level name the unpacker is about to make, unless
// something is there already (someone else's, put there after Open began).
func (w *workspace) claim(name string) {
	if _, err := w.root.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		w.made = append(w.made, name)
	}
}

// newWorkspace makes a new temporary directory (dir "") or uses dir, which
// must be missing or an empty directory.
func newWorkspace(dir string) (_ *workspace, err error) {
	w := &workspace{dir: dir}
	if dir == "" {
		if w.dir, err = os.MkdirTemp("", "rehearse-package-"); err != nil {
			return nil, fmt.Errorf("workspace: %w", err)
		}
		w.created = w.dir
	} else if w.created, err = mkdirNew(dir); err != nil {
		return nil, fmt.Errorf("workspace %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, w.close())
		}
	}()
	if w.root, err = os.OpenRoot(w.dir); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	if w.created == "" {
		first, err := w.names(1)
		if err != nil {
			return nil, fmt.Errorf("workspace %s: %w", w.dir, err)
		}
		if len(first) > 0 {
			return nil, fmt.Errorf("workspace %s is not empty (it holds %q): give an empty or missing directory", w.dir, first[0])
		}
		w.ours = true
	}
	return w, nil
}

// mkdirNew makes dir and its missing parents and returns the topmost
// directory it made ("" when dir already exists). A directory that another
// process makes meanwhile is not counted as made.
func mkdirNew(dir string) (string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	created := ""
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], 0o700)
		switch {
		case err == nil:
			if created == "" {
				created = missing[i]
			}
		case errors.Is(err, fs.ErrExist) && created == "":
			// made by someone else since we looked: not ours to remove
		default:
			if created != "" {
				err = errors.Join(err, os.RemoveAll(created))
			}
			return "", err
		}
	}
	return created, nil
}

// names lists up to n names in the workspace.
func (w *workspace) names(n int) ([]string, error) {
	d, err := w.root.Open(".")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(n)
	if err == io.EOF {
		err = nil
	}
	return names, err
}

// close removes what Open made and closes the root.
func (w *workspace) close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	if w.root != nil {
		if w.ours {
			for _, n := range w.made {
				errs = append(errs, w.root.RemoveAll(n))
			}
		}
		errs = append(errs, w.root.Close())
	}
	if w.created != "" {
		errs = append(errs, os.RemoveAll(w.created))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove workspace %s: %w", w.dir, err)
	}
	return nil
}

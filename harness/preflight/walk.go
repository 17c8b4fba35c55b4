package preflight

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// Limits bound what preflight reads of a package: the walk stops with an
// error past Files files, and a file over FileBytes is not read (a
// cannot-tell finding says so). Zero fields keep their DefaultLimits value.
type Limits struct {
	Files      int   // at most this many regular files
	FileBytes  int64 // a file is read only up to this size
	TotalBytes int64 // at most this many bytes read in all
}

// DefaultLimits are generous for real packages (upgrade.DefaultLimits
// bounds what a package may unpack to; these bound what is read back).
var DefaultLimits = Limits{Files: 20_000, FileBytes: 4 << 20, TotalBytes: 512 << 20}

// pkgFile is one regular file of the package as preflight sees it.
type pkgFile struct {
	File
	Size   int64
	Binary bool   // a NUL byte in its first 8000 bytes, as git and grep decide
	Over   bool   // over Limits.FileBytes: Data is nil
	Head   []byte // its first 8000 bytes (all of Data when not Over)
}

// binarySniff is how much of a file git reads to decide it is binary.
const binarySniff = 8000

// walkPackage reads every regular file under root: in lexical order, symbolic
// links never followed (not even to a file inside), devices and fifos
// skipped, bounded by l.
func walkPackage(root *os.Root, l Limits) ([]pkgFile, error) {
	var files []pkgFile
	var total int64
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if !d.Type().IsRegular() { // directories are walked; links, devices and fifos never read
			return nil
		}
		if len(files) == l.Files {
			return fmt.Errorf("the package has more than %d files (Limits.Files)", l.Files)
		}
		f, err := readFile(root, p, l.FileBytes)
		if err != nil {
			return err
		}
		if total += int64(len(f.Data)); total > l.TotalBytes {
			return fmt.Errorf("the package's files are more than %d bytes in all (Limits.TotalBytes)", l.TotalBytes)
		}
		files = append(files, f)
		return nil
	})
	return files, err
}

// readFile reads one file through the root, refusing anything that is not
// a regular file when opened (O_NOFOLLOW: a file swapped for a link is not
// followed).
func readFile(root *os.Root, p string, limit int64) (pkgFile, error) {
	f, err := root.OpenFile(p, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return pkgFile{}, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return pkgFile{}, fmt.Errorf("read %s: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		return pkgFile{}, fmt.Errorf("read %s: not a regular file", p)
	}
	pf := pkgFile{File: File{Path: path.Clean(p)}, Size: st.Size()}
	if st.Size() > limit {
		pf.Over = true
		head := make([]byte, binarySniff)
		n, _ := io.ReadFull(f, head)
		pf.Head = head[:n]
		pf.Binary = bytes.IndexByte(pf.Head, 0) >= 0
		return pf, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return pkgFile{}, fmt.Errorf("read %s: %w", p, err)
	}
	if int64(len(data)) > limit {
		return pkgFile{}, fmt.Errorf("read %s: it grew while being read", p)
	}
	pf.Data = data
	pf.Head = data[:min(len(data), binarySniff)]
	pf.Binary = bytes.IndexByte(pf.Head, 0) >= 0
	return pf, nil
}

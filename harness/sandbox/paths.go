package sandbox

import (
	"os"
	"path/filepath"
	"strings"
)

// Inside reports whether path is dir or below it once symbolic links are
// resolved on both sides: a link inside the project that points out is
// outside. A path that does not exist yet is judged by its longest existing
// ancestor; a ".." in the part that does not exist is outside, since what it
// climbs out of cannot be known.
func Inside(dir, path string) bool {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	realPath, ok := resolve(path)
	if !ok {
		return false
	}
	rel, err := filepath.Rel(realDir, realPath)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// resolve resolves the symbolic links of an absolute path whose tail may not
// exist yet.
func resolve(path string) (string, bool) {
	if !filepath.IsAbs(path) {
		return "", false
	}
	var missing []string
	for p := path; ; {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			for i := len(missing) - 1; i >= 0; i-- {
				real = filepath.Join(real, missing[i])
			}
			return real, true
		}
		if _, lerr := os.Lstat(p); !os.IsNotExist(err) || lerr == nil {
			return "", false // unreadable, or a dangling link: where it leads is unknown
		}
		// Split without cleaning: cleaning "a/link/.." to "a" would skip the link.
		i := strings.LastIndexByte(p, filepath.Separator)
		if i <= 0 {
			return "", false
		}
		base := p[i+1:]
		if base == ".." {
			return "", false
		}
		if base != "" && base != "." {
			missing = append(missing, base)
		}
		p = p[:i]
	}
}

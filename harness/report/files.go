package report

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Bounds of a record's base name (RecordName): with the hash, the line
// and an extension it stays well under the 255 bytes a file name may have.
const (
	maxFeaturePart = 100
	maxNamePart    = 80
	hashLen        = 16 // hex digits of sha256(feature ":" line)
)

var (
	unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
	// plainFeature is a feature path whose name maps back: components of
	// letters, digits, dots and underscores (no "-"), starting with a
	// letter or digit, the last and only the last ending in .feature.
	plainFeature = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._]*/)*[A-Za-z0-9][A-Za-z0-9._]*\.feature$`)
	// hashedTail is how a hashed name ends; a plain name never does.
	hashedTail = regexp.MustCompile(`-h[0-9a-f]{16}$`)
)

// RecordName is the base name, without extension, of a scenario's record
// files (OUT/timelines/NAME.json and NAME.txt): the whole feature path,
// the line and the scenario's name, each "/" and run of characters other
// than letters, digits, ".", "_" and "-" turned into "-", such as
// "features-upgrade.feature-19-The-upgrade-keeps-the-data".
//
// Two different feature paths or lines never get the same name: when the
// mapping could lose that (a "-" or another character mapped in the
// feature path, a feature not ending in .feature, a part cut to its bound)
// the name ends in "-h" and 16 hex digits of the sha256 of FEATURE:LINE
// instead. The name is at most about 200 bytes.
func RecordName(feature string, line int, name string) string {
	f := strings.TrimLeft(unsafeName.ReplaceAllString(feature, "-"), "-.")
	n := strings.Trim(unsafeName.ReplaceAllString(name, "-"), "-")
	lossy := line < 1 || !plainFeature.MatchString(feature) || strings.Contains(strings.TrimSuffix(feature, ".feature"), ".feature/")
	if len(f) > maxFeaturePart {
		f, lossy = f[:maxFeaturePart], true
	}
	if len(n) > maxNamePart {
		n, lossy = strings.TrimRight(n[:maxNamePart], "-"), true
	}
	base := f + "-" + strconv.Itoa(line)
	if n != "" {
		base += "-" + n
	}
	if lossy || hashedTail.MatchString(base) {
		sum := sha256.Sum256([]byte(feature + ":" + strconv.Itoa(line)))
		base += "-h" + hex.EncodeToString(sum[:])[:hashLen]
	}
	return base
}

// WriteFileAtomic writes data to path as os.WriteFile does (perm before
// the umask), but through a temporary file beside it renamed into place:
// a reader sees the old file or the new one, never half of one, and a
// failed write leaves nothing behind. The last element of path may be a
// link; it is replaced, not followed.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer root.Close()
	if err := writeAtomic(root, filepath.Base(path), data, perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeAtomic writes data to a temporary file beside name, under root,
// and renames it into place.
func writeAtomic(root *os.Root, name string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(filepath.FromSlash(name))
	tmp := filepath.Join(dir, "."+base+"."+rand.Text()[:12]+".tmp")
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	err = errors.Join(err, f.Close())
	if err == nil {
		err = root.Rename(tmp, filepath.FromSlash(name))
	}
	if err != nil {
		root.Remove(tmp)
	}
	return err
}

// Digest identifies a set of scenarios: the sha256, in hex, of their keys
// (FEATURE:LINE) sorted and joined by newlines. Shards of one run share it.
func Digest(keys []string) string {
	sorted := slices.Clone(keys)
	sort.Strings(sorted)
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	return hex.EncodeToString(sum[:])
}

// ParseShard reads "I/N", one shard of N: decimal digits only, no sign,
// space or leading zero, 1 <= I <= N. "" is an error too; an unsharded run
// has no shard to parse. I and N have at most maxShardDigits digits; past
// that the error says so.
func ParseShard(s string) (index, count int, err error) {
	is, ns, ok := strings.Cut(s, "/")
	if ok && decimal(is) && decimal(ns) {
		index, _ = strconv.Atoi(is)
		count, _ = strconv.Atoi(ns)
		if index >= 1 && index <= count {
			return index, count, nil
		}
	}
	if ok {
		for _, p := range []struct{ name, digits string }{{"I", is}, {"N", ns}} {
			if len(p.digits) > maxShardDigits && digitsOnly(p.digits) && p.digits[0] != '0' {
				return 0, 0, fmt.Errorf("shard %q: %s has %d digits, more than the %d a shard number may have", s, p.name, len(p.digits), maxShardDigits)
			}
		}
	}
	return 0, 0, fmt.Errorf("shard %q: want I/N with 1 <= I <= N", s)
}

// maxShardDigits bounds the digits of I and N in "I/N": the numbers fit
// an int anywhere, and no nightly has a billion workers.
const maxShardDigits = 9

// decimal is a number of at most maxShardDigits digits without a leading
// zero.
func decimal(s string) bool {
	return s != "" && len(s) <= maxShardDigits && s[0] != '0' && digitsOnly(s)
}

// digitsOnly reports whether s is ASCII digits only.
func digitsOnly(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

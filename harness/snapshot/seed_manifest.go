package snapshot

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rehearse/rehearse/harness/env"
)

// seedManifestFile is the manifest in a cache volume, as a helper sees it:
// written last, after the copy checked out. Its lines (names quoted with
// strconv.Quote, so that no name can start a line of its own):
//
//	key HEX
//	manifest ENTRIES BYTES SHA256       (as restoreCopyScript prints it)
//	load NANOSECONDS
//	rows "TABLE" N                      (each generated table, as Load names it)
//	table "DATABASE" "SCHEMA" "NAME" ROWS CHECKSUM
//	                                    (the loaded database's data fingerprint
//	                                    without keys under seedFixedSeed)
const seedManifestFile = env.HelperSparePath + "/manifest"

// Exit codes of the cache's helper scripts, beside restoreBackScript's
// (restoreBackDamaged: the cached copy is damaged or does not match its
// manifest, the entry goes; restoreBackUntouched: another failure before
// the swap, such as no space, the entry stays).
const (
	seedExitIncomplete = 11 // no manifest: the store did not finish (or the entry went)
	seedExitOtherKey   = 12 // the manifest is for another key, or has no copy line
)

// The markers around the manifest in a helper's output.
const (
	seedManifestBegin = "--- rehearse seed manifest"
	seedManifestEnd   = "--- end of manifest"
)

// seedReadScript prints a cache volume's manifest between the markers,
// or exits 11 when it has none. It mounts only the cache volume (read-only):
// nothing is stopped to ask.
const seedReadScript = `set -u
m=` + seedManifestFile + `
[ -f "$m" ] || { echo "incomplete: no manifest (the store that made it did not finish)" >&2; exit 11; }
echo '` + seedManifestBegin + `'
cat "$m" || exit 12
echo
echo '` + seedManifestEnd + `'
`

// seedBackScript restores a cached state: it reads the volume's manifest
// (exit 11 when there is none; 12 when it is for another key or has no
// copy line: the data directory untouched), prints it between the
// markers, and runs restoreBackScript with its figures. Arguments: the
// data directory, the cached copy, the data volume's root, the key.
const seedBackScript = `set -u
m=` + seedManifestFile + `
[ -f "$m" ] || { echo "incomplete: no manifest (the store that made it did not finish)" >&2; exit 11; }
k=$(sed -n 's/^key //p' "$m")
[ "$k" = "$4" ] || { echo "its manifest is for key $k" >&2; exit 12; }
l=$(sed -n 's/^manifest \([0-9][0-9]*\) \([0-9][0-9]*\) \([0-9a-f]\{64\}\)$/\1 \2 \3/p' "$m")
[ -n "$l" ] && [ "$(printf '%s\n' "$l" | wc -l)" -eq 1 ] || { echo "its manifest has no single copy manifest line" >&2; exit 12; }
echo '` + seedManifestBegin + `'
cat "$m"
echo
echo '` + seedManifestEnd + `'
set -- "$1" "$2" "$3" $l
` + restoreBackScript

// seedManifest is what a cached state records.
type seedManifest struct {
	key    string
	copy   restoreManifest
	load   time.Duration
	rows   map[string]int64 // generated rows per table
	tables []seedTableSum   // the loaded database's fingerprint
}

// seedTableSum is one table of a fingerprint: what a hit compares.
type seedTableSum struct {
	Database, Schema, Name string
	Rows                   int64
	Checksum               string
}

func (t seedTableSum) String() string { return dataName(t.Schema, t.Name) }

// seedTableSums are the per-table figures of a print.
func seedTableSums(p *DataPrint) []seedTableSum {
	var out []seedTableSum
	for _, t := range p.Tables {
		out = append(out, seedTableSum{Database: p.Database, Schema: t.Schema, Name: t.Name, Rows: t.Rows, Checksum: t.Checksum})
	}
	return out
}

// String is the manifest's text.
func (m *seedManifest) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "key %s\nmanifest %d %d %s\nload %d\n", m.key, m.copy.entries, m.copy.bytes, m.copy.control, int64(m.load))
	for _, t := range slices.Sorted(maps.Keys(m.rows)) {
		fmt.Fprintf(&b, "rows %s %d\n", strconv.Quote(t), m.rows[t])
	}
	for _, t := range m.tables {
		fmt.Fprintf(&b, "table %s %s %s %d %s\n", strconv.Quote(t.Database), strconv.Quote(t.Schema), strconv.Quote(t.Name), t.Rows, t.Checksum)
	}
	return b.String()
}

// seedParseManifest reads a manifest from a helper's output: the text
// between the markers when they are there, else all of it. An unknown or
// malformed line fails it: a manifest this version did not write is no
// manifest to trust.
func seedParseManifest(out string) (*seedManifest, error) {
	if _, after, ok := strings.Cut(out, seedManifestBegin+"\n"); ok {
		body, _, ok := strings.Cut(after, seedManifestEnd)
		if !ok {
			return nil, errors.New("the cached state's manifest: cut short (no end marker)")
		}
		out = body
	}
	m := &seedManifest{rows: map[string]int64{}}
	var haveKey, haveCopy, haveLoad bool
	for _, l := range strings.Split(out, "\n") {
		if l == "" {
			continue
		}
		bad := func(err error) (*seedManifest, error) {
			return nil, fmt.Errorf("the cached state's manifest: line %q: %w", l, err)
		}
		word, rest, _ := strings.Cut(l, " ")
		switch word {
		case "key":
			if haveKey || !cacheKeyOK(rest) {
				return bad(errors.New("not one hex key"))
			}
			m.key, haveKey = rest, true
		case "manifest":
			c, err := restoreParseManifest(l)
			if haveCopy || err != nil || fmt.Sprintf("manifest %d %d %s", c.entries, c.bytes, c.control) != l {
				return bad(errors.New("not one copy manifest"))
			}
			m.copy, haveCopy = c, true
		case "load":
			n, err := strconv.ParseInt(rest, 10, 64)
			if haveLoad || err != nil || n < 0 {
				return bad(errors.New("not one load time in nanoseconds"))
			}
			m.load, haveLoad = time.Duration(n), true
		case "rows":
			f, err := seedFields(rest, 1)
			if err == nil && (len(f.nums) != 1 || f.nums[0] < 0 || strconv.FormatInt(f.nums[0], 10) != f.raw[0]) {
				err = errors.New("not one count")
			}
			if err != nil {
				return bad(fmt.Errorf("want rows \"TABLE\" N: %v", err))
			}
			if _, dup := m.rows[f.names[0]]; dup {
				return bad(errors.New("a table named twice"))
			}
			m.rows[f.names[0]] = f.nums[0]
		case "table":
			f, err := seedFields(rest, 3)
			if err == nil && (len(f.nums) != 2 || f.nums[0] < 0 || strconv.FormatInt(f.nums[0], 10) != f.raw[0]) {
				err = errors.New("not a count and a checksum")
			}
			if err != nil {
				return bad(fmt.Errorf("want table \"DATABASE\" \"SCHEMA\" \"NAME\" ROWS CHECKSUM: %v", err))
			}
			m.tables = append(m.tables, seedTableSum{Database: f.names[0], Schema: f.names[1], Name: f.names[2], Rows: f.nums[0], Checksum: f.raw[1]})
		default:
			return bad(errors.New("unknown line"))
		}
	}
	if !haveKey || !haveCopy || !haveLoad {
		return nil, errors.New("the cached state's manifest: no key, copy manifest or load line")
	}
	return m, nil
}

var cacheKeyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func cacheKeyOK(s string) bool { return cacheKeyRE.MatchString(s) }

// seedLineFields is a manifest line's quoted names, then its numbers
// (as text in raw, parsed in nums).
type seedLineFields struct {
	names []string
	raw   []string
	nums  []int64
}

// seedChecksumRE is a fingerprint's checksum: a decimal numeric, any size.
var seedChecksumRE = regexp.MustCompile(`^-?[0-9]{1,80}$`)

// seedFields reads n quoted names, then space-separated decimal integers
// (a checksum's sum may exceed int64: its nums entry is then 0, its raw
// text checked by the caller).
func seedFields(s string, n int) (seedLineFields, error) {
	var f seedLineFields
	for range n {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return f, err
		}
		name, _ := strconv.Unquote(q)
		f.names = append(f.names, name)
		s = s[len(q):]
		var ok bool
		if s, ok = strings.CutPrefix(s, " "); !ok {
			return f, errors.New("no space after a name")
		}
	}
	for _, w := range strings.Split(s, " ") {
		if !seedChecksumRE.MatchString(w) {
			return f, fmt.Errorf("%q is not a decimal number", w)
		}
		v, _ := strconv.ParseInt(w, 10, 64)
		f.raw = append(f.raw, w)
		f.nums = append(f.nums, v)
	}
	return f, nil
}

// seedCompareSums names each table whose rows or checksum differ from
// the recorded ones, and each one missing or added.
func seedCompareSums(want, got []seedTableSum) []string {
	key := func(t seedTableSum) string { return t.Database + "\x00" + t.Schema + "\x00" + t.Name }
	gm := map[string]seedTableSum{}
	for _, t := range got {
		gm[key(t)] = t
	}
	var bad []string
	for _, w := range want {
		g, ok := gm[key(w)]
		delete(gm, key(w))
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s: %s is missing", w.Database, w))
		case g.Rows != w.Rows:
			bad = append(bad, fmt.Sprintf("%s: %s has %d rows, the cached state recorded %d", w.Database, w, g.Rows, w.Rows))
		case g.Checksum != w.Checksum:
			bad = append(bad, fmt.Sprintf("%s: %s has other rows than the cached state recorded (checksum %s, want %s)", w.Database, w, g.Checksum, w.Checksum))
		}
	}
	for _, t := range got {
		if _, ok := gm[key(t)]; ok {
			bad = append(bad, fmt.Sprintf("%s: %s is not in the cached state's record", t.Database, t))
		}
	}
	return bad
}

package upgrade

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz corpus seeds of the hostile packages in testdata/fuzz")

// chainToRoot is the reproduced attack: each link's own text stays inside,
// but resolved in turn they climb to / and the manifest is /etc/passwd.
func chainToRoot() []member {
	ms := []member{dir("a"), symlink("a/b", ".."), symlink("l0", "a/b/..")}
	for i := 1; i <= 15; i++ {
		ms = append(ms, symlink(fmt.Sprintf("l%d", i), fmt.Sprintf("l%d/..", i-1)))
	}
	return append(ms, symlink(ManifestFile, "l15/etc/passwd"))
}

// hostile are packages built to get out or to exhaust; each is refused
// naming entry, with reason in the error, in every format it can be built
// in, and is a seed of the fuzz corpus in its archive formats (file name:
// name).
// hostileCase is a package built to get out or to exhaust.
type hostileCase struct {
	name          string
	members       []member
	formats       string
	entry, reason string
}

// rawHostile builds by hand the archives of the cases that members cannot
// describe (their one format).
var rawHostile = map[string]func(testing.TB) []byte{"overlapping-entries": overlappingZip}

var hostile = []hostileCase{
	{"slip", []member{file("ok.txt", "ok"), file("../../evil.sh", "pwned")}, "zip tgz", "../../evil.sh", "escapes"},
	{"slip-backslash", []member{file(`..\..\evil.sh`, "pwned")}, "zip tgz", `..\..\evil.sh`, "escapes"},
	{"absolute-path", []member{file("/tmp/evil.sh", "pwned")}, "zip tgz", "/tmp/evil.sh", "absolute"},
	{"nul-in-name", []member{file("a\x00b", "x")}, "zip", "a\x00b", "NUL"},
	{"link-out", []member{symlink("etc", "../../../etc")}, "zip tgz dir", "etc", "outside the workspace"},
	{"abs-link", []member{symlink("bin/passwd", "/etc/passwd")}, "zip tgz dir", "bin/passwd", "absolute"},
	{"link-chain-to-root", chainToRoot(), "zip tgz dir", "l0", "outside the workspace"},
	{"link-chain-dangling", []member{dir("a"), symlink("a/b", ".."), symlink("d", "a/b/nosuch/../..")},
		"zip tgz dir", "d", "outside the workspace"},
	{"write-through-link", []member{dir("a"), symlink("a/b", ".."), symlink("l0", "a/b/.."), file("l0/evil.sh", "pwned")},
		"zip tgz", "l0/evil.sh", "through the link"},
	{"link-loop", []member{symlink("x", "y"), symlink("y", "x")}, "zip tgz dir", "x", "links loop"},
	{"block-device", []member{special("dev/sda", tar.TypeBlock)}, "zip tgz", "dev/sda", "block device"},
	{"char-device", []member{special("dev/mem", tar.TypeChar)}, "zip tgz", "dev/mem", "character device"},
	{"fifo", []member{special("pipe", tar.TypeFifo)}, "zip tgz dir", "pipe", "fifo"},
	{"hardlink-out", []member{hardlink("shadow", "../outside/shadow")}, "tgz dir", "shadow", "outside"},
	{"hardlink-to-link", []member{file("a.txt", "a"), symlink("l", "a.txt"), hardlink("h", "l")}, "tgz", "h", "not a file earlier"},
	{"duplicate", []member{file(ManifestFile, "steps: []\n"), file(ManifestFile, "x")}, "zip tgz", ManifestFile, "already in the package"},
	{"bomb", []member{file("zeros.bin", strings.Repeat("\x00", 2<<20))}, "zip tgz", "zeros.bin", "zip bomb"},
	{"too-many-entries", manyFiles(30), "zip tgz dir", "f20", "more than 20 entries"},
	// Each name is walked component by component: a 151-byte tgz with
	// this one name took 9.7 s to open, 8 minutes at 16,000 components.
	{"deep-name", []member{file(strings.Repeat("a/", 500)+"f", "x")}, "zip tgz", strings.Repeat("a/", 500) + "f", "over the limit of 16 (Limits.Depth)"},
	{"deep-dir", []member{file(strings.Repeat("d/", 99)+"f", "x")}, "dir", strings.Repeat("d/", 16) + "d", "over the limit of 16 (Limits.Depth)"},
	{"long-name", []member{file(strings.Repeat("n", 5000), "x")}, "zip tgz", strings.Repeat("n", 5000), "over the limit of 1024 (Limits.NameBytes)"},
	{"deep-link", []member{symlink("l", strings.Repeat("a/", 100)+"f")}, "zip tgz dir", "l", "link target has 101 components"},
	{"long-link", []member{symlink("l", strings.Repeat("t", 5000))}, "zip tgz", "l", "over the limit of 1024 (Limits.NameBytes)"},
	{"deep-hardlink", []member{hardlink("h", strings.Repeat("a/", 100)+"f")}, "tgz", "h", "has 101 components"},
	{"overlapping-entries", nil, "zip", "f01", "zip bomb"},
}

// overlappingZip is David Fifield's zip bomb, simply: many central
// directory entries share one compressed body, each within the ratio of its
// declared compressed size, together far past the archive's.
func overlappingZip(t testing.TB) []byte {
	var body bytes.Buffer
	fw, err := flate.NewWriter(&body, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 100_000)
	if _, err := fw.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	crc := crc32.ChecksumIEEE(plain)
	const declared = 1024 // compressed size each entry claims: the body and what follows it
	var b bytes.Buffer
	w := func(vs ...any) {
		for _, v := range vs {
			if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	w(uint32(0x04034b50), uint16(20), uint16(0), uint16(zip.Deflate), uint32(0), crc, uint32(declared), uint32(len(plain)), uint16(3), uint16(0))
	b.WriteString("f00")
	b.Write(body.Bytes())
	dirAt := b.Len()
	const n = 19
	for i := range n {
		w(uint32(0x02014b50), uint16(20), uint16(20), uint16(0), uint16(zip.Deflate), uint32(0), crc, uint32(declared), uint32(len(plain)),
			uint16(3), uint16(0), uint16(0), uint16(0), uint16(0), uint32(0), uint32(0))
		fmt.Fprintf(&b, "f%02d", i)
	}
	w(uint32(0x06054b50), uint16(0), uint16(0), uint16(n), uint16(n), uint32(b.Len()-dirAt), uint32(dirAt), uint16(0))
	return b.Bytes()
}

// source builds the case's package in format.
func (c hostileCase) source(t testing.TB, format string) string {
	t.Helper()
	if raw := rawHostile[c.name]; raw != nil {
		return writeArchive(t, t.TempDir(), "p."+format, raw(t))
	}
	return makeSource(t, format, c.members...)
}

func manyFiles(n int) []member {
	var ms []member
	for i := range n {
		ms = append(ms, file(fmt.Sprintf("f%02d", i), "x"))
	}
	return ms
}

// hostileLimits are the limits the hostile cases are refused under.
var hostileLimits = Limits{Entries: 20, TotalBytes: 1 << 30, Ratio: 100, NameBytes: 1024, Depth: 16}

// TestOpenRefusesDeepName: the reported 151-byte tgz whose one entry is
// 2,000 directories deep (9.7 s to open before the limits) is refused under the
// default limits (Limits.Depth).
func TestOpenRefusesDeepName(t *testing.T) {
	name := strings.Repeat("a/", 2000) + "f"
	src := makeSource(t, "tgz", file(name, "x"))
	p, err := Open(src)
	if err == nil {
		p.Close()
		t.Fatal("opened")
	}
	assertRefused(t, err, src, name, "over the limit of 64 (Limits.Depth)")
}

func TestOpenRefusesHostilePackages(t *testing.T) {
	for _, c := range hostile {
		for _, format := range strings.Fields(c.formats) {
			t.Run(c.name+"/"+format, func(t *testing.T) {
				src := c.source(t, format)
				parent := t.TempDir()
				ws := filepath.Join(parent, "ws")
				p, err := Open(src, WithWorkspace(ws), WithLimits(hostileLimits))
				if err == nil {
					p.Close()
					t.Fatal("opened")
				}
				t.Log(err)
				assertRefused(t, err, src, c.entry, c.reason)
				assertEmpty(t, parent)
				for _, m := range c.members {
					landed := filepath.Join(ws, strings.ReplaceAll(m.name, `\`, "/"))
					if filepath.IsAbs(m.name) {
						landed = m.name
					}
					if data, err := os.ReadFile(landed); err == nil && string(data) == "pwned" {
						t.Errorf("wrote outside the workspace: %s", landed)
					}
				}
			})
		}
	}
}

func assertRefused(t testing.TB, err error, src, entry, reason string) {
	t.Helper()
	var ee *EntryError
	if !errors.As(err, &ee) || !errors.Is(err, ErrUnsafe) {
		t.Fatalf("Open = %v, want an EntryError", err)
	}
	if ee.Entry != entry || !strings.Contains(ee.Reason, reason) || !strings.Contains(err.Error(), src) {
		t.Errorf("error %s, want entry %s refused for %q, naming %s", shown(err.Error()), shown(entry), reason, src)
	}
	if len(err.Error()) > 1000 {
		t.Errorf("error of %d bytes: a long name is shown cut", len(err.Error()))
	}
	assertNoHostContent(t, err.Error())
}

// assertNoHostContent fails if text shows any line of the host's /etc/passwd.
func assertNoHostContent(t testing.TB, text string) {
	t.Helper()
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if name, _, ok := strings.Cut(line, ":"); (ok && strings.Contains(text, name+":x:")) || (line != "" && strings.Contains(text, line)) {
			t.Fatalf("host content in %q", text)
		}
	}
	if strings.Contains(text, "root:") {
		t.Fatalf("host content in %q", text)
	}
}

var fuzzTarget = map[string]string{"zip": "FuzzOpenZip", "tgz": "FuzzOpenTgz"}

// TestFuzzSeedsAreHostile: every hostile archive is a seed of the fuzz
// corpus, and each seed there still is that case (go test -update-seeds
// writes them).
func TestFuzzSeedsAreHostile(t *testing.T) {
	for _, c := range hostile {
		for _, format := range strings.Fields(c.formats) {
			if fuzzTarget[format] == "" {
				continue
			}
			t.Run(c.name+"/"+format, func(t *testing.T) {
				seed := filepath.Join("testdata", "fuzz", fuzzTarget[format], c.name)
				if *updateSeeds {
					archive, err := os.ReadFile(c.source(t, format))
					if err != nil {
						t.Fatal(err)
					}
					text := "go test fuzz v1\n[]byte(" + strconv.Quote(string(archive)) + ")\n"
					if err := os.WriteFile(seed, []byte(text), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				data := readSeed(t, seed)
				src := writeArchive(t, t.TempDir(), "seed."+format, data)
				parent := t.TempDir()
				p, err := Open(src, WithWorkspace(filepath.Join(parent, "ws")), WithLimits(hostileLimits))
				if err == nil {
					p.Close()
					t.Fatalf("seed %s opened", seed)
				}
				assertRefused(t, err, src, c.entry, c.reason)
				assertEmpty(t, parent)
			})
		}
	}
}

// readSeed reads a one-value fuzz corpus file of []byte.
func readSeed(t testing.TB, path string) []byte {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run TestFuzzSeedsAreHostile -update-seeds writes it)", err)
	}
	header, value, _ := strings.Cut(strings.TrimSpace(string(text)), "\n")
	literal, ok := strings.CutPrefix(value, "[]byte(")
	if literal, ok2 := strings.CutSuffix(literal, ")"); header == "go test fuzz v1" && ok && ok2 {
		if s, err := strconv.Unquote(literal); err == nil {
			return []byte(s)
		}
	}
	t.Fatalf("%s: not a go test fuzz v1 file of one []byte", path)
	return nil
}

// fuzzOpen opens arbitrary bytes as an archive: it may refuse, but shows no
// host content, leaves nothing behind, and what it accepts stays inside
// the workspace.
func fuzzOpen(t *testing.T, name string, data []byte) {
	parent := t.TempDir()
	src := writeArchive(t, t.TempDir(), name, data)
	ws := filepath.Join(parent, "ws")
	p, err := Open(src, WithWorkspace(ws), WithLimits(Limits{Entries: 50, TotalBytes: 1 << 20, Ratio: 50}))
	if err != nil {
		assertNoHostContent(t, err.Error())
		assertEmpty(t, parent)
		return
	}
	defer p.Close()
	real, err := filepath.EvalSymlinks(ws)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(ws, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type() == fs.ModeSymlink:
			target, err := filepath.EvalSymlinks(path)
			if err == nil && !strings.HasPrefix(target, real+string(filepath.Separator)) && target != real {
				t.Fatalf("link %s resolves outside the workspace: %s", path, target)
			}
		case !d.IsDir() && !d.Type().IsRegular():
			t.Fatalf("special file %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func FuzzOpenZip(f *testing.F) {
	f.Add(makeZip(f, goodMembers("zip")...))
	f.Add(makeZip(f, symlink("a/l", "../b"), file("b", "b")))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOpen(t, "f.zip", data) })
}

func FuzzOpenTgz(f *testing.F) {
	f.Add(makeTgz(f, goodMembers("tgz")...))
	f.Add(makeTgz(f, file("a/b.txt", "b"), symlink("c", "a/b.txt")))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOpen(t, "f.tgz", data) })
}

package upgrade

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, body, link string
	mode             fs.FileMode
	typ              byte // tar type; 0: regular
}

func makeZip(t testing.TB, entries ...entry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		body := e.body
		if mode&fs.ModeSymlink != 0 {
			body = e.link
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func makeTgz(t testing.TB, entries ...entry) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Linkname: e.link, Size: int64(len(e.body))}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func writeArchive(t testing.TB, dir, name string, data []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenRefusesUnsafeEntries(t *testing.T) {
	zeros := strings.Repeat("\x00", 30<<20)
	tests := []struct {
		name, file string
		data       func(t testing.TB) []byte
		entry      string
		reason     string
	}{
		{"zip slip", "p.zip", func(t testing.TB) []byte {
			return makeZip(t, entry{name: "ok.txt", body: "ok"}, entry{name: "../../evil.sh", body: "pwned"})
		}, "../../evil.sh", "escapes"},
		{"absolute path", "p.zip", func(t testing.TB) []byte {
			return makeZip(t, entry{name: "/tmp/evil.sh", body: "pwned"})
		}, "/tmp/evil.sh", "absolute"},
		{"zip link out", "p.zip", func(t testing.TB) []byte {
			return makeZip(t, entry{name: "etc", link: "../../../etc", mode: fs.ModeSymlink | 0o777})
		}, "etc", "outside the workspace"},
		{"tar link out", "p.tgz", func(t testing.TB) []byte {
			return makeTgz(t, entry{name: "bin/passwd", link: "/etc/passwd", typ: tar.TypeSymlink})
		}, "bin/passwd", "absolute"},
		{"tar hard link out", "p.tar.gz", func(t testing.TB) []byte {
			return makeTgz(t, entry{name: "shadow", link: "../../etc/shadow", typ: tar.TypeLink})
		}, "shadow", "outside the workspace"},
		{"device file", "p.tgz", func(t testing.TB) []byte {
			return makeTgz(t, entry{name: "dev/sda", typ: tar.TypeBlock})
		}, "dev/sda", "special file"},
		{"zip bomb", "p.zip", func(t testing.TB) []byte {
			return makeZip(t, entry{name: "zeros.bin", body: zeros})
		}, "zeros.bin", "zip bomb"},
		{"tar bomb", "p.tgz", func(t testing.TB) []byte {
			return makeTgz(t, entry{name: "zeros.bin", body: zeros})
		}, "zeros.bin", "zip bomb"},
		{"too many entries", "p.zip", func(t testing.TB) []byte {
			var es []entry
			for i := 0; i < 30; i++ {
				es = append(es, entry{name: strings.Repeat("d/", i) + "f", body: "x"})
			}
			return makeZip(t, es...)
		}, "f", "more than 20 entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			src := writeArchive(t, t.TempDir(), tt.file, tt.data(t))
			ws := filepath.Join(parent, "ws")
			_, err := Open(src, WithWorkspace(ws), WithLimits(Limits{Entries: 20, TotalBytes: 1 << 30, Ratio: 100}))
			var ee *EntryError
			if !errors.As(err, &ee) || !errors.Is(err, ErrUnsafe) {
				t.Fatalf("Open = %v, want an EntryError", err)
			}
			if !strings.HasSuffix(ee.Entry, tt.entry) || !strings.Contains(err.Error(), tt.reason) || !strings.Contains(err.Error(), src) {
				t.Errorf("error %q, want entry %q and %q", err, tt.entry, tt.reason)
			}
			left, _ := os.ReadDir(parent)
			if len(left) != 0 {
				t.Errorf("left behind after a refusal: %v", left)
			}
			for _, p := range []string{"/tmp/evil.sh", filepath.Join(filepath.Dir(filepath.Dir(ws)), "evil.sh")} {
				if data, err := os.ReadFile(p); err == nil && string(data) == "pwned" {
					t.Errorf("wrote outside the workspace: %s", p)
				}
			}
		})
	}
}

func TestOpenGoodPackages(t *testing.T) {
	manifest := "name: demo\nversion: \"2.0\"\ndowntime: 5m\nservice: app\nsteps:\n  - name: one\n    command: echo one\n    timeout: 30s\n"
	files := []entry{
		{name: "upgrade.yaml", body: manifest},
		{name: "bin/run.sh", body: "#!/bin/sh\necho hi\n", mode: 0o755},
		{name: "docs/", mode: fs.ModeDir | 0o755},
		{name: "current", link: "bin/run.sh", mode: fs.ModeSymlink | 0o777},
	}
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	os.MkdirAll(filepath.Join(plain, "bin"), 0o755)
	os.WriteFile(filepath.Join(plain, "upgrade.yaml"), []byte(manifest), 0o644)
	os.WriteFile(filepath.Join(plain, "bin", "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.Symlink("bin/run.sh", filepath.Join(plain, "current"))
	tgzEntries := []entry{{name: "upgrade.yaml", body: manifest}, {name: "bin/run.sh", body: "#!/bin/sh\necho hi\n"},
		{name: "current", link: "bin/run.sh", typ: tar.TypeSymlink}}
	for _, src := range []string{
		writeArchive(t, dir, "p.zip", makeZip(t, files...)),
		writeArchive(t, dir, "p.tgz", makeTgz(t, tgzEntries...)),
		plain,
	} {
		t.Run(filepath.Base(src), func(t *testing.T) {
			p, err := Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.Manifest == nil || p.Manifest.Version != "2.0" || p.Manifest.Downtime.Minutes() != 5 || p.Manifest.Steps[0].Service != "app" {
				t.Errorf("manifest %+v", p.Manifest)
			}
			data, err := os.ReadFile(filepath.Join(p.Dir, "current"))
			if err != nil || !strings.Contains(string(data), "echo hi") {
				t.Errorf("link inside the package: %q %v", data, err)
			}
		})
	}
}

func TestManifestErrors(t *testing.T) {
	for body, want := range map[string]string{
		"steps: []\n":                                                    "at least one step",
		"steps:\n  - name: a\n    command: x\n":                          `step "a": no service`,
		"service: s\nsteps:\n  - name: a\n":                              "name and command are required",
		"service: s\nbogus: 1\nsteps:\n  - {name: a, command: x}\n":      "field bogus not found",
		"service: s\nsteps:\n  - {name: a, command: x, timeout: soon}\n": "timeout",
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, ManifestFile), []byte(body), 0o644)
		if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), ManifestFile) {
			t.Errorf("manifest %q: err %v, want %q", body, err, want)
		}
	}
}

// fuzzOpen opens arbitrary bytes as an archive: it may refuse, but whatever
// it accepts stays inside the workspace.
func fuzzOpen(t *testing.T, name string, data []byte) {
	parent := t.TempDir()
	src := writeArchive(t, t.TempDir(), name, data)
	ws := filepath.Join(parent, "ws")
	p, err := Open(src, WithWorkspace(ws), WithLimits(Limits{Entries: 50, TotalBytes: 1 << 20, Ratio: 50}))
	if err != nil {
		if left, _ := os.ReadDir(parent); len(left) != 0 {
			t.Fatalf("refused (%v) but left %v", err, left)
		}
		return
	}
	defer p.Close()
	real, _ := filepath.EvalSymlinks(ws)
	filepath.WalkDir(ws, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(path)
			if err == nil && !strings.HasPrefix(target, real+string(filepath.Separator)) && target != real {
				t.Fatalf("link %s resolves outside the workspace: %s", path, target)
			}
		}
		if !d.IsDir() && d.Type()&fs.ModeSymlink == 0 && !d.Type().IsRegular() {
			t.Fatalf("special file %s", path)
		}
		return nil
	})
}

func FuzzOpenZip(f *testing.F) {
	f.Add(makeZip(f, entry{name: "upgrade.yaml", body: "service: a\nsteps: [{name: s, command: x}]\n"}, entry{name: "a/b.txt", body: "b"}))
	f.Add(makeZip(f, entry{name: "../x", body: "x"}))
	f.Add(makeZip(f, entry{name: "l", link: "../../x", mode: fs.ModeSymlink | 0o777}))
	f.Add(makeZip(f, entry{name: "a/l", link: "../b", mode: fs.ModeSymlink | 0o777}, entry{name: "b", body: "b"}))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOpen(t, "f.zip", data) })
}

func FuzzOpenTgz(f *testing.F) {
	f.Add(makeTgz(f, entry{name: "a/b.txt", body: "b"}, entry{name: "c", link: "a/b.txt", typ: tar.TypeSymlink}))
	f.Add(makeTgz(f, entry{name: "h", link: "../../etc/passwd", typ: tar.TypeLink}))
	f.Add(makeTgz(f, entry{name: "d", typ: tar.TypeChar}))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOpen(t, "f.tgz", data) })
}

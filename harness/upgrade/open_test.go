package upgrade

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// member is one member of a package a test builds; a tar type flag says
// what it is.
type member struct {
	name, body, link string
	typ              byte        // tar type flag; 0: regular file
	mode             fs.FileMode // permission bits; 0: 0o644
}

func file(name, body string) member        { return member{name: name, body: body} }
func dir(name string) member               { return member{name: name, typ: tar.TypeDir} }
func symlink(name, to string) member       { return member{name: name, link: to, typ: tar.TypeSymlink} }
func hardlink(name, to string) member      { return member{name: name, link: to, typ: tar.TypeLink} }
func special(name string, typ byte) member { return member{name: name, typ: typ} }

func (m member) perm() fs.FileMode {
	if m.mode == 0 {
		return 0o644
	}
	return m.mode
}

func makeZip(t testing.TB, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		mode, body := m.perm(), m.body
		switch m.typ {
		case 0, tar.TypeReg:
		case tar.TypeDir:
			mode |= fs.ModeDir
		case tar.TypeSymlink:
			mode, body = mode|fs.ModeSymlink, m.link
		case tar.TypeBlock:
			mode |= fs.ModeDevice
		case tar.TypeChar:
			mode |= fs.ModeDevice | fs.ModeCharDevice
		case tar.TypeFifo:
			mode |= fs.ModeNamedPipe
		default:
			t.Fatalf("zip member %s: no zip form for tar type %q", m.name, m.typ)
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func makeTgz(t testing.TB, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range members {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: m.name, Typeflag: typ, Mode: int64(m.perm()), Linkname: m.link}
		if typ == tar.TypeReg {
			h.Size = int64(len(m.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// makeDir builds a package directory. A hard link's target is relative to
// the package; one outside it is made first, holding "secret".
func makeDir(t testing.TB, root string, members ...member) string {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(root, 0o755))
	for _, m := range members {
		p := filepath.Join(root, m.name)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		switch m.typ {
		case 0, tar.TypeReg:
			must(os.WriteFile(p, []byte(m.body), m.perm()))
		case tar.TypeDir:
			must(os.MkdirAll(p, m.perm()|0o700))
		case tar.TypeSymlink:
			must(os.Symlink(m.link, p))
		case tar.TypeLink:
			target := filepath.Join(root, m.link)
			if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
				must(os.MkdirAll(filepath.Dir(target), 0o755))
				must(os.WriteFile(target, []byte("secret"), 0o600))
			}
			must(os.Link(target, p))
		case tar.TypeFifo:
			must(syscall.Mkfifo(p, 0o644))
		default:
			t.Fatalf("directory member %s: cannot make tar type %q", m.name, m.typ)
		}
	}
	return root
}

// makeSource builds a package as a zip, a tgz or a directory in a new
// temporary directory and returns its path.
func makeSource(t testing.TB, format string, members ...member) string {
	t.Helper()
	switch format {
	case "zip":
		return writeArchive(t, t.TempDir(), "p.zip", makeZip(t, members...))
	case "tgz":
		return writeArchive(t, t.TempDir(), "p.tgz", makeTgz(t, members...))
	case "dir":
		return makeDir(t, filepath.Join(t.TempDir(), "pkg"), members...)
	}
	t.Fatalf("unknown format %q", format)
	return ""
}

func writeArchive(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// assertEmpty fails unless dir exists and holds nothing.
func assertEmpty(t testing.TB, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("check %s is empty: %v", dir, err)
	}
	if len(left) != 0 {
		t.Errorf("left behind in %s: %v", dir, left)
	}
}

const goodManifest = "name: demo\nversion: \"2.0\"\ndowntime: 5m\nservice: app\nsteps:\n  - name: one\n    command: echo one\n    timeout: 30s\n"

// goodMembers is a package with links that stay inside it: through
// parent directories, a chain, a dangling one and a hard link (tgz, dir).
func goodMembers(format string) []member {
	ms := []member{
		file("upgrade.yaml", goodManifest),
		{name: "bin/run.sh", body: "#!/bin/sh\necho hi\n", mode: 0o755},
		dir("docs"),
		symlink("current", "bin/run.sh"),
		symlink("lib/tool", "../bin/../current"),
		symlink("stable", "lib/tool"),
		symlink("later", "not/made/yet"),
	}
	if format != "zip" {
		ms = append(ms, hardlink("bin/run-again.sh", "bin/run.sh"))
	}
	return ms
}

func TestOpenGoodPackages(t *testing.T) {
	for _, format := range []string{"zip", "tgz", "dir"} {
		t.Run(format, func(t *testing.T) {
			src := makeSource(t, format, goodMembers(format)...)
			p, err := Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if m := p.Manifest(); m == nil || m.Version != "2.0" || m.Downtime.Minutes() != 5 || m.Steps[0].Service != "app" {
				t.Errorf("manifest %+v", m)
			}
			for _, name := range []string{"current", "stable", "bin/run-again.sh"} {
				if name == "bin/run-again.sh" && format == "zip" {
					continue
				}
				data, err := os.ReadFile(filepath.Join(p.Dir(), name))
				if err != nil || !strings.Contains(string(data), "echo hi") {
					t.Errorf("%s inside the package: %q %v", name, data, err)
				}
			}
			if target, err := os.Readlink(filepath.Join(p.Dir(), "later")); err != nil || target != "not/made/yet" {
				t.Errorf("dangling link inside the package: %q %v", target, err)
			}
			want, _ := os.ReadFile(src) // a directory: nil
			if !bytes.Equal(p.archive, want) || (format == "dir") != (p.archive == nil) {
				t.Errorf("archive bytes: %d held, want the %d bytes of %s", len(p.archive), len(want), src)
			}
		})
	}
}

// TestOpenGitArchive: git archive writes a global pax header (the commit);
// it is skipped, not refused as a special file.
func TestOpenGitArchive(t *testing.T) {
	repo := makeDir(t, filepath.Join(t.TempDir(), "repo"), file(ManifestFile, goodManifest), file("bin/run.sh", "echo hi\n"))
	git := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return out
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "package")
	src := writeArchive(t, t.TempDir(), "p.tar.gz", git("archive", "--format=tar.gz", "HEAD"))
	p, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if m := p.Manifest(); m == nil || m.Version != "2.0" {
		t.Errorf("manifest %+v", m)
	}
	if _, err := os.Stat(filepath.Join(p.Dir(), "pax_global_header")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the global header was unpacked: %v", err)
	}
}

// TestManifestIsACopy: what a caller does to the manifest it was given does
// not change what Apply runs.
func TestManifestIsACopy(t *testing.T) {
	p, err := Open(makeSource(t, "dir", file(ManifestFile, goodManifest)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	m := p.Manifest()
	m.Steps[0].Command, m.Name = "rm -rf /", "other"
	if again := p.Manifest(); again.Steps[0].Command != "echo one" || again.Name != "demo" {
		t.Errorf("manifest changed through a copy: %+v", again)
	}
}

func TestManifestErrors(t *testing.T) {
	for body, want := range map[string]string{
		"steps: []\n":                                                    "at least one step",
		"steps:\n  - name: a\n    command: x\n":                          `step "a": no service`,
		"service: s\nsteps:\n  - name: a\n":                              "name and command are required",
		"service: s\nbogus: 1\nsteps:\n  - {name: a, command: x}\n":      "field bogus not found",
		"service: s\nsteps:\n  - {name: a, command: x, timeout: soon}\n": "timeout",
		"#" + strings.Repeat(" ", maxManifestBytes):                      "more than 1048576 bytes",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), ManifestFile) {
			t.Errorf("manifest %q: err %v, want %q", body, err, want)
		}
	}
}

// TestReadManifestStaysInRoot: even where every check before it were
// missed, the manifest is read through the root and a link cannot show a
// host file.
func TestReadManifestStaysInRoot(t *testing.T) {
	for name, members := range map[string][]member{
		"absolute link": {symlink(ManifestFile, "/etc/passwd")},
		"link chain":    chainToRoot(),
	} {
		t.Run(name, func(t *testing.T) {
			ws := makeDir(t, filepath.Join(t.TempDir(), "ws"), members...)
			root, err := os.OpenRoot(ws)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			m, err := readManifest(root)
			if err == nil {
				t.Fatalf("read a manifest through a link out of the workspace: %+v", m)
			}
			assertNoHostContent(t, err.Error())
		})
	}
}

func TestWithWorkspace(t *testing.T) {
	good := makeSource(t, "zip", goodMembers("zip")...)
	bad := makeSource(t, "zip", chainToRoot()...)
	t.Run("refuses a non-empty directory", func(t *testing.T) {
		ws := t.TempDir()
		keep := filepath.Join(ws, "keep.txt")
		if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := Open(good, WithWorkspace(ws))
		if err == nil {
			p.Close()
			t.Fatal("Open into a non-empty directory succeeded")
		}
		if !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "keep.txt") {
			t.Errorf("error %q, want it to say the directory is not empty", err)
		}
		if data, err := os.ReadFile(keep); err != nil || string(data) != "mine" {
			t.Errorf("the directory's file after a refusal: %q %v", data, err)
		}
	})
	t.Run("refuses a file", func(t *testing.T) {
		ws := writeArchive(t, t.TempDir(), "f", []byte("x"))
		if _, err := Open(good, WithWorkspace(ws)); err == nil {
			t.Fatal("Open into a file succeeded")
		}
		if data, err := os.ReadFile(ws); err != nil || string(data) != "x" {
			t.Errorf("the file after a refusal: %q %v", data, err)
		}
	})
	for _, src := range []string{good, bad} {
		name := map[string]string{good: "opened and closed", bad: "refused"}[src]
		t.Run("missing, "+name+": all it made is removed", func(t *testing.T) {
			base := t.TempDir()
			ws := filepath.Join(base, "made", "for", "ws")
			p, err := Open(src, WithWorkspace(ws))
			if (err == nil) != (src == good) {
				t.Fatalf("Open = %v", err)
			}
			if err == nil {
				if _, err := os.Stat(filepath.Join(ws, ManifestFile)); err != nil {
					t.Fatalf("not unpacked into the workspace: %v", err)
				}
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				if err := p.Close(); err != nil {
					t.Errorf("second Close: %v", err)
				}
			}
			assertEmpty(t, base)
		})
		t.Run("empty, "+name+": what others add meanwhile stays", func(t *testing.T) {
			ws := t.TempDir()
			p, err := Open(src, WithWorkspace(ws))
			if (err == nil) != (src == good) {
				t.Fatalf("Open = %v", err)
			}
			if err != nil {
				return
			}
			theirs := filepath.Join(ws, "theirs.txt")
			if err := os.WriteFile(theirs, []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if left, err := os.ReadDir(ws); err != nil || len(left) != 1 || left[0].Name() != "theirs.txt" {
				t.Errorf("after Close the workspace holds %v (%v), want only theirs.txt", left, err)
			}
		})
		t.Run("empty, "+name+": kept, emptied", func(t *testing.T) {
			ws := t.TempDir()
			p, err := Open(src, WithWorkspace(ws))
			if (err == nil) != (src == good) {
				t.Fatalf("Open = %v", err)
			}
			if err == nil {
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
			}
			assertEmpty(t, ws)
		})
	}
}

// TestOpenLeavesNothingBehind: the default workspace is a new temporary
// directory; a refusal, a failure after unpacking, and Close remove it.
func TestOpenLeavesNothingBehind(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	for name, open := range map[string]func() (*Package, error){
		"refused entry": func() (*Package, error) { return Open(makeSource(t, "tgz", chainToRoot()...)) },
		"bad manifest":  func() (*Package, error) { return Open(makeSource(t, "tgz", file(ManifestFile, "steps: []\n"))) },
		"over the size": func() (*Package, error) {
			return Open(makeSource(t, "zip", file("big", strings.Repeat("x", 200))), WithLimits(Limits{ArchiveBytes: 100}))
		},
	} {
		if p, err := open(); err == nil {
			p.Close()
			t.Errorf("%s: opened", name)
		}
		assertEmpty(t, tmp)
	}
	p, err := Open(makeSource(t, "tgz", goodMembers("tgz")...))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(p.Dir()) != tmp {
		t.Fatalf("workspace %s, want one in %s", p.Dir(), tmp)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, tmp)
}

func TestOpenArchiveLimit(t *testing.T) {
	src := makeSource(t, "zip", file("big", strings.Repeat("x", 200)))
	_, err := Open(src, WithLimits(Limits{ArchiveBytes: 100}))
	if err == nil || !strings.Contains(err.Error(), "Limits.ArchiveBytes") || !strings.Contains(err.Error(), src) {
		t.Errorf("Open = %v, want a refusal over Limits.ArchiveBytes naming %s", err, src)
	}
}

func TestOpenOptionErrors(t *testing.T) {
	src := makeSource(t, "zip", goodMembers("zip")...)
	for name, opt := range map[string]OpenOption{
		"negative limit":  WithLimits(Limits{Entries: -1}),
		"empty workspace": WithWorkspace(""),
	} {
		if p, err := Open(src, opt); err == nil {
			p.Close()
			t.Errorf("%s: opened", name)
		}
	}
}

// TestOpenRefusesSpecialSource: a fifo named like an archive is refused,
// not opened (which would block until someone writes to it).
func TestOpenRefusesSpecialSource(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "p.zip")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Open(fifo)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Open = %v, want a refusal of a fifo", err)
		}
	case <-time.After(5 * time.Second):
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil { // unblock it
			w.Close()
		}
		t.Fatal("Open blocked on a fifo")
	}
}

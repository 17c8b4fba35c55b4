package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/singleflight"
)

// The Go build memo. Every environment start checks its images, and a Go
// pack's input digest is the sha256 of its binaries: without the memo each
// check compiles every Go program again (about a CPU-second each) even when
// the image is cached. The memo builds each program at most once per
// process for unchanged inputs.
//
// It keys on everything the go command reads to make the binary: the go
// tool named, the main package's absolute directory, the ldflags, the
// target (CGO_ENABLED=0, GOOS=linux, GOARCH), and the process's GO* and
// CGO_* variables and PATH. A build is reused only while a fingerprint of
// the inputs that can change on disk still holds, recomputed (stat only,
// no go command) on every use:
//
//   - every file under the main module's root (the nearest go.mod above
//     the main package; only .git directories are left out: the go command
//     can import packages from directories it skips in patterns, such as
//     testdata or _x), by path, size, modification time and mode; a
//     link by its target's name and its target (a file's stat, or a
//     directory outside the walk walked too);
//   - every file under a local directory the main module's go.mod
//     replaces a module with;
//   - for the main package's directory and each one above it up to /, the
//     go.mod, go.work and version-control markers (.git and the others the
//     go command stamps from), present or not;
//   - the go command's own file, and the content of its environment file
//     (go env -w), which can set GOFLAGS or GOWORK;
//   - when the go command may stamp version-control information (GOFLAGS
//     without -buildvcs=false), the repository's HEAD, the branch it names,
//     packed-refs and index; and, when the repository's root is above the
//     module's, every file under the repository's root instead of the
//     module's (the stamp says whether any of them is modified).
//
// Module cache dependencies need no stat: they are immutable and pinned
// by go.sum, which is in the module root. So a process uses a binary as
// it was when first built only as long as the fingerprint holds; a
// change to any of the above (to the modification time's precision)
// builds again. Builds are not reused, but made every time, when the
// fingerprint cannot be taken soundly: a go.work applies (its modules are
// inputs the memo does not follow), the walk passes 200,000 entries, the
// repository to stamp from is not a plain .git directory, GOFLAGS name
// files the walk does not cover (-modfile, -overlay, a -pgo profile
// other than auto or off), or the go command disagrees with the memo
// about the module (compared by real path: main may be reached through
// a link), the workspace or GOFLAGS. A failed build is not remembered.
// A build whose fingerprint changed while it ran is returned but not
// remembered.
//
// Concurrent callers for the same key and fingerprint, taken as each
// arrives, share one build; callers without a fingerprint share none.
// Remembered binaries (about 10 MB each) are kept for the life of the
// process, one per key.
var goMemo = newGoBuildMemo()

// goBuildRuns counts the go build commands run (goBuild), for tests.
var goBuildRuns atomic.Int64

// goBuiltHook, when set, runs after each memo build compiles, for tests.
var goBuiltHook func()

type goBuildMemo struct {
	flight  singleflight.Group
	mu      sync.Mutex
	entries map[string]*goBuilt // by goBuildKey
}

func newGoBuildMemo() *goBuildMemo {
	return &goBuildMemo{entries: map[string]*goBuilt{}}
}

// goBuilt is one built binary; data is shared by all callers: read only.
type goBuilt struct {
	fp   [sha256.Size]byte
	sum  [sha256.Size]byte
	data []byte
}

// goTarget is the environment goBuild adds to the process's.
func goTarget() []string {
	return []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH}
}

// goBuildEnv is the environment goBuild runs the go command with.
func goBuildEnv() []string {
	return append(os.Environ(), goTarget()...)
}

// goBuildKey is what determines a build's output apart from the files:
// the tool, the package, the ldflags and the variables the go command
// reads (a conservative superset).
func goBuildKey(tool string, bin GoBinary) (string, error) {
	main, err := filepath.Abs(bin.Main)
	if err != nil {
		return "", err
	}
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GO") || strings.HasPrefix(kv, "CGO_") || strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	slices.Sort(env)
	parts := append([]string{"tool", tool, "main", main, "ldflags", bin.Ldflags, "env"}, env...)
	parts = append(append(parts, "target"), goTarget()...)
	return strings.Join(parts, "\x00"), nil
}

// goBinary returns bin built as a static linux binary: its sha256 and its
// bytes (shared: read only). It reuses this process's earlier build of
// the same inputs (see goMemo), except for a builder that reuses nothing
// (noCache).
func (b *Builder) goBinary(ctx context.Context, bin GoBinary) ([sha256.Size]byte, []byte, error) {
	if b.opts.noCache {
		e, err := b.goBuildOnce(ctx, bin)
		if err != nil {
			return [sha256.Size]byte{}, nil, err
		}
		return e.sum, e.data, nil
	}
	e, err := goMemo.get(ctx, b, bin)
	if err != nil {
		return [sha256.Size]byte{}, nil, err
	}
	return e.sum, e.data, nil
}

func (m *goBuildMemo) get(ctx context.Context, b *Builder, bin GoBinary) (*goBuilt, error) {
	key, err := goBuildKey(b.opts.goTool, bin)
	if err != nil {
		return nil, fmt.Errorf("%w: go build %s: %v", ErrBuild, bin.Main, err)
	}
	for {
		// The fingerprint is taken before joining a build, and is part
		// of the build's name: a caller arriving after an edit does not
		// share a build begun before it.
		fp, fpErr := goFingerprint(b.opts.goTool, bin.Main)
		if fpErr != nil {
			// Nothing to tell an earlier build's inputs from this
			// caller's: build alone.
			return m.build(ctx, b, bin, key, fp, fpErr)
		}
		flight := key + "\x00fp\x00" + string(fp[:])
		ch := m.flight.DoChan(flight, func() (any, error) { return m.build(ctx, b, bin, key, fp, nil) })
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r := <-ch:
			if r.Err != nil {
				// The shared build ran under another caller's context:
				// its cancellation is not this caller's.
				if ctx.Err() == nil && isContextErr(r.Err) {
					continue
				}
				return nil, r.Err
			}
			return r.Val.(*goBuilt), nil
		}
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// build returns the remembered build for key when it was made from
// inputs with fingerprint fp, and otherwise builds (and remembers what it
// can). fpErr is why there is no fingerprint, if there is none.
func (m *goBuildMemo) build(ctx context.Context, b *Builder, bin GoBinary, key string, fp [sha256.Size]byte, fpErr error) (*goBuilt, error) {
	if fpErr == nil {
		m.mu.Lock()
		e := m.entries[key]
		m.mu.Unlock()
		if e != nil && e.fp == fp {
			return e, nil
		}
	}
	e, err := b.goBuildOnce(ctx, bin)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("go build %s: %w", bin.Main, ctx.Err())
		}
		return nil, err
	}
	if goBuiltHook != nil {
		goBuiltHook()
	}
	keep := fpErr == nil && goEnvAgrees(ctx, b.opts.goTool, bin.Main)
	if keep {
		// Unchanged while it built (and while go env answered): the
		// binary is the one those inputs make.
		after, err := goFingerprint(b.opts.goTool, bin.Main)
		keep = err == nil && after == fp
	}
	m.mu.Lock()
	if keep {
		e.fp = fp
		m.entries[key] = e
	} else if fpErr != nil {
		// Builds for other fingerprints of key may run at once: only
		// one that cannot be fingerprinted drops what another kept.
		delete(m.entries, key)
	}
	m.mu.Unlock()
	return e, nil
}

// goBuildOnce runs goBuild into a temporary file and reads the binary.
func (b *Builder) goBuildOnce(ctx context.Context, bin GoBinary) (*goBuilt, error) {
	tmp, err := os.MkdirTemp("", "rehearse-go-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")
	if err := b.goBuild(ctx, bin, out); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	return &goBuilt{sum: sha256.Sum256(data), data: data}, nil
}

// goEnvAgrees asks the go command, as goBuild runs it, for the module,
// workspace and flags the fingerprint assumed: the main module's go.mod
// found above main, no workspace, and GOFLAGS as goFlags reads them.
func goEnvAgrees(ctx context.Context, tool, main string) bool {
	cmd := exec.CommandContext(ctx, tool, "env", "GOMOD", "GOWORK", "GOFLAGS")
	cmd.Dir = main
	cmd.Env = goBuildEnv()
	out, err := cmd.Output()
	if err != nil {
		return false
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 3 {
		return false
	}
	// The go command finds the module from its working directory, which
	// it may see with links resolved: compare real paths.
	real, err := filepath.EvalSymlinks(main)
	if err != nil {
		return false
	}
	root, ok := moduleRoot(real)
	if !ok {
		return false
	}
	want, err := filepath.EvalSymlinks(filepath.Join(root, "go.mod"))
	if err != nil || lines[0] == "" {
		return false
	}
	got, err := filepath.EvalSymlinks(lines[0])
	return err == nil && got == want && lines[1] == "" && lines[2] == goFlags()
}

// unfollowedFlags says whether GOFLAGS name files the fingerprint does
// not follow: -modfile, -overlay, or a -pgo profile other than auto's
// (default.pgo in the main package's directory) or off. Both the
// -flag=value and -flag value forms count.
func unfollowedFlags(flags string) bool {
	f := strings.Fields(flags)
	for i, a := range f {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		switch name {
		case "modfile", "overlay":
			return true
		case "pgo":
			if !hasVal {
				if i+1 >= len(f) {
					return true
				}
				val = f[i+1]
			}
			if val != "auto" && val != "off" {
				return true
			}
		}
	}
	return false
}

// errNoFingerprint: the inputs cannot be fingerprinted soundly; build
// every time.
var errNoFingerprint = errors.New("no sound fingerprint")

// vcsMarkers are the files and directories the go command looks for to
// stamp version-control information.
var vcsMarkers = []string{".git", ".hg", ".bzr", ".svn", ".fslckout", "_FOSSIL_"}

// goFingerprint is a digest of the stat of every input of a build of the
// package in main that can change on disk (see goMemo).
func goFingerprint(tool, main string) ([sha256.Size]byte, error) {
	var zero [sha256.Size]byte
	if unfollowedFlags(goFlags()) {
		return zero, errNoFingerprint
	}
	main, err := filepath.Abs(main)
	if err != nil {
		return zero, err
	}
	real, err := filepath.EvalSymlinks(main)
	if err != nil {
		return zero, err
	}
	h := sha256.New()
	st := func(p string) {
		fi, err := os.Lstat(p)
		if err != nil {
			fmt.Fprintf(h, "%s\x00-\x00", p)
			return
		}
		if fi.IsDir() {
			// A directory's own times change with every file git
			// writes in it (index.lock): its presence is what counts.
			fmt.Fprintf(h, "%s\x00dir\x00", p)
			return
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%o\x00", p, fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
	}

	// The go command and its environment file.
	toolPath, err := exec.LookPath(tool)
	if err != nil {
		return zero, err
	}
	if toolPath, err = filepath.Abs(toolPath); err != nil {
		return zero, err
	}
	fmt.Fprintf(h, "tool\x00")
	if err := statFollow(h, toolPath); err != nil {
		return zero, err
	}
	fmt.Fprintf(h, "goenv\x00%s\x00%s\x00", goEnvFile(), goEnvFileContent())

	// Module, workspace and repository markers from main up, along the
	// path as named and along its real path (the go command may see
	// either as its working directory).
	tops := []string{main}
	if real != main {
		tops = append(tops, real)
	}
	for _, top := range tops {
		for d := top; ; d = filepath.Dir(d) {
			for _, n := range append([]string{"go.mod", "go.work"}, vcsMarkers...) {
				st(filepath.Join(d, n))
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if os.Getenv("GOWORK") != "off" {
		if os.Getenv("GOWORK") != "" {
			return zero, errNoFingerprint
		}
		for _, top := range tops {
			for d := top; ; d = filepath.Dir(d) {
				if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
					return zero, errNoFingerprint
				}
				if filepath.Dir(d) == d {
					break
				}
			}
		}
	}
	root, ok := moduleRoot(real)
	if !ok {
		return zero, errNoFingerprint
	}

	// Version control stamping: the repository's state.
	tree := root
	if !slices.Contains(strings.Fields(goFlags()), "-buildvcs=false") && !slices.Contains(strings.Fields(goFlags()), "--buildvcs=false") {
		repo, marker, found := vcsRoot(root)
		if found {
			if marker != ".git" {
				return zero, errNoFingerprint
			}
			git := filepath.Join(repo, ".git")
			fi, err := os.Lstat(git)
			if err != nil || !fi.IsDir() {
				return zero, errNoFingerprint // a worktree's or submodule's .git file
			}
			fmt.Fprintf(h, "vcs\x00")
			for _, n := range []string{"HEAD", "packed-refs", "index"} {
				st(filepath.Join(git, n))
			}
			head, _ := os.ReadFile(filepath.Join(git, "HEAD"))
			fmt.Fprintf(h, "%s\x00", head)
			if ref, ok := strings.CutPrefix(strings.TrimSpace(string(head)), "ref: "); ok {
				st(filepath.Join(git, filepath.FromSlash(ref)))
			}
			tree = repo
		}
	}

	w := &statWalker{h: h}
	if err := w.walk(tree); err != nil {
		return zero, err
	}
	for _, dir := range localReplacements(root) {
		if err := w.walk(dir); err != nil {
			return zero, err
		}
	}
	var fp [sha256.Size]byte
	copy(fp[:], h.Sum(nil))
	return fp, nil
}

// statFollow writes the stat of p, following links, to h.
func statFollow(h interface{ Write([]byte) (int, error) }, p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(h, "%s\x00%d\x00%d\x00%o\x00", p, fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
	return err
}

// maxFingerprintEntries bounds a fingerprint's walk; a larger tree is
// built every time rather than stat'ed at length.
const maxFingerprintEntries = 200_000

// statWalker writes the stat of every file under its directories (.git
// directories left out) to h. A link to a file counts as its target (and
// its own target name); a link to a directory the walk does not already
// cover is walked too, once.
type statWalker struct {
	h       interface{ Write([]byte) (int, error) }
	walked  []string // real paths of the directories walked
	entries int
}

func (w *statWalker) walk(dir string) error {
	queue := []string{dir}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return err
		}
		if w.covered(real) {
			continue
		}
		w.walked = append(w.walked, real)
		dir = real // WalkDir does not follow a link at its root either
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p != dir && errors.Is(err, fs.ErrNotExist) {
					return nil // removed while walking: its parent's next walk differs
				}
				return err
			}
			if w.entries++; w.entries > maxFingerprintEntries {
				return errNoFingerprint
			}
			if d.IsDir() {
				if d.Name() == ".git" && p != dir {
					return filepath.SkipDir
				}
				fmt.Fprintf(w.h, "d\x00%s\x00", p)
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				fmt.Fprintf(w.h, "l\x00%s\x00%s\x00", p, target)
				fi, err := os.Stat(p)
				if err != nil {
					fmt.Fprintf(w.h, "-\x00") // dangling
					return nil
				}
				if fi.IsDir() {
					queue = append(queue, p)
					return nil
				}
				return statFollow(w.h, p)
			}
			fi, err := d.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			_, err = fmt.Fprintf(w.h, "%s\x00%d\x00%d\x00%o\x00", p, fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// covered says whether the walk already stat'ed everything under real.
func (w *statWalker) covered(real string) bool {
	for _, r := range w.walked {
		rel, err := filepath.Rel(r, real)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		if !slices.Contains(strings.Split(rel, string(filepath.Separator)), ".git") {
			return true
		}
	}
	return false
}

// moduleRoot is the directory of the nearest go.mod at or above dir.
func moduleRoot(dir string) (string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !fi.IsDir() {
			return d, true
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

// vcsRoot is the nearest directory at or above dir holding a
// version-control marker, and the marker.
func vcsRoot(dir string) (string, string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		for _, n := range vcsMarkers {
			if _, err := os.Lstat(filepath.Join(d, n)); err == nil {
				return d, n, true
			}
		}
		if filepath.Dir(d) == d {
			return "", "", false
		}
	}
}

// localReplacements are the directories the go.mod in root replaces
// modules with (right-hand sides that are paths, not module versions).
func localReplacements(root string) []string {
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil
	}
	var dirs []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "//")
		_, rhs, ok := strings.Cut(line, "=>")
		if !ok {
			continue
		}
		f := strings.Fields(rhs)
		if len(f) == 0 {
			continue
		}
		p := strings.Trim(f[0], "\"`")
		if !filepath.IsAbs(p) && !strings.HasPrefix(p, "./") && !strings.HasPrefix(p, "../") && p != "." && p != ".." {
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		dirs = append(dirs, filepath.Clean(p))
	}
	return dirs
}

// goEnvFile is the go command's environment file (go env -w), or "".
func goEnvFile() string {
	if f := os.Getenv("GOENV"); f != "" {
		if f == "off" {
			return ""
		}
		return f
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "go", "env")
}

func goEnvFileContent() []byte {
	f := goEnvFile()
	if f == "" {
		return nil
	}
	data, _ := os.ReadFile(f)
	return data
}

// goFlags is GOFLAGS as the go command reads it: the process's variable
// when set and not empty, else the environment file's.
func goFlags() string {
	if v := os.Getenv("GOFLAGS"); v != "" {
		return v
	}
	sc := bufio.NewScanner(bytes.NewReader(goEnvFileContent()))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "GOFLAGS="); ok {
			return v
		}
	}
	return ""
}

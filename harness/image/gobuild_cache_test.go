package image

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const memoMain = `package main

import "fmt"

var greeting = "hello"

func main() { fmt.Println(greeting) }
`

// memoModule writes a one-package module and returns its directory.
func memoModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeTouched(t, filepath.Join(dir, "go.mod"), "module example.com/memo\n\ngo 1.22\n")
	writeTouched(t, filepath.Join(dir, "main.go"), memoMain)
	return dir
}

// writeTouched writes a file and moves its modification time on, so a
// rewrite within the file system's time precision still counts.
func writeTouched(t *testing.T, p, content string) {
	t.Helper()
	old, err := os.Stat(p)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		mt := old.ModTime().Add(2 * time.Second)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

// freshMemo gives the test a memo of its own.
func freshMemo(t *testing.T) {
	t.Helper()
	old := goMemo
	goMemo = newGoBuildMemo()
	t.Cleanup(func() { goMemo = old })
}

func TestGoBinaryMemo(t *testing.T) {
	freshMemo(t)
	ctx := context.Background()
	dir := memoModule(t)
	b := &Builder{opts: options{goTool: "go"}}
	bin := GoBinary{Main: dir, Path: "/bin/memo"}

	// build returns the binary's sum and how many go builds it ran.
	build := func(t *testing.T, b *Builder, bin GoBinary) ([sha256.Size]byte, int64) {
		t.Helper()
		before := goBuildRuns.Load()
		sum, data, err := b.goBinary(ctx, bin)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(data) != sum {
			t.Fatalf("sum %x is not the sum of the bytes", sum)
		}
		return sum, goBuildRuns.Load() - before
	}

	first, runs := build(t, b, bin)
	if runs != 1 {
		t.Fatalf("first call ran go build %d times, want 1", runs)
	}
	again, runs := build(t, b, bin)
	if runs != 0 || again != first {
		t.Fatalf("unchanged inputs: %d go builds, same sum %v; want 0, true", runs, again == first)
	}

	t.Run("concurrent callers share one build", func(t *testing.T) {
		other := bin
		other.Ldflags = "-X main.greeting=bonjour"
		before := goBuildRuns.Load()
		sums := make([][sha256.Size]byte, 4)
		var wg sync.WaitGroup
		for i := range sums {
			wg.Go(func() {
				sum, _, err := b.goBinary(ctx, other)
				if err != nil {
					t.Error(err)
				}
				sums[i] = sum
			})
		}
		wg.Wait()
		if n := goBuildRuns.Load() - before; n != 1 {
			t.Errorf("4 concurrent callers ran go build %d times, want 1", n)
		}
		for _, s := range sums {
			if s != sums[0] || s == first {
				t.Errorf("ldflags changed: sums %x, first %x", sums, first)
			}
		}
	})

	var edited [sha256.Size]byte
	t.Run("an edited source builds again", func(t *testing.T) {
		writeTouched(t, filepath.Join(dir, "main.go"), `package main

import "fmt"

var greeting = "hallo"

func main() { fmt.Println(greeting, "!") }
`)
		sum, runs := build(t, b, bin)
		if runs != 1 || sum == first {
			t.Fatalf("after editing main.go: %d go builds, new sum %v; want 1, true", runs, sum != first)
		}
		if again, runs := build(t, b, bin); runs != 0 || again != sum {
			t.Fatalf("unchanged since the edit: %d go builds, same sum %v; want 0, true", runs, again == sum)
		}
		edited = sum
	})

	t.Run("a new file builds again", func(t *testing.T) {
		extra := filepath.Join(dir, "extra.go")
		writeTouched(t, extra, "package main\n\nfunc init() { greeting = \"extra\" }\n")
		defer os.Remove(extra)
		sum, runs := build(t, b, bin)
		if runs != 1 || sum == edited {
			t.Fatalf("after adding extra.go: %d go builds, new sum %v; want 1, true", runs, sum != edited)
		}
	})

	t.Run("a failed build is not remembered", func(t *testing.T) {
		writeTouched(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() { undefined() }\n")
		before := goBuildRuns.Load()
		for range 2 {
			if _, _, err := b.goBinary(ctx, bin); err == nil {
				t.Fatal("broken main.go built")
			}
		}
		if n := goBuildRuns.Load() - before; n != 2 {
			t.Errorf("two calls on a broken package ran go build %d times, want 2", n)
		}
		writeTouched(t, filepath.Join(dir, "main.go"), memoMain)
		if sum, runs := build(t, b, bin); runs != 1 || sum != first {
			t.Errorf("after the fix: %d go builds, first sum again %v; want 1, true", runs, sum == first)
		}
	})

	t.Run("a builder that reuses nothing builds every time", func(t *testing.T) {
		cold := &Builder{opts: options{goTool: "go", noCache: true}}
		if _, runs := build(t, cold, bin); runs != 1 {
			t.Errorf("noCache builder ran go build %d times, want 1", runs)
		}
	})
}

// A caller that arrives after an edit, while a build begun before it
// runs, builds the edited source rather than joining that build.
func TestGoBinaryMemoEditDuringBuild(t *testing.T) {
	freshMemo(t)
	ctx := context.Background()
	dir := memoModule(t)
	b := &Builder{opts: options{goTool: "go"}}
	bin := GoBinary{Main: dir, Path: "/bin/memo"}

	// The first build, once compiled, waits for release.
	started, release := make(chan struct{}), make(chan struct{})
	var builds atomic.Int32
	goBuiltHook = func() {
		if builds.Add(1) == 1 { // not sync.Once: later builds must not wait
			close(started)
			<-release
		}
	}
	t.Cleanup(func() { goBuiltHook = nil })
	releaseOnce := sync.OnceFunc(func() { close(release) })
	var callers sync.WaitGroup
	// Before the hook and the memo are put back, even after a failure.
	t.Cleanup(func() {
		releaseOnce()
		callers.Wait()
	})

	type result struct {
		sum [sha256.Size]byte
		err error
	}
	call := func() chan result {
		ch := make(chan result, 1)
		callers.Go(func() {
			sum, _, err := b.goBinary(ctx, bin)
			ch <- result{sum, err}
		})
		return ch
	}
	early := call()
	<-started
	writeTouched(t, filepath.Join(dir, "main.go"), `package main

import "fmt"

var greeting = "edited"

func main() { fmt.Println(greeting, "while building") }
`)
	late := call()
	var lateSum [sha256.Size]byte
	select {
	case r := <-late:
		if r.err != nil {
			t.Fatal(r.err)
		}
		lateSum = r.sum
	case <-time.After(2 * time.Minute): // a deadlock guard, not a speed check
		t.Fatal("the caller after the edit joined the build begun before it")
	}
	releaseOnce()
	r := <-early
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.sum == lateSum {
		t.Fatalf("the caller after the edit got the binary built before it (%x)", lateSum)
	}
	before := goBuildRuns.Load()
	if sum, _, err := b.goBinary(ctx, bin); err != nil || sum != lateSum || goBuildRuns.Load() != before {
		t.Errorf("unchanged since the edit: err %v, edited binary %v, %d go builds; want nil, true, 0",
			err, sum == lateSum, goBuildRuns.Load()-before)
	}
}

// A main package reached through a link to its directory is remembered
// too (go env reports the module's real path).
func TestGoBinaryMemoLinkedMain(t *testing.T) {
	freshMemo(t)
	ctx := context.Background()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(memoModule(t), link); err != nil {
		t.Fatal(err)
	}
	b := &Builder{opts: options{goTool: "go"}}
	bin := GoBinary{Main: link, Path: "/bin/memo"}
	before := goBuildRuns.Load()
	for range 2 {
		if _, _, err := b.goBinary(ctx, bin); err != nil {
			t.Fatal(err)
		}
	}
	if n := goBuildRuns.Load() - before; n != 1 {
		t.Errorf("two calls through a link ran go build %d times, want 1", n)
	}
}

func TestGoFingerprintGOFLAGS(t *testing.T) {
	dir := memoModule(t)
	for _, tc := range []struct {
		flags string
		sound bool
	}{
		{"-trimpath -mod=mod", true},
		{"-pgo=auto", true},
		{"-pgo=off", true},
		{"--pgo=off", true},
		{"-pgo auto", true},
		{"-buildvcs=false -pgo off", true},
		{"-modfile=alt.mod", false},
		{"--modfile=alt.mod", false},
		{"-modfile alt.mod", false},
		{"-overlay=overlay.json", false},
		{"-mod=mod -overlay overlay.json", false},
		{"-pgo=default.pgo", false},
		{"-pgo=/tmp/cpu.pgo", false},
		{"-pgo cpu.pgo", false},
		{"--pgo cpu.pgo", false},
		{"-pgo", false},
	} {
		t.Run(tc.flags, func(t *testing.T) {
			t.Setenv("GOFLAGS", tc.flags)
			_, err := goFingerprint("go", dir)
			if tc.sound && err != nil {
				t.Errorf("GOFLAGS=%q: %v, want a fingerprint", tc.flags, err)
			}
			if !tc.sound && !errors.Is(err, errNoFingerprint) {
				t.Errorf("GOFLAGS=%q: err %v, want errNoFingerprint", tc.flags, err)
			}
		})
	}
}

func TestGoFingerprint(t *testing.T) {
	dir := memoModule(t)
	fp := func() [sha256.Size]byte {
		t.Helper()
		f, err := goFingerprint("go", dir)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	base := fp()
	if fp() != base {
		t.Fatal("fingerprint changed with nothing changed")
	}
	// Directories the go command skips in patterns can still be imported.
	sub := filepath.Join(dir, "testdata", "_lib")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTouched(t, filepath.Join(sub, "lib.go"), "package lib\n")
	withLib := fp()
	if withLib == base {
		t.Error("a file under testdata/_lib left the fingerprint unchanged")
	}
	writeTouched(t, filepath.Join(sub, "lib.go"), "package lib\n")
	if fp() == withLib {
		t.Error("a newer lib.go of the same size left the fingerprint unchanged")
	}

	t.Run("a workspace is not fingerprinted", func(t *testing.T) {
		writeTouched(t, filepath.Join(dir, "go.work"), "go 1.22\n\nuse .\n")
		defer os.Remove(filepath.Join(dir, "go.work"))
		if _, err := goFingerprint("go", dir); err == nil {
			t.Error("fingerprint taken under a go.work")
		}
	})

	t.Run("links to directories are followed", func(t *testing.T) {
		outside := t.TempDir()
		link := filepath.Join(dir, "elsewhere")
		if err := os.Symlink(outside, link); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(link)
		// A link back into the module, and a loop: walked once.
		if err := os.Symlink(dir, filepath.Join(outside, "back")); err != nil {
			t.Fatal(err)
		}
		before := fp()
		writeTouched(t, filepath.Join(outside, "pkg.go"), "package elsewhere\n")
		if fp() == before {
			t.Error("a new file behind a link to a directory left the fingerprint unchanged")
		}
	})

	t.Run("local replacements are walked", func(t *testing.T) {
		rep := t.TempDir()
		writeTouched(t, filepath.Join(rep, "go.mod"), "module example.com/rep\n")
		writeTouched(t, filepath.Join(dir, "go.mod"), "module example.com/memo\n\ngo 1.22\n\nreplace example.com/rep => "+rep+"\n")
		before := fp()
		writeTouched(t, filepath.Join(rep, "rep.go"), "package rep\n")
		if fp() == before {
			t.Error("a new file in a replacement directory left the fingerprint unchanged")
		}
	})
}

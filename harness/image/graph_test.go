package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rehearse/rehearse/internal/progress"
)

func dockerfileFS(text string) fstest.MapFS {
	return fstest.MapFS{"Dockerfile": {Data: []byte(text)}, "run.sh": {Data: []byte("#!/bin/sh\n")}}
}

// The bundled world's shape: the Debian base first, the Dockerfile builds
// on it, Go packs on top; a Go pack may build on an image another spec
// builds from files (toxiproxy on the fault helper).
func TestGraph(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM debian:bookworm-slim AS os\nRUN true\nFROM os\n")
	specs := []Spec{
		{Ref: "w/billing:2.3", Origin: "billing", Build: &Build{Context: dir, Dockerfile: "Dockerfile"}, Go: []GoBinary{{Main: "/x", Path: "/bin/x"}}},
		{Ref: "w/invoicing:1", Origin: "invoicing", Base: DebianBase, Go: []GoBinary{{Main: "/y", Path: "/bin/y"}}},
		{Ref: "w/toxiproxy:1", Origin: "toxiproxy", Base: "w/helper:1", Go: []GoBinary{{Main: "/z", Path: "/bin/z"}}},
		{Ref: "w/helper:1", Origin: "helper", Files: dockerfileFS("FROM debian:bookworm-slim\nCOPY run.sh /\n")},
		{Ref: DebianBase, Origin: "copy helper"},
		{Ref: "w/helper:1", Origin: "helper again"}, // an image another spec makes: not a node of its own
		// the same image made the same way by another service: one node
		{Ref: "w/helper:1", Origin: "helper twin", Files: dockerfileFS("FROM debian:bookworm-slim\nCOPY run.sh /\n")},
	}
	nodes, err := Graph(specs...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nodes {
		got = append(got, fmt.Sprintf("%s %s <- %s", n.Kind, n.Ref, strings.Join(n.Needs, ", ")))
	}
	want := []string{
		"existing debian:bookworm-slim <- ",
		"dockerfile w/billing:2.3-base <- existing debian:bookworm-slim",
		"go w/billing:2.3 <- w/billing:2.3-base",
		"go w/invoicing:1 <- existing debian:bookworm-slim",
		"dockerfile w/helper:1 <- existing debian:bookworm-slim",
		"go w/toxiproxy:1 <- w/helper:1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("graph:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestGraphErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM w/b:1\n")
	tests := []struct {
		name  string
		specs []Spec
		want  string
	}{
		{"cycle", []Spec{
			{Ref: "w/a:1", Origin: "services.a", Files: dockerfileFS("FROM w/b:1\n")},
			{Ref: "w/b:1", Origin: "services.b", Build: &Build{Context: dir, Dockerfile: "Dockerfile", Inline: "FROM w/a:1\n"}},
		}, "services.a: image w/a:1: images build on each other: w/a:1 → w/b:1 → w/a:1"},
		{"itself", []Spec{{Ref: "w/b:1", Origin: "services.b", Build: &Build{Context: dir, Dockerfile: "Dockerfile"}}},
			"services.b: image w/b:1: Dockerfile " + filepath.Join(dir, "Dockerfile") + ": FROM w/b:1: the image builds on itself"},
		{"no base", []Spec{{Ref: "w/c:1", Origin: "services.c", Go: []GoBinary{{Main: "/x"}}}},
			"services.c: image w/c:1: go programs need a build: section or a base image"},
		{"no dockerfile", []Spec{{Ref: "w/d:1", Origin: "services.d", Files: fstest.MapFS{}}},
			"services.d: image w/d:1: build context: open Dockerfile"},
		{"empty ref", []Spec{{Origin: "services.e"}}, "services.e: image : empty ref"},
		{"one ref, two builds", []Spec{
			{Ref: "w/f:1", Origin: "services.f", Files: dockerfileFS("FROM debian:bookworm-slim\n")},
			{Ref: "w/f:1", Origin: "services.g", Files: dockerfileFS("FROM debian:bookworm-slim\nRUN true\n")},
		}, "services.g: image w/f:1: services.f makes w/f:1 too, differently: one ref, two builds"},
		{"one ref, two Go programs", []Spec{
			{Ref: "w/h:1", Origin: "services.h", Base: DebianBase, Go: []GoBinary{{Main: "/x", Path: "/bin/x"}}},
			{Ref: "w/h:1", Origin: "services.i", Base: DebianBase, Go: []GoBinary{{Main: "/y", Path: "/bin/x"}}},
		}, "services.i: image w/h:1: services.h makes w/h:1 too, differently"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Graph(tt.specs...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRewriteFrom(t *testing.T) {
	in := "# FROM debian:bookworm-slim stays a comment\nFROM debian:bookworm-slim AS os\nRUN echo debian:bookworm-slim\nfrom --platform=linux/amd64 debian:bookworm-slim\nFROM os\nFROM debian:bookworm-slimmer\n"
	want := "# FROM debian:bookworm-slim stays a comment\nFROM p/debian:bookworm-slim AS os\nRUN echo debian:bookworm-slim\nfrom --platform=linux/amd64 p/debian:bookworm-slim\nFROM os\nFROM debian:bookworm-slimmer\n"
	if got := rewriteFrom(in, map[string]string{DebianBase: "p/" + DebianBase}); got != want {
		t.Errorf("rewriteFrom:\n%s\nwant\n%s", got, want)
	}
}

// fakeEngine builds instantly once released, and knows the images it
// built (and debian:bookworm-slim).
type fakeEngine struct {
	mu      sync.Mutex
	labels  map[string]map[string]string
	noCache []bool
	// the Dockerfiles sent, in order
	dockerfiles []string
	active      int
	most        int
	started     chan string
	release     chan struct{}
	// fail: the tags whose build fails at once
	fail map[string]bool
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{labels: map[string]map[string]string{DebianBase: {}}, started: make(chan string, 10), release: make(chan struct{}, 10)}
}

func (f *fakeEngine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.labels[ref]
	if !ok {
		return client.ImageInspectResult{}, fmt.Errorf("image %s: %w", ref, cerrdefs.ErrNotFound)
	}
	var r client.ImageInspectResult
	r.ID = "sha256:" + ref
	r.Config = &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Labels: l}}
	return r, nil
}

func (f *fakeEngine) ImageBuild(ctx context.Context, body io.Reader, opts client.ImageBuildOptions) (client.ImageBuildResult, error) {
	tr := tar.NewReader(body)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			return client.ImageBuildResult{}, err
		}
		if h.Name == opts.Dockerfile {
			data, err := io.ReadAll(tr)
			if err != nil {
				return client.ImageBuildResult{}, err
			}
			f.mu.Lock()
			f.dockerfiles = append(f.dockerfiles, string(data))
			f.mu.Unlock()
		}
	}
	f.mu.Lock()
	if f.fail[opts.Tags[0]] {
		f.mu.Unlock()
		out := `{"stream":"Step 1/2 : FROM debian:bookworm-slim\n"}{"error":"apt-get failed"}`
		return client.ImageBuildResult{Body: io.NopCloser(strings.NewReader(out))}, nil
	}
	f.active++
	f.most = max(f.most, f.active)
	f.noCache = append(f.noCache, opts.NoCache)
	f.mu.Unlock()
	f.started <- opts.Tags[0]
	select {
	case <-f.release:
	case <-ctx.Done():
		return client.ImageBuildResult{}, ctx.Err()
	}
	f.mu.Lock()
	f.active--
	f.labels[opts.Tags[0]] = opts.Labels
	f.mu.Unlock()
	out := `{"stream":"Step 1/2 : FROM debian:bookworm-slim\n"}{"stream":"Step 2/2 : COPY run.sh /\n"}`
	return client.ImageBuildResult{Body: io.NopCloser(strings.NewReader(out))}, nil
}

func (f *fakeEngine) ImageImport(context.Context, client.ImageImportSource, string, client.ImageImportOptions) (client.ImageImportResult, error) {
	return nil, errors.New("fake engine: no import")
}

func (f *fakeEngine) ImagePull(context.Context, string, client.ImagePullOptions) (client.ImagePullResponse, error) {
	return nil, errors.New("fake engine: no registry")
}

// Independent images build at once, as many as there are build slots; the
// board shows each, the one without a slot waiting for one.
func TestEnsureConcurrentWithinSlots(t *testing.T) {
	f := newFakeEngine()
	board := progress.NewBoard("images")
	b, err := NewBuilder(f, WithProgress(board), WithBuildSlots(2))
	if err != nil {
		t.Fatal(err)
	}
	var specs []Spec
	for _, name := range []string{"a", "b", "c"} {
		specs = append(specs, Spec{Ref: "w/" + name + ":1", Origin: "services." + name,
			Files: dockerfileFS("FROM debian:bookworm-slim\nCOPY run.sh /" + name + "\n")})
	}
	type outcome struct {
		rs  []Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		rs, err := b.Ensure(context.Background(), specs...)
		done <- outcome{rs, err}
	}()
	<-f.started
	<-f.started // two builds at once: neither has finished
	deadline := time.Now().Add(30 * time.Second)
	for !waitingForSlot(board) {
		select {
		case ref := <-f.started:
			t.Fatalf("a third build (%s) started with two build slots", ref)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no image waits for a build slot: %s", board.Line())
		}
	}
	for range 3 {
		f.release <- struct{}{}
	}
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	for i, r := range o.rs {
		if r.Action != Built || r.Ref != specs[i].Ref {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if f.most != 2 {
		t.Errorf("%d builds at once, want 2", f.most)
	}
	if got := board.Line(); got != "images: 4/4 done" {
		t.Errorf("board at the end: %s", got)
	}
	for _, s := range board.Snapshot() {
		if s.Name != DebianBase && (s.Steps != 2 || s.Note != "built") {
			t.Errorf("task %+v: want built after step 2/2", s)
		}
	}
	if made := b.Made(); len(made) != 4 || made[0].Ref != DebianBase || made[0].Action != Present {
		t.Errorf("Made() = %+v", made)
	}
	if slices.Contains(f.noCache, true) {
		t.Error("a default build skipped the engine's cache")
	}
}

func waitingForSlot(board *progress.Board) bool {
	for _, s := range board.Snapshot() {
		if s.Status == progress.Waiting && s.Phase == "for a build slot" {
			return true
		}
	}
	return false
}

// A private builder (the cold build benchmark's) tags what it makes under
// its prefix, builds FROM its own Debian base, and skips every cache.
func TestPrivateBuilder(t *testing.T) {
	f := newFakeEngine()
	private := "p/" + DebianBase
	f.labels[private] = map[string]string{}
	spec := Spec{Ref: "w/a:1", Origin: "a", Files: dockerfileFS("FROM debian:bookworm-slim\nCOPY run.sh /\n")}
	for range 2 {
		f.release <- struct{}{}
	}
	for i := range 2 { // built again although the label matches
		b, err := NewBuilder(f, func(o *options) error { o.prefix, o.noCache = "p/", true; return nil })
		if err != nil {
			t.Fatal(err)
		}
		rs, err := b.Ensure(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if rs[0].Ref != "p/w/a:1" || rs[0].Action != Built {
			t.Errorf("ensure %d: %+v, want p/w/a:1 built", i, rs[0])
		}
		<-f.started
	}
	if !slices.Equal(f.noCache, []bool{true, true}) {
		t.Errorf("NoCache of the builds: %v", f.noCache)
	}
	if want := "FROM p/debian:bookworm-slim\nCOPY run.sh /\n"; f.dockerfiles[0] != want {
		t.Errorf("Dockerfile sent: %q, want %q", f.dockerfiles[0], want)
	}
	if _, ok := f.labels["w/a:1"]; ok {
		t.Error("a private builder tagged the shared ref")
	}
	if got := f.labels["p/w/a:1"][benchLabel]; got != "p/" {
		t.Errorf("private image label %s=%q, want p/", benchLabel, got)
	}
}

// A private builder refuses a Dockerfile whose base it cannot rename (a
// FROM by ARG): it would build on the shared image.
func TestPrivateBuilderRefusesUnrenamedBase(t *testing.T) {
	f := newFakeEngine()
	f.labels["p/"+DebianBase] = map[string]string{}
	f.release <- struct{}{} // a build it should not start ends at once
	b, err := NewBuilder(f, func(o *options) error { o.prefix, o.noCache = "p/", true; return nil })
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Ref: "w/a:1", Origin: "services.a", Files: dockerfileFS("ARG BASE=debian:bookworm-slim\nFROM $BASE\nCOPY run.sh /\n")}
	_, err = b.Ensure(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "services.a: image w/a:1: Dockerfile (built in): FROM debian:bookworm-slim could not be renamed to p/debian:bookworm-slim") {
		t.Errorf("err = %v", err)
	}
	if len(f.dockerfiles) != 0 {
		t.Errorf("built anyway: %q", f.dockerfiles)
	}
}

func filesSpecs(names ...string) []Spec {
	var specs []Spec
	for _, name := range names {
		specs = append(specs, Spec{Ref: "w/" + name + ":1", Origin: "services." + name,
			Files: dockerfileFS("FROM debian:bookworm-slim\nCOPY run.sh /" + name + "\n")})
	}
	return specs
}

// An image's own time leaves out its wait for a build slot.
func TestTookLeavesOutSlotWait(t *testing.T) {
	f := newFakeEngine()
	var mu sync.Mutex
	now := time.Date(2025, 5, 20, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	board := progress.NewBoardClock("images", clock)
	b, err := NewBuilder(f, WithProgress(board), WithBuildSlots(1))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var rs []Result
	go func() {
		var err error
		rs, err = b.Ensure(context.Background(), filesSpecs("a", "b")...)
		done <- err
	}()
	first := <-f.started
	waitFor(t, board, func(s progress.State) bool { return s.Status == progress.Waiting && s.Phase == "for a build slot" })
	mu.Lock()
	now = now.Add(time.Minute) // the second waits a minute for the slot
	mu.Unlock()
	f.release <- struct{}{}
	<-f.started
	f.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		want := time.Duration(0) // the clock stood still while it ran
		if r.Ref == first {
			want = time.Minute // the first ran while the clock moved
		}
		if r.Took != want {
			t.Errorf("%s took %v, want %v", r.Ref, r.Took, want)
		}
	}
}

// waitFor waits until a task of board is in a state ok accepts (a minute
// at most: a guard against hanging, not a measure of time).
func waitFor(t *testing.T, board *progress.Board, ok func(progress.State) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, s := range board.Snapshot() {
			if ok(s) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no such task: %s", board.Line())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Concurrent EnsureFS calls for one image, with no board, each keep a
// task of their own (run with -race).
func TestEnsureFSConcurrent(t *testing.T) {
	f := newFakeEngine()
	for range 2 {
		f.release <- struct{}{}
	}
	b, err := NewBuilder(f)
	if err != nil {
		t.Fatal(err)
	}
	files := dockerfileFS("FROM debian:bookworm-slim\nCOPY run.sh /\n")
	var wg sync.WaitGroup
	results := make([]Result, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { results[i], errs[i] = b.EnsureFS(context.Background(), "w/a:1", "helper", files) })
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil || results[i].Ref != "w/a:1" || (results[i].Action != Built && results[i].Action != Cached) {
			t.Errorf("call %d: %+v, %v", i, results[i], errs[i])
		}
	}
}

// With a board, a later EnsureFS call of an image the board shows done
// is not shown again: the board keeps one task per image.
func TestEnsureFSBoardTaskOnce(t *testing.T) {
	f := newFakeEngine()
	f.release <- struct{}{}
	board := progress.NewBoard("images")
	b, err := NewBuilder(f, WithProgress(board))
	if err != nil {
		t.Fatal(err)
	}
	files := dockerfileFS("FROM debian:bookworm-slim\nCOPY run.sh /\n")
	for i, want := range []Action{Built, Cached} {
		r, err := b.EnsureFS(context.Background(), "w/a:1", "helper", files)
		if err != nil || r.Action != want {
			t.Fatalf("call %d: %+v, %v; want %s", i, r, err, want)
		}
	}
	if got := board.Line(); got != "images: 2/2 done" {
		t.Errorf("board %q, want the base and the image once", got)
	}
	for _, s := range board.Snapshot() {
		if s.Name == "w/a:1" && s.Note != "built" {
			t.Errorf("the image's task %+v, want built by the first call", s)
		}
	}
}

// A failed build fails its task; the images it stopped, and the ones on
// it, are not made, and say why.
func TestEnsureFailureStopsTheOthers(t *testing.T) {
	f := newFakeEngine()
	f.fail = map[string]bool{"w/bad:1": true}
	board := progress.NewBoard("images")
	b, err := NewBuilder(f, WithProgress(board), WithBuildSlots(2))
	if err != nil {
		t.Fatal(err)
	}
	specs := append(filesSpecs("a", "bad"), Spec{Ref: "w/on-bad:1", Origin: "services.c", Files: dockerfileFS("FROM w/bad:1\n")})
	_, err = b.Ensure(context.Background(), specs...)
	if !errors.Is(err, ErrBuild) || !strings.Contains(err.Error(), "apt-get failed") {
		t.Fatalf("err = %v, want the failed build's", err)
	}
	got := map[string]string{}
	for _, s := range board.Snapshot() {
		got[s.Name] = s.Text()
	}
	want := map[string]string{
		DebianBase:   "present",
		"w/a:1":      "not made: another image failed",
		"w/bad:1":    "failed: build failed: apt-get failed",
		"w/on-bad:1": "not made: base image w/bad:1 not made",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
}

// An interrupt (the context cancelled, as by ctrl-C) is no build failure:
// the images being made are not made, "interrupted".
func TestEnsureInterrupted(t *testing.T) {
	f := newFakeEngine()
	board := progress.NewBoard("images")
	b, err := NewBuilder(f, WithProgress(board))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := b.Ensure(ctx, filesSpecs("a", "b")...)
		done <- err
	}()
	<-f.started
	<-f.started
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrBuild) {
		t.Errorf("err = %v, want an interruption, not a build failure", err)
	}
	if got := board.Line(); got != "images: 3/3 done (2 not made)" {
		t.Errorf("board %q", got)
	}
	for _, s := range board.Snapshot()[1:] {
		if s.Text() != "not made: interrupted" {
			t.Errorf("%s: %q", s.Name, s.Text())
		}
	}
}

// WithProgressLines writes the board's line while making takes long,
// and nothing for a quick call.
func TestProgressLines(t *testing.T) {
	f := newFakeEngine()
	var buf lockedBuffer
	b, err := NewBuilder(f, WithProgressLines(&buf))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.Ensure(context.Background(), filesSpecs("a")...)
		done <- err
	}()
	<-f.started
	deadline := time.Now().Add(time.Minute) // a guard against hanging
	for !strings.Contains(buf.String(), "images: 1/2 done, building w/a:1") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line while building:\n%s", buf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(buf.String(), "images: 2/2 done\n") {
		t.Errorf("no last line:\n%s", buf.String())
	}
	before := buf.String()
	if _, err := b.Ensure(context.Background(), filesSpecs("a")...); err != nil {
		t.Fatal(err)
	}
	if after := buf.String(); after != before {
		t.Errorf("a quick call wrote %q", strings.TrimPrefix(after, before))
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

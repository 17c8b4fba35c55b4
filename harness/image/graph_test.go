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
}

package image

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/internal/enginetest"
)

func TestFromImages(t *testing.T) {
	df := `# comment
FROM --platform=linux/amd64 golang:1.26 AS build
RUN go build
FROM build AS test
FROM scratch
FROM ${BASE}
from debian:bookworm-slim
COPY --from=build /x /x
`
	got := fromImages(df)
	want := []string{"golang:1.26", "debian:bookworm-slim"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fromImages = %v, want %v", got, want)
	}
}

func TestServesSuite(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n", true},
		{"deb http://mirror.invalid/debian bookworm main\n", true},
		{"# deb http://mirror.invalid/debian bookworm main\n", false},
		{"Types: deb\nSuites: nodistro\n", false},
		{"deb [arch=amd64] http://mirror.invalid/debian trixie main\n", false},
	}
	for _, tt := range tests {
		if got := servesSuite(tt.text, "bookworm"); got != tt.want {
			t.Errorf("servesSuite(%q) = %v", tt.text, got)
		}
	}
}

func TestBaseTag(t *testing.T) {
	for in, want := range map[string]string{
		"rehearse/billing:2.3":         "rehearse/billing:2.3-base",
		"localhost:5000/app":           "localhost:5000/app:latest-base",
		"registry.invalid:5000/a/b:v1": "registry.invalid:5000/a/b:v1-base",
	} {
		if got := baseTag(in); got != want {
			t.Errorf("baseTag(%q) = %q, want %q", in, got, want)
		}
	}
}

func newBuilder(t *testing.T) (*Builder, *client.Client) {
	cli := enginetest.Connect(t)
	b, err := NewBuilder(cli)
	if err != nil {
		t.Fatal(err)
	}
	return b, cli
}

func removeImage(t *testing.T, cli *client.Client, ref string) {
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
}

func copyDir(t *testing.T, src string) string {
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestBuildCachesByInputs(t *testing.T) {
	_, cli := newBuilder(t)
	ctx := context.Background()
	dir := copyDir(t, filepath.Join("testdata", "ctx"))
	ref := "rehearse-test/ctx:" + strings.ToLower(t.Name())
	removeImage(t, cli, ref)
	spec := Spec{Ref: ref, Origin: "test", Build: &Build{Context: dir, Dockerfile: "Dockerfile"}}
	ensure := func() Result {
		t.Helper()
		b, _ := NewBuilder(cli) // a fresh builder: the cache is the engine's label, not memory
		rs, err := b.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return rs[0]
	}
	first := ensure()
	if first.Action != Built {
		t.Fatalf("first ensure: %+v", first)
	}
	if r := ensure(); r.Action != Cached || r.ID != first.ID {
		t.Errorf("unchanged inputs: %+v, want cached %s", r, first.ID)
	}
	// A file .dockerignore excludes is not an input; a touched mtime is not either.
	os.WriteFile(filepath.Join(dir, "ignored.txt"), []byte("noise"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(dir, "message.txt"), old, old)
	if r := ensure(); r.Action != Cached {
		t.Errorf("ignored file or mtime changed the digest: %+v", r)
	}
	os.WriteFile(filepath.Join(dir, "message.txt"), []byte("second\n"), 0o644)
	r := ensure()
	if r.Action != Built || r.ID == first.ID {
		t.Errorf("changed content: %+v, want a new build", r)
	}
}

func TestBuildFailureShowsOutput(t *testing.T) {
	b, cli := newBuilder(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM debian:bookworm-slim\nRUN echo about to fail && false\n"), 0o644)
	ref := "rehearse-test/broken:latest"
	removeImage(t, cli, ref)
	_, err := b.Ensure(context.Background(), Spec{Ref: ref, Origin: "compose.yaml: services.broken", Build: &Build{Context: dir, Dockerfile: "Dockerfile"}})
	if err == nil {
		t.Fatal("a failing RUN built")
	}
	for _, want := range []string{"compose.yaml: services.broken", "about to fail", "returned a non-zero code"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

func TestMissingImageCannotBePulled(t *testing.T) {
	b, _ := newBuilder(t)
	_, err := b.Ensure(context.Background(), Spec{Ref: "rehearse-test/absent:never", Origin: "compose.yaml: services.ghost"})
	if err == nil || !strings.Contains(err.Error(), "services.ghost") || !strings.Contains(err.Error(), "not found locally") {
		t.Errorf("err = %v", err)
	}
}

func TestPackGo(t *testing.T) {
	b, cli := newBuilder(t)
	ctx := context.Background()
	ref := "rehearse-test/hello:packed"
	removeImage(t, cli, ref)
	main, _ := filepath.Abs(filepath.Join("testdata", "hello"))
	spec := Spec{Ref: ref, Origin: "test", Build: &Build{Context: copyDir(t, filepath.Join("testdata", "ctx")), Dockerfile: "Dockerfile"},
		Go: []GoBinary{{Main: main, Path: "/opt/hello/bin/hello", Ldflags: "-X main.greeting=bonjour"}}}
	removeImage(t, cli, baseTag(ref))
	rs, err := b.Ensure(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Action != Built {
		t.Errorf("first pack: %+v", rs[0])
	}
	b2, _ := NewBuilder(cli)
	if rs, err := b2.Ensure(ctx, spec); err != nil || rs[0].Action != Cached {
		t.Errorf("second pack: %+v %v", rs, err)
	}
	out := runImage(t, cli, ref, "/opt/hello/bin/hello")
	if strings.TrimSpace(out) != "bonjour from a packed binary" {
		t.Errorf("packed binary printed %q", out)
	}
	// The parent directories keep the owner and mode the base gave them.
	if out := runImage(t, cli, ref, "stat", "-c", "%U:%G %a", "/opt/hello/bin", "/opt/hello"); out != "nobody:nogroup 750\nnobody:nogroup 755\n" {
		t.Errorf("parent directories after packing: %q", out)
	}
	// The Dockerfile part is still there underneath.
	if out := runImage(t, cli, ref, "cat", "/message.txt"); strings.TrimSpace(out) != "first" {
		t.Errorf("base layer content %q", out)
	}
}

func TestDebianBootstrap(t *testing.T) {
	b, cli := newBuilder(t)
	ref := "rehearse-test/bookworm:bootstrap"
	removeImage(t, cli, ref)
	if err := b.debian(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	out := runImage(t, cli, ref, "cat", "/etc/debian_version")
	if !strings.HasPrefix(strings.TrimSpace(out), "12.") {
		t.Errorf("/etc/debian_version = %q, want bookworm (12.x)", out)
	}
	ins, err := cli.ImageInspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Config.Labels[InputsLabel] == "" || len(ins.Config.Cmd) == 0 || ins.Config.Cmd[0] != "bash" {
		t.Errorf("config: labels %v cmd %v", ins.Config.Labels, ins.Config.Cmd)
	}
}

// runImage runs a command in a throwaway container without a network and
// returns its output.
func runImage(t *testing.T, cli *client.Client, ref string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: ref, Cmd: cmd},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	w := cli.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-w.Result:
	case err := <-w.Error:
		t.Fatal(err)
	}
	rc, err := cli.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out strings.Builder
	stdcopy.StdCopy(&out, &out, rc)
	return out.String()
}

func TestBuildInlineDockerfile(t *testing.T) {
	b, cli := newBuilder(t)
	ref := "rehearse-test/inline:latest"
	removeImage(t, cli, ref)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "note.txt"), []byte("from the context\n"), 0o644)
	spec := Spec{Ref: ref, Origin: "test", Build: &Build{Context: dir, Dockerfile: "Dockerfile",
		Inline: "FROM debian:bookworm-slim\nCOPY note.txt /note.txt\n"}}
	if _, err := b.Ensure(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if out := runImage(t, cli, ref, "cat", "/note.txt"); out != "from the context\n" {
		t.Errorf("inline build: %q", out)
	}
}

package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/internal/enginetest"
)

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

// removeImage removes ref when the test ends; an image that is not there
// (the test failed before making it) is fine.
func removeImage(t *testing.T, cli *client.Client, ref string) {
	t.Cleanup(func() {
		_, err := cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove test image %s: %v", ref, err)
		}
	})
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
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
		b, err := NewBuilder(cli) // a fresh builder: the cache is the engine's label, not memory
		if err != nil {
			t.Fatal(err)
		}
		rs, err := b.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return rs[0]
	}
	first := ensure()
	removeImage(t, cli, first.ID) // untagged when content changes below
	if first.Action != Built {
		t.Fatalf("first ensure: %+v", first)
	}
	if r := ensure(); r.Action != Cached || r.ID != first.ID {
		t.Errorf("unchanged inputs: %+v, want cached %s", r, first.ID)
	}
	// A file .dockerignore excludes is not an input; a touched mtime is not either.
	writeFile(t, filepath.Join(dir, "ignored.txt"), "noise")
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "message.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	if r := ensure(); r.Action != Cached {
		t.Errorf("ignored file or mtime changed the digest: %+v", r)
	}
	writeFile(t, filepath.Join(dir, "message.txt"), "second\n")
	r := ensure()
	if r.Action != Built || r.ID == first.ID {
		t.Errorf("changed content: %+v, want a new build", r)
	}
}

func TestBuildFailureShowsOutput(t *testing.T) {
	b, cli := newBuilder(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM debian:bookworm-slim\nRUN echo about to fail && false\n")
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
	main, err := filepath.Abs(filepath.Join("testdata", "hello"))
	if err != nil {
		t.Fatal(err)
	}
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
	b2, err := NewBuilder(cli)
	if err != nil {
		t.Fatal(err)
	}
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
	t.Cleanup(func() {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("remove test container: %v", err)
		}
	})
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
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatalf("read output of %v: %v", cmd, err)
	}
	return out.String()
}

// An inline Dockerfile reaches the engine inside the context; like
// docker build -, it must not show up in what COPY . copies.
func TestBuildInlineDockerfile(t *testing.T) {
	tests := []struct {
		name         string
		dockerignore string // none when empty
		want         string // ls -A of the copied context
	}{
		{name: "no dockerignore", want: "note.txt\n"},
		{name: "own dockerignore", dockerignore: "ignored.txt\n", want: ".dockerignore\nnote.txt\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, cli := newBuilder(t)
			ref := fmt.Sprintf("rehearse-test/inline:%d", i)
			removeImage(t, cli, ref)
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "note.txt"), "from the context\n")
			if tt.dockerignore != "" {
				writeFile(t, filepath.Join(dir, ".dockerignore"), tt.dockerignore)
				writeFile(t, filepath.Join(dir, "ignored.txt"), "not copied\n")
			}
			spec := Spec{Ref: ref, Origin: "test", Build: &Build{Context: dir, Dockerfile: "Dockerfile",
				Inline: "FROM debian:bookworm-slim\nCOPY . /ctx/\n"}}
			if _, err := b.Ensure(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			if out := runImage(t, cli, ref, "cat", "/ctx/note.txt"); out != "from the context\n" {
				t.Errorf("note.txt in the image: %q", out)
			}
			if out := runImage(t, cli, ref, "ls", "-A", "/ctx"); out != tt.want {
				t.Errorf("context copied by COPY . holds\n%s\nwant\n%s", out, tt.want)
			}
		})
	}
}

// The base named through a global ARG is an input: rebuilding it rebuilds
// the image on top, instead of finding the old one cached.
func TestBuildBaseFromArg(t *testing.T) {
	_, cli := newBuilder(t)
	ctx := context.Background()
	base := "rehearse-test/argbase:" + strings.ToLower(t.Name())
	ref := "rehearse-test/argtop:" + strings.ToLower(t.Name())
	removeImage(t, cli, ref)
	removeImage(t, cli, base)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "ARG BASE=debian:bookworm-slim\nFROM ${BASE}\nRUN cat /version\n")
	ensure := func(s Spec) Result {
		t.Helper()
		b, err := NewBuilder(cli)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := b.Ensure(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return rs[0]
	}
	top := Spec{Ref: ref, Origin: "test", Build: &Build{Context: dir, Dockerfile: "Dockerfile", Args: map[string]string{"BASE": base}}}
	var first Result
	for i, version := range []string{"1", "2"} {
		b := ensure(Spec{Ref: base, Origin: "test", Build: &Build{Context: t.TempDir(), Dockerfile: "Dockerfile",
			Inline: "FROM debian:bookworm-slim\nRUN echo " + version + " >/version\n"}})
		removeImage(t, cli, b.ID) // untagged by the next build
		r := ensure(top)
		removeImage(t, cli, r.ID) // cleanups run last first: before its base
		if r.Action != Built || r.ID == first.ID {
			t.Fatalf("build %d on base version %s: %+v, want a new build", i+1, version, r)
		}
		if out := runImage(t, cli, ref, "cat", "/version"); out != version+"\n" {
			t.Errorf("base version in the image: %q, want %s", out, version)
		}
		first = r
	}
	if r := ensure(top); r.Action != Cached {
		t.Errorf("unchanged base: %+v, want cached", r)
	}
}

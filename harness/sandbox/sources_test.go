package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeProject lays out a project in a temporary directory: each file's
// content by its path, a path ending in "/" a directory. It returns the
// compose file's path.
func writeProject(t *testing.T, compose string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		if strings.HasSuffix(f, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("FROM scratch\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// A container with a writable bind can replace a directory below it with a
// link to anywhere on the host before another mount, or a build, uses a
// path below it: such a path is refused when the run is planned.
func TestCheckRefusesSourcesBelowWritableBinds(t *testing.T) {
	tests := []struct {
		name, compose string
		files         []string
		want          []string
	}{
		{"another service's bind", `services:
  a:
    image: x
    volumes: ["./work:/work"]
  b:
    image: x
    volumes: ["./work/x:/host"]
`, []string{"work/x/"}, []string{":7: services.b.volumes[0]:", `bind mount "`, `(service "b")`, `service "a"`, "services.a.volumes[0]", "read-only (:ro)"}},
		{"the same service's bind", `services:
  a:
    image: x
    volumes:
      - ./work:/work
      - ./work/x/y:/host:ro
`, []string{"work/x/y/"}, []string{":6: services.a.volumes[1]:", "services.a.volumes[0]"}},
		{"a secret", `services:
  a:
    image: x
    volumes: [{type: bind, source: ./work, target: /work}]
  b:
    image: x
    secrets: [pw]
secrets:
  pw: {file: ./work/pw.txt}
`, []string{"work/pw.txt"}, []string{":7: services.b.secrets[0]:", "secret file", "services.a.volumes[0]"}},
		{"a config", `services:
  a:
    image: x
    volumes: ["./:/project"]
    configs: [c]
configs:
  c: {file: ./app.conf}
`, []string{"app.conf"}, []string{":5: services.a.configs[0]:", "config file"}},
		{"a build context", `services:
  a:
    image: x
    volumes: ["./work:/work"]
  b:
    build: ./work/ctx
`, []string{"work/ctx/Dockerfile"}, []string{":6: services.b.build.context:", "build context", "services.a.volumes[0]"}},
		{"a Dockerfile", `services:
  a:
    image: x
    volumes: ["./work:/work"]
  b:
    build: {context: ., dockerfile: work/Dockerfile}
`, []string{"work/Dockerfile"}, []string{":6: services.b.build.dockerfile:", "Dockerfile", "services.a.volumes[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeProject(t, tt.compose, tt.files...)
			err := Check(file, load(t, file))
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("Check = %v, want a refusal", err)
			}
			for _, w := range append([]string{file}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// What cannot be swapped is accepted: a path below a read-only bind, the
// writable bind's own source (the mount point), and a sibling whose name
// merely starts the same.
func TestCheckAcceptsSourcesBesideWritableBinds(t *testing.T) {
	file := writeProject(t, `services:
  a:
    image: x
    volumes: ["./work:/work", "./data:/data:ro"]
  b:
    image: x
    volumes: ["./work:/also", "./workshop:/shop", "./data/x:/x"]
    secrets: [pw]
secrets:
  pw: {file: ./data/pw.txt}
`, "work/", "workshop/", "data/x/", "data/pw.txt")
	if err := Check(file, load(t, file)); err != nil {
		t.Fatal(err)
	}
}

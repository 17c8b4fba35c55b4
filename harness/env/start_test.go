package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
)

// Anonymous volumes become volumes of the run: labelled with it, written to
// like any volume, and removed with it. A network_mode: none service joins
// no network at all.
func TestAnonymousVolumesAndNoNetwork(t *testing.T) {
	ctx := context.Background()
	cli := enginetest.Connect(t)
	plan, err := loadPlan(t, "testdata/anonymous.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runID := fmt.Sprintf("anon%d", time.Now().UnixNano()%1e9)
	e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID))
	if err != nil {
		t.Fatal(err)
	}
	down := func() {
		if err := e.Down(ctx); err != nil {
			t.Errorf("down: %v", err)
		}
	}
	defer down()

	app := e.Service("app")
	for _, dir := range []string{"/app/node_modules", "/cache"} {
		if res := exec1(t, app, "", "sh", "-c", "echo kept > "+dir+"/f && cat "+dir+"/f"); res.ExitCode != 0 || res.Stdout != "kept\n" {
			t.Errorf("write to %s: %+v", dir, res)
		}
	}
	ins, err := cli.ContainerInspect(ctx, app.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ins.Container.Mounts {
		if m.Type != "volume" {
			continue
		}
		if !strings.HasPrefix(m.Name, "rehearse-"+runID+"-app.anon") {
			t.Errorf("mount %s is volume %q, not one of the run's", m.Destination, m.Name)
		}
		names = append(names, m.Name)
		v, err := cli.VolumeInspect(ctx, m.Name, client.VolumeInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v.Volume.Labels[runs.LabelRun] != runID {
			t.Errorf("volume %s labels = %v, want %s=%s", m.Name, v.Volume.Labels, runs.LabelRun, runID)
		}
	}
	if len(names) != 2 {
		t.Errorf("volume mounts = %v, want two anonymous volumes of the run", names)
	}

	off, err := cli.ContainerInspect(ctx, e.Service("offline").ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mode := off.Container.HostConfig.NetworkMode; mode != "none" {
		t.Errorf("offline network mode = %q, want none", mode)
	}
	for name := range off.Container.NetworkSettings.Networks {
		if name != "none" {
			t.Errorf("offline joined network %s", name)
		}
	}

	down()
	enginetest.AssertGone(t, cli, runID, 0)
	for _, name := range names {
		if _, err := cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("volume %s after down: %v, want not found", name, err)
		}
	}
}

// What the plan honours reaches the container.
func TestHonouredKeysReachTheContainer(t *testing.T) {
	ctx := context.Background()
	e, cli := startPlan(t, "testdata/honoured.yaml")
	app := e.Service("app")
	ins, err := cli.ContainerInspect(ctx, app.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, hc := ins.Container.Config, ins.Container.HostConfig
	checks := []struct {
		what string
		ok   bool
	}{
		{"restart", hc.RestartPolicy.Name == "on-failure" && hc.RestartPolicy.MaximumRetryCount == 3},
		{"init", hc.Init != nil && *hc.Init},
		{"read_only", hc.ReadonlyRootfs},
		{"shm_size", hc.ShmSize == 64<<20},
		{"stdin_open and tty", c.OpenStdin && c.Tty},
		{"cap_add", slices.Contains(hc.CapAdd, "CAP_NET_ADMIN") || slices.Contains(hc.CapAdd, "NET_ADMIN")},
		{"security_opt", fmt.Sprint(hc.SecurityOpt) == "[no-new-privileges:true]"},
		{"sysctls", hc.Sysctls["net.core.somaxconn"] == "1024"},
		{"healthcheck disable", c.Healthcheck != nil && fmt.Sprint(c.Healthcheck.Test) == "[NONE]"},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("%s not applied: config %+v host config %+v", ch.what, c, hc)
		}
	}
	for _, p := range []string{"3000/tcp", "5000/udp", "5001/udp"} {
		if _, ok := c.ExposedPorts[network.MustParsePort(p)]; !ok {
			t.Errorf("port %s not exposed: %v", p, c.ExposedPorts)
		}
	}
	for _, n := range ins.Container.NetworkSettings.Networks {
		if !slices.Contains(n.Aliases, "frontend") {
			t.Errorf("container_name is not an alias: %v", n.Aliases)
		}
	}
	for path, want := range map[string]string{"/run/secrets/pw": "pw\n", "/etc/app.conf": "level=debug\n"} {
		if res := exec1(t, app, "", "cat", path); res.Stdout != want {
			t.Errorf("%s = %q, want %q", path, res.Stdout, want)
		}
	}
	if res := exec1(t, app, "", "sh", "-c", "echo x > /run/secrets/pw"); res.ExitCode == 0 {
		t.Error("a secret is writable")
	}
}

// A service whose restart policy keeps restarting it fails the start after a
// few restarts, with its logs, instead of waiting for the start timeout.
func TestRestartLoopFailsFast(t *testing.T) {
	cli := enginetest.Connect(t)
	plan, err := loadPlan(t, "testdata/restart-loop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runID := fmt.Sprintf("loop%d", time.Now().UnixNano()%1e9)
	began := time.Now()
	_, err = Start(context.Background(), plan, WithClient(cli), WithRunID(runID), WithStartTimeout(2*time.Minute))
	var se *StartError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "restarted") || !strings.Contains(se.Logs, "giving up") {
		t.Fatalf("Start = %v, want a StartError saying it restarted, with its logs", err)
	}
	if d := time.Since(began); d > time.Minute {
		t.Errorf("failed after %s: waited for the start timeout", d)
	}
	enginetest.AssertGone(t, cli, runID, 10*time.Second)
}

// A service that restarts a few times before it runs is ready once it runs.
func TestRestartUntilReady(t *testing.T) {
	e, cli := startPlan(t, "testdata/restart-retry.yaml")
	ins, err := cli.ContainerInspect(context.Background(), e.Service("app").ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := ins.Container.RestartCount; n != 2 || !ins.Container.State.Running {
		t.Errorf("restart count %d, running %v; want 2 restarts, then running", n, ins.Container.State.Running)
	}
}

// A network that shares its name with one of the run's (Docker 20.10 allows
// it) never makes a service land on another network: the start fails with
// the engine's error, or every service joins exactly the run's networks.
func TestNetworkNameTakenTwice(t *testing.T) {
	ctx := context.Background()
	cli := enginetest.Connect(t)
	plan, err := loadPlan(t, "testdata/egress.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runID, since := runs.NewID(), time.Now()
	decoy, err := cli.NetworkCreate(ctx, "rehearse-"+runID+"-default", client.NetworkCreateOptions{Driver: "bridge", Labels: map[string]string{"rehearse.test.decoy": runID}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := cli.NetworkRemove(ctx, decoy.ID, client.NetworkRemoveOptions{}); err != nil {
			t.Errorf("remove the decoy network: %v", err)
		}
	})
	e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID))
	if err != nil {
		t.Logf("Start refused: %v", err)
		if !strings.Contains(err.Error(), "network") {
			t.Errorf("Start failed without naming a network: %v", err)
		}
		enginetest.AssertCreatedThenGone(t, cli, runID, since, 0)
		return
	}
	defer func() {
		if err := e.Down(ctx); err != nil {
			t.Error(err)
		}
		enginetest.AssertGone(t, cli, runID, 0)
	}()
	for _, s := range e.Services() {
		for name, n := range networksOf(t, cli, s.ContainerID) {
			if n.ID == decoy.ID || n.Labels[runs.LabelRun] != runID {
				t.Errorf("%s joined network %s (%s), not one of the run's", s.Name, name, n.ID)
			}
		}
	}
}

// A bind source that became a link out of the project after the plan was
// made (a container planted it through another service's writable bind) is
// refused when the container is created, and the run is removed.
func TestBindSourceReplacedByLinkAfterPlan(t *testing.T) {
	ctx := context.Background()
	cli := enginetest.Connect(t)
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/toctou.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "compose.yaml")
	for _, d := range []string{"work", "x"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := loadPlan(t, file)
	if err != nil {
		t.Fatal(err)
	}
	// The race, won by the attacker: ./x is now a link into ./work, where
	// service a plants x -> /.
	if err := os.Remove(filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("work", "x"), filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	runID, since := runs.NewID(), time.Now()
	e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID), WithStartTimeout(time.Minute))
	if err == nil {
		defer e.Down(ctx)
		res := exec1(t, e.Service("b"), "", "ls", "/host")
		t.Fatalf("started: service b mounts the host's / (ls /host: %q)", res.Stdout)
	}
	for _, want := range []string{"service b", "bind mount " + filepath.Join(dir, "x"), "/host", "outside the project directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if !errors.Is(err, ErrSandbox) {
		t.Errorf("error is not ErrSandbox: %v", err)
	}
	enginetest.AssertCreatedThenGone(t, cli, runID, since, 0)
}

// Only declared ports are published, and only by the gateway on 127.0.0.1:
// an egress service's expose: ports (and the image's) are not published.
func TestOnlyDeclaredPortsPublished(t *testing.T) {
	ctx := context.Background()
	e, cli := startPlan(t, "testdata/ports-egress.yaml")
	open := e.Service("open")
	ins, err := cli.ContainerInspect(ctx, open.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for port, bs := range ins.Container.NetworkSettings.Ports {
		if len(bs) > 0 {
			t.Errorf("the service itself publishes %s at %v", port, bs)
		}
	}
	if len(ins.Container.HostConfig.PortBindings) > 0 {
		t.Errorf("the service asks for port bindings %v", ins.Container.HostConfig.PortBindings)
	}
	if ep, err := open.Endpoint("7000"); err != nil || !strings.HasPrefix(ep, "127.0.0.1:") {
		t.Errorf("declared port 7000: %q %v, want a 127.0.0.1 endpoint from the gateway", ep, err)
	}
	if ep, err := open.Endpoint("7001"); err == nil {
		t.Errorf("exposed port 7001 has an endpoint %s", ep)
	}
}

// Run ids and volume names both may contain '-': volume x-data of run R and
// volume data of run R-x are both rehearse-R-x-data. A run never adopts a
// volume of that name that is another run's: Start fails naming it, leaves
// it as it was, and removes only what it made.
func TestVolumeOfAnotherRunNotAdopted(t *testing.T) {
	ctx := context.Background()
	cli := enginetest.Connect(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	compose := `services:
  app:
    image: debian:bookworm-slim
    command: ["sleep", "infinity"]
    volumes: ["x-data:/data"]
volumes:
  x-data:
`
	if err := os.WriteFile(file, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := loadPlan(t, file)
	if err != nil {
		t.Fatal(err)
	}
	runID := fmt.Sprintf("vol%d", time.Now().UnixNano()%1e9)
	other := runID + "-x"
	taken := "rehearse-" + other + "-data"
	// Owned by this (live) process, so Start's sweep leaves it alone.
	theirs := runs.Self().Labels(other)
	theirs["rehearse.test.decoy"] = runID
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: taken, Labels: theirs}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := cli.VolumeRemove(ctx, taken, client.VolumeRemoveOptions{}); err != nil {
			t.Errorf("remove the other run's volume %s: %v", taken, err)
		}
	})
	since := time.Now()
	e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID), WithSweep(false))
	if err == nil {
		e.Down(ctx)
		t.Fatalf("run %s started on volume %s of run %s", runID, taken, other)
	}
	for _, want := range []string{"volume x-data", taken, "run " + other, "not to run " + runID} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	v, err := cli.VolumeInspect(ctx, taken, client.VolumeInspectOptions{})
	if err != nil {
		t.Fatalf("the other run's volume after the failed start: %v", err)
	}
	if fmt.Sprint(v.Volume.Labels) != fmt.Sprint(theirs) {
		t.Errorf("the other run's volume labels = %v, want %v", v.Volume.Labels, theirs)
	}
	enginetest.AssertGone(t, cli, runID, 0)
	if created := enginetest.Created(t, cli, runID, since); !slices.ContainsFunc(created, func(s string) bool { return strings.HasPrefix(s, "network ") }) {
		t.Errorf("run %s created %v: no network, so its removal proved nothing", runID, created)
	}
}

// Images are made before any container starts exactly when a build's
// context, Dockerfile or Go module meets a writable bind source of any
// service (either inside the other, as written or through links); the
// bundled world, with no bind mounts, keeps building while it starts.
func TestImagesFirst(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"app", "data", "ctx/data", "tool", "shared"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"tool/go.mod", "shared/Dockerfile"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{"data-link": "ctx/data", "app/Dockerfile": "../shared/Dockerfile"} {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	p := func(s string) string { return filepath.Join(dir, s) }
	build := func(ctx string) *ServicePlan {
		return &ServicePlan{Name: "app", Image: image.Spec{Ref: "app", Build: &image.Build{Context: p(ctx), Dockerfile: "Dockerfile"}}}
	}
	goMain := func(main string) *ServicePlan {
		return &ServicePlan{Name: "app", Image: image.Spec{Ref: "app", Base: image.DebianBase, Go: []image.GoBinary{{Main: p(main), Path: "/app"}}}}
	}
	bind := func(service, src string, ro bool) *ServicePlan {
		return &ServicePlan{Name: service, Image: image.Spec{Ref: "debian"}, Mounts: []Mount{{Type: "bind", Source: p(src), Target: "/data", ReadOnly: ro}}}
	}
	withBind := func(sp *ServicePlan, src string, ro bool) *ServicePlan {
		sp.Mounts = append(sp.Mounts, Mount{Type: "bind", Source: p(src), Target: "/data", ReadOnly: ro})
		return sp
	}
	for _, tt := range []struct {
		name     string
		services []*ServicePlan
		want     bool
	}{
		{"context holds its own writable bind", []*ServicePlan{withBind(build("."), "data", false)}, true},
		{"context holds another service's writable bind", []*ServicePlan{build("ctx"), bind("db", "ctx/data", false)}, true},
		{"context is a writable bind", []*ServicePlan{build("app"), bind("db", "app", false)}, true},
		{"context lies under a writable bind", []*ServicePlan{build("app"), bind("db", ".", false)}, true},
		{"bind reaches into the context through a link", []*ServicePlan{build("ctx"), bind("db", "data-link", false)}, true},
		{"Dockerfile is a link into a writable bind", []*ServicePlan{build("app"), bind("db", "shared", false)}, true},
		{"Go module holds a writable bind", []*ServicePlan{goMain("tool"), bind("db", "tool", false)}, true},
		{"read-only bind in the context", []*ServicePlan{withBind(build("."), "data", true)}, false},
		{"writable bind beside the context", []*ServicePlan{build("app"), bind("db", "data", false)}, false},
		{"Go module beside a writable bind", []*ServicePlan{goMain("tool"), bind("db", "data", false)}, false},
		{"no build", []*ServicePlan{bind("db", ".", false)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, why := imagesFirst(&Plan{Dir: dir, Services: tt.services})
			if got != tt.want {
				t.Errorf("imagesFirst = %v (%s), want %v", got, why, tt.want)
			}
			if got && !strings.Contains(why, "writable bind mount") {
				t.Errorf("the reason does not name the bind: %s", why)
			}
		})
	}
	plan, err := loadPlan(t, billingCompose)
	if err != nil {
		t.Fatal(err)
	}
	if got, why := imagesFirst(plan); got {
		t.Errorf("the bundled world makes its images first: %s", why)
	}
}

// With a writable bind inside a build context, the image is built before
// the first service starts, even one that does not wait for it.
func TestImagesBeforeServicesWhenContextIsWritable(t *testing.T) {
	ctx := context.Background()
	cli := enginetest.Connect(t)
	dir := t.TempDir()
	runID := fmt.Sprintf("first%d", time.Now().UnixNano()%1e9)
	ref := "rehearse-test/images-first:" + runID
	files := map[string]string{
		"compose.yaml": `services:
  writer:
    image: debian:bookworm-slim
    command: ["sleep", "infinity"]
    volumes: ["./data:/data"]
  app:
    image: ` + ref + `
    build: .
    command: ["sleep", "infinity"]
    depends_on: [writer]
`,
		// The build takes a while, so that a start overlapping it shows.
		"Dockerfile": "FROM debian:bookworm-slim\nCOPY marker /marker\nRUN sleep 2\n",
		"marker":     runID,
		"data/keep":  "",
	}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := loadPlan(t, filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var progress lockedBuffer
	e, err := Start(ctx, plan, WithClient(cli), WithRunID(runID), WithProgress(&progress))
	t.Cleanup(func() {
		if _, err := cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
			t.Errorf("remove test image %s: %v", ref, err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Down(ctx); err != nil {
		t.Error(err)
	}
	enginetest.AssertGone(t, cli, runID, 0)
	out := progress.String()
	built, started := strings.Index(out, "image "+ref+" built"), strings.Index(out, "writer: starting")
	if built < 0 || started < 0 || built > started {
		t.Errorf("progress does not say the image was built before writer started:\n%s", out)
	}
	if n := strings.Count(out, "image "+ref+" built"); n != 1 {
		t.Errorf("the build is reported %d times:\n%s", n, out)
	}
}

// lockedBuffer is a progress writer the services' goroutines share.
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

// A bind source replaced since the create is named for what changed: a
// bound file replaced by an editor's atomic save (a new file renamed over
// it, a new inode) says to recreate the environment; a directory replaced
// says directory; an unchanged source passes.
func TestBindSourceCheckSaysWhatChanged(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"conf", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "conf", "app.yaml")
	if err := os.WriteFile(file, []byte("a: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	record := func(p string) bindSource {
		t.Helper()
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		dev, ino, err := fileID(real)
		if err != nil {
			t.Fatal(err)
		}
		return bindSource{Path: real, Target: "/x", Dev: dev, Ino: ino}
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	fb, db := record(file), record(filepath.Join(dir, "data"))
	if err := fb.check(root); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
	if err := db.check(root); err != nil {
		t.Fatalf("unchanged directory: %v", err)
	}
	// The editor's save: a new file, renamed over the old one.
	if err := os.WriteFile(file+".swp", []byte("a: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".swp", file); err != nil {
		t.Fatal(err)
	}
	if err := fb.check(root); err == nil || !strings.Contains(err.Error(), "the file was replaced (a new inode): recreate the environment to mount the new one") {
		t.Errorf("a bound file saved atomically: %v", err)
	}
	if err := os.Rename(filepath.Join(dir, "data"), filepath.Join(dir, "data.orig")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := db.check(root); err == nil || !strings.Contains(err.Error(), "the directory was replaced (a new inode)") {
		t.Errorf("a bound directory replaced: %v", err)
	}
}

package fault

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
)

// sigkillFaults are the faults the killed run holds when it dies, on the
// three nodes of testdata/compose.yaml. Each must leave something a
// SIGKILL could strand (a frozen cgroup, filter rules, a container of its
// own): a new kind of fault is one more line here.
//
// The pause comes last: the latency to c sets c up as an upstream while c
// still runs. Once (a 2-core CI machine, Docker 20.10, cgroup v1) the
// engine wedged on c, paused first, while the latency was set up: inspect
// of c hung until its freezer cgroup was thawed by hand.
var sigkillFaults = []func(e *env.Environment) (Fault, error){
	func(e *env.Environment) (Fault, error) { return NewCut(e, "a", "b", WithBothWays(true)) },
	func(e *env.Environment) (Fault, error) {
		return NewLatency(e, "a", "c", 200*time.Millisecond, 0, WithPort(8080))
	},
	func(e *env.Environment) (Fault, error) { return NewPause(e, "c") },
}

// sigkillChild, set in a child's environment, makes this test binary the
// run that gets killed instead of running tests: mode "gc" starts no
// watchdog (a program that never called runs.WatchdogMain, or whose
// watchdog died with it), mode "watchdog" does. sigkillChild_RUN is the run
// id. The child prints "ready {json}" once it holds every fault and has a
// helper container in flight, then waits to be killed.
const sigkillChild = "REHEARSE_SIGKILL_CHILD"

// The child runs from init, before TestMain (envtest.Main), so that mode gc
// never opts in to a watchdog. In mode watchdog, the watchdog the child
// starts is this binary again with the same environment: WatchdogMain
// serves it and exits.
func init() {
	mode := os.Getenv(sigkillChild)
	if mode == "" {
		return
	}
	if mode == "watchdog" {
		runs.WatchdogMain()
	}
	os.Exit(sigkillChildMain(mode, os.Getenv(sigkillChild+"_RUN")))
}

// sigkillReady is what the child says once it is mid-fault.
type sigkillReady struct {
	Faults  []string            `json:"faults"`
	Rules   map[string][]string `json:"rules"`   // fault rules per service, as Rules lists them
	Proxies []string            `json:"proxies"` // of the run's toxiproxy server
}

func sigkillChildMain(mode, runID string) int {
	ctx := context.Background()
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "sigkill child (%s): %v\n", mode, err)
		return 2
	}
	plan, err := env.LoadPlan(ctx, filepath.Join("testdata", "compose.yaml"))
	if err != nil {
		return fail(err)
	}
	// No sweep: the parent runs it, after the kill.
	e, err := env.Start(ctx, plan, env.WithRunID(runID), env.WithSweep(false))
	if err != nil {
		return fail(err)
	}
	// Until it is ready the child tears down what it made, like any run.
	ready := false
	defer func() {
		if !ready {
			e.Down(context.WithoutCancel(ctx))
		}
	}()
	set := NewSet(nil)
	var report sigkillReady
	toxic := false
	for _, mk := range sigkillFaults {
		f, err := mk(e)
		if err != nil {
			return fail(err)
		}
		if err := set.Inject(ctx, f); err != nil {
			return fail(err)
		}
		report.Faults = append(report.Faults, f.Name())
		_, ok := f.(*Toxic)
		toxic = toxic || ok
	}
	if report.Proxies, err = Proxies(ctx, e); err != nil {
		return fail(err)
	}
	if toxic && len(report.Proxies) == 0 {
		return fail(errors.New("a toxic is injected and the run's toxiproxy server has no proxy"))
	}
	report.Rules = map[string][]string{}
	for _, s := range e.Services() {
		rules, err := Rules(ctx, e, s.Name)
		if err != nil {
			return fail(err)
		}
		report.Rules[s.Name] = rules
	}
	// A helper container in flight when the kill comes: one that never
	// ends, in the namespace of the paused service (RunInNetns joins a
	// paused service too). It goes through the same RunInNetns as every
	// fault's helper, and so carries the same labels.
	go func() {
		_, err := e.Service("c").Container().RunInNetns(ctx, Image, []string{"sleep", "3600"}, nil)
		fmt.Fprintf(os.Stderr, "sigkill child: the slow helper ended before the kill: %v\n", err)
	}()
	out, err := json.Marshal(report)
	if err != nil {
		return fail(err)
	}
	ready = true
	fmt.Printf("ready %s\n", out)
	time.Sleep(time.Hour) // until the parent kills it
	return fail(errors.New("not killed within an hour"))
}

// TestSigkillMidFault kills a run with SIGKILL while it holds a pause, a
// two-way cut and a helper container, then checks that the sweep a user
// relies on leaves nothing of it: with no watchdog, the next run's sweep or
// `rehearse gc` (both runs.GC); with one, the watchdog alone.
func TestSigkillMidFault(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		within time.Duration // how long the leftovers may take to go once swept
	}{
		{"gc", 30 * time.Second},
		{"watchdog", 90 * time.Second},
	} {
		t.Run(tc.mode, func(t *testing.T) { testSigkill(t, tc.mode, tc.within) })
	}
}

func testSigkill(t *testing.T, mode string, within time.Duration) {
	cli := enginetest.Connect(t)
	ctx := context.Background()
	runID, since := runs.NewID(), time.Now()
	prefix := "rehearse-" + runID + "-"

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sigkillChild+"="+mode, sigkillChild+"_RUN="+runID)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			// What the test failed on is ours; leave the engine clean.
			forceRemove(t, cli, runID)
		}
	})

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				lines <- l
			}
		}
	}()
	var ready sigkillReady
	select {
	case l := <-lines:
		if err := json.Unmarshal([]byte(l), &ready); err != nil {
			t.Fatalf("child's ready line %q: %v", l, err)
		}
	case err := <-exited:
		exited <- err
		t.Fatalf("child exited before it was ready: %v\n%s", err, stderr.String())
	case <-time.After(5 * time.Minute):
		t.Fatalf("child not ready after 5 minutes\n%s", stderr.String())
	}

	// Mid-fault, before the kill: what the faults broke is in place.
	services := serviceContainers(t, cli, runID)
	for _, s := range []string{"a", "b", "c"} {
		if services[s] == "" {
			t.Fatalf("no container of service %s in run %s: %v", s, runID, services)
		}
	}
	if st := inspect(t, cli, services["c"]); st == nil || st.Container.State == nil || !st.Container.State.Paused {
		t.Fatalf("c is not paused mid-fault")
	}
	for _, s := range []string{"a", "b"} {
		if len(ready.Rules[s]) == 0 {
			t.Fatalf("no cut rule in %s's namespace mid-fault (faults %v, rules %v)", s, ready.Faults, ready.Rules)
		}
	}
	// The slow helper, in c's namespace, is running.
	enginetest.Eventually(t, time.Minute, 100*time.Millisecond, func() string {
		for _, h := range joiners(t, cli, services) {
			if h.State == "running" && h.joins == "c" {
				return ""
			}
		}
		return "no helper container running in c's namespace"
	})
	namespaces := netnsOf(t, cli, services, "a", "b", "c")
	var before []string
	for _, c := range listByName(t, cli, prefix) {
		before = append(before, c.name+" ("+c.State+")")
	}
	t.Logf("faults %v; proxies %v; run %s holds %s", ready.Faults, ready.Proxies, runID, strings.Join(before, ", "))

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child: %v, want killed", err)
	}
	exited <- nil // for the cleanup

	if mode == "gc" {
		// Nothing removed the run by itself: the sweep has work to do.
		if c, _, _ := enginetest.Resources(t, cli, runID); c == 0 {
			t.Fatalf("run %s has no container right after the kill: nothing left for gc to sweep", runID)
		}
		removed, err := runs.GC(ctx, cli, false)
		ours := false
		for _, r := range removed {
			ours = ours || r.ID == runID
		}
		// gc may meet other dead runs on this engine; only ours matters.
		if err != nil && strings.Contains(err.Error(), runID) {
			t.Errorf("gc: %v", err)
		}
		t.Logf("gc removed run %s: %v", runID, ours)
	}

	enginetest.AssertCreatedThenGone(t, cli, runID, since, within)
	// Labels aside: nothing named for the run, nothing that joined one of
	// its containers' namespaces, none of its containers by id.
	for _, c := range listByName(t, cli, prefix) {
		t.Errorf("container %s (%s) left behind", c.name, c.State)
	}
	for _, h := range joiners(t, cli, services) {
		t.Errorf("container %s left in the namespace of %s (%s)", h.name, h.joins, h.State)
	}
	for svc, id := range services {
		if inspect(t, cli, id) != nil {
			t.Errorf("container of %s (%s) still exists", svc, id[:12])
		}
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", prefix)})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets.Items {
		t.Errorf("network %s left behind", n.Name)
	}
	vols, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: client.Filters{}.Add("name", prefix)})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Items {
		t.Errorf("volume %s left behind", v.Name)
	}
	// The cut's rules lived only in a's and b's namespaces: gone with them.
	for svc, ns := range namespaces {
		enginetest.Eventually(t, within, 250*time.Millisecond, func() string {
			// The engine unmounts a namespace at once and deletes the
			// empty file later (libnetwork's collector, about a minute).
			var st syscall.Stat_t
			if syscall.Stat(ns.key, &st) == nil && st.Dev == ns.dev && st.Ino == ns.ino {
				return fmt.Sprintf("the network namespace of %s is still mounted at %s", svc, ns.key)
			}
			if pids := processesIn(ns); len(pids) > 0 {
				return fmt.Sprintf("processes %v still run in the network namespace of %s (its cut rules with it)", pids, svc)
			}
			return ""
		})
	}
}

// serviceContainers maps each service of a run to its container id.
func serviceContainers(t *testing.T, cli *client.Client, runID string) map[string]string {
	t.Helper()
	f := client.Filters{}.Add("label", runs.LabelRun+"="+runID).Add("label", env.LabelService)
	cs, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range cs.Items {
		out[c.Labels[env.LabelService]] = c.ID
	}
	return out
}

type container struct {
	name, State string
	joins       string // the service whose network namespace it shares
}

// listByName lists every container whose name starts with prefix,
// whatever its labels.
func listByName(t *testing.T, cli *client.Client, prefix string) []container {
	t.Helper()
	cs, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("name", prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var out []container
	for _, c := range cs.Items {
		name := strings.TrimPrefix(c.Names[0], "/")
		if strings.HasPrefix(name, prefix) {
			out = append(out, container{name: name, State: string(c.State)})
		}
	}
	return out
}

// joiners lists every container of the engine, whatever its labels and
// name, that shares the network namespace of one of the services.
func joiners(t *testing.T, cli *client.Client, services map[string]string) []container {
	t.Helper()
	cs, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []container
	for _, c := range cs.Items {
		for svc, id := range services {
			if c.HostConfig.NetworkMode == "container:"+id {
				out = append(out, container{name: strings.TrimPrefix(c.Names[0], "/"), State: string(c.State), joins: svc})
			}
		}
	}
	return out
}

// inspect returns a container's details, nil once it is gone.
func inspect(t *testing.T, cli *client.Client, id string) *client.ContainerInspectResult {
	t.Helper()
	res, err := cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &res
}

// netns is a network namespace: the file the engine mounts it on, and its
// device and inode (in nsfs).
type netns struct {
	key      string
	dev, ino uint64
}

// netnsOf finds the network namespaces of services, when the engine runs
// on this machine (its sandbox files and the containers' processes are
// visible here); elsewhere the namespace checks are skipped, and the
// removal of every container that shared them stands for them.
func netnsOf(t *testing.T, cli *client.Client, services map[string]string, names ...string) map[string]netns {
	t.Helper()
	out := map[string]netns{}
	for _, s := range names {
		res := inspect(t, cli, services[s])
		if res == nil || res.Container.NetworkSettings == nil || res.Container.State == nil {
			t.Fatalf("cannot inspect %s", s)
		}
		key := res.Container.NetworkSettings.SandboxKey
		var st, pst syscall.Stat_t
		if err := syscall.Stat(key, &st); err != nil {
			t.Logf("network namespace of %s not visible here (%v): not checked", s, err)
			continue
		}
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", res.Container.State.Pid), &pst); err != nil || pst.Dev != st.Dev || pst.Ino != st.Ino {
			t.Logf("network namespace of %s not visible here (%s is not its main process's): not checked", s, key)
			continue
		}
		out[s] = netns{key: key, dev: st.Dev, ino: st.Ino}
	}
	return out
}

// processesIn lists the pids in a network namespace.
func processesIn(ns netns) []string {
	links, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	var pids []string
	for _, l := range links {
		var st syscall.Stat_t
		if syscall.Stat(l, &st) == nil && st.Dev == ns.dev && st.Ino == ns.ino {
			pids = append(pids, strings.Split(l, "/")[2])
		}
	}
	return pids
}

// forceRemove removes what a failed test may have left of its run: the
// run's labelled resources and any container named for it.
func forceRemove(t *testing.T, cli *client.Client, runID string) {
	ctx := context.Background()
	for _, c := range listByName(t, cli, "rehearse-"+runID+"-") {
		cli.ContainerRemove(ctx, c.name, client.ContainerRemoveOptions{Force: true})
	}
	if err := runs.Remove(ctx, cli, runID); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

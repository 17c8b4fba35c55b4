package runs

import (
	"context"
	"os"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

// fakeEngine is an in-memory Engine for gc's decisions; the Docker tests in
// harness/env check the same paths against a real engine.
type fakeEngine struct {
	containers []container.Summary
	networks   []network.Summary
	volumes    []volume.Volume
	removed    []string
}

func matches(f client.Filters, labels map[string]string) bool {
	for term := range f["label"] {
		k, v, hasV := strings.Cut(term, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

func (f *fakeEngine) ContainerList(_ context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	var out []container.Summary
	for _, c := range f.containers {
		if matches(o.Filters, c.Labels) && !f.isRemoved("container "+c.ID) {
			out = append(out, c)
		}
	}
	return client.ContainerListResult{Items: out}, nil
}

func (f *fakeEngine) ContainerRemove(_ context.Context, id string, _ client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.removed = append(f.removed, "container "+id)
	return client.ContainerRemoveResult{}, nil
}

func (f *fakeEngine) NetworkList(_ context.Context, o client.NetworkListOptions) (client.NetworkListResult, error) {
	var out []network.Summary
	for _, n := range f.networks {
		if matches(o.Filters, n.Labels) && !f.isRemoved("network "+n.ID) {
			out = append(out, n)
		}
	}
	return client.NetworkListResult{Items: out}, nil
}

func (f *fakeEngine) NetworkRemove(_ context.Context, id string, _ client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	f.removed = append(f.removed, "network "+id)
	return client.NetworkRemoveResult{}, nil
}

func (f *fakeEngine) VolumeList(_ context.Context, o client.VolumeListOptions) (client.VolumeListResult, error) {
	var out []volume.Volume
	for _, v := range f.volumes {
		if matches(o.Filters, v.Labels) && !f.isRemoved("volume "+v.Name) {
			out = append(out, v)
		}
	}
	return client.VolumeListResult{Items: out}, nil
}

func (f *fakeEngine) VolumeRemove(_ context.Context, id string, _ client.VolumeRemoveOptions) (client.VolumeRemoveResult, error) {
	f.removed = append(f.removed, "volume "+id)
	return client.VolumeRemoveResult{}, nil
}

// VolumeCreate behaves as the engine does: a volume that exists already is
// handed back as it is, labels and all.
func (f *fakeEngine) VolumeCreate(_ context.Context, o client.VolumeCreateOptions) (client.VolumeCreateResult, error) {
	for _, v := range f.volumes {
		if v.Name == o.Name {
			return client.VolumeCreateResult{Volume: v}, nil
		}
	}
	v := volume.Volume{Name: o.Name, Labels: o.Labels}
	f.volumes = append(f.volumes, v)
	return client.VolumeCreateResult{Volume: v}, nil
}

func (f *fakeEngine) isRemoved(what string) bool {
	for _, r := range f.removed {
		if r == what {
			return true
		}
	}
	return false
}

func (f *fakeEngine) add(run string, o Owner) {
	l := o.Labels(run)
	f.containers = append(f.containers,
		container.Summary{ID: run + "-old", Created: 1, Labels: l, Names: []string{"/" + run + "-old"}},
		container.Summary{ID: run + "-new", Created: 2, Labels: l, Names: []string{"/" + run + "-new"}})
	f.networks = append(f.networks, network.Summary{Network: network.Network{ID: run + "-net", Name: run + "-net", Labels: l}})
}

// deadPID is a pid no process has (the kernel's pid_max is far below it).
const deadPID = 1 << 30

func world(t *testing.T) *fakeEngine {
	self := Self()
	if self.PIDNS == "" || self.Boot == "" {
		t.Fatalf("Self() = %+v: no pid namespace or boot id from /proc", self)
	}
	at := func(pid int, start string) Owner {
		o := self
		o.PID, o.Start = pid, start
		return o
	}
	elsewhere := self
	elsewhere.Host = "another-host"
	f := &fakeEngine{}
	f.add("live", self)
	f.add("dead", at(deadPID, ""))
	f.add("reused", at(os.Getpid(), "1")) // our pid, another start time
	f.add("kept", at(deadPID, ""))
	if err := Keep(context.Background(), f, "kept", at(deadPID, "")); err != nil {
		t.Fatal(err)
	}
	f.add("remote", elsewhere)
	// Another container on the same daemon: same host name and pid as the
	// dead owner, another pid namespace. Its owner is not ours to judge.
	other := at(deadPID, "")
	other.PIDNS = "pid:[1]"
	f.add("other-pidns", other)
	rebooted := at(deadPID, "")
	rebooted.Boot = "another-boot"
	f.add("other-boot", rebooted)
	unlabelled := at(deadPID, "")
	unlabelled.PIDNS, unlabelled.Boot = "", "" // labels from before pid namespaces were recorded
	f.add("no-pidns", unlabelled)
	return f
}

func ids(runs []Info) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.ID)
	}
	sort.Strings(out)
	return out
}

func TestGCRemovesOnlyRunsOfDeadOwners(t *testing.T) {
	f := world(t)
	removed, err := GC(context.Background(), f, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(removed), []string{"dead", "reused"}; !reflect.DeepEqual(got, want) {
		t.Errorf("gc removed %v, want %v", got, want)
	}
	runs, err := List(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(runs), []string{"kept", "live", "no-pidns", "other-boot", "other-pidns", "remote"}; !reflect.DeepEqual(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

func TestGCAllRemovesEverything(t *testing.T) {
	f := world(t)
	removed, err := GC(context.Background(), f, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 8 {
		t.Errorf("gc --all removed %v", ids(removed))
	}
	if runs, err := List(context.Background(), f); err != nil || len(runs) != 0 {
		t.Errorf("left %v (%v)", ids(runs), err)
	}
}

func TestRemoveOrder(t *testing.T) {
	f := world(t)
	if err := Remove(context.Background(), f, "kept"); err != nil {
		t.Fatal(err)
	}
	want := []string{"container kept-new", "container kept-old", "network kept-net", "volume rehearse-kept.kept"}
	if !reflect.DeepEqual(f.removed, want) {
		t.Errorf("removed %v, want %v (newest container first, networks, then volumes)", f.removed, want)
	}
}

// Two owners share host name and pid; only the one in our pid namespace
// and boot is judged, and the kill(pid, 0) answer decides.
func TestAliveJudgesOnlyOwnersWeCanSee(t *testing.T) {
	self := Owner{Host: "ci", PID: 100, Start: "500", PIDNS: "pid:[4026531836]", Boot: "b1"}
	tests := []struct {
		name  string
		owner Owner
		kill  error  // what kill(pid, 0) answers
		start string // the start time /proc shows for the pid
		alive bool
	}{
		{"same namespace, no such process", Owner{Host: "ci", PID: 7, PIDNS: self.PIDNS, Boot: "b1"}, syscall.ESRCH, "", false},
		{"other namespace, same host and pid", Owner{Host: "ci", PID: 7, PIDNS: "pid:[4026532999]", Boot: "b1"}, syscall.ESRCH, "", true},
		{"other boot", Owner{Host: "ci", PID: 7, PIDNS: self.PIDNS, Boot: "b0"}, syscall.ESRCH, "", true},
		{"namespace not recorded", Owner{Host: "ci", PID: 7}, syscall.ESRCH, "", true},
		{"other host", Owner{Host: "elsewhere", PID: 7, PIDNS: self.PIDNS, Boot: "b1"}, syscall.ESRCH, "", true},
		{"EPERM: runs as another user", Owner{Host: "ci", PID: 7, Start: "42", PIDNS: self.PIDNS, Boot: "b1"}, syscall.EPERM, "", true},
		{"EPERM, same start time", Owner{Host: "ci", PID: 7, Start: "42", PIDNS: self.PIDNS, Boot: "b1"}, syscall.EPERM, "42", true},
		{"pid reused", Owner{Host: "ci", PID: 7, Start: "42", PIDNS: self.PIDNS, Boot: "b1"}, nil, "43", false},
		{"running", Owner{Host: "ci", PID: 7, Start: "42", PIDNS: self.PIDNS, Boot: "b1"}, nil, "42", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := false
			p := probe{self: self,
				kill: func(pid int) error {
					asked = true
					if pid != tt.owner.PID {
						t.Errorf("kill(%d, 0), want pid %d", pid, tt.owner.PID)
					}
					return tt.kill
				},
				start: func(int) string { return tt.start },
			}
			if got := p.alive(tt.owner); got != tt.alive {
				t.Errorf("alive(%+v) = %v, want %v", tt.owner, got, tt.alive)
			}
			if judged := tt.owner.Host == self.Host && tt.owner.PIDNS == self.PIDNS && tt.owner.Boot == self.Boot; asked != judged {
				t.Errorf("kill asked: %v, want %v", asked, judged)
			}
		})
	}
}

func TestOwnerLabelsRoundTrip(t *testing.T) {
	self := Self()
	got, ok := OwnerFromLabels(self.Labels("r1"))
	if !ok || got != self {
		t.Errorf("OwnerFromLabels(Labels) = %+v %v, want %+v", got, ok, self)
	}
	if !self.Alive() {
		t.Errorf("this process is not alive by its own labels")
	}
}

func TestRunID(t *testing.T) {
	for _, id := range []string{"r1", "nightly-2026.11.28_a"} {
		if err := ValidID(id); err != nil {
			t.Errorf("ValidID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "Upper", "-lead", "has space", strings.Repeat("x", 41)} {
		if err := ValidID(id); err == nil {
			t.Errorf("ValidID(%q) accepted", id)
		}
	}
	if a, b := NewID(), NewID(); a == b || ValidID(a) != nil {
		t.Errorf("NewID gave %q and %q", a, b)
	}
}

// A program that did not call WatchdogMain is never started again as a
// watchdog.
func TestNoWatchdogWithoutOptIn(t *testing.T) {
	was := optedIn.Swap(false)
	defer optedIn.Store(was)
	w, err := StartWatchdog(NewID(), Self())
	if err != nil || w != nil {
		t.Fatalf("StartWatchdog without opt-in = %v, %v; want nothing started", w, err)
	}
	w.Release() // a nil watchdog releases nothing
}

// A run without an owner label (or with one that does not parse) cannot be
// judged: gc leaves it, gc --all removes it.
func TestGCLeavesRunsWithoutOwner(t *testing.T) {
	f := &fakeEngine{}
	for run, owner := range map[string]string{"no-owner": "", "bad-owner": "host/not-a-pid"} {
		l := map[string]string{LabelRun: run}
		if owner != "" {
			l[LabelOwner] = owner
		}
		f.containers = append(f.containers, container.Summary{ID: run + "-c", Labels: l, Names: []string{"/" + run + "-c"}})
		f.networks = append(f.networks, network.Summary{Network: network.Network{ID: run + "-net", Name: run + "-net", Labels: l}})
	}
	removed, err := GC(context.Background(), f, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 0 || len(f.removed) != 0 {
		t.Errorf("gc removed %v (%v), want nothing: an owner it cannot read may be alive", ids(removed), f.removed)
	}
	removed, err = GC(context.Background(), f, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(removed), []string{"bad-owner", "no-owner"}; !reflect.DeepEqual(got, want) {
		t.Errorf("gc --all removed %v, want %v", got, want)
	}
}

// A run whose keep marker's name is already taken by another run's volume
// (run "a" with a compose volume "b.kept" against run "a-b") is told so,
// instead of believing itself kept.
func TestKeepRefusesAnotherRunsVolume(t *testing.T) {
	f := &fakeEngine{}
	f.volumes = append(f.volumes, volume.Volume{Name: "rehearse-a-b.kept", Labels: map[string]string{LabelRun: "a"}})
	err := Keep(context.Background(), f, "a-b", Self())
	if err == nil || !strings.Contains(err.Error(), `belongs to run "a"`) {
		t.Errorf("Keep over another run's volume: %v, want a refusal naming run a", err)
	}
	if err := Keep(context.Background(), f, "c", Self()); err != nil {
		t.Errorf("Keep of a fresh run: %v", err)
	}
}

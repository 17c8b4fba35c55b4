package env

import (
	"context"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

// fakeEngine is an in-memory Engine for gc's decisions; the Docker tests
// beside it check the same paths against a real engine.
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

func (f *fakeEngine) isRemoved(what string) bool {
	for _, r := range f.removed {
		if r == what {
			return true
		}
	}
	return false
}

func world() *fakeEngine {
	host, _ := os.Hostname()
	self := Self()
	dead := Owner{Host: host, PID: 1 << 30}
	reused := Owner{Host: host, PID: os.Getpid(), Start: "1"} // our pid, another start time
	elsewhere := Owner{Host: "another-host", PID: 1}
	f := &fakeEngine{}
	add := func(run string, o Owner, kept bool) {
		l := o.labels(run)
		f.containers = append(f.containers,
			container.Summary{ID: run + "-old", Created: 1, Labels: l, Names: []string{"/" + run + "-old"}},
			container.Summary{ID: run + "-new", Created: 2, Labels: l, Names: []string{"/" + run + "-new"}})
		f.networks = append(f.networks, network.Summary{Network: network.Network{ID: run + "-net", Name: run + "-net", Labels: l}})
		if kept {
			kl := o.labels(run)
			kl[LabelKept] = "true"
			f.volumes = append(f.volumes, volume.Volume{Name: run + ".kept", Labels: kl})
		}
	}
	add("live", self, false)
	add("dead", dead, false)
	add("reused", reused, false)
	add("kept", dead, true)
	add("remote", elsewhere, false)
	return f
}

func ids(runs []RunInfo) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.ID)
	}
	sort.Strings(out)
	return out
}

func TestGCRemovesOnlyRunsOfDeadOwners(t *testing.T) {
	f := world()
	removed, err := GC(context.Background(), f, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(removed), []string{"dead", "reused"}; !reflect.DeepEqual(got, want) {
		t.Errorf("gc removed %v, want %v", got, want)
	}
	runs, _ := Runs(context.Background(), f)
	if got, want := ids(runs), []string{"kept", "live", "remote"}; !reflect.DeepEqual(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

func TestGCAllRemovesEverything(t *testing.T) {
	f := world()
	removed, err := GC(context.Background(), f, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 5 {
		t.Errorf("gc --all removed %v", ids(removed))
	}
	if runs, _ := Runs(context.Background(), f); len(runs) != 0 {
		t.Errorf("left %v", ids(runs))
	}
}

func TestRemoveOrder(t *testing.T) {
	f := world()
	if err := Remove(context.Background(), f, "kept"); err != nil {
		t.Fatal(err)
	}
	want := []string{"container kept-new", "container kept-old", "network kept-net", "volume kept.kept"}
	if !reflect.DeepEqual(f.removed, want) {
		t.Errorf("removed %v, want %v (newest container first, networks, then volumes)", f.removed, want)
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/runs"
)

// gcFake is an in-memory engine with volumes only: cache volumes, one of
// them in use, a live run's volume (labelled like a cache volume too) and
// a volume of the user's.
type gcFake struct {
	volumes []volume.Volume
	inUse   map[string]bool
	removed []string
}

func (f *gcFake) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	return client.ContainerListResult{}, nil
}
func (f *gcFake) ContainerRemove(context.Context, string, client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	return client.ContainerRemoveResult{}, nil
}
func (f *gcFake) NetworkList(context.Context, client.NetworkListOptions) (client.NetworkListResult, error) {
	return client.NetworkListResult{}, nil
}
func (f *gcFake) NetworkRemove(context.Context, string, client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	return client.NetworkRemoveResult{}, nil
}

func (f *gcFake) VolumeList(_ context.Context, o client.VolumeListOptions) (client.VolumeListResult, error) {
	var out []volume.Volume
	for _, v := range f.volumes {
		ok := !slices.Contains(f.removed, v.Name)
		for term := range o.Filters["label"] {
			k, want, hasV := strings.Cut(term, "=")
			got, has := v.Labels[k]
			ok = ok && has && (!hasV || got == want)
		}
		if ok {
			out = append(out, v)
		}
	}
	return client.VolumeListResult{Items: out}, nil
}

func (f *gcFake) VolumeRemove(_ context.Context, name string, _ client.VolumeRemoveOptions) (client.VolumeRemoveResult, error) {
	if f.inUse[name] {
		return client.VolumeRemoveResult{}, fmt.Errorf("remove %s: volume is in use: %w", name, cerrdefs.ErrConflict)
	}
	f.removed = append(f.removed, name)
	return client.VolumeRemoveResult{}, nil
}

func TestGCRemovesCachedStates(t *testing.T) {
	// A cache volume is made by a process: a gone one, unless made says.
	gone := runs.Self()
	gone.PID, gone.Start = 1<<22-1, "1" // no such process (pid_max is at most 2^22)
	made := func(name string, by runs.Owner) volume.Volume {
		l := map[string]string{
			env.LabelCache: "seed", env.LabelCacheKey: strings.Repeat("ab", 32),
			env.LabelCachePrefix + "dataset": "billing", env.LabelCachePrefix + "scale": "400000",
			env.LabelCachePrefix + "service": "db", env.LabelCachePrefix + "compose": "/p/compose.yaml",
		}
		for k, v := range by.Labels("") {
			l[k] = v
		}
		delete(l, runs.LabelRun)
		return volume.Volume{Name: name, Labels: l, CreatedAt: time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)}
	}
	cache := func(name string) volume.Volume { return made(name, gone) }
	runVol := cache("rehearse-rlive-dbdata")
	for k, v := range runs.Self().Labels("rlive") {
		runVol.Labels[k] = v
	}
	newFake := func() *gcFake {
		return &gcFake{
			volumes: []volume.Volume{cache("rehearse-cache-seed-a"), cache("rehearse-cache-seed-b"), made("rehearse-cache-seed-c", runs.Self()), runVol, {Name: "users-own"}},
			inUse:   map[string]bool{"rehearse-cache-seed-b": true},
		}
	}
	for _, tc := range []struct {
		name           string
		all, keepCache bool
		want           []string // output lines
		removed        []string
	}{
		{"default", false, false, []string{
			"removed cached state rehearse-cache-seed-a (dataset billing at scale 400000 in db of /p/compose.yaml)",
			"kept cached state rehearse-cache-seed-b: in use",
			"kept cached state rehearse-cache-seed-c: its maker " + runs.Self().String() + " may still be storing it (--all removes it)",
		}, []string{"rehearse-cache-seed-a"}},
		{"all", true, false, []string{
			"removed run rlive (0 containers, 0 networks, 1 volumes)",
			"removed cached state rehearse-cache-seed-a (dataset billing at scale 400000 in db of /p/compose.yaml)",
			"kept cached state rehearse-cache-seed-b: in use",
			"removed cached state rehearse-cache-seed-c (dataset billing at scale 400000 in db of /p/compose.yaml)",
		}, []string{"rehearse-rlive-dbdata", "rehearse-cache-seed-a", "rehearse-cache-seed-c"}},
		{"keep-cache", false, true, []string{"nothing to remove"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			var out bytes.Buffer
			if err := gc(context.Background(), &out, f, tc.all, tc.keepCache); err != nil {
				t.Fatal(err)
			}
			if got := strings.Split(strings.TrimSpace(out.String()), "\n"); !slices.Equal(got, tc.want) {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), strings.Join(tc.want, "\n"))
			}
			if !slices.Equal(f.removed, tc.removed) {
				t.Errorf("removed %v, want %v (never a run's volume, nor the user's)", f.removed, tc.removed)
			}
		})
	}
}

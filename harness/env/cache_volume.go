package env

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/runs"
)

// Labels of cache volumes: volumes that keep something made in one run
// (a seeded database's data directory) for later runs. They carry no run
// label, so a run's removal (Down, the watchdog, runs.GC) leaves them;
// RemoveCacheVolumes (rehearse gc) removes them. They carry the owner
// labels of the process that made them, so that an entry a dead process
// left half-written can be told from one being written now.
const (
	LabelCache    = "rehearse.cache"     // the kind of cached thing: "seed"
	LabelCacheKey = "rehearse.cache.key" // the hex key the entry answers
	// LabelCachePrefix starts every other label of a cache volume (the
	// readable ones its maker adds: dataset, scale, created...).
	LabelCachePrefix = "rehearse.cache."
)

// CacheEngine is the part of the Docker API that listing and removing
// cache volumes needs (a *client.Client has it).
type CacheEngine interface {
	VolumeList(ctx context.Context, options client.VolumeListOptions) (client.VolumeListResult, error)
	VolumeRemove(ctx context.Context, id string, options client.VolumeRemoveOptions) (client.VolumeRemoveResult, error)
}

// CacheVolume is a cache volume as the engine lists it.
type CacheVolume struct {
	Name    string
	Kind    string
	Key     string
	Labels  map[string]string // every label, the readable ones included
	Created time.Time         // as the engine reports it; zero when unreadable
}

// Owner is the process that made the volume, when its labels say.
func (v CacheVolume) Owner() (runs.Owner, bool) { return runs.OwnerFromLabels(v.Labels) }

// OwnerGone reports whether the process that made the volume is known to
// be gone (runs.Owner.Alive); an owner it cannot judge counts as alive.
func (v CacheVolume) OwnerGone() bool {
	o, ok := v.Owner()
	return ok && !o.Alive()
}

// cacheKindRE and cacheKeyRE bound what names a cache volume.
var (
	cacheKindRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}$`)
	cacheKeyRE  = regexp.MustCompile(`^[0-9a-f]{16,64}$`)
)

// CreateCacheVolume creates an empty cache volume of a kind for a key (hex),
// named rehearse-cache-<kind>-<key's first 12 digits>-<8 random hex
// digits> (concurrent makers of one key get volumes of their own), labelled
// LabelCache=kind, LabelCacheKey=key, with this process's owner labels
// and the given readable labels (each name prefixed with
// LabelCachePrefix). It is not a volume of the run: only its maker, gc or
// RemoveCacheVolume removes it. The returned SpareVolume mounts in
// Container.RunWithVolumes; its Remove removes it.
func (e *Environment) CreateCacheVolume(ctx context.Context, kind, key string, labels map[string]string) (*SpareVolume, error) {
	if !cacheKindRE.MatchString(kind) || !cacheKeyRE.MatchString(key) {
		return nil, fmt.Errorf("cache volume: kind %q or key %q is not a name (kind: lowercase letters, digits, '-'; key: 16-64 hex digits)", kind, key)
	}
	name := "rehearse-cache-" + kind + "-" + key[:12] + "-" + helperID()
	all := map[string]string{}
	for k, v := range labels {
		all[LabelCachePrefix+k] = v
	}
	maps.Copy(all, e.owner.Labels(""))
	delete(all, runs.LabelRun)
	all[LabelCache], all[LabelCacheKey] = kind, key
	if _, err := e.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
		return nil, fmt.Errorf("cache volume %s: it exists already", name)
	}
	if _, err := e.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: all}); err != nil {
		return nil, fmt.Errorf("create cache volume %s: %w", name, err)
	}
	// The engine hands back a volume of that name that appeared since the
	// inspect as it is: only one with our labels is ours.
	ins, err := e.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if err != nil {
		// Ours (just created, unless another process raced us to a random
		// name): removed, since nothing else would remove it.
		_, rerr := e.cli.VolumeRemove(context.WithoutCancel(ctx), name, client.VolumeRemoveOptions{})
		if rerr != nil && !cerrdefs.IsNotFound(rerr) {
			err = errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("create cache volume %s: inspect: %w", name, err)
	}
	if got := ins.Volume.Labels; !cacheLabelsHold(got, all) {
		return nil, fmt.Errorf("create cache volume %s: the engine holds another volume of that name (labels %s=%q, %s=%q, %s=%q)",
			name, LabelCache, got[LabelCache], LabelCacheKey, got[LabelCacheKey], runs.LabelOwner, got[runs.LabelOwner])
	}
	return &SpareVolume{Name: name, e: e}, nil
}

// cacheLabelsHold reports whether got holds every label of want.
func cacheLabelsHold(got, want map[string]string) bool {
	for k, v := range want {
		if w, ok := got[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// OpenCacheVolume opens an existing cache volume of a kind and key, to
// mount it in Container.RunWithVolumes (as the spare volume) or remove
// it. It fails when the engine has no such volume or it is labelled for
// another kind or key: a volume that a helper's mount recreated under the
// name, empty and unlabelled, is not one.
func (e *Environment) OpenCacheVolume(ctx context.Context, name, kind, key string) (*SpareVolume, error) {
	ins, err := e.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("open cache volume %s: %w", name, err)
	}
	if l := ins.Volume.Labels; l[LabelCache] != kind || l[LabelCacheKey] != key || l[runs.LabelRun] != "" {
		return nil, fmt.Errorf("open cache volume %s: it is not the %s cache volume of key %s (labels %s=%q, %s=%q)",
			name, kind, key, LabelCache, l[LabelCache], LabelCacheKey, l[LabelCacheKey])
	}
	return &SpareVolume{Name: name, e: e}, nil
}

// CacheVolumes lists the cache volumes of a kind ("" for every kind) whose
// labels hold every pair of match (names without LabelCachePrefix, as
// CreateCacheVolume takes them; "key" matches LabelCacheKey), oldest
// first.
func (e *Environment) CacheVolumes(ctx context.Context, kind string, match map[string]string) ([]CacheVolume, error) {
	return ListCacheVolumes(ctx, e.cli, kind, match)
}

// ListCacheVolumes is CacheVolumes without an environment.
func ListCacheVolumes(ctx context.Context, cli CacheEngine, kind string, match map[string]string) ([]CacheVolume, error) {
	f := client.Filters{}.Add("label", LabelCache)
	if kind != "" {
		f = client.Filters{}.Add("label", LabelCache+"="+kind)
	}
	for _, k := range slices.Sorted(maps.Keys(match)) {
		f = f.Add("label", LabelCachePrefix+k+"="+match[k])
	}
	res, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list cache volumes: %w", err)
	}
	var out []CacheVolume
	for _, v := range res.Items {
		// A volume of a run is never a cache entry, whatever its labels.
		if v.Labels[runs.LabelRun] != "" || v.Labels[LabelCache] == "" {
			continue
		}
		cv := CacheVolume{Name: v.Name, Kind: v.Labels[LabelCache], Key: v.Labels[LabelCacheKey], Labels: v.Labels}
		cv.Created, _ = time.Parse(time.RFC3339, v.CreatedAt)
		out = append(out, cv)
	}
	slices.SortStableFunc(out, func(a, b CacheVolume) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// ErrCacheVolumeInUse is a cache volume a container mounts (a restore or
// a store reading or writing it): it stays.
var ErrCacheVolumeInUse = errors.New("in use")

// RemoveCacheVolume removes one cache volume, unless a container mounts
// it (then the error is ErrCacheVolumeInUse), and says whether it removed
// it. Only a volume labelled as a cache volume (and of no run) is removed;
// one gone already, or not a cache volume, is no error (false).
func RemoveCacheVolume(ctx context.Context, cli CacheEngine, name string) (bool, error) {
	vs, err := ListCacheVolumes(ctx, cli, "", nil)
	if err != nil {
		return false, err
	}
	if !slices.ContainsFunc(vs, func(v CacheVolume) bool { return v.Name == name }) {
		return false, nil
	}
	if err := removeCacheVolume(ctx, cli, name); err != nil {
		return false, err
	}
	return true, nil
}

func removeCacheVolume(ctx context.Context, cli CacheEngine, name string) error {
	// Not forced: the engine refuses to remove a volume a container (even
	// a stopped one) mounts, and that refusal is what "in use" means.
	_, err := cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		return nil
	case cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "in use"):
		return fmt.Errorf("remove cache volume %s: %w", name, ErrCacheVolumeInUse)
	}
	return fmt.Errorf("remove cache volume %s: %w", name, err)
}

// RemoveCacheVolumes removes every cache volume of a kind ("" for every
// kind) whose labels hold match (as CacheVolumes takes it), except those in
// use. It returns the volumes removed and those kept because a container
// mounts them; the error joins the other failures.
func RemoveCacheVolumes(ctx context.Context, cli CacheEngine, kind string, match map[string]string) (removed, inUse []CacheVolume, err error) {
	vs, err := ListCacheVolumes(ctx, cli, kind, match)
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, v := range vs {
		switch err := removeCacheVolume(ctx, cli, v.Name); {
		case err == nil:
			removed = append(removed, v)
		case errors.Is(err, ErrCacheVolumeInUse):
			inUse = append(inUse, v)
		default:
			errs = append(errs, err)
		}
	}
	return removed, inUse, errors.Join(errs...)
}

// RemoveCacheVolume removes one cache volume unless it is in use (see
// the package function).
func (e *Environment) RemoveCacheVolume(ctx context.Context, name string) (bool, error) {
	return RemoveCacheVolume(ctx, e.cli, name)
}

// cacheVolumeNameRE is what CreateCacheVolume names a volume.
var cacheVolumeNameRE = regexp.MustCompile(`^rehearse-cache-[a-z][a-z0-9-]{0,15}-[0-9a-f]{12}-[0-9a-f]+$`)

// RemoveRecreatedCacheVolume removes a volume of a cache volume's name
// that is no cache volume: the one the engine made, empty and without
// labels, when a helper mounted the name after the entry had been
// removed. It removes nothing else (a volume with any label stays, a
// cache entry above all) and says whether it removed one; one that is
// gone, or in use (ErrCacheVolumeInUse), is not removed.
func (e *Environment) RemoveRecreatedCacheVolume(ctx context.Context, name string) (bool, error) {
	if !cacheVolumeNameRE.MatchString(name) {
		return false, fmt.Errorf("remove recreated cache volume %q: not a cache volume's name", name)
	}
	ins, err := e.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("remove recreated cache volume %s: inspect: %w", name, err)
	case len(ins.Volume.Labels) > 0:
		return false, nil
	}
	if err := removeCacheVolume(ctx, e.cli, name); err != nil {
		return false, err
	}
	return true, nil
}

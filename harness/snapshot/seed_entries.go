package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
)

// seedEntry is a cache volume and, when it has one that is for the key,
// its manifest.
type seedEntry struct {
	vol env.CacheVolume
	m   *seedManifest // nil: incomplete
}

// seedRead reads a cache volume's manifest with a helper that mounts only
// that volume, read-only: nothing is stopped. An incomplete entry (no
// manifest) gives a nil manifest and no error; a damaged one (another
// key, a manifest that does not parse), a *seedDamaged to remove.
func seedRead(ctx context.Context, svc *env.Service, vol *env.SpareVolume, key string) (*seedManifest, error) {
	r, err := svc.Container().RunWithVolumes(ctx, restoreHelperImage, []string{"sh", "-c", seedReadScript}, nil, vol.ReadOnly())
	switch {
	case err != nil:
		return nil, err
	case r.ExitCode == seedExitIncomplete:
		return nil, nil
	case r.ExitCode != 0:
		return nil, &seedDamaged{err: fmt.Errorf("%s: its manifest cannot be read (exit %d): %s", vol.Name, r.ExitCode, restoreTail(r.Stderr)), remove: true}
	}
	m, err := seedParseManifest(r.Stdout)
	if err == nil && m.key != key {
		err = fmt.Errorf("its manifest is for key %s", m.key)
	}
	if err != nil {
		return nil, &seedDamaged{err: fmt.Errorf("%s: %w", vol.Name, err), remove: true}
	}
	return m, nil
}

// seedEntries reads the manifest of each cache volume of a key (or of a
// group: key ""), newest first. Entries that cannot be read are left out,
// the damaged ones removed; what happened is said in the note.
func seedEntries(ctx context.Context, e *env.Environment, svc *env.Service, vols []env.CacheVolume) ([]seedEntry, string) {
	var out []seedEntry
	var notes []string
	for i := len(vols) - 1; i >= 0; i-- {
		v := vols[i]
		key := v.Key
		sv, err := e.OpenCacheVolume(ctx, v.Name, seedKind, key)
		if err != nil {
			continue // gone since the list
		}
		m, err := seedRead(ctx, svc, sv, key)
		var dmg *seedDamaged
		switch {
		case errors.As(err, &dmg):
			notes = append(notes, fmt.Sprintf("cached state %s passed over: %v%s", v.Name, dmg, seedRemoveNote(ctx, e, v.Name)))
			continue
		case err != nil:
			notes = append(notes, fmt.Sprintf("cached state %s not read: %v", v.Name, err))
			continue
		case m == nil:
			if _, err := e.OpenCacheVolume(ctx, v.Name, seedKind, key); err != nil {
				// Removed while the helper mounted it: the engine made the
				// name again, empty; not ours to keep.
				notes = append(notes, fmt.Sprintf("cached state %s went while it was read%s", v.Name, seedRecreatedNote(ctx, e, v.Name)))
				continue
			}
		}
		out = append(out, seedEntry{vol: v, m: m})
	}
	return out, strings.Join(notes, "; ")
}

// seedRemoveNote removes a cache volume and says what came of it, as a
// note to append: " (removed)" only when it was.
func seedRemoveNote(ctx context.Context, e *env.Environment, name string) string {
	removed, err := e.RemoveCacheVolume(context.WithoutCancel(ctx), name)
	switch {
	case err != nil:
		return " (not removed: " + err.Error() + ")"
	case removed:
		return " (removed)"
	}
	return seedRecreatedNote(ctx, e, name)
}

// seedRecreatedNote removes the unlabelled volume the engine made under a
// removed entry's name (a helper mounted it), and says so.
func seedRecreatedNote(ctx context.Context, e *env.Environment, name string) string {
	removed, err := e.RemoveRecreatedCacheVolume(context.WithoutCancel(ctx), name)
	switch {
	case err != nil:
		return " (its name, made again empty by the engine, not removed: " + err.Error() + ")"
	case removed:
		return " (the entry had gone; the empty volume the engine made under its name was removed)"
	}
	return " (gone already)"
}

// seedIncompleteGoes reports whether an incomplete entry is left over: its
// maker is gone, or it is older than seedStaleIncomplete and its maker
// cannot be seen from here (another host, pid namespace or boot).
func seedIncompleteGoes(v env.CacheVolume, now time.Time) bool {
	if v.OwnerGone() {
		return true
	}
	o, ok := v.Owner()
	judged := ok && seedCanJudge(o)
	return !judged && !v.Created.IsZero() && now.Sub(v.Created) > seedStaleIncomplete
}

// SeedEntryMayBeStoring reports whether a cache volume may be a seeded
// state being stored right now, which a gc must leave: its maker lives
// (as far as this process can tell), or its maker cannot be judged from
// here and it is younger than an hour. It is what Seed keeps of an
// incomplete entry, applied without reading the manifest (a complete
// entry of a live maker is kept too). Other kinds are never.
func SeedEntryMayBeStoring(v env.CacheVolume, now time.Time) bool {
	return v.Kind == seedKind && !seedIncompleteGoes(v, now)
}

// seedRemoveKey removes the entries of a key that are not in use (fresh),
// and says what it removed.
func seedRemoveKey(ctx context.Context, e *env.Environment, key string) string {
	vols, err := e.CacheVolumes(ctx, seedKind, map[string]string{"key": key})
	if err != nil {
		return "entries not removed: " + err.Error()
	}
	var removed, kept []string
	for _, v := range vols {
		if ok, err := e.RemoveCacheVolume(context.WithoutCancel(ctx), v.Name); ok {
			removed = append(removed, v.Name)
		} else if err != nil {
			kept = append(kept, v.Name+" ("+err.Error()+")")
		}
	}
	var note string
	if len(removed) > 0 {
		note = "removed the key's entries " + strings.Join(removed, ", ")
	}
	if len(kept) > 0 {
		note = seedJoin(note, "kept "+strings.Join(kept, ", "))
	}
	return note
}

// seedEvict removes, when not in use, from the group of the entry just
// stored (ours): the entries made from other inputs (other images, plan
// or dataset: stale); the other complete entries of our key (duplicates
// of concurrent stores, or older states of it); complete entries past the
// newest seedKeep (the same inputs from other starting states);
// incomplete ones left over (seedIncompleteGoes). It says what it
// removed.
func seedEvict(ctx context.Context, s *Snapshot, e *env.Environment, svc *env.Service, spec *dataset.Spec, scale int64, in *seedInputs, ours string) string {
	ctx = context.WithoutCancel(ctx)
	group, err := e.CacheVolumes(ctx, seedKind, seedGroup(e, spec, scale))
	if err != nil {
		return ""
	}
	var removed []string
	remove := func(name string) {
		if ok, _ := e.RemoveCacheVolume(ctx, name); ok {
			removed = append(removed, name)
		}
	}
	var same []env.CacheVolume
	for _, c := range group {
		switch {
		case c.Name == ours:
		case c.Labels[env.LabelCachePrefix+"inputs"] != in.inputs:
			remove(c.Name)
		default:
			same = append(same, c)
		}
	}
	var entries []seedEntry
	var note string
	s.phase("evict", func() error {
		entries, note = seedEntries(ctx, e, svc, same)
		return nil
	})
	complete := 1 // ours
	now := time.Now()
	for _, en := range entries { // newest first
		switch {
		case en.m == nil:
			if seedIncompleteGoes(en.vol, now) {
				remove(en.vol.Name)
			}
		case en.vol.Key == in.key || complete >= seedKeep:
			remove(en.vol.Name)
		default:
			complete++
		}
	}
	if len(removed) > 0 {
		note = seedJoin(note, "removed older entries "+strings.Join(removed, ", "))
	}
	return note
}

package report

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// merge joins the records of several directories, refusing what would
// make the merged report lie: a scenario twice, a shard twice or missing,
// shards of different runs, a run that left scenarios without a record.
func merge(recs []dirRecords) (*Report, error) {
	r := &Report{}
	seen := map[string]string{} // Location -> its file
	for _, d := range recs {
		r.dirs = append(r.dirs, d.dir)
		for i, s := range d.scenarios {
			file := filepath.Join(d.dir, TimelinesDir, d.files[i])
			if prev, ok := seen[s.Location()]; ok {
				return nil, fmt.Errorf("merge: %s is in both %s and %s", s.Location(), prev, file)
			}
			seen[s.Location()] = file
			r.Scenarios = append(r.Scenarios, s)
		}
	}
	if len(recs) > 1 {
		for _, d := range recs {
			if d.run == nil {
				return nil, fmt.Errorf("merge: %s has no %s: merging needs each directory's (rehearse run --out writes it)", d.dir, RunFile)
			}
		}
		if err := checkShards(recs); err != nil {
			return nil, err
		}
	}
	if err := checkSpan(recs); err != nil {
		return nil, err
	}
	for _, d := range recs {
		if err := checkComplete(d); err != nil {
			return nil, err
		}
		if d.run != nil {
			r.Runs = append(r.Runs, *d.run)
		}
	}
	sort.SliceStable(r.Runs, func(i, j int) bool {
		a, _, _ := ParseShard(r.Runs[i].Shard)
		b, _, _ := ParseShard(r.Runs[j].Shard)
		return a < b
	})
	sortScenarios(r.Scenarios)
	return r, nil
}

func sortScenarios(ss []Scenario) {
	sort.SliceStable(ss, func(i, j int) bool {
		if ss[i].Feature != ss[j].Feature {
			return ss[i].Feature < ss[j].Feature
		}
		return ss[i].Line < ss[j].Line
	})
}

// checkShards: when any run says it is a shard, every run must be a shard
// of the same run (digest, count, tags), each once, and all present.
func checkShards(recs []dirRecords) error {
	var sharded, unsharded []dirRecords
	for _, d := range recs {
		if d.run.Shard == "" {
			unsharded = append(unsharded, d)
		} else {
			sharded = append(sharded, d)
		}
	}
	if len(sharded) == 0 {
		return nil // several unsharded runs (of different features, say): the scenario check is enough
	}
	if len(unsharded) > 0 {
		return fmt.Errorf("merge: %s is shard %s but %s is not a shard", sharded[0].dir, sharded[0].run.Shard, unsharded[0].dir)
	}
	first := sharded[0]
	_, n, _ := ParseShard(first.run.Shard)
	byIndex := map[int]string{}
	for _, d := range sharded {
		i, m, _ := ParseShard(d.run.Shard)
		if m != n {
			return fmt.Errorf("merge: %s is shard %s but %s is shard %s: shards of one run share N", first.dir, first.run.Shard, d.dir, d.run.Shard)
		}
		if d.run.Digest != first.run.Digest {
			return fmt.Errorf("merge: %s (shard %s) and %s (shard %s) split different sets of scenarios (digest %s vs %s): run every shard on the same features and tags",
				first.dir, first.run.Shard, d.dir, d.run.Shard, short(first.run.Digest), short(d.run.Digest))
		}
		if d.run.Tags != first.run.Tags {
			return fmt.Errorf("merge: %s ran --tags %q but %s ran --tags %q: shards of one run share their tags", first.dir, first.run.Tags, d.dir, d.run.Tags)
		}
		if prev, ok := byIndex[i]; ok {
			return fmt.Errorf("merge: %s and %s are both shard %s", prev, d.dir, d.run.Shard)
		}
		byIndex[i] = d.dir
	}
	var missing []string
	for i := 1; i <= n; i++ {
		if _, ok := byIndex[i]; !ok {
			missing = append(missing, fmt.Sprintf("%d/%d", i, n))
		}
	}
	if len(missing) > 0 {
		var given []string
		for _, d := range sharded {
			given = append(given, d.dir+" is "+d.run.Shard)
		}
		word := "shard"
		if len(missing) > 1 {
			word = "shards"
		}
		return fmt.Errorf("merge: %s %s missing (%s)", word, joinAnd(missing), strings.Join(given, ", "))
	}
	return nil
}

// checkComplete holds a directory's records to its run.json, both ways
// (the selection is what ran, tags applied): a selected scenario without
// a record was interrupted, or its record removed; a record of a scenario
// not selected is left from an earlier run.
func checkComplete(d dirRecords) error {
	if d.run == nil {
		return nil
	}
	selected := map[string]bool{}
	for _, loc := range d.run.Selected {
		selected[loc] = true
	}
	have := map[string]bool{}
	for i, s := range d.scenarios {
		have[s.Location()] = true
		if !selected[s.Location()] {
			return fmt.Errorf("load report: %s: %s is not among the scenarios %s says this run selected: a record from an earlier run?",
				filepath.Join(d.dir, TimelinesDir, d.files[i]), s.Location(), RunFile)
		}
	}
	var missing []string
	for _, loc := range d.run.Selected {
		if !have[loc] {
			missing = append(missing, loc)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	who := d.dir
	if d.run.Shard != "" {
		who = "shard " + d.run.Shard + " (" + d.dir + ")"
	}
	what, whose := "it", "its record was"
	if len(missing) > 1 {
		what, whose = "them", "their records were"
	}
	if len(missing) > maxNamedInErr {
		missing = append(missing[:maxNamedInErr], strconv.Itoa(len(missing)-maxNamedInErr)+" more")
	}
	return fmt.Errorf("load report: %s ran %s but left no record of %s: it was interrupted, or %s removed", who, joinAnd(missing), what, whose)
}

// checkSpan refuses records that together span more than MaxSpan, from
// the first start of a run or scenario to the last end: each is bounded
// on its own, but shards or scenarios years apart are not one nightly,
// and their wall time would be nonsense.
func checkSpan(recs []dirRecords) error {
	type point struct {
		t    time.Time
		file string
	}
	var first, last point
	see := func(start, end time.Time, file string) {
		if !start.IsZero() && (first.file == "" || start.Before(first.t)) {
			first = point{start, file}
		}
		if !end.IsZero() && (last.file == "" || end.After(last.t)) {
			last = point{end, file}
		}
	}
	for _, d := range recs {
		if d.run != nil {
			see(d.run.Start, d.run.End, filepath.Join(d.dir, RunFile))
		}
		for i, s := range d.scenarios {
			see(s.Start, s.End, filepath.Join(d.dir, TimelinesDir, d.files[i]))
		}
	}
	if first.file != "" && last.file != "" && last.t.Sub(first.t) > MaxSpan {
		return fmt.Errorf("load report: %s starts at %s but %s ends at %s: more than the %d days the runs and scenarios of one report may span",
			first.file, fmtTime(first.t), last.file, fmtTime(last.t), MaxSpan/(24*time.Hour))
	}
	return nil
}

// joinAnd joins "a", "b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// short is a digest's first 12 characters.
func short(digest string) string {
	digest = strings.TrimPrefix(digest, "sha256:")
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

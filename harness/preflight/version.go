package preflight

import (
	"cmp"
	"strconv"
	"strings"
)

// versionParts splits a version such as v1.16.0, 3.0 or 2.3.1-rc1 into
// its numeric parts and a pre-release suffix. ok is false when it does not
// start with a number.
func versionParts(v string) (nums []int, pre string, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(v, "-+~"); i >= 0 {
		v, pre = v[:i], v[i+1:]
	}
	for _, p := range strings.Split(v, ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, "", false
		}
		nums = append(nums, n)
	}
	return nums, pre, true
}

// validVersion says whether v reads as a version.
func validVersion(v string) bool {
	_, _, ok := versionParts(v)
	return ok
}

// compareVersions orders two versions part by part as numbers, a missing
// part being 0 (3.0 = 3.0.0 = v3), a pre-release before its release
// (3.0-rc1 < 3.0); versions that do not read as numbers compare as text.
func compareVersions(a, b string) int {
	na, pa, oka := versionParts(a)
	nb, pb, okb := versionParts(b)
	if !oka || !okb {
		return cmp.Compare(a, b)
	}
	for i := range max(len(na), len(nb)) {
		x, y := 0, 0
		if i < len(na) {
			x = na[i]
		}
		if i < len(nb) {
			y = nb[i]
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	switch {
	case pa == pb:
		return 0
	case pa == "":
		return 1
	case pb == "":
		return -1
	}
	return cmp.Compare(pa, pb)
}

// versionMatches says whether an installed version is one that an entry of
// upgrades_from names: the same version (2.3 = 2.3.0), a release of it
// (entry 2.3 takes 2.3.7), or any with a wildcard (2.x, 2.3.*, *).
func versionMatches(installed, entry string) bool {
	entry = strings.TrimSpace(entry)
	if entry == "*" {
		return true
	}
	inst, _, ok := versionParts(installed)
	if !ok {
		return strings.TrimSpace(installed) == entry
	}
	if base, found := strings.CutSuffix(entry, ".x"); found {
		entry = base
	} else if base, found := strings.CutSuffix(entry, ".*"); found {
		entry = base
	}
	want, _, ok := versionParts(entry)
	if !ok {
		return strings.TrimSpace(installed) == entry
	}
	if compareVersions(installed, entry) == 0 {
		return true
	}
	if len(inst) <= len(want) {
		return false
	}
	for i, n := range want {
		if inst[i] != n {
			return false
		}
	}
	return true
}

package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rehearse/rehearse/scenarios"
)

var startRE = regexp.MustCompile(`^running 9 scenarios, ([0-9]+) at a time \(from [0-9.]+ cores? (and [0-9.]+ GiB )?(for the engine|on this machine); --concurrency to change\)\n`)

// By default rehearse run says first, on stderr, how many scenarios run at
// once and from what figures: the engine's, or this machine's without one.
// --concurrency N says nothing; anything but auto or N >= 1 is a usage
// error, said before anything runs.
func TestRunConcurrency(t *testing.T) {
	const ran = "9 scenarios (7 passed, 2 failed)" // two need an environment
	r := rehearse(t, "run", "--format", "progress", cheap, more)
	if r.code != exitFailure {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitFailure, r.stdout, r.stderr)
	}
	m := startRE.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("stderr does not start with the concurrency line:\n%s", r.stderr)
	}
	// The test asks the same engine (or machine) as the binary did.
	c := scenarios.FindCapacity(t.Context())
	if want := strconv.Itoa(min(9, c.Concurrency())); m[1] != want || (m[3] == "for the engine") != c.Engine {
		t.Errorf("%q: want %s at a time, from %s", strings.TrimSpace(m[0]), want, c)
	}
	if !strings.Contains(r.stdout, ran) {
		t.Errorf("want the nine scenarios run:\n%s", r.stdout)
	}

	r = rehearse(t, "run", "--format", "progress", "--concurrency", "2", cheap, more)
	if r.code != exitFailure || strings.Contains(r.stderr, "at a time") || !strings.Contains(r.stdout, ran) {
		t.Errorf("--concurrency 2: exit %d, want %d, the nine scenarios and no concurrency line\nstdout:\n%s\nstderr:\n%s", r.code, exitFailure, r.stdout, r.stderr)
	}

	for _, bad := range []string{"0", "-1", "two", "", "1.5"} {
		r := rehearse(t, "run", "--concurrency", bad, cheap)
		want := `--concurrency: want "auto" or a number of at least 1, not ` + strconv.Quote(bad)
		if r.code != exitUsage || !strings.Contains(r.stderr, want) || r.stdout != "" {
			t.Errorf("--concurrency %q: exit %d, want %d and %q\nstdout:\n%s\nstderr:\n%s", bad, r.code, exitUsage, want, r.stdout, r.stderr)
		}
	}
}

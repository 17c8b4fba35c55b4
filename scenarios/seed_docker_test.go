package scenarios

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cucumber/godog"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/snapshot"
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/internal/envtest"
)

// TestSeededStateCached runs a feature whose two scenarios load one
// dataset at one scale: the first loads it and stores the state, the
// second starts from the cached state (its timeline says so), and both
// find the same rows (a sum computed from the generator, not the
// database). The dataset is a copy with a seed of the test's own, so the
// cache entries are the test's, and removed at its end.
func TestSeededStateCached(t *testing.T) {
	cli := enginetest.Connect(t)
	dir := t.TempDir()
	ds := envtest.CopyDataset(t, "../fixtures/billing/datasets/billing", filepath.Join(dir, "datasets", "seedtest"),
		fmt.Sprint(3000+mrand.IntN(1_000_000)))
	t.Cleanup(func() {
		abs, _ := filepath.Abs(ds)
		if _, inUse, err := env.RemoveCacheVolumes(context.Background(), cli, "seed", map[string]string{"dataset.dir": abs}); err != nil || len(inUse) > 0 {
			t.Errorf("remove the test's cache volumes: %v (in use %v)", err, inUse)
		}
	})
	// The expected sum, from the generator's rows.
	spec, err := dataset.Find(ds)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := dataset.WriteCSV(&buf, spec, "invoices", 20_000, nil); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := -1
	for i, c := range spec.Columns("invoices") {
		if c == "amount_cents" {
			col = i
		}
	}
	var sum int64
	for _, r := range recs {
		n, _ := strconv.ParseInt(r[col], 10, 64)
		sum += n
	}
	feature, err := os.ReadFile("testdata/seed/seed.feature")
	if err != nil {
		t.Fatal(err)
	}
	compose, _ := filepath.Abs(billingCompose)
	text := strings.ReplaceAll(string(feature), "../../../fixtures/billing/compose.yaml", compose)
	text = strings.ReplaceAll(text, "returns SUM", fmt.Sprintf("returns %d", sum))
	if err := os.WriteFile(filepath.Join(dir, "seed.feature"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "out")
	cfg := &Config{OutDir: out, SeedOptions: []snapshot.SeedOption{snapshot.WithSeedMinLoad(0)}}
	var log bytes.Buffer
	cfg.Live = &log
	suite := godog.TestSuite{
		Name:                "seed",
		ScenarioInitializer: Initializer(cfg),
		Options:             &godog.Options{Format: "progress," + cfg.Format(), Paths: []string{filepath.Join(dir, "seed.feature")}, Strict: true, Output: &bytes.Buffer{}},
	}
	start := time.Now()
	status := suite.Run()
	t.Logf("run took %s; progress:\n%s", time.Since(start).Round(time.Millisecond), log.String())
	if status != 0 {
		t.Fatalf("godog exited %d: %v", status, cfg.Failures())
	}
	timeline := func(name string) string {
		t.Helper()
		ms, _ := filepath.Glob(filepath.Join(out, "timelines", "*seed.feature-*-"+name+"*.txt"))
		if len(ms) != 1 {
			t.Fatalf("timeline of %q: %v", name, ms)
		}
		b, err := os.ReadFile(ms[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "seedtest") && strings.Contains(l, " load ") {
				t.Logf("%s: %s", name, l)
				return l
			}
		}
		t.Fatalf("no dataset span in the timeline of %q:\n%s", name, b)
		return ""
	}
	first, second := timeline("The-first-scenario-loads"), timeline("The-second-starts-from-the-cached-state")
	if !strings.Contains(first, "cache=stored") || !strings.Contains(second, "cache=hit") {
		t.Errorf("the first scenario's dataset span should say cache=stored, the second's cache=hit:\n%s\n%s", first, second)
	}
	key := func(l string) string {
		_, after, _ := strings.Cut(l, "cache-key=")
		k, _, _ := strings.Cut(after, " ")
		return k
	}
	if key(first) == "" || key(first) != key(second) {
		t.Errorf("cache keys %q and %q, want one key", key(first), key(second))
	}
	if !strings.Contains(log.String(), "seedtest at scale 20000: restored from cached state "+key(first)) {
		t.Errorf("the progress does not say the second scenario restored:\n%s", log.String())
	}
}

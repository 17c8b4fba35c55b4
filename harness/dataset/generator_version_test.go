package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"testing"
	"time"
)

// generatorGolden pins the rows the generators make of
// testdata/generators (every generator kind) at generatorGoldenScale,
// under GeneratorVersion. A change of any generated value fails
// TestGeneratorGolden: bump GeneratorVersion (cached seeded states of the
// old rows are then no longer hit) and pin the new hash with it.
var generatorGolden = map[string]string{
	"1": "dcea044359a15f24500c95ebe8babf3ad804fe3b8ceadf027b9efbb03b2aa489",
	"2": "dcea044359a15f24500c95ebe8babf3ad804fe3b8ceadf027b9efbb03b2aa489",
	"3": "dcea044359a15f24500c95ebe8babf3ad804fe3b8ceadf027b9efbb03b2aa489",
}

const generatorGoldenScale = 60

// generatorSources pins, per GeneratorVersion, the sha256 of the source
// text of the files that make what Load writes: generate.go (the values)
// and load.go (TRUNCATE, the setval rule, the order of tables and rows),
// which the golden sample above does not run. Any edit of either fails
// TestGeneratorSources until it is pinned again, so that a change of
// cached results cannot slip past GeneratorVersion.
var generatorSources = map[string]map[string]string{
	"1": {
		"generate.go": "9e3d885081cf61bb0e5aa8fb38359db5f14074743ab28c0532b3b67f63b8319e",
		"load.go":     "fdae0f73489041415f198ed4722a459645950004e6c771cf995d557e80bced95",
		"ahead.go":    "bddb8d5df504fae030fbb11fae622d8d72da0491009e338465762ba5d422f934",
		"restore.go":  "a9df66678db42497283e49d2f1b8b9ccf7671007731fba9faf9e689bc290ce79",
	},
	"2": {
		"generate.go": "9e3d885081cf61bb0e5aa8fb38359db5f14074743ab28c0532b3b67f63b8319e",
		"load.go":     "8924fc5c907f560f6f25c5b070a05baa4cfce772d067f7dc9390f81deea64220",
		"ahead.go":    "bddb8d5df504fae030fbb11fae622d8d72da0491009e338465762ba5d422f934",
		"restore.go":  "2673dea66403d2dd646cc5bb28f3d65cd5b84db6431a1123d498610e888cb025",
	},
	"3": {
		"generate.go": "9e3d885081cf61bb0e5aa8fb38359db5f14074743ab28c0532b3b67f63b8319e",
		"load.go":     "e1ac93df9f6c698f43f750e97973bec98cb0e5023ec7699dd4b830250ca27236",
		"ahead.go":    "bddb8d5df504fae030fbb11fae622d8d72da0491009e338465762ba5d422f934",
		"restore.go":  "de812be407f86788a68133fe0b48c12cb0b50da4854475b9f045cdf6467abe84",
	},
}

// generatorSourceFiles are the files generatorSources pins: the values
// (generate.go), the order of rows (ahead.go) and what Load does with them
// (load.go, restore.go).
var generatorSourceFiles = []string{"generate.go", "load.go", "ahead.go", "restore.go"}

// TestGeneratorSources compares the source text of generate.go and
// load.go (line endings made \n) with the hashes pinned for
// GeneratorVersion.
func TestGeneratorSources(t *testing.T) {
	pinned := generatorSources[GeneratorVersion]
	for _, f := range generatorSourceFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")))
		if got := hex.EncodeToString(sum[:]); got != pinned[f] {
			t.Errorf("%s changed: its sha256 is %s, pinned %q for GeneratorVersion %q. "+
				"If the change can alter what Load writes (a generated value, a row count, the order of rows or tables, TRUNCATE, setval), "+
				"bump GeneratorVersion in generator_version.go (cached seeded states of the old rows are then no longer hit), "+
				"pin TestGeneratorGolden's hash for it in generatorGolden, and pin this file's hash in generatorSources under the new version; "+
				"if it cannot (a comment, a rename, a log line), set generatorSources[%q][%q] = %q. "+
				"Either way both files are pinned together under one version (generator_version_test.go).",
				f, got, pinned[f], GeneratorVersion, GeneratorVersion, f, got)
		}
	}
}

// TestGeneratorGolden hashes every value of every table of the sample, as
// Load copies them (their Go types included, times to the nanosecond),
// and compares the hash with the one pinned for GeneratorVersion.
func TestGeneratorGolden(t *testing.T) {
	s, err := Find("testdata/generators")
	if err != nil {
		t.Fatal(err)
	}
	got := generatorSampleHash(t, s, generatorGoldenScale)
	want, ok := generatorGolden[GeneratorVersion]
	if !ok || got != want {
		t.Errorf("the generators' output under GeneratorVersion %q hashes to %s, pinned %q: a change of generated rows needs a new GeneratorVersion (generator_version.go) and this hash pinned for it", GeneratorVersion, got, want)
	}
}

// generatorSampleHash runs the tables in order as Load does (a per: table
// follows its parent's produced count) and hashes their values.
func generatorSampleHash(t *testing.T, s *Spec, scale int64) string {
	t.Helper()
	h := sha256.New()
	rows := map[string]int64{}
	for i := range s.Tables {
		if s.Tables[i].Rows != "" {
			n, err := rowCount(s.Tables[i].Rows, scale)
			if err != nil {
				t.Fatal(err)
			}
			rows[s.Tables[i].Name] = n
		}
	}
	for i := range s.Tables {
		tb := &s.Tables[i]
		src, err := newSource(s, tb, scale, rows)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "table %s %v\n", tb.Name, src.columnNames())
		for src.Next() {
			generatorHashRow(h, src.values)
		}
		if src.produced == 0 {
			t.Fatalf("table %s: no rows: the sample must exercise every generator", tb.Name)
		}
		rows[tb.Name] = src.produced
		fmt.Fprintf(h, "rows %d\n", src.produced)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func generatorHashRow(h hash.Hash, vals []any) {
	for _, v := range vals {
		switch v := v.(type) {
		case time.Time:
			fmt.Fprintf(h, "%T %s\t", v, v.UTC().Format(time.RFC3339Nano))
		default:
			fmt.Fprintf(h, "%T %q\t", v, fmt.Sprint(v))
		}
	}
	h.Write([]byte{'\n'})
}

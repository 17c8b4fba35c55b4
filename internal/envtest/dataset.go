package envtest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// datasetSeedRE is the seed line of a dataset definition.
var datasetSeedRE = regexp.MustCompile(`(?m)^seed: .*$`)

// CopyDataset copies the regular files of a dataset directory (src: its
// dataset.yaml, schema, dumps) into dst, created when missing ("" for a
// directory of the test's own), and returns dst. A seed other than ""
// replaces the definition's seed line, so that what a test loads (and the
// cache entries labelled with the directory) are its own.
func CopyDataset(t testing.TB, src, dst, seed string) string {
	t.Helper()
	if dst == "" {
		dst = t.TempDir()
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		if !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if seed != "" && de.Name() == "dataset.yaml" {
			if !datasetSeedRE.Match(b) {
				t.Fatalf("%s: no seed line to replace", filepath.Join(src, de.Name()))
			}
			b = datasetSeedRE.ReplaceAll(b, []byte("seed: "+seed))
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

package dataset

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehearse/rehearse/internal/envtest"
)

// TestDigest checks that the digest follows every input of a load: the
// definition (its seed), the schema and a dump file, and nothing else.
func TestDigest(t *testing.T) {
	copyDir := func(t *testing.T) string {
		t.Helper()
		return envtest.CopyDataset(t, "../../fixtures/billing/datasets/billing", "", "")
	}
	digest := func(t *testing.T, dir string) string {
		t.Helper()
		s, err := Find(dir)
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	edit := func(t *testing.T, file, old, new string) {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), old) {
			t.Fatalf("%s has no %q", file, old)
		}
		if err := os.WriteFile(file, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := digest(t, copyDir(t))
	if again := digest(t, copyDir(t)); again != base {
		t.Errorf("the same dataset in another directory digests to %s, then %s", base, again)
	}
	t.Run("the definition as parsed", func(t *testing.T) {
		dir := copyDir(t)
		s, err := Find(dir)
		if err != nil {
			t.Fatal(err)
		}
		// The file changes after Parse: the spec still loads what was
		// parsed, and the digest must say so.
		edit(t, filepath.Join(dir, FileName), "seed: 2026", "seed: 2027")
		d, err := s.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if d != base {
			t.Errorf("a spec parsed before its file changed digests to %s, want the parsed bytes' %s", d, base)
		}
	})
	for _, tc := range []struct {
		name string
		file string
		old  string
		new  string
	}{
		{"seed", "dataset.yaml", "seed: 2026", "seed: 2027"},
		{"schema", "schema.sql", "NOT NULL DEFAULT now()", "NOT NULL"},
		{"dump file", "dataset.yaml", "main: invoices", "files: [extra.sql]\nmain: invoices"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t)
			if err := os.WriteFile(filepath.Join(dir, "extra.sql"), []byte("SELECT 1;\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			edit(t, filepath.Join(dir, tc.file), tc.old, tc.new)
			d := digest(t, dir)
			if d == base {
				t.Errorf("changing the %s left the digest as it was", tc.name)
			}
			if tc.name == "dump file" {
				edit(t, filepath.Join(dir, "extra.sql"), "SELECT 1", "SELECT 2")
				if digest(t, dir) == d {
					t.Error("changing a dump file's bytes left the digest as it was")
				}
			}
		})
	}
}

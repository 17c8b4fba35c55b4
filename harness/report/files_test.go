package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecordName(t *testing.T) {
	for _, tt := range []struct {
		feature string
		line    int
		name    string
		want    string
	}{
		{"features/upgrade.feature", 19, "The upgrade keeps the data", "features-upgrade.feature-19-The-upgrade-keeps-the-data"},
		{"billing.feature", 3, "", "billing.feature-3"},
		{"a/b/c.feature", 7, "Ünïcode / slashes: ok?", "a-b-c.feature-7-n-code-slashes-ok"},
	} {
		if got := RecordName(tt.feature, tt.line, tt.name); got != tt.want {
			t.Errorf("RecordName(%q, %d, %q) = %q, want %q", tt.feature, tt.line, tt.name, got, tt.want)
		}
	}

	// Pairs the readable mapping would confuse: each must get its own name.
	long := strings.Repeat("x", 300)
	cases := [][3]any{
		{"a/b.feature", 1, "s"}, {"a-b.feature", 1, "s"}, {"a_b.feature", 1, "s"},
		{"a/1", 2, "x"}, {"a", 1, "2-x"}, {"a.feature", 1, "2-x"}, {"a.feature/1.feature", 2, "x"},
		{"x.feature", 19, "1-foo"}, {"x-19.feature", 1, "foo"}, {"x.feature-19", 1, "foo"},
		{"dir one/x.feature", 1, "n"}, {"dir-one/x.feature", 1, "n"}, {"dir:one/x.feature", 1, "n"},
		{"/abs/x.feature", 1, "n"}, {"abs/x.feature", 1, "n"}, {"../x.feature", 1, "n"}, {".x.feature", 1, "n"},
		{"x.feature", 1, "n-h0123456789abcdef"}, {"x.feature", 2, "n"},
		{long + ".feature", 1, "n"}, {long + "y.feature", 1, "n"},
		{"x.feature", 3, long}, {"x.feature", 3, long + "y"}, {"x.feature", 4, long},
	}
	// A readable name that ends as a hashed one does must not be one.
	hashed := RecordName("x-y.feature", 1, "n")
	cases = append(cases, [3]any{"x-y.feature", 1, "n"}, [3]any{"x/y.feature", 1, strings.TrimPrefix(hashed, "x-y.feature-1-")})
	seen := map[string]string{}
	for _, c := range cases {
		feature, line, name := c[0].(string), c[1].(int), c[2].(string)
		got := RecordName(feature, line, name)
		key := fmt.Sprintf("%s:%d", feature, line)
		if prev, ok := seen[got]; ok && prev != key {
			t.Errorf("%s and %s both map to %q", prev, key, got)
		}
		seen[got] = key
		if len(got)+len(timelineExt) > 220 {
			t.Errorf("RecordName(%q...) is %d bytes long", got[:20], len(got))
		}
		if strings.ContainsAny(got, "/\\: ") || strings.HasPrefix(got, ".") || strings.HasPrefix(got, "-") {
			t.Errorf("RecordName(%q, %d, %q) = %q: not a safe file name", feature, line, name, got)
		}
		if RecordName(feature, line, name) != got {
			t.Errorf("RecordName(%q, %d, %q) is not stable", feature, line, name)
		}
	}
	// Only the feature and line decide uniqueness: another name at the same
	// place is the same scenario renamed, and may share the stem.
	if a, b := RecordName("x-y.feature", 1, "a"), RecordName("x-y.feature", 1, "b"); a == b {
		t.Errorf("names ignored: %q", a)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	if err := WriteFileAtomic(path, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("two\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "two\n" {
		t.Errorf("%s holds %q (%v), want two", path, got, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm()&^0o640 != 0 {
		t.Errorf("mode %v (%v), want at most 0640", st.Mode(), err)
	}

	// A link in the file's place is replaced, not written through.
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("target\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link, []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "target\n" {
		t.Errorf("written through the link: target holds %q", got)
	}
	if st, err := os.Lstat(link); err != nil || !st.Mode().IsRegular() {
		t.Errorf("%s is not a regular file now: %v %v", link, st, err)
	}

	// A failed write leaves nothing behind.
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x.json"), []byte("x"), 0o644); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "missing", "x.json")) {
		t.Errorf("missing directory: %v, want an error naming the file", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "isdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "isdir", "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "isdir"), []byte("x"), 0o644); err == nil {
		t.Error("a directory in the file's place was replaced")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

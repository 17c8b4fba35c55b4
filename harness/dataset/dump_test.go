package dataset

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// A dump file's name is data: one that reads like shell (separators, quotes,
// command substitution) loads as a file and runs nothing else.
func TestDumpFileNamesAreNotShell(t *testing.T) {
	names := []string{
		"a;touch /tmp/pwned.sql", // a directory "a;touch " holding tmp/pwned.sql
		"b;touch pwned;.sql",
		`it's "quoted" && touch pwned-and.sql`,
		"$(touch pwned-subst).sql",
		"`touch pwned-tick`|touch pwned-pipe.sql.gz",
	}
	dir := t.TempDir()
	for i, name := range names {
		sql := fmt.Sprintf("CREATE TABLE IF NOT EXISTS loaded_names (n int, name text);\nINSERT INTO loaded_names VALUES (%d, %s);\n",
			i, "'"+strings.ReplaceAll(name, "'", "''")+"'")
		data := []byte(sql)
		if strings.HasSuffix(name, ".gz") {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data)
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			data = b.Bytes()
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	def, err := yaml.Marshal(map[string]any{"service": "db", "files": names})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), def, 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := Find(dir)
	if err != nil {
		t.Fatal(err)
	}

	e := startDB(t)
	ctx := context.Background()
	if _, err := Load(ctx, e, spec, 0); err != nil {
		t.Error(err) // and still look for what a name may have run
	}
	if n := count(t, e, "SELECT count(DISTINCT n) FROM loaded_names"); n != int64(len(names)) {
		t.Errorf("%d of %d files loaded", n, len(names))
	}
	res, err := e.Service("db").Exec(ctx, []string{"find", "/", "-xdev", "(", "-name", "*pwned*", "-o", "-name", "rehearse-dataset-*", ")"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != "" {
		t.Errorf("the load ran a file name or left files behind (find exited %d):\n%s", res.ExitCode, res.Stdout)
	}
}

// A dump that fails names the dataset's file, not the copy in the service.
func TestDumpErrorNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broken.sql"), []byte("SELECT 1;\nSELEC 2;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("service: db\nfiles: [broken.sql]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := Find(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := startDB(t)
	_, err = Load(context.Background(), e, spec, 0)
	if err == nil || !strings.Contains(err.Error(), "psql:broken.sql:2: ERROR:") {
		t.Errorf("got %v, want psql's error at broken.sql:2", err)
	}
}

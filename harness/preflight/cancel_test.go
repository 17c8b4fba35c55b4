package preflight

import (
	"context"
	"strings"
	"testing"
)

// TestCheckCancelledMidFile: a started check stops when its context is done
// (between statements, before each nested script), instead of reading
// the whole file.
func TestCheckCancelledMidFile(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sh := strings.Repeat("sudo id\nbash -c 'sudo true'\n", 1000)
	if fs := CheckScriptContext(ctx, "s.sh", 1, []byte(sh), ShellEnv{}); len(fs) != 0 {
		t.Errorf("script: %d findings after the context was done, want none:%s", len(fs), show(fs[:1]))
	}
	if fs := CheckScriptContext(context.Background(), "s.sh", 1, []byte(sh), ShellEnv{}); len(fs) != 2000 {
		t.Errorf("script: %d findings, want 2000", len(fs))
	}
	sql := strings.Repeat("ALTER TABLE t DROP COLUMN a;\n", 1000)
	for _, f := range CheckSQLWith("m.sql", []byte(sql), WithContext(ctx)) {
		if f.Rule == RuleBreakingChange {
			t.Fatalf("sql: a statement checked after the context was done: %+v", f)
		}
	}
}

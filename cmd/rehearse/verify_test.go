package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehearse/rehearse/internal/testpki"
)

func TestVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	if err := testpki.Generate(dir); err != nil {
		t.Fatal(err)
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	pkg := p("pkg.zip")
	if err := os.WriteFile(pkg, []byte("package"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("openssl", "cms", "-sign", "-binary", "-in", pkg, "-signer", p(testpki.Vendor),
		"-inkey", p(testpki.VendorKey), "-outform", "DER", "-out", pkg+".p7s").CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	r := rehearse(t, "verify", pkg, "--trust", p(testpki.OldRoot), "--format", "json")
	var res struct {
		Verdict, Reason, Signer string
		Chain                   []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if r.code != exitFailure || res.Verdict != "unknown-authority" || res.Signer != testpki.VendorName || !strings.Contains(res.Reason, testpki.NewRootName) {
		t.Errorf("old root only: exit %d %+v", r.code, res)
	}
	r = rehearse(t, "verify", pkg, "--trust", p(testpki.OldRoot), "--chain", p(testpki.Cross))
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "trusted: ") {
		t.Errorf("with the cross chain: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := rehearse(t, "verify", pkg); r.code != exitUsage {
		t.Errorf("without --trust: exit %d", r.code)
	}
	if r := rehearse(t, "verify", p("nope.zip"), "--trust", p(testpki.OldRoot)); r.code != exitUsage {
		t.Errorf("missing package: exit %d", r.code)
	}
	if r := rehearse(t, "verify", pkg, "--trust", p(testpki.NewRoot), "--signature", p("absent.p7s")); r.code != exitFailure || !strings.HasPrefix(r.stdout, "malformed: ") {
		t.Errorf("missing signature: exit %d %s", r.code, r.stdout)
	}
	// The bundled vendor signs with a code-signing certificate.
	if r := rehearse(t, "verify", pkg, "--trust", p(testpki.NewRoot), "--usage", "code-signing"); r.code != exitOK {
		t.Errorf("--usage code-signing: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := rehearse(t, "verify", pkg, "--trust", p(testpki.NewRoot), "--usage", "smime"); r.code != exitFailure || !strings.HasPrefix(r.stdout, "wrong-usage: ") {
		t.Errorf("--usage smime: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := rehearse(t, "verify", pkg, "--trust", p(testpki.NewRoot), "--usage", "timestamping"); r.code != exitUsage || !strings.Contains(r.stderr, "--usage") {
		t.Errorf("bad --usage: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := rehearse(t, "verify", dir, "--trust", p(testpki.NewRoot)); r.code != exitUsage || !strings.Contains(r.stderr, "directory") {
		t.Errorf("a directory: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
}

// TestVerifyFifo: verify on a fifo ends at once with an error; it used to
// wait for a writer, deaf to SIGTERM.
func TestVerifyFifo(t *testing.T) {
	dir := t.TempDir()
	if err := testpki.Generate(dir); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "pkg.zip")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "verify", fifo, "--trust", filepath.Join(dir, testpki.NewRoot))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if ctx.Err() != nil {
		t.Fatalf("verify on a fifo still running after 10 s: %s", out)
	}
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure || !strings.Contains(string(out), "not a regular file but a fifo") {
		t.Errorf("verify on a fifo: %v\n%s", err, out)
	}
}

package scenarios

import (
	"archive/zip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/internal/testpki"
)

// The apply step refuses a package whose signature the scenario did not find
// trusted, saying which step to add, before it needs an environment; the
// unsigned step lets it through with a warning on the timeline.
func TestApplyNeedsATrustedSignature(t *testing.T) {
	dir := t.TempDir()
	if err := testpki.Generate(dir); err != nil {
		t.Fatal(err)
	}
	// A real archive with a signature that is not one.
	pkg := filepath.Join(dir, "pkg.zip")
	f, err := os.Create(pkg)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	if _, err := zw.Create("upgrade.sh"); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pkg+".p7s", []byte("not a signature"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every package opened is closed: no workspace is left in TMPDIR.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Cleanup(func() {
		if left, _ := filepath.Glob(filepath.Join(tmp, "rehearse-package-*")); len(left) > 0 {
			t.Errorf("workspaces left behind: %v", left)
		}
	})
	newWorld := func(t *testing.T) context.Context {
		w := &World{Timeline: timeline.New(), log: io.Discard}
		t.Cleanup(func() {
			if w.up.pkg != nil {
				if err := w.up.pkg.Close(); err != nil {
					t.Error(err)
				}
			}
		})
		return context.WithValue(context.Background(), worldKey{}, w)
	}
	noEnv := "no environment"
	entryPkg := filepath.Join("..", "harness", "upgrade", "testdata", "entry-pkg")

	t.Run("never checked", func(t *testing.T) {
		ctx := newWorld(t)
		if err := theUpgradePackage(ctx, entryPkg); err != nil {
			t.Fatal(err)
		}
		err := applyPackage(ctx, "billing", "deploy")
		if err == nil || !strings.Contains(err.Error(), `"Then the package signature is trusted"`) || !strings.Contains(err.Error(), `"Given the package may be applied unsigned"`) {
			t.Errorf("apply without a verdict: %v", err)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		ctx := newWorld(t)
		if err := theUpgradePackage(ctx, pkg); err != nil {
			t.Fatal(err)
		}
		if err := theTrustStore(ctx, filepath.Join(dir, testpki.NewRoot)); err != nil {
			t.Fatal(err)
		}
		if err := signatureRejected(ctx, "malformed"); err != nil {
			t.Fatal(err)
		}
		if err := applyPackage(ctx, "billing", "deploy"); err == nil || !strings.Contains(err.Error(), "signature is malformed") {
			t.Errorf("apply after a rejection: %v", err)
		}
		if err := mayApplyUnsigned(ctx); err != nil {
			t.Fatal(err)
		}
		if err := applyPackage(ctx, "billing", "deploy"); err == nil || !strings.Contains(err.Error(), noEnv) {
			t.Errorf("apply allowed unsigned went on to the environment? %v", err)
		}
		if w := WorldFrom(ctx).Timeline.Filter(timeline.KindWarning); len(w) != 1 || w[0].Name != "the package may be applied unsigned" {
			t.Errorf("warnings %+v", w)
		}
	})
	t.Run("a failed open forgets the package before it", func(t *testing.T) {
		ctx := newWorld(t)
		if err := theUpgradePackage(ctx, pkg); err != nil {
			t.Fatal(err)
		}
		if err := mayApplyUnsigned(ctx); err != nil {
			t.Fatal(err)
		}
		broken := filepath.Join(t.TempDir(), "broken.zip")
		if err := os.WriteFile(broken, []byte("not a zip"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := theUpgradePackage(ctx, broken); err == nil {
			t.Fatal("opened a broken package")
		}
		if err := applyPackage(ctx, "billing", "deploy"); err == nil || !strings.Contains(err.Error(), "no upgrade package") {
			t.Errorf("apply after a failed open: %v, want no upgrade package", err)
		}
		if err := signatureTrusted(ctx); err == nil || !strings.Contains(err.Error(), "no upgrade package") {
			t.Errorf("verify after a failed open: %v, want no upgrade package", err)
		}
	})
	t.Run("unknown verdict names them all", func(t *testing.T) {
		err := signatureRejected(newWorld(t), "sha1")
		if err == nil || !strings.Contains(err.Error(), "weak-algorithm") || !strings.Contains(err.Error(), "invalid-chain") {
			t.Errorf("%v", err)
		}
	})
}

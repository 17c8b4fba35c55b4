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
	newWorld := func() context.Context {
		return context.WithValue(context.Background(), worldKey{}, &World{Timeline: timeline.New(), log: io.Discard})
	}
	noEnv := "no environment"

	t.Run("never checked", func(t *testing.T) {
		ctx := newWorld()
		if err := theUpgradePackage(ctx, filepath.Join("..", "harness", "upgrade", "testdata", "entry-pkg")); err != nil {
			t.Fatal(err)
		}
		err := applyPackage(ctx, "billing", "deploy")
		if err == nil || !strings.Contains(err.Error(), `"Then the package signature is trusted"`) || !strings.Contains(err.Error(), `"Given the package may be applied unsigned"`) {
			t.Errorf("apply without a verdict: %v", err)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		ctx := newWorld()
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
	t.Run("unknown verdict names them all", func(t *testing.T) {
		err := signatureRejected(newWorld(), "sha1")
		if err == nil || !strings.Contains(err.Error(), "weak-algorithm") || !strings.Contains(err.Error(), "invalid-chain") {
			t.Errorf("%v", err)
		}
	})
}

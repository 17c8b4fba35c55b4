package upgrade

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/internal/envtest"
	"github.com/rehearse/rehearse/internal/testpki"
)

// TestApplyRefusesUntrusted needs no engine: the refusal comes before
// anything reaches the environment.
func TestApplyRefusesUntrusted(t *testing.T) {
	p, err := Open(filepath.Join("testdata", "entry-pkg"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	out, err := Apply(ctx, nil, p, WithService("box"))
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "never verified") || !strings.Contains(err.Error(), "AllowUnsigned") || out != nil {
		t.Errorf("never verified: %v, %+v", err, out)
	}
	p.Verify([]byte("not a signature"), Trust{})
	if _, err := Apply(ctx, nil, p, WithService("box")); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "signature is malformed") {
		t.Errorf("malformed: %v", err)
	}

	// An archive, soundly signed, whose verdict is still not trusted.
	a, sig, trust, zipPath := openSigned(t, filepath.Join("testdata", "entry-pkg"))
	other := filepath.Join(t.TempDir(), "other")
	writeFile(t, other, []byte("other content"))
	dir := filepath.Dir(zipPath)
	sign(t, other, filepath.Join(dir, testpki.Vendor), filepath.Join(dir, testpki.VendorKey), other+".p7s", "DER")
	otherSig, err := os.ReadFile(other + ".p7s")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sig   []byte
		trust Trust
		want  Verdict
	}{
		{sig, Trust{Roots: x509.NewCertPool()}, UnknownAuthority},
		{otherSig, trust, BadSignature},
	} {
		if res := a.Verify(c.sig, c.trust); res.Verdict != c.want {
			t.Fatalf("verify: %+v, want %s", res, c.want)
		}
		out, err := Apply(ctx, nil, a, WithService("box"))
		if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "signature is "+string(c.want)) || out != nil {
			t.Errorf("%s: %v, %+v", c.want, err, out)
		}
	}
}

// signedZip zips dir's files into a package signed by the bundled vendor
// key, and returns it with its trust store.
func signedZip(t *testing.T, dir string) (string, Trust) {
	t.Helper()
	tmp := t.TempDir()
	if err := testpki.Generate(tmp); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h := &zip.FileHeader{Name: f.Name(), Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(tmp, "pkg.zip")
	writeFile(t, pkg, buf.Bytes())
	sign(t, pkg, filepath.Join(tmp, testpki.Vendor), filepath.Join(tmp, testpki.VendorKey), pkg+".p7s", "DER")
	roots, err := LoadTrust(filepath.Join(tmp, testpki.NewRoot))
	if err != nil {
		t.Fatal(err)
	}
	return pkg, Trust{Roots: roots}
}

// openSigned opens signedZip's package (closed when the test ends) and
// returns it with its signature, its trust store and its path.
func openSigned(t *testing.T, dir string) (*Package, []byte, Trust, string) {
	t.Helper()
	zipPath, trust := signedZip(t, dir)
	p, err := Open(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	sig, err := os.ReadFile(zipPath + ".p7s")
	if err != nil {
		t.Fatal(err)
	}
	return p, sig, trust, zipPath
}

func startBox(t *testing.T) *env.Environment {
	return envtest.Start(t, filepath.Join("testdata", "box", "compose.yaml"))
}

func TestApply(t *testing.T) {
	e := startBox(t)
	ctx := context.Background()

	t.Run("manifest steps, users, services, timeout and cleanup", func(t *testing.T) {
		p, err := Open(filepath.Join("testdata", "manifest-pkg"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		tl := timeline.New()
		var mu sync.Mutex
		var hooks []string
		record := func(what string) func(context.Context, StepResult) {
			return func(_ context.Context, s StepResult) {
				mu.Lock()
				hooks = append(hooks, what+" "+s.Name)
				mu.Unlock()
			}
		}
		out, err := Apply(ctx, e, p, WithTimeline(tl), AllowUnsigned(), WithHooks(Hooks{StepStart: record("start"), StepEnd: record("end")}))
		if err != nil {
			t.Fatal(err)
		}
		if w := tl.Filter(timeline.KindWarning); len(w) != 1 || !strings.Contains(w[0].Fields["why"], "never verified") {
			t.Errorf("warnings %+v, want one about the unverified package", w)
		}
		if out.FailedStep != "hang" {
			t.Errorf("failed step %q, want hang (timed out)", out.FailedStep)
		}
		who, _ := out.Step("whoami")
		if who.Output != "nobody\n"+Workdir+"\npayload\n" || who.User != "nobody" {
			t.Errorf("whoami: %+v", who)
		}
		if s, _ := out.Step("elsewhere"); s.Service != "other" || strings.TrimSpace(s.Output) != "other" {
			t.Errorf("elsewhere: %+v", s)
		}
		if s, _ := out.Step("hang"); !s.TimedOut || s.End.Sub(s.Start).Seconds() > 15 {
			t.Errorf("hang: %+v", s)
		}
		if _, ran := out.Step("never"); ran {
			t.Error("a step after the failure ran")
		}
		if s, ok := out.Step("tidy"); !ok || !s.Cleanup || s.Failed() {
			t.Errorf("cleanup: %+v %v", s, ok)
		}
		want := "start whoami,end whoami,start elsewhere,end elsewhere,start hang,end hang,start tidy,end tidy"
		if got := strings.Join(hooks, ","); got != want {
			t.Errorf("hooks %s\nwant  %s", got, want)
		}
		steps := tl.Filter(KindStep)
		if len(steps) != 4 || steps[2].Name != "hang" || steps[2].Fields["exit"] != "124" {
			t.Errorf("timeline steps %+v", steps)
		}
		if lines := tl.Filter(KindStepOutput); len(lines) < 4 || lines[0].Actor != "whoami" || lines[0].Name != "nobody" {
			t.Errorf("timeline output %+v", lines)
		}
	})

	t.Run("entry script with step markers", func(t *testing.T) {
		p, err := Open(filepath.Join("testdata", "entry-pkg"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		tl := timeline.New()
		out, err := Apply(ctx, e, p, WithService("box"), WithUser("nobody"), WithTimeline(tl), AllowUnsigned())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range out.Steps {
			// stderr's "oops" may reach the engine before stdout's first
			// marker: output before any marker is step "start" by design.
			if s.Name == "start" && strings.TrimSpace(s.Output) == "oops" {
				continue
			}
			names = append(names, s.Name)
		}
		if strings.Join(names, ",") != "check,install,restart" || out.FailedStep != "restart" {
			t.Errorf("steps %v, failed %q", names, out.FailedStep)
		}
		if s, _ := out.Step("check"); !strings.Contains(s.Output, "checking as nobody\n") || s.ExitCode != 0 {
			t.Errorf("check: %+v", s)
		}
		// stderr is a stream of its own, not ordered with stdout: its lines
		// land in the step that is current when they arrive.
		if all := out.Steps[0].Output + out.Steps[1].Output + out.Steps[2].Output; !strings.Contains(all, "oops") {
			t.Errorf("stderr missing from the steps' output: %q", all)
		}
		if s, _ := out.Step("restart"); s.ExitCode != 7 {
			t.Errorf("restart: %+v", s)
		}
		if n := len(tl.Filter(KindStep)); n != len(out.Steps) {
			t.Errorf("%d step events for %d steps", n, len(out.Steps))
		}
	})
	t.Run("a package verified as trusted applies without a warning", func(t *testing.T) {
		p, sig, trust, _ := openSigned(t, filepath.Join("testdata", "entry-pkg"))
		if res := p.Verify(sig, trust); res.Verdict != Trusted {
			t.Fatalf("verify: %+v", res)
		}
		tl := timeline.New()
		out, err := Apply(ctx, e, p, WithService("box"), WithUser("nobody"), WithTimeline(tl))
		if err != nil {
			t.Fatal(err)
		}
		if out.FailedStep != "restart" || len(tl.Filter(timeline.KindWarning)) != 0 {
			t.Errorf("failed at %q, warnings %+v", out.FailedStep, tl.Filter(timeline.KindWarning))
		}
	})
	// Last: it leaves "other" killed.
	t.Run("a step whose service is killed as it starts fails, and the upgrade stops there", func(t *testing.T) {
		p, err := Open(filepath.Join("testdata", "manifest-pkg"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		kill := func(ctx context.Context, s StepResult) {
			if s.Name == "elsewhere" {
				if err := e.Service("other").Container().Signal(ctx, "SIGKILL"); err != nil {
					t.Error(err)
				}
				enginetest.Eventually(t, 10*time.Second, 50*time.Millisecond, func() string {
					if st, err := e.Service("other").State(ctx); err != nil || st.Status == "running" {
						return fmt.Sprintf("other still running (%v)", err)
					}
					return ""
				})
			}
		}
		out, err := Apply(ctx, e, p, AllowUnsigned(), WithHooks(Hooks{StepStart: kill}))
		if err != nil {
			t.Fatalf("apply: %v, want the step's failure in the outcome", err)
		}
		s, _ := out.Step("elsewhere")
		if out.FailedStep != "elsewhere" || !strings.Contains(s.Output, "other is not running") {
			t.Errorf("failed at %q, elsewhere %+v", out.FailedStep, s)
		}
		if _, ran := out.Step("hang"); ran {
			t.Error("a step after the failure ran")
		}
	})
}

// A bad option is an error before anything is checked or copied.
func TestApplyOptionErrors(t *testing.T) {
	p := &Package{Source: "p.zip"}
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := Apply(context.Background(), nil, p, WithStepTimeout(d)); err == nil || !strings.Contains(err.Error(), "step timeout") {
			t.Errorf("WithStepTimeout(%s): %v, want a step timeout error", d, err)
		}
	}
}

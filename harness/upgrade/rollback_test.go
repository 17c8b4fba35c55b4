package upgrade

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/internal/enginetest"
)

func openDir(t *testing.T, name string) *Package {
	t.Helper()
	p, err := Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// The refusals need no engine: they come before anything reaches the
// environment (a nil one here).
func TestRollbackRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("a manifest without rollback steps", func(t *testing.T) {
		out, err := Rollback(ctx, nil, openDir(t, "manifest-pkg"), AllowUnsigned())
		if !errors.Is(err, ErrNoRollback) || !strings.Contains(err.Error(), "no rollback: list") || out != nil {
			t.Errorf("%v, %+v", err, out)
		}
	})
	t.Run("an entry script has no rollback", func(t *testing.T) {
		out, err := Rollback(ctx, nil, openDir(t, "entry-pkg"), WithService("box"), AllowUnsigned())
		if !errors.Is(err, ErrNoRollback) || !strings.Contains(err.Error(), "entry script") || out != nil {
			t.Errorf("%v, %+v", err, out)
		}
	})
	t.Run("the signature gate is Apply's", func(t *testing.T) {
		p := openDir(t, "rollback-pkg")
		out, err := Rollback(ctx, nil, p)
		if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "rollback ") || !strings.Contains(err.Error(), "never verified") || out != nil {
			t.Errorf("never verified: %v, %+v", err, out)
		}
		p.Verify([]byte("not a signature"), Trust{})
		if _, err := Rollback(ctx, nil, p); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "signature is malformed") {
			t.Errorf("malformed: %v", err)
		}
	})
	t.Run("a bad option", func(t *testing.T) {
		if _, err := Rollback(ctx, nil, openDir(t, "rollback-pkg"), WithStepTimeout(0)); err == nil || !strings.Contains(err.Error(), "rollback ") || !strings.Contains(err.Error(), "step timeout") {
			t.Errorf("%v", err)
		}
	})
}

func stepNames(o *Outcome) string {
	var names []string
	for _, s := range o.Steps {
		names = append(names, s.Name)
	}
	return strings.Join(names, ",")
}

func TestRollback(t *testing.T) {
	e := startBox(t)
	ctx := context.Background()

	t.Run("steps in order as their users, output streamed, stop at the first failure", func(t *testing.T) {
		p := openDir(t, "rollback-pkg")
		tl := timeline.New()
		var mu sync.Mutex
		var hooks []string
		record := func(what string) func(context.Context, StepResult) {
			return func(_ context.Context, s StepResult) {
				mu.Lock()
				hooks = append(hooks, fmt.Sprintf("%s %s %v", what, s.Name, s.Rollback))
				mu.Unlock()
			}
		}
		// The stream step prints "first" and waits for /tmp/go-on, which is
		// made only once "first" is on the timeline: without streaming the
		// step would wait until its timeout.
		streamed := make(chan error, 1)
		start := func(ctx context.Context, s StepResult) {
			record("start")(ctx, s)
			if s.Name != "stream" {
				return
			}
			go func() {
				deadline := time.Now().Add(time.Minute)
				for time.Now().Before(deadline) {
					for _, ev := range tl.Filter(KindStepOutput) {
						if ev.Actor == "stream" && ev.Name == "first" && ev.Fields["phase"] == PhaseRollback {
							res, err := e.Service("box").Exec(context.Background(), []string{"touch", "/tmp/go-on"})
							if err == nil && res.ExitCode != 0 {
								err = fmt.Errorf("touch: exit %d", res.ExitCode)
							}
							streamed <- err
							return
						}
					}
					time.Sleep(50 * time.Millisecond)
				}
				streamed <- errors.New(`"first" never reached the timeline while the step ran`)
			}()
		}
		out, err := Rollback(ctx, e, p, WithTimeline(tl), AllowUnsigned(), WithHooks(Hooks{StepStart: start, StepEnd: record("end")}))
		if err != nil {
			t.Fatal(err)
		}
		if err := <-streamed; err != nil {
			t.Error(err)
		}
		if got := stepNames(out); got != "whoami,elsewhere,stream,fail" || out.FailedStep != "fail" {
			t.Errorf("steps %s, failed at %q; want whoami,elsewhere,stream,fail failing at fail (no cleanup, nothing after)", got, out.FailedStep)
		}
		if w := tl.Filter(timeline.KindWarning); len(w) != 1 || w[0].Name != "rolling back with a package without a trusted signature" {
			t.Errorf("warnings %+v", w)
		}
		if s, _ := out.Step("whoami"); s.Output != "nobody\n"+Workdir+"\npayload\na fresh copy\n" || s.User != "nobody" || s.Service != "box" || !s.Rollback || s.Cleanup {
			t.Errorf("whoami: %+v", s)
		}
		if s, _ := out.Step("elsewhere"); s.Service != "other" || s.User != "root" || !strings.HasPrefix(s.Output, "root\n") {
			t.Errorf("elsewhere: %+v", s)
		}
		if s, _ := out.Step("stream"); s.Output != "first\nsecond\n" || s.Failed() {
			t.Errorf("stream: %+v", s)
		}
		if s, _ := out.Step("fail"); s.ExitCode != 3 || s.TimedOut || s.Output != "no way back\n" {
			t.Errorf("fail: %+v", s)
		}
		want := "start whoami true,end whoami true,start elsewhere true,end elsewhere true,start stream true,end stream true,start fail true,end fail true"
		if got := strings.Join(hooks, ","); got != want {
			t.Errorf("hooks %s\nwant  %s", got, want)
		}
		steps := tl.Filter(KindStep)
		if len(steps) != 4 || steps[3].Name != "fail" || steps[3].Fields["exit"] != "3" || steps[3].Err == "" {
			t.Errorf("timeline steps %+v", steps)
		}
		for _, ev := range append(steps, tl.Filter(KindStepOutput)...) {
			if ev.Fields["phase"] != PhaseRollback {
				t.Errorf("%s %s %q: phase %q, want %q", ev.Kind, ev.Actor, ev.Name, ev.Fields["phase"], PhaseRollback)
			}
		}
	})

	t.Run("a step's timeout", func(t *testing.T) {
		tl := timeline.New()
		out, err := Rollback(ctx, e, openDir(t, "rollback-hang-pkg"), WithTimeline(tl), AllowUnsigned())
		if err != nil {
			t.Fatal(err)
		}
		s, _ := out.Step("hang")
		if out.FailedStep != "hang" || !s.TimedOut || s.ExitCode != 124 || s.Output != "hanging\n" || stepNames(out) != "hang" {
			t.Errorf("failed at %q, steps %s, hang %+v", out.FailedStep, stepNames(out), s)
		}
		if st := tl.Filter(KindStep); len(st) != 1 || st[0].Fields["timeout"] != "1s" {
			t.Errorf("timeline %+v", st)
		}
	})

	t.Run("a package verified as trusted rolls back without a warning", func(t *testing.T) {
		p, sig, trust, _ := openSigned(t, filepath.Join("testdata", "rollback-hang-pkg"))
		if res := p.Verify(sig, trust); res.Verdict != Trusted {
			t.Fatalf("verify: %+v", res)
		}
		tl := timeline.New()
		out, err := Rollback(ctx, e, p, WithTimeline(tl))
		if err != nil {
			t.Fatal(err)
		}
		if out.FailedStep != "hang" || len(tl.Filter(timeline.KindWarning)) != 0 {
			t.Errorf("failed at %q, warnings %+v", out.FailedStep, tl.Filter(timeline.KindWarning))
		}
	})

	t.Run("the applied copy of the package is kept; another package's is replaced", func(t *testing.T) {
		p := openDir(t, "rollback-pkg")
		applied, err := Apply(ctx, e, p, AllowUnsigned())
		if err != nil || applied.FailedStep != "" {
			t.Fatalf("apply: %v, %+v", err, applied)
		}
		whoami := func() string {
			t.Helper()
			out, err := Rollback(ctx, e, p, AllowUnsigned(), WithHooks(Hooks{StepStart: func(ctx context.Context, s StepResult) {
				if s.Name == "stream" { // let it through
					e.Service("box").Exec(ctx, []string{"touch", "/tmp/go-on"})
				}
			}}))
			if err != nil {
				t.Fatal(err)
			}
			s, _ := out.Step("whoami")
			return s.Output
		}
		if got := whoami(); !strings.HasSuffix(got, "the applied copy\n") {
			t.Errorf("after the apply: %q, want the applied copy", got)
		}
		if _, err := Apply(ctx, e, openDir(t, "manifest-pkg"), AllowUnsigned()); err != nil {
			t.Fatal(err)
		}
		if got := whoami(); !strings.HasSuffix(got, "a fresh copy\n") {
			t.Errorf("after another package's apply: %q, want a fresh copy", got)
		}
	})

	// Last: it leaves "other" killed.
	t.Run("a step whose service is down fails, and the rollback stops there", func(t *testing.T) {
		// A package that no service holds yet: "other" gets no copy (it is
		// down), and its step fails as not running.
		p := openDir(t, "rollback-pkg")
		kill := func(ctx context.Context, s StepResult) {
			if s.Name != "whoami" {
				return
			}
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
		out, err := Rollback(ctx, e, p, AllowUnsigned(), WithHooks(Hooks{StepStart: kill}))
		if err != nil {
			t.Fatalf("rollback: %v, want the step's failure in the outcome", err)
		}
		s, _ := out.Step("elsewhere")
		if out.FailedStep != "elsewhere" || !strings.Contains(s.Output, "other is not running") || stepNames(out) != "whoami,elsewhere" {
			t.Errorf("failed at %q, steps %s, elsewhere %+v", out.FailedStep, stepNames(out), s)
		}
	})
}

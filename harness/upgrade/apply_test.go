package upgrade

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/internal/envtest"
)

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
		out, err := Apply(ctx, e, p, ApplyOptions{Timeline: tl, Hooks: Hooks{StepStart: record("start"), StepEnd: record("end")}})
		if err != nil {
			t.Fatal(err)
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
		out, err := Apply(ctx, e, p, ApplyOptions{Service: "box", User: "nobody", Timeline: tl})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range out.Steps {
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
		if n := len(tl.Filter(KindStep)); n != 3 {
			t.Errorf("%d step events", n)
		}
	})
}

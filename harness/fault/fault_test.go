package fault

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/internal/envtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// Short attempts, generous deadlines: the machine may be busy.
const (
	attempt  = time.Second      // one request that should fail
	restored = 90 * time.Second // until a healed service answers again
)

// world is the three nodes of testdata/compose.yaml.
type world struct {
	e   *env.Environment
	cli *client.Client
}

func start(t *testing.T) *world {
	t.Helper()
	e := envtest.Start(t, filepath.Join("testdata", "compose.yaml"))
	return &world{e: e, cli: enginetest.Connect(t)}
}

// get fetches to's page from inside from; "" is an error.
func (w *world) get(t *testing.T, from, to string, timeout time.Duration) (string, error) {
	t.Helper()
	res, err := w.e.Service(from).Exec(context.Background(),
		[]string{"/usr/local/bin/node", "-get", "http://" + to + ":8080/", "-timeout", timeout.String()})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", &failure{strings.TrimSpace(res.Stderr)}
	}
	return res.Stdout, nil
}

type failure struct{ msg string }

func (f *failure) Error() string { return f.msg }

// unreachable fails the test unless from's request to to times out.
func (w *world) unreachable(t *testing.T, from, to string) {
	t.Helper()
	_, err := w.get(t, from, to, attempt)
	if err == nil {
		t.Errorf("%s reaches %s", from, to)
		return
	}
	if msg := err.Error(); !strings.Contains(msg, "deadline exceeded") && !strings.Contains(msg, "Timeout") {
		t.Errorf("%s -> %s failed without a time-out (refused, not dropped?): %v", from, to, err)
	}
}

// reaches waits until from's request to to succeeds and returns the answer.
func (w *world) reaches(t *testing.T, from, to string) string {
	t.Helper()
	var body string
	enginetest.Eventually(t, restored, 200*time.Millisecond, func() string {
		var err error
		body, err = w.get(t, from, to, 3*time.Second)
		if err != nil {
			return from + " cannot reach " + to + ": " + err.Error()
		}
		return ""
	})
	return body
}

// status waits until the service's state satisfies ok.
func (w *world) status(t *testing.T, svc, want string, ok func(env.State) bool) {
	t.Helper()
	enginetest.Eventually(t, restored, 200*time.Millisecond, func() string {
		st, err := w.e.Service(svc).State(context.Background())
		if err != nil {
			return err.Error()
		}
		if !ok(st) {
			return svc + " is " + st.Status + "/" + st.Health + ", want " + want
		}
		return ""
	})
}

func (w *world) healthy(t *testing.T, svc string) {
	t.Helper()
	w.status(t, svc, "healthy", env.State.Healthy)
}

func is(status string) func(env.State) bool {
	return func(st env.State) bool { return st.Status == status }
}

// leftovers lists what faults of the run must not leave behind: paused
// containers, helper containers, and filter rules in a's and b's
// namespaces.
func (w *world) leftovers(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	var left []string
	run := client.Filters{}.Add("label", runs.LabelRun+"="+w.e.RunID)
	paused, err := w.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: run.Clone().Add("status", "paused")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range paused.Items {
		left = append(left, "paused container "+c.Labels[env.LabelService])
	}
	helpers, err := w.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: run.Clone().Add("label", env.LabelHelper)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range helpers.Items {
		left = append(left, "helper container "+strings.Join(c.Names, ","))
	}
	for _, svc := range []string{"a", "b", "c"} {
		rules, err := Rules(ctx, w.e, svc)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			left = append(left, "rule in "+svc+": "+r)
		}
	}
	return left
}

func TestFaults(t *testing.T) {
	w := start(t)
	ctx := context.Background()
	for _, svc := range []string{"a", "b", "c"} {
		w.healthy(t, svc)
	}
	w.reaches(t, "a", "b")

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			make func() error
			want string
		}{
			{func() error { _, err := NewKill(w.e, "nope"); return err }, `kill nope: no service "nope"`},
			{func() error { _, err := NewCut(w.e, "a", "a"); return err }, "cannot be cut from itself"},
			{func() error { _, err := NewCut(w.e, "a", "zz"); return err }, `no service "zz"`},
			{func() error { _, err := NewPause(w.e, "a", WithSignal("HUP")); return err }, `"signal" does not apply`},
		} {
			if err := tc.make(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		}
	})

	t.Run("kill", func(t *testing.T) {
		before := w.reaches(t, "c", "a")
		k, err := NewKill(w.e, "a")
		if err != nil {
			t.Fatal(err)
		}
		if k.Name() != "kill a" {
			t.Errorf("name %q", k.Name())
		}
		if err := k.Inject(ctx); err != nil {
			t.Fatal(err)
		}
		w.status(t, "a", "exited", is("exited"))
		if st, _ := w.e.Service("a").State(ctx); st.ExitCode != 137 {
			t.Errorf("exit code after SIGKILL = %d, want 137", st.ExitCode)
		}
		if _, err := w.get(t, "c", "a", attempt); err == nil {
			t.Error("c still reaches a killed a")
		}
		if err := k.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		w.healthy(t, "a")
		if after := w.reaches(t, "c", "a"); after == before {
			t.Errorf("a answers as the same process after kill and heal: %q", after)
		}
		if err := k.Heal(ctx); err != nil {
			t.Errorf("second heal: %v", err)
		}
	})

	t.Run("kill with a signal the service survives", func(t *testing.T) {
		k, err := NewKill(w.e, "a", WithSignal("SIGWINCH"))
		if err != nil {
			t.Fatal(err)
		}
		if k.Name() != "kill a with SIGWINCH" {
			t.Errorf("name %q", k.Name())
		}
		before := w.reaches(t, "c", "a")
		if err := k.Inject(ctx); err != nil {
			t.Fatal(err)
		}
		if err := k.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		if after := w.reaches(t, "c", "a"); after != before {
			t.Errorf("a restarted: %q, then %q", before, after)
		}
	})

	t.Run("stop", func(t *testing.T) {
		s, err := NewStop(w.e, "b", WithStopTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Inject(ctx); err != nil {
			t.Fatal(err)
		}
		// The engine answers the stop once the container has exited.
		if st, err := w.e.Service("b").State(ctx); err != nil || st.Status != "exited" {
			t.Errorf("after stop: %+v %v", st, err)
		}
		if _, err := w.get(t, "c", "b", attempt); err == nil {
			t.Error("c reaches a stopped b")
		}
		if err := s.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		w.healthy(t, "b")
		w.reaches(t, "c", "b")
	})

	t.Run("restart", func(t *testing.T) {
		before := w.reaches(t, "c", "b")
		r, err := NewRestart(w.e, "b", WithStopTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Inject(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		w.healthy(t, "b")
		if after := w.reaches(t, "c", "b"); after == before {
			t.Errorf("b answers as the same process after a restart: %q", after)
		}
	})

	t.Run("pause", func(t *testing.T) {
		p, err := NewPause(w.e, "c")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Inject(ctx); err != nil {
			t.Fatal(err)
		}
		w.status(t, "c", "paused", is("paused"))
		w.unreachable(t, "a", "c")
		if err := p.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		w.status(t, "c", "running", is("running"))
		w.reaches(t, "a", "c")
		if err := p.Heal(ctx); err != nil {
			t.Errorf("second heal: %v", err)
		}
	})

	for _, both := range []bool{false, true} {
		name := map[bool]string{false: "cut a -> b", true: "cut a <-> b"}[both]
		t.Run(name, func(t *testing.T) {
			c, err := NewCut(w.e, "a", "b", WithBothWays(both))
			if err != nil {
				t.Fatal(err)
			}
			if c.Name() != name {
				t.Errorf("name %q, want %q", c.Name(), name)
			}
			if err := c.Inject(ctx); err != nil {
				t.Fatal(err)
			}
			w.unreachable(t, "a", "b")
			w.unreachable(t, "b", "a")
			// Only the pair is cut.
			w.reaches(t, "c", "b")
			w.reaches(t, "c", "a")
			w.reaches(t, "a", "c")
			w.reaches(t, "b", "c")
			for svc, want := range map[string]int{"a": 2, "b": map[bool]int{false: 0, true: 2}[both], "c": 0} {
				rules, err := Rules(ctx, w.e, svc)
				if err != nil {
					t.Fatal(err)
				}
				if len(rules) != want {
					t.Errorf("rules in %s: %q, want %d", svc, rules, want)
				}
				for _, r := range rules {
					if !strings.Contains(r, "--comment "+c.Tag()+" ") || !strings.HasSuffix(r, "-j DROP") {
						t.Errorf("rule in %s: %q, want a DROP tagged %s", svc, r, c.Tag())
					}
				}
			}
			if err := c.Heal(ctx); err != nil {
				t.Fatal(err)
			}
			w.reaches(t, "a", "b")
			w.reaches(t, "b", "a")
			if left := w.leftovers(t); len(left) != 0 {
				t.Errorf("after heal: %q", left)
			}
			if err := c.Heal(ctx); err != nil {
				t.Errorf("second heal: %v", err)
			}
		})
	}

	t.Run("set heals everything", func(t *testing.T) {
		tl := timeline.New()
		set := NewSet(tl)
		cut, err := NewCut(w.e, "a", "b", WithBothWays(true))
		if err != nil {
			t.Fatal(err)
		}
		pause, err := NewPause(w.e, "c")
		if err != nil {
			t.Fatal(err)
		}
		stop, err := NewStop(w.e, "b", WithStopTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []Fault{cut, pause, stop} {
			if err := set.Inject(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		w.status(t, "b", "exited", is("exited"))
		w.status(t, "c", "paused", is("paused"))
		// The scenario ends, here as if interrupted: its context is gone.
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := set.HealAll(cancelled); err != nil {
			t.Fatal(err)
		}
		for _, svc := range []string{"a", "b", "c"} {
			w.healthy(t, svc)
		}
		w.reaches(t, "a", "b")
		w.reaches(t, "b", "a")
		w.reaches(t, "a", "c")
		if left := w.leftovers(t); len(left) != 0 {
			t.Errorf("after HealAll: %q", left)
		}
		events := tl.Filter(KindFault)
		var names []string
		for _, e := range events {
			names = append(names, e.Name)
			if e.Err != "" || e.Duration() <= 0 {
				t.Errorf("interval %+v", e)
			}
		}
		if strings.Join(names, "; ") != "cut a <-> b; pause c; stop b" {
			t.Errorf("timeline intervals %q", names)
		}
		if err := set.HealAll(ctx); err != nil {
			t.Errorf("second HealAll: %v", err)
		}
	})

	t.Run("sweep", func(t *testing.T) {
		cut, err := NewCut(w.e, "b", "c")
		if err != nil {
			t.Fatal(err)
		}
		pause, err := NewPause(w.e, "a")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []Fault{cut, pause} {
			if err := f.Inject(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if left := w.leftovers(t); len(left) != 3 {
			t.Errorf("before the sweep: %q, want a paused container and two rules", left)
		}
		if err := Sweep(ctx, w.e); err != nil {
			t.Fatal(err)
		}
		if left := w.leftovers(t); len(left) != 0 {
			t.Errorf("after the sweep: %q", left)
		}
		w.reaches(t, "b", "c")
		w.reaches(t, "c", "a")
	})
}

package scenarios

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/probe"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/harness/upgrade"
)

// fakeView is a probe of "db" every 100ms that saw pattern: one sample a
// character, '.' ok and 'x' failed, each answered in 5ms; the scenario
// started 1s before the first sample.
func fakeView(pattern string, ws ...window) probeView {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var samples []probe.Sample
	for i, c := range pattern {
		s := probe.Sample{At: t0.Add(time.Duration(i) * 100 * time.Millisecond), Latency: 5 * time.Millisecond}
		if c == 'x' {
			s.Err = errors.New("connect: connection refused")
		}
		samples = append(samples, s)
	}
	return probeView{svc: "db", desc: "GET http://127.0.0.1:1/ every 100ms", interval: 100 * time.Millisecond,
		samples: samples, sum: probe.Summarize(samples, 100*time.Millisecond), origin: t0.Add(-time.Second), windows: ws}
}

func at(ms int) time.Time {
	return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
}

func mustFail(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("passed, want a failure containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message lacks %q:\n%v", w, err)
		}
	}
}

func TestAssertionsOnFakeSamples(t *testing.T) {
	up := fakeView(strings.Repeat(".", 50))
	// 10 failed samples from 2.0s to 2.9s: an outage of about 1s.
	kill := window{what: "kill db", start: at(1950), end: at(2950)}
	step := window{what: `upgrade step "migrate"`, start: at(1000), end: at(2500)}
	later := window{what: "pause billing", start: at(4000), end: at(4500)}
	down := fakeView(strings.Repeat(".", 20)+strings.Repeat("x", 10)+strings.Repeat(".", 20), kill, step, later)

	if err := up.staysAvailable(); err != nil {
		t.Errorf("all ok: %v", err)
	}
	mustFail(t, down.staysAvailable(), `"db" did not stay available`, "saw 1 outage in 50 samples over 4.91s: availability 80.00%",
		"at +2.95s for 1.00s (±0.10s, 10 failed samples), first error: connect: connection refused",
		`during kill db, upgrade step "migrate"`)
	if err := down.staysAvailable(); err != nil && strings.Contains(err.Error(), "pause billing") {
		t.Errorf("names a fault that did not overlap: %v", err)
	}
	if err := down.hadOutage(); err != nil {
		t.Errorf("had an outage: %v", err)
	}
	mustFail(t, up.hadOutage(), `"db" had no outage`, "saw 0 outages in 50 samples")

	if err := down.availabilityAtLeast(80); err != nil {
		t.Errorf("80%% of 80%%: %v", err)
	}
	mustFail(t, down.availabilityAtLeast(99.9), `the availability of "db" is 80.00%, want at least 99.9%`, "at +2.95s")

	if err := down.noOutageLongerThan(2 * time.Second); err != nil {
		t.Errorf("1s outage within 2s: %v", err)
	}
	mustFail(t, down.noOutageLongerThan(500*time.Millisecond), `1 outage(s) of "db" lasted longer than 500ms`, "for 1.00s")

	if err := down.downtimeWithin(2*time.Second, "2s"); err != nil {
		t.Errorf("downtime 1s within 2s: %v", err)
	}
	mustFail(t, down.downtimeWithin(300*time.Millisecond, "the promised 300ms"), `the downtime of "db" is 1.00s, more than the promised 300ms`)

	if err := down.errorBudget(80); err != nil {
		t.Errorf("budget 20%%, spent 20%%: %v", err)
	}
	mustFail(t, down.errorBudget(99.9), `the error budget of "db" (SLO 99.9%) is spent: 10 of 50 samples failed, 20.00% of the probed time (about 0.98s of 4.91s); the budget is 0.10% (about 0.00s)`)
	// 99.9% of 1000 samples allows exactly one failure.
	one := fakeView(strings.Repeat(".", 500) + "x" + strings.Repeat(".", 499))
	if err := one.errorBudget(99.9); err != nil {
		t.Errorf("one failure in 1000 at 99.9%%: %v", err)
	}
	if err := one.availabilityAtLeast(99.9); err != nil {
		t.Errorf("one failure in 1000 at 99.9%%: %v", err)
	}
	two := fakeView(strings.Repeat(".", 500) + "xx" + strings.Repeat(".", 498))
	mustFail(t, two.errorBudget(99.9), "2 of 1000 samples failed")
	mustFail(t, two.availabilityAtLeast(99.9), "99.80%")
}

func TestOpenOutageAndBusySampler(t *testing.T) {
	v := fakeView(strings.Repeat(".", 10) + strings.Repeat("x", 5))
	mustFail(t, v.staysAvailable(), "at +1.95s, still down at the last sample after")
	// A sampler held up for 600ms: a gap of 6 intervals.
	v.samples[5].At = v.samples[4].At.Add(600 * time.Millisecond)
	for i := 6; i < len(v.samples); i++ {
		v.samples[i].At = v.samples[i-1].At.Add(100 * time.Millisecond)
	}
	v.sum = probe.Summarize(v.samples, v.interval)
	mustFail(t, v.staysAvailable(), "largest gap between samples was 6.0x its interval (0.60s): the machine was busy")
}

func TestParsing(t *testing.T) {
	for _, s := range []string{"50ms", "2s", "1m30s"} {
		if _, err := parseDuration(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"2", "2 s", "-1s", "0s", "two seconds"} {
		if _, err := parseDuration(s); err == nil || !strings.Contains(err.Error(), "500ms, 2s or 1m30s") {
			t.Errorf("%q: %v", s, err)
		}
	}
	for s, want := range map[string]float64{"99.9": 99.9, "100": 100, "50": 50} {
		if got, err := parsePercent(s); err != nil || got != want {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	for _, s := range []string{"0", "100.1", "1e3"} {
		if _, err := parsePercent(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	// The phrases as QA writes them reach the step functions.
	lines := map[string][]string{
		`"db" is paused for 2s during step "migrate"`:                 {"db", "2s", "migrate"},
		`"db" is paused for 500ms`:                                    {"db", "500ms"},
		`the availability of "invoicing" is at least 99.9%`:           {"invoicing", "99.9"},
		`the error budget of "invoicing" (SLO 99.95%) is intact`:      {"invoicing", "99.95"},
		`"db" is probed with SQL "SELECT \"x\" FROM t" every 200ms`:   {"db", `SELECT \"x\" FROM t`, "200ms"},
		`the network between "a" and "b" is cut for 1m`:               {"a", "b", "1m"},
		`the network between "a" and "b" is cut during step "switch"`: {"a", "b", "switch"},
	}
	for line, want := range lines {
		n := 0
		for _, st := range Steps {
			if m := regexp.MustCompile(st.Pattern).FindStringSubmatch(line); m != nil {
				n++
				if strings.Join(m[1:], "|") != strings.Join(want, "|") {
					t.Errorf("%s: %q, want %q", line, m[1:], want)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s matches %d steps", line, n)
		}
	}
}

// Steps that need what the scenario has not set up say what to add.
func TestProbeAndFaultStepsWithoutSetup(t *testing.T) {
	w := &World{Timeline: timeline.New(), log: io.Discard}
	ctx := context.WithValue(context.Background(), worldKey{}, w)
	mustFail(t, staysAvailable(ctx, "db"), `"db" is not probed: add Given "db" is probed every DURATION`)
	mustFail(t, probedDeclared(ctx, "db", "100ms"), "no environment")
	mustFail(t, probedDeclared(ctx, "db", "10ms"), "at least 20ms")
	mustFail(t, killed(ctx, "db"), "no environment")
	mustFail(t, downtimeWithinPromise(ctx, "db"), "no upgrade package")
	mustFail(t, availabilityAtLeast(ctx, "db", "101"), "at most 100")
	// A scenario that broke nothing ends without a fault set.
	if err := w.endProbesAndFaults(ctx); err != nil {
		t.Error(err)
	}
}

// A fault armed for a step the open package lacks is refused at once,
// naming the steps there are; so is a package opened after the arming,
// before anything is applied.
func TestArmedStepMustExist(t *testing.T) {
	w := &World{Timeline: timeline.New(), log: io.Discard}
	ctx := context.WithValue(context.Background(), worldKey{}, w)
	t.Cleanup(func() {
		if w.up.pkg != nil {
			w.up.pkg.Close()
		}
	})
	// No package yet: the step name cannot be checked, the environment can.
	mustFail(t, killedDuring(ctx, "b", "migarte"), "no environment")
	w.faults.armed = []*armedFault{{step: "migarte"}}
	if err := theUpgradePackage(ctx, "testdata/faults/pkg"); err != nil {
		t.Fatal(err)
	}
	want := `no step "migarte" in the upgrade package testdata/faults/pkg (steps: prepare, migrate)`
	mustFail(t, w.checkArmed(), "a fault is armed for a step the package does not have: "+want)
	mustFail(t, applyPackage(ctx, "a", "root"), want) // refused before the signature and the environment
	for name, step := range map[string]func() error{
		"kill":  func() error { return killedDuring(ctx, "b", "migarte") },
		"pause": func() error { return pausedDuring(ctx, "b", "1s", "migarte") },
		"cut":   func() error { return networkCutDuring(ctx, "a", "b", "migarte") },
	} {
		if err := step(); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", name, err, want)
		}
	}
	// A known step gets as far as the environment.
	mustFail(t, killedDuring(ctx, "b", "migrate"), "no environment")
}

// flakyChecker fails its first fails checks, then passes while down is
// false.
type flakyChecker struct {
	mu    sync.Mutex
	n     int
	fails int
	down  bool
}

func (c *flakyChecker) Check(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.n <= c.fails || c.down {
		return errors.New("connect: connection refused")
	}
	return nil
}

func (c *flakyChecker) setDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

func probeWorld(t *testing.T) (*World, context.Context) {
	t.Helper()
	w := &World{Timeline: timeline.New(), log: io.Discard, start: time.Now()}
	t.Cleanup(w.stopProbes)
	return w, context.WithValue(context.Background(), worldKey{}, w)
}

// The failures before a probe's first good answer are the service warming
// up, which the probe step waits out: they are no outage.
func TestWarmUpIsNoOutage(t *testing.T) {
	w, ctx := probeWorld(t)
	if err := w.startProbe(ctx, "db", &flakyChecker{fails: 2}, viaNetwork, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	mustFail(t, hadOutage(ctx, "db"), `"db" had no outage`, "saw 0 outages")
	for name, err := range map[string]error{
		"stays available":  staysAvailable(ctx, "db"),
		"availability":     availabilityAtLeast(ctx, "db", "100"),
		"error budget":     errorBudgetIntact(ctx, "db", "100"),
		"downtime":         downtimeWithin(ctx, "db", "1ns"),
		"no outage longer": noOutageLongerThan(ctx, "db", "1ns"),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// waitFor waits until the last sample of svc's probe is ok (or failed).
func waitFor(t *testing.T, w *World, svc string, ok bool) {
	t.Helper()
	w.probes.mu.Lock()
	s := w.probes.runs[svc].sampler
	w.probes.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ss := s.Samples(); len(ss) > 0 && ss[len(ss)-1].OK() == ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the probe of %s never saw ok=%v", svc, ok)
}

// The promised window is about the upgrade: an outage before it (a fault
// the scenario injected) does not count, one during it does.
func TestDowntimeWithinPromiseCountsTheUpgradeOnly(t *testing.T) {
	w, ctx := probeWorld(t)
	t.Cleanup(func() {
		if w.up.pkg != nil {
			w.up.pkg.Close()
		}
	})
	if err := theUpgradePackage(ctx, "testdata/promise"); err != nil { // promises 300ms
		t.Fatal(err)
	}
	c := &flakyChecker{}
	if err := w.startProbe(ctx, "a", c, viaNetwork, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	mustFail(t, downtimeWithinPromise(ctx, "a"), "the upgrade has not been applied")

	// An outage of about 600ms, then an upgrade with none.
	outage := func() {
		c.setDown(true)
		waitFor(t, w, "a", false)
		time.Sleep(600 * time.Millisecond)
		c.setDown(false)
		waitFor(t, w, "a", true)
	}
	outage()
	t1 := time.Now()
	time.Sleep(100 * time.Millisecond)
	w.noteApplied(&upgrade.Outcome{Steps: []upgrade.StepResult{{Name: "migrate", Start: t1, End: time.Now()}}})
	if err := downtimeWithinPromise(ctx, "a"); err != nil {
		t.Errorf("an outage before the upgrade counted against its promise: %v", err)
	}
	mustFail(t, downtimeWithin(ctx, "a", "300ms"), "more than 300ms") // it is an outage all the same

	// An upgrade during which the service is down as long.
	t2 := time.Now()
	outage()
	w.noteApplied(&upgrade.Outcome{Steps: []upgrade.StepResult{{Name: "migrate", Start: t2, End: time.Now()}}})
	err := downtimeWithinPromise(ctx, "a")
	mustFail(t, err, `the downtime of "a" during the upgrade is`, "more than the promised 300ms", "saw 2 outages")
	if n := strings.Count(err.Error(), "\n  at +"); n != 1 {
		t.Errorf("the failure lists %d outages, want the one during the upgrade:\n%v", n, err)
	}
}

// fakeAddresser is a service at fixed addresses.
type fakeAddresser []env.Address

func (a fakeAddresser) Addresses(context.Context) ([]env.Address, error) { return a, nil }

// The TCP probe dials a service's own address only on this machine's
// networks, with a local engine; elsewhere it fails saying why.
func TestTCPProbeOnlyOnLocalBridges(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	ctx := context.Background()
	for _, host := range []string{"", "unix:///var/run/docker.sock"} {
		t.Setenv("DOCKER_HOST", host)
		// 127.0.0.1 is on this machine's loopback, as a run's address is on
		// its bridge.
		c, err := tcpChecker(fakeAddresser{{Network: "default", IP: netip.MustParseAddr("127.0.0.1")}}, "c", port)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(ctx); err != nil {
			t.Errorf("DOCKER_HOST=%q: %v", host, err)
		}
	}
	// An address on none of this machine's networks is not dialled: here
	// the machine is made to have none but 10.99.0.1/24, so that the
	// address, were it dialled, would be the listener above.
	interfaceAddrs = func() ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.IPv4(10, 99, 0, 1), Mask: net.CIDRMask(24, 32)}}, nil
	}
	t.Cleanup(func() { interfaceAddrs = net.InterfaceAddrs })
	c, err := tcpChecker(fakeAddresser{{Network: "default", IP: netip.MustParseAddr("127.0.0.1")}}, "c", port)
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, c.Check(ctx), "tcp c:", "its address 127.0.0.1 is on none of this machine's networks")
	if onLocalSubnet(netip.MustParseAddr("10.99.0.200"), must(interfaceAddrs())) != true ||
		onLocalSubnet(netip.MustParseAddr("10.99.1.1"), must(interfaceAddrs())) != false {
		t.Error("onLocalSubnet does not follow the interface's mask")
	}
	c, _ = tcpChecker(fakeAddresser{}, "c", port)
	mustFail(t, c.Check(ctx), "no address on the run's networks (not running)")
	// A remote engine: the step fails at once.
	t.Setenv("DOCKER_HOST", "tcp://192.0.2.1:2376")
	_, err = tcpChecker(fakeAddresser{{Network: "default", IP: netip.MustParseAddr("127.0.0.1")}}, "c", port)
	mustFail(t, err, `TCP probe of "c": the engine is not local (DOCKER_HOST=tcp://192.0.2.1:2376)`, "declare an http or sql probe")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// "during step" judges only the outages that overlap that step: an outage
// in the step after it does not count, one in it does.
func TestAvailabilityDuringAStep(t *testing.T) {
	w, ctx := probeWorld(t)
	c := &flakyChecker{}
	if err := w.startProbe(ctx, "a", c, viaNetwork, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	mustFail(t, staysAvailableDuring(ctx, "a", "migrate"), "no upgrade step has run")
	span := func(name string, fn func()) {
		sp := w.Timeline.Begin(upgrade.KindStep, "a", name)
		fn()
		sp.End(nil)
	}
	outage := func() {
		c.setDown(true)
		waitFor(t, w, "a", false)
		time.Sleep(200 * time.Millisecond)
		c.setDown(false)
		waitFor(t, w, "a", true)
	}
	span("migrate", func() { time.Sleep(100 * time.Millisecond) })
	time.Sleep(100 * time.Millisecond)
	span("restart", outage)
	if err := staysAvailableDuring(ctx, "a", "migrate"); err != nil {
		t.Errorf("an outage in the next step counted against migrate: %v", err)
	}
	mustFail(t, hadOutageDuring(ctx, "a", "migrate"), `"a" had no outage during step "migrate"`)
	mustFail(t, staysAvailableDuring(ctx, "a", "restart"), `"a" did not stay available during step "restart"`)
	if err := hadOutageDuring(ctx, "a", "restart"); err != nil {
		t.Error(err)
	}
	mustFail(t, staysAvailableDuring(ctx, "a", "install"), `step "install" did not run`, "migrate, restart")
}

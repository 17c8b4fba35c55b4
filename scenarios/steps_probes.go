package scenarios

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/probe"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/harness/upgrade"
)

// probeState is the part of a World about probes: one sampler per service,
// running from its Given step to the end of the scenario.
type probeState struct {
	mu   sync.Mutex
	runs map[string]*probeRun
}

type probeRun struct {
	svc     string
	desc    string // the check, such as GET http://127.0.0.1:49153/health
	sampler *probe.Sampler
	cancel  context.CancelFunc
}

// firstAnswer bounds how long a probe step waits for the service to answer
// once: a probe that never sees the service up would make every later
// assertion fail for the wrong reason.
const firstAnswer = 10 * time.Second

// execProbeInterval is the shortest interval at which an exec probe
// measures the service rather than the engine (probe.ExecChecker).
const execProbeInterval = 500 * time.Millisecond

var probeSteps = []Step{
	{`Given "SVC" is probed every DURATION`, `^"([^"]*)" is probed every (\S+)$`, `Given "invoicing" is probed every 100ms`,
		"sample the service's declared probe (x-rehearse probe: http PATH, tcp PORT or sql QUERY; else its healthcheck command) every DURATION (at least 20ms) until the scenario ends; a sample's timeout is the interval, at most 1s (1s for a healthcheck command)", probedDeclared},
	{`Given "SVC" is probed with HTTP "PATH" every DURATION`, `^"([^"]*)" is probed with HTTP "([^"]*)" every (\S+)$`, `Given "invoicing" is probed with HTTP "/health" every 100ms`,
		"sample GET PATH on the service's first published port (a 2xx or 3xx answer is up)", probedHTTP},
	{`Given "SVC" is probed with SQL "QUERY" every DURATION`, `^"([^"]*)" is probed with SQL "((?:[^"\\]|\\.)*)" every (\S+)$`, `Given "db" is probed with SQL "SELECT 1" every 200ms`,
		"sample a query on the PostgreSQL service (no error is up)", probedSQL},
	{`Then "SVC" stays available`, `^"([^"]*)" stays available$`, `Then "invoicing" stays available`,
		"the service's probe saw no outage so far, from its first good answer on (the probe keeps sampling)", staysAvailable},
	{`Then "SVC" had an outage`, `^"([^"]*)" had an outage$`, `Then "invoicing" had an outage`,
		"the service's probe saw at least one outage so far, from its first good answer on (failures while the probe step waited for that answer do not count)", hadOutage},
	{`Then "SVC" stays available during step "STEP"`, `^"([^"]*)" stays available during step "([^"]*)"$`, `Then "invoicing" stays available during step "migrate"`,
		"the service's probe saw no outage overlapping the upgrade step (an apply or rollback step of that name)", staysAvailableDuring},
	{`Then "SVC" had an outage during step "STEP"`, `^"([^"]*)" had an outage during step "([^"]*)"$`, `Then "invoicing" had an outage during step "migrate"`,
		"the service's probe saw an outage overlapping the upgrade step", hadOutageDuring},
	{`Then the availability of "SVC" is at least P%`, `^the availability of "([^"]*)" is at least (\d+(?:\.\d+)?)%$`, `Then the availability of "invoicing" is at least 99.5%`,
		"the share of the probe's samples that passed", availabilityAtLeast},
	{`Then no outage of "SVC" lasts longer than DURATION`, `^no outage of "([^"]*)" lasts longer than (\S+)$`, `Then no outage of "invoicing" lasts longer than 2s`,
		"every outage the probe saw is at most DURATION long", noOutageLongerThan},
	{`Then the downtime of "SVC" is within the promised window`, `^the downtime of "([^"]*)" is within the promised window$`, `Then the downtime of "billing" is within the promised window`,
		"the outages that overlap the applied upgrade (its first step's start to its last step's end) add up to at most the package's promised downtime (downtime: in its upgrade.yaml); outages wholly before or after it, such as faults injected before the upgrade, do not count", downtimeWithinPromise},
	{`Then the downtime of "SVC" is within DURATION`, `^the downtime of "([^"]*)" is within (\S+)$`, `Then the downtime of "billing" is within 30s`,
		"the outages add up to at most DURATION", downtimeWithin},
	{`Then the error budget of "SVC" (SLO P%) is intact`, `^the error budget of "([^"]*)" \(SLO (\d+(?:\.\d+)?)%\) is intact$`, `Then the error budget of "invoicing" (SLO 99.9%) is intact`,
		"the share of failed samples is at most 100-P% of the probed samples (the same measure as the availability)", errorBudgetIntact},
}

func probedDeclared(ctx context.Context, svc, every string) error {
	w := WorldFrom(ctx)
	e, s, interval, err := w.probeTarget(svc, every)
	if err != nil {
		return err
	}
	c, kind, err := declaredChecker(e, s)
	if err != nil {
		return err
	}
	return w.startProbe(ctx, svc, c, kind, interval)
}

func probedHTTP(ctx context.Context, svc, path, every string) error {
	w := WorldFrom(ctx)
	e, s, interval, err := w.probeTarget(svc, every)
	if err != nil {
		return err
	}
	c, err := httpChecker(e, s, path)
	if err != nil {
		return err
	}
	return w.startProbe(ctx, svc, c, viaNetwork, interval)
}

func probedSQL(ctx context.Context, svc, query, every string) error {
	w := WorldFrom(ctx)
	e, s, interval, err := w.probeTarget(svc, every)
	if err != nil {
		return err
	}
	c, err := sqlChecker(e, s, unescape(query))
	if err != nil {
		return err
	}
	return w.startProbe(ctx, svc, c, viaNetwork, interval)
}

func (w *World) probeTarget(svc, every string) (*env.Environment, *env.Service, time.Duration, error) {
	interval, err := parseDuration(every)
	if err != nil {
		return nil, nil, 0, err
	}
	if interval < probe.MinInterval {
		return nil, nil, 0, fmt.Errorf("probe interval %v: at least %v", interval, probe.MinInterval)
	}
	s, err := w.service(svc)
	if err != nil {
		return nil, nil, 0, err
	}
	w.probes.mu.Lock()
	_, dup := w.probes.runs[svc]
	w.probes.mu.Unlock()
	if dup {
		return nil, nil, 0, fmt.Errorf("%q is already probed in this scenario (one probe per service)", svc)
	}
	return w.Env, s, interval, nil
}

// startProbe samples c every interval until the scenario ends, once the
// service has answered a first time.
func (w *World) startProbe(ctx context.Context, svc string, c probe.Checker, kind probeKind, interval time.Duration) error {
	opts := []probe.Option{probe.WithInterval(interval), probe.WithName(svc), probe.WithTimeline(w.Timeline)}
	if kind == viaExec {
		// An exec through the engine takes a tenth of a second or more on
		// a busy machine: give it the longest timeout.
		opts = append(opts, probe.WithTimeout(probe.MaxTimeout))
		if interval < execProbeInterval {
			w.Timeline.Mark(timeline.KindWarning, svc, fmt.Sprintf("the probe of %s runs its healthcheck command every %v: an exec costs the engine a tenth of a second or more, sample every %v or more (or declare an http, tcp or sql probe)", svc, interval, execProbeInterval), nil)
		}
	}
	s, err := probe.NewSampler(c, opts...)
	if err != nil {
		return fmt.Errorf("probe %q: %w", svc, err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := s.Start(sctx); err != nil {
		cancel()
		return err
	}
	run := &probeRun{svc: svc, desc: describeChecker(c), sampler: s, cancel: cancel}
	w.probes.mu.Lock()
	if w.probes.runs == nil {
		w.probes.runs = map[string]*probeRun{}
	}
	w.probes.runs[svc] = run
	w.probes.mu.Unlock()
	fmt.Fprintf(w.log, "probe: %s: %s every %v\n", svc, describeChecker(c), interval)

	deadline := time.Now().Add(firstAnswer)
	for {
		samples := s.Samples()
		for _, sm := range samples {
			if sm.OK() {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			msg := "no answer"
			if len(samples) > 0 {
				msg = samples[len(samples)-1].Err.Error()
			}
			w.stopProbe(svc)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("the probe of %q (%s) never saw it up in %v: %s", svc, describeChecker(c), firstAnswer, msg)
		}
		time.Sleep(min(interval, 50*time.Millisecond))
	}
}

func describeChecker(c probe.Checker) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return "probe"
}

func (w *World) stopProbe(svc string) {
	w.probes.mu.Lock()
	run := w.probes.runs[svc]
	delete(w.probes.runs, svc)
	w.probes.mu.Unlock()
	if run != nil {
		run.sampler.Stop()
		run.cancel()
	}
}

// stopProbes ends every sampler (waiting for the checks in flight).
func (w *World) stopProbes() {
	w.probes.mu.Lock()
	runs := w.probes.runs
	w.probes.runs = nil
	w.probes.mu.Unlock()
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run.sampler.Stop()
			run.cancel()
		}()
	}
	wg.Wait()
}

// probeView is what one service's probe saw up to an assertion, with what
// the scenario did meanwhile; its methods are the assertions.
type probeView struct {
	svc      string
	desc     string
	interval time.Duration
	samples  []probe.Sample
	sum      probe.Summary
	origin   time.Time // the scenario's start: outages are located from it
	windows  []window  // faults and upgrade steps, to name what overlapped an outage
	upgrades []window  // each applied upgrade, first step start to last step end
}

// window is something the scenario did for a while: a fault, an upgrade
// step. A zero end: still going on.
type window struct {
	what       string
	start, end time.Time
}

// view waits for one more sample (so that what the previous step did is
// seen), then returns everything the probe of svc saw so far. The probe
// keeps sampling.
func (w *World) view(ctx context.Context, svc string) (probeView, error) {
	w.probes.mu.Lock()
	run := w.probes.runs[svc]
	w.probes.mu.Unlock()
	if run == nil {
		return probeView{}, fmt.Errorf(`%q is not probed: add Given %q is probed every DURATION (or with HTTP "PATH" / SQL "QUERY") before what it should watch`, svc, svc)
	}
	s := run.sampler
	t0 := time.Now()
	deadline := t0.Add(s.Interval() + s.Timeout() + time.Second)
	samples := s.Samples()
	for !sampledSince(samples, t0) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(min(s.Interval()/2, 50*time.Millisecond))
		samples = s.Samples()
	}
	samples = fromFirstOK(samples)
	if len(samples) == 0 {
		return probeView{}, fmt.Errorf("the probe of %q has no good answer yet", svc)
	}
	return probeView{svc: svc, desc: fmt.Sprintf("%s every %v, timeout %v", run.desc, s.Interval(), s.Timeout()),
		interval: s.Interval(), samples: samples, sum: probe.Summarize(samples, s.Interval()),
		origin: w.start, windows: w.windows(), upgrades: w.upgradeWindows()}, nil
}

// fromFirstOK drops the samples (in start order) before the first ok one:
// the probe step waits for that first good answer, so failures before it
// are the service (or the path to it) warming up, not an outage.
func fromFirstOK(samples []probe.Sample) []probe.Sample {
	for i, s := range samples {
		if s.OK() {
			return samples[i:]
		}
	}
	return nil
}

func sampledSince(samples []probe.Sample, t time.Time) bool {
	for i := len(samples) - 1; i >= 0; i-- {
		if !samples[i].At.Before(t) {
			return true
		}
	}
	return false
}

// windows lists the faults and upgrade steps of the scenario so far.
func (w *World) windows() []window {
	var out []window
	for _, f := range w.faultSpans() {
		out = append(out, window{what: f.f.Name(), start: f.start, end: f.end})
	}
	for _, ev := range w.Timeline.Filter(upgrade.KindStep) {
		out = append(out, window{what: fmt.Sprintf("upgrade step %q", ev.Name), start: ev.Start, end: ev.End})
	}
	return out
}

// overlapping names the windows that overlap [start, end].
func overlapping(ws []window, start, end time.Time) []string {
	var names []string
	for _, w := range ws {
		wEnd := w.end
		if wEnd.IsZero() {
			wEnd = end
		}
		if !w.start.After(end) && !wEnd.Before(start) {
			names = append(names, w.what)
		}
	}
	return names
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
}

func percent(f float64) string {
	return strconv.FormatFloat(f*100, 'f', 2, 64) + "%"
}

// probed is the time the samples cover.
func (v probeView) probed() time.Duration {
	if len(v.samples) == 0 {
		return 0
	}
	last := v.samples[0].Done()
	for _, s := range v.samples {
		if d := s.Done(); d.After(last) {
			last = d
		}
	}
	return last.Sub(v.samples[0].At)
}

// header sums up what the probe saw.
func (v probeView) header() string {
	n := len(v.sum.Outages)
	word := "outages"
	if n == 1 {
		word = "outage"
	}
	return fmt.Sprintf("the probe of %q (%s) saw %d %s in %d samples over %s: availability %s",
		v.svc, v.desc, n, word, len(v.samples), seconds(v.probed()), percent(v.sum.Availability))
}

// report describes outages, one a line, and the sampler's schedule when it
// slipped.
func (v probeView) report(outages []probe.Outage) string {
	origin := v.origin
	if origin.IsZero() && len(v.samples) > 0 {
		origin = v.samples[0].At
	}
	var b strings.Builder
	for _, o := range outages {
		fmt.Fprintf(&b, "\n  at +%s", seconds(o.Start.Sub(origin)))
		if o.Open {
			fmt.Fprintf(&b, ", still down at the last sample after %s", seconds(o.Duration()))
		} else {
			fmt.Fprintf(&b, " for %s", seconds(o.Duration()))
		}
		fmt.Fprintf(&b, " (±%s, %d failed samples)", seconds(o.Uncertainty), o.Failed)
		if o.FirstErr != nil {
			fmt.Fprintf(&b, ", first error: %s", firstLine(o.FirstErr.Error()))
		}
		if names := overlapping(v.windows, o.Start, o.End); len(names) > 0 {
			fmt.Fprintf(&b, "; during %s", strings.Join(names, ", "))
		}
	}
	if v.sum.GapRatio > 1.5 {
		fmt.Fprintf(&b, "\n  the probe's largest gap between samples was %.1fx its interval (%s): the machine was busy, and part of an outage may be the sampler's own delay",
			v.sum.GapRatio, seconds(v.sum.MaxGap))
	}
	return b.String()
}

func (v probeView) staysAvailable() error {
	if len(v.sum.Outages) == 0 {
		return nil
	}
	return fmt.Errorf("%q did not stay available: %s%s", v.svc, v.header(), v.report(v.sum.Outages))
}

func (v probeView) hadOutage() error {
	if len(v.sum.Outages) > 0 {
		return nil
	}
	return fmt.Errorf("%q had no outage: %s%s", v.svc, v.header(), v.report(nil))
}

// okShareAtLeast reports whether at least p% of the samples passed: the
// measure of both the availability and the error budget (failed/n <= 1-p/100
// is the same inequality). Compared in samples, so that 99.9% of 1000
// samples allows exactly one failure.
func (v probeView) okShareAtLeast(p float64) bool {
	return float64(len(v.samples)-v.sum.Failed)*100 >= p*float64(len(v.samples))-1e-9
}

func (v probeView) availabilityAtLeast(p float64) error {
	if v.okShareAtLeast(p) {
		return nil
	}
	return fmt.Errorf("the availability of %q is %s, want at least %s%%: %s%s", v.svc, percent(v.sum.Availability),
		strconv.FormatFloat(p, 'f', -1, 64), v.header(), v.report(v.sum.Outages))
}

func (v probeView) noOutageLongerThan(d time.Duration) error {
	var long []probe.Outage
	for _, o := range v.sum.Outages {
		if o.Duration() > d {
			long = append(long, o)
		}
	}
	if len(long) == 0 {
		return nil
	}
	return fmt.Errorf("%d outage(s) of %q lasted longer than %v: %s%s", len(long), v.svc, d, v.header(), v.report(long))
}

func (v probeView) downtimeWithin(d time.Duration, what string) error {
	down := probe.Downtime(v.sum.Outages)
	if down <= d {
		return nil
	}
	return fmt.Errorf("the downtime of %q is %s, more than %s: %s%s", v.svc, seconds(down), what, v.header(), v.report(v.sum.Outages))
}

// upgradeDowntimeWithin adds up the outages that overlap an applied
// upgrade (whole: one that began before it and lasted into it counts in
// full) and compares them with the promise d.
func (v probeView) upgradeDowntimeWithin(d time.Duration, what string) error {
	in := during(v.sum.Outages, v.upgrades)
	down := probe.Downtime(in)
	if down <= d {
		return nil
	}
	return fmt.Errorf("the downtime of %q during the upgrade is %s, more than %s: %s%s", v.svc, seconds(down), what, v.header(), v.report(in))
}

// errorBudget is intact when at most 100-slo% of the probed samples
// failed: the availability is at least slo%.
func (v probeView) errorBudget(slo float64) error {
	if v.okShareAtLeast(slo) {
		return nil
	}
	n := len(v.samples)
	budget := 1 - slo/100
	spent := float64(v.sum.Failed) / float64(n)
	probed := v.probed()
	approx := func(f float64) string { return seconds(time.Duration(math.Round(f * float64(probed)))) }
	return fmt.Errorf("the error budget of %q (SLO %s%%) is spent: %d of %d samples failed, %s of the probed time (about %s of %s); the budget is %s (about %s): %s%s",
		v.svc, strconv.FormatFloat(slo, 'f', -1, 64), v.sum.Failed, n, percent(spent), approx(spent), seconds(probed),
		percent(budget), approx(budget), v.header(), v.report(v.sum.Outages))
}

// parsePercent reads P of P%: more than 0, at most 100.
func parsePercent(s string) (float64, error) {
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || p <= 0 || p > 100 {
		return 0, fmt.Errorf("percentage %q: want a number above 0 and at most 100, such as 99.9", s)
	}
	return p, nil
}

func staysAvailable(ctx context.Context, svc string) error {
	v, err := WorldFrom(ctx).view(ctx, svc)
	if err != nil {
		return err
	}
	return v.staysAvailable()
}

func hadOutage(ctx context.Context, svc string) error {
	v, err := WorldFrom(ctx).view(ctx, svc)
	if err != nil {
		return err
	}
	return v.hadOutage()
}

func availabilityAtLeast(ctx context.Context, svc, pct string) error {
	p, err := parsePercent(pct)
	if err != nil {
		return err
	}
	v, err := WorldFrom(ctx).view(ctx, svc)
	if err != nil {
		return err
	}
	return v.availabilityAtLeast(p)
}

func noOutageLongerThan(ctx context.Context, svc, dur string) error {
	d, err := parseDuration(dur)
	if err != nil {
		return err
	}
	v, err := WorldFrom(ctx).view(ctx, svc)
	if err != nil {
		return err
	}
	return v.noOutageLongerThan(d)
}

func downtimeWithin(ctx context.Context, svc, dur string) error {
	d, err := parseDuration(dur)
	if err != nil {
		return err
	}
	v, err := WorldFrom(ctx).view(ctx, svc)
	if err != nil {
		return err
	}
	return v.downtimeWithin(d, d.String())
}

func downtimeWithinPromise(ctx context.Context, svc string) error {
	w := WorldFrom(ctx)
	d, err := w.promisedDowntime()
	if err != nil {
		return err
	}
	if len(w.upgradeWindows()) == 0 {
		return errors.New(`the upgrade has not been applied (or ran no step): the promised window is about the upgrade's downtime; use When the upgrade package is applied to "SVC" as "USER" first`)
	}
	v, err := w.view(ctx, svc)
	if err != nil {
		return err
	}
	return v.upgradeDowntimeWithin(d, "the promised "+d.String())
}

// promisedDowntime is the open package's downtime: in its upgrade.yaml.
func (w *World) promisedDowntime() (time.Duration, error) {
	if w.up.pkg == nil {
		return 0, errors.New(`no upgrade package: the promised window is the downtime: of its upgrade.yaml (Given the upgrade package "PATH")`)
	}
	m := w.up.pkg.Manifest()
	if m == nil || m.DowntimeText == "" {
		return 0, fmt.Errorf(`the upgrade package %s promises no downtime window (no downtime: in its upgrade.yaml): use Then the downtime of "SVC" is within DURATION`, w.up.pkgPath)
	}
	return m.Downtime, nil
}

func errorBudgetIntact(ctx context.Context, svc, pct string) error {
	p, err := parsePercent(pct)
	if err != nil {
		return err
	}
	v, err := WorldFrom(ctx).view(ctx, svc)
	if err != nil {
		return err
	}
	return v.errorBudget(p)
}

// stepSpans are the timeline spans of the upgrade (or rollback) steps named
// step, or an error naming the steps that ran.
func (w *World) stepSpans(step string) ([]window, error) {
	var spans []window
	var ran []string
	for _, ev := range w.Timeline.Filter(upgrade.KindStep) {
		ran = append(ran, ev.Name)
		if ev.Name == step {
			spans = append(spans, window{what: fmt.Sprintf("upgrade step %q", ev.Name), start: ev.Start, end: ev.End})
		}
	}
	if len(spans) == 0 {
		if len(ran) == 0 {
			return nil, fmt.Errorf("no upgrade step has run: step %q cannot be judged yet", step)
		}
		return nil, fmt.Errorf("step %q did not run (the steps that ran: %s)", step, strings.Join(ran, ", "))
	}
	return spans, nil
}

// during are the outages that overlap one of the spans.
func during(outages []probe.Outage, spans []window) []probe.Outage {
	var out []probe.Outage
	for _, o := range outages {
		if len(overlapping(spans, o.Start, o.End)) > 0 {
			out = append(out, o)
		}
	}
	return out
}

// outagesDuring is the probe view of svc and its outages that overlap the
// runs of an upgrade step.
func outagesDuring(ctx context.Context, svc, step string) (probeView, []probe.Outage, error) {
	w := WorldFrom(ctx)
	spans, err := w.stepSpans(step)
	if err != nil {
		return probeView{}, nil, err
	}
	v, err := w.view(ctx, svc)
	if err != nil {
		return probeView{}, nil, err
	}
	return v, during(v.sum.Outages, spans), nil
}

func staysAvailableDuring(ctx context.Context, svc, step string) error {
	v, in, err := outagesDuring(ctx, svc, step)
	if err != nil {
		return err
	}
	if len(in) > 0 {
		return fmt.Errorf("%q did not stay available during step %q: %s%s", svc, step, v.header(), v.report(in))
	}
	return nil
}

func hadOutageDuring(ctx context.Context, svc, step string) error {
	v, in, err := outagesDuring(ctx, svc, step)
	if err != nil {
		return err
	}
	if len(in) == 0 {
		return fmt.Errorf("%q had no outage during step %q: %s%s", svc, step, v.header(), v.report(v.sum.Outages))
	}
	return nil
}

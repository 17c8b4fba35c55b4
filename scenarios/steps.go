package scenarios

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rehearse/rehearse/harness/dataset"
	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/snapshot"
	"github.com/rehearse/rehearse/harness/timeline"
	"github.com/rehearse/rehearse/internal/term"
)

// Step is one phrase of the vocabulary.
type Step struct {
	Phrase  string // the phrase with placeholders, as documented
	Pattern string // anchored regular expression
	Example string // a line as a feature file would say it
	Help    string
	Func    any // godog step function
}

// Steps is the step vocabulary, in the order rehearse steps and the README
// list it: the environment and commands, upgrade packages and rollbacks,
// snapshots, probes, faults, degraded networks and disks. The phrases are a
// public contract: feature files depend on them.
var Steps = slices.Concat(baseSteps, upgradeSteps, preflightSteps, rollbackSteps, snapshotSteps, probeSteps, faultSteps, degradeSteps)

var baseSteps = []Step{
	{`Given the environment "PATH"`, `^the environment "([^"]*)"$`, `Given the environment "fixtures/billing/compose.yaml"`,
		"start the compose file's services in a sandbox (path relative to the feature file or the working directory)", theEnvironment},
	{`Given the dataset "NAME" is loaded at scale N`, `^the dataset "([^"]*)" is loaded at scale (\d[\d,_]*)$`, `Given the dataset "billing" is loaded at scale 10000`,
		"seed a dataset (datasets/NAME/dataset.yaml beside the compose file); N is the main table's row count", datasetLoaded},
	{`Then service "SVC" is healthy`, `^service "([^"]*)" is healthy$`, `Then service "invoicing" is healthy`,
		"the service runs and passes its healthcheck", serviceHealthy},
	{`When I run "CMD" in service "SVC"`, `^I run "((?:[^"\\]|\\.)*)" in service "([^"]*)"$`, `When I run "systemctl is-active billing-api" in service "billing"`,
		"run a shell command in the service as its default user", runCommand},
	{`When I run "CMD" in service "SVC" as "USER"`, `^I run "((?:[^"\\]|\\.)*)" in service "([^"]*)" as "([^"]*)"$`, `When I run "sudo -n true" in service "billing" as "deploy"`,
		"run a shell command in the service as a user", runCommandAs},
	{`Then the command succeeds`, `^the command succeeds$`, `Then the command succeeds`, "the last command exited 0", commandSucceeds},
	{`Then the command fails`, `^the command fails$`, `Then the command fails`, "the last command exited non-zero", commandFails},
	{`Then the command exits with code N`, `^the command exits with code (\d+)$`, `Then the command exits with code 4`, "the last command's exit code", commandExitCode},
	{`Then the output contains "TEXT"`, `^the output contains "((?:[^"\\]|\\.)*)"$`, `Then the output contains "could not be found"`,
		"the last command's stdout or stderr contains the text", outputContains},
	{`Then the output does not contain "TEXT"`, `^the output does not contain "((?:[^"\\]|\\.)*)"$`, `Then the output does not contain "ERROR"`,
		"neither stdout nor stderr of the last command contains the text", outputNotContains},
	{`Then the query "SQL" on "SVC" returns N`, `^the query "((?:[^"\\]|\\.)*)" on "([^"]*)" returns (.+)$`, `Then the query "SELECT count(*) FROM feature_flags" on "db" returns 6`,
		"the first column of the first row (PostgreSQL service; quote text results)", queryReturns},
	{`Then table "TABLE" on "SVC" has N rows`, `^table "([^"]*)" on "([^"]*)" has (\d[\d,_]*) rows$`, `Then table "invoices" on "db" has 10000 rows`,
		"the table's row count", tableHasRows},
}

func theEnvironment(ctx context.Context, path string) error {
	w := WorldFrom(ctx)
	if w.Env != nil {
		return fmt.Errorf("an environment (%s) is already running in this scenario", w.composeFile)
	}
	file, err := w.resolve(path)
	if err != nil {
		return fmt.Errorf("compose file %w", err)
	}
	w.composeFile = file
	span := w.Timeline.Begin(timeline.KindEnvironment, "environment", "start").Set("compose", file).Set("run", w.RunID)
	plan, err := env.LoadPlan(ctx, file)
	if err != nil {
		span.End(err)
		return err
	}
	opts := append([]env.StartOption{env.WithRunID(w.RunID), env.WithProgress(w.log)}, w.Config.StartOptions...)
	e, err := env.Start(ctx, plan, opts...)
	span.End(err)
	if err != nil {
		return err
	}
	w.Env = e
	for _, s := range e.Services() {
		w.Timeline.Mark(timeline.KindEnvironment, s.Name, "ready", map[string]string{"container": s.ContainerID[:12]})
	}
	return nil
}

func parseCount(s string) (int64, error) {
	return strconv.ParseInt(strings.NewReplacer(",", "", "_", "").Replace(s), 10, 64)
}

func datasetLoaded(ctx context.Context, name, scaleText string) error {
	w := WorldFrom(ctx)
	scale, err := parseCount(scaleText)
	if err != nil {
		return fmt.Errorf("scale %q: %w", scaleText, err)
	}
	if scale <= 0 {
		return fmt.Errorf("dataset %s: scale %q: must be at least 1 (the main table's row count)", name, scaleText)
	}
	e, err := w.environment()
	if err != nil {
		return err
	}
	dirs := []string{e.Plan.Dir, w.featureDir, "."}
	spec, err := dataset.Find(name, dirs...)
	if err != nil {
		return err
	}
	span := w.Timeline.Begin(timeline.KindDataset, name, "load").Set("scale", scale)
	opts := append([]snapshot.SeedOption{snapshot.WithSeedProgress(dataset.Printer(w.log)), snapshot.WithSeedFresh(w.Config.Fresh)},
		w.Config.SeedOptions...)
	res, err := snapshot.Seed(ctx, e, spec, scale, opts...)
	for table, n := range res.Rows {
		span.Set(table, n)
	}
	// The cache's outcome and where the time went, on the timeline.
	cache := string(res.Cache)
	if res.Cache == snapshot.SeedSkipped && res.Reason != "" {
		cache += " (" + res.Reason + ")"
	} else if res.Reason != "" {
		span.Set("cache-note", res.Reason)
	}
	span.Set("cache", cache)
	if res.Key != "" {
		span.Set("cache-key", res.Key)
	}
	if res.Volume != "" {
		span.Set("cache-volume", res.Volume)
	}
	phases := map[string]time.Duration{}
	for _, p := range res.Phases {
		phases[p.Name] += p.Duration
	}
	for n, d := range phases {
		span.Set(n, d.Round(time.Millisecond).String())
	}
	span.End(err)
	if err == nil {
		fmt.Fprintf(w.log, "%s\n", seedLine(name, scale, res))
	}
	return err
}

// seedLine says in one progress line how a dataset came to be loaded.
func seedLine(name string, scale int64, r snapshot.SeedResult) string {
	d := r.Duration.Round(100 * time.Millisecond)
	head := fmt.Sprintf("%s at scale %d: ", name, scale)
	switch r.Cache {
	case snapshot.SeedHit:
		return head + fmt.Sprintf("restored from cached state %s in %s (the load took %s)", r.Key, d, r.Load.Round(100*time.Millisecond))
	case snapshot.SeedStored:
		return head + fmt.Sprintf("loaded in %s, stored as cached state %s (%s in all)", r.Load.Round(100*time.Millisecond), r.Key, d)
	}
	line := head + fmt.Sprintf("loaded in %s", r.Load.Round(100*time.Millisecond))
	if r.Reason != "" {
		line += " (cache: " + r.Reason + ")"
	}
	return line
}

func serviceHealthy(ctx context.Context, name string) error {
	w := WorldFrom(ctx)
	s, err := w.service(name)
	if err != nil {
		return err
	}
	st, err := s.State(ctx)
	if err != nil {
		return err
	}
	if !st.Healthy() {
		return fmt.Errorf("service %s is %s (health %q)", name, st.Status, st.Health)
	}
	return nil
}

func runCommand(ctx context.Context, cmd, service string) error {
	return runCommandAs(ctx, cmd, service, "")
}

func runCommandAs(ctx context.Context, cmd, service, user string) error {
	w := WorldFrom(ctx)
	s, err := w.service(service)
	if err != nil {
		return err
	}
	cmd = unescape(cmd)
	var opts []env.ExecOption
	if user != "" {
		opts = append(opts, env.AsUser(user))
	}
	span := w.Timeline.Begin(timeline.KindCommand, service, cmd)
	if user != "" {
		span.Set("user", user)
	}
	res, err := s.Exec(ctx, []string{"sh", "-c", cmd}, opts...)
	span.Set("exit", res.ExitCode).End(err)
	if err != nil {
		return err
	}
	w.last = &commandResult{cmd: cmd, service: service, res: res}
	return nil
}

func (w *World) lastCommand() (*commandResult, error) {
	if w.last == nil {
		return nil, errors.New(`no command has run yet: use When I run "CMD" in service "SVC"`)
	}
	return w.last, nil
}

func (c *commandResult) describe() string {
	return fmt.Sprintf("%q in %s exited %d\nstdout: %s\nstderr: %s", c.cmd, c.service, c.res.ExitCode,
		term.Tail(c.res.Stdout, 10), term.Tail(c.res.Stderr, 10))
}

func commandSucceeds(ctx context.Context) error {
	c, err := WorldFrom(ctx).lastCommand()
	if err != nil {
		return err
	}
	if c.res.ExitCode != 0 {
		return fmt.Errorf("command failed: %s", c.describe())
	}
	return nil
}

func commandFails(ctx context.Context) error {
	c, err := WorldFrom(ctx).lastCommand()
	if err != nil {
		return err
	}
	if c.res.ExitCode == 0 {
		return fmt.Errorf("command succeeded, expected it to fail: %s", c.describe())
	}
	return nil
}

func commandExitCode(ctx context.Context, code int) error {
	c, err := WorldFrom(ctx).lastCommand()
	if err != nil {
		return err
	}
	if c.res.ExitCode != code {
		return fmt.Errorf("want exit code %d: %s", code, c.describe())
	}
	return nil
}

func outputContains(ctx context.Context, text string) error {
	c, err := WorldFrom(ctx).lastCommand()
	if err != nil {
		return err
	}
	if text = unescape(text); !strings.Contains(c.res.Stdout+c.res.Stderr, text) {
		return fmt.Errorf("output does not contain %q: %s", text, c.describe())
	}
	return nil
}

func outputNotContains(ctx context.Context, text string) error {
	c, err := WorldFrom(ctx).lastCommand()
	if err != nil {
		return err
	}
	if text = unescape(text); strings.Contains(c.res.Stdout+c.res.Stderr, text) {
		return fmt.Errorf("output contains %q: %s", text, c.describe())
	}
	return nil
}

func queryReturns(ctx context.Context, sql, service, want string) error {
	w := WorldFrom(ctx)
	e, err := w.environment()
	if err != nil {
		return err
	}
	got, err := dataset.QueryValue(ctx, e, service, unescape(sql))
	if err != nil {
		return err
	}
	want = strings.TrimSpace(want)
	if unq, err := strconv.Unquote(want); err == nil {
		want = unq
	}
	if got != want {
		return fmt.Errorf("query %q on %s returned %s, want %s", sql, service, got, want)
	}
	return nil
}

func tableHasRows(ctx context.Context, table, service, countText string) error {
	w := WorldFrom(ctx)
	e, err := w.environment()
	if err != nil {
		return err
	}
	want, err := parseCount(countText)
	if err != nil {
		return err
	}
	got, err := dataset.RowCount(ctx, e, service, table)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("table %s on %s has %d rows, want %d", table, service, got, want)
	}
	return nil
}

// unescape turns \" and \\ in a quoted step argument into " and \.
func unescape(s string) string {
	return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(s)
}

package env

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
)

// criticalPath sums each service's own start-to-ready time along the
// longest depends_on chain.
func criticalPath(p *Plan, tm map[string]Timing) time.Duration {
	memo := map[string]time.Duration{}
	var path func(name string) time.Duration
	path = func(name string) time.Duration {
		if d, ok := memo[name]; ok {
			return d
		}
		var longest time.Duration
		for dep := range p.Service(name).DependsOn {
			longest = max(longest, path(dep))
		}
		t := tm[name]
		memo[name] = longest + t.Ready.Sub(t.Start)
		return memo[name]
	}
	var cp time.Duration
	for _, s := range p.Services {
		cp = max(cp, path(s.Name))
	}
	return cp
}

func TestCriticalPath(t *testing.T) {
	p, err := loadPlan(t, "testdata/sleepers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(0, 0)
	at := func(s, r int) Timing {
		return Timing{Start: t0.Add(time.Duration(s) * time.Second), Ready: t0.Add(time.Duration(r) * time.Second)}
	}
	tm := map[string]Timing{"left": at(0, 3), "right": at(0, 5), "top": at(5, 6)}
	if got := criticalPath(p, tm); got != 6*time.Second {
		t.Errorf("critical path = %s, want 6s (right 5s + top 1s)", got)
	}
}

// BenchmarkBillingUp brings the bundled world up with images cached, and
// in the same iteration brings the same images up the plain way (the
// floor, see floorUp). Each iteration runs both orders, ours-floor then
// floor-ours (four ups), so any b.N is balanced: neither goes first more
// often, and each follows the other as often. Every up starts only once
// the engine no longer lists anything of the one before (waitRemoved), so
// it does not share the engine with the previous teardown. Metrics (means
// over the 2·b.N ups of each): up-s (Start to every service ready),
// floor-s, up/floor (target: at most 1.2) and teardown-s (Down). The
// per-phase breakdown of Start (seconds from its call, averaged) is
// logged with -v.
func BenchmarkBillingUp(b *testing.B) {
	cli := enginetest.Connect(b)
	plan, err := loadPlan(b, billingCompose)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// Warm: images exist and the build cache is hot before timing.
	if e, err := Start(ctx, plan, WithClient(cli)); err != nil {
		b.Fatal(err)
	} else if err := e.Down(ctx); err != nil {
		b.Fatal(err)
	} else if err := waitRemoved(ctx, cli, e.RunID); err != nil {
		b.Fatal(err)
	}
	phases := map[string]time.Duration{}
	var mu sync.Mutex
	ours := func() (up, down time.Duration) {
		t0 := time.Now()
		e, err := Start(ctx, plan, WithClient(cli), withTrace(func(what string, at time.Time) {
			mu.Lock()
			phases[what] += at.Sub(t0)
			mu.Unlock()
		}))
		if err != nil {
			b.Fatal(err)
		}
		up = time.Since(t0)
		t1 := time.Now()
		if err := e.Down(ctx); err != nil {
			b.Fatal(err)
		}
		down = time.Since(t1)
		if err := waitRemoved(ctx, cli, e.RunID); err != nil {
			b.Fatal(err)
		}
		return up, down
	}
	floorReady := map[string]time.Duration{}
	floor := func() time.Duration {
		d, ready, err := floorUp(ctx, cli, plan)
		if err != nil {
			b.Fatal(err)
		}
		for k, v := range ready {
			floorReady[k] += v
		}
		return d
	}
	var up, fl, down time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u1, d1 := ours()
		f1 := floor()
		f2 := floor()
		u2, d2 := ours()
		b.Logf("iteration %d: ours first: up %.2fs, floor %.2fs; floor first: floor %.2fs, up %.2fs; up/floor %.2f",
			i, u1.Seconds(), f1.Seconds(), f2.Seconds(), u2.Seconds(), float64(u1+u2)/float64(f1+f2))
		up, fl, down = up+u1+u2, fl+f1+f2, down+d1+d2
	}
	b.StopTimer()
	n := float64(2 * b.N)
	b.ReportMetric(up.Seconds()/n, "up-s")
	b.ReportMetric(fl.Seconds()/n, "floor-s")
	b.ReportMetric(float64(up)/float64(fl), "up/floor")
	b.ReportMetric(down.Seconds()/n, "teardown-s")
	b.Log(breakdown("harness Start, seconds from its call", phases, n))
	b.Log(breakdown("floor, seconds from the network create", floorReady, n))
}

// waitRemoved waits until the engine lists no container, network or
// volume of run runID: Down and runs.Remove return once every removal
// they asked for returned, and count a removal another caller has in
// progress as done.
func waitRemoved(ctx context.Context, cli *client.Client, runID string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		left, err := runs.Exists(ctx, cli, runID)
		if err != nil || !left {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("run %s: still listed a minute after its removal", runID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func breakdown(title string, at map[string]time.Duration, n float64) string {
	names := make([]string, 0, len(at))
	for k := range at {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return at[names[i]] < at[names[j]] })
	var s strings.Builder
	fmt.Fprintf(&s, "%s:", title)
	for _, k := range names {
		fmt.Fprintf(&s, "\n  %6.3f  %s", at[k].Seconds()/n, k)
	}
	return s.String()
}

// floorPoll is how often the floor checks a service from the host.
const floorPoll = 50 * time.Millisecond

// floorUp starts plan's services the plain way, as `docker run` would:
// one fresh (non-internal) bridge network with the service names as
// aliases, each service's declared ports published on 127.0.0.1 by the
// engine itself, the same container settings as the harness makes (env,
// volumes, tmpfs, the systemd host's cgroup mount: createOptions), no
// engine healthcheck, started in depends_on order, and each polled every
// floorPoll from the host: a PostgreSQL connection for db (the service
// with an SQL probe), GET /health on its first port for the HTTP services
// (each of the bundled world's answers there). It returns the time from
// its first engine call (the volume create) to every service ready, and
// each service's ready time from the same origin; everything it made is
// removed before it returns.
func floorUp(ctx context.Context, cli *client.Client, plan *Plan) (_ time.Duration, _ map[string]time.Duration, err error) {
	f := &Environment{RunID: "floor" + runs.NewID(), Plan: plan, cli: cli, owner: runs.Self()}
	labels := f.owner.Labels(f.RunID)
	defer func() {
		cleanup := context.WithoutCancel(ctx)
		if rerr := runs.Remove(cleanup, cli, f.RunID); rerr == nil {
			rerr = waitRemoved(cleanup, cli, f.RunID)
			if err == nil {
				err = rerr
			}
		} else if err == nil {
			err = rerr
		}
	}()
	t0 := time.Now()
	// A script would run docker volume create, docker network create,
	// then docker run: one after the other.
	for _, v := range plan.Volumes {
		if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: f.resourceName(v), Labels: labels}); err != nil {
			return 0, nil, err
		}
	}
	netw, err := cli.NetworkCreate(ctx, f.resourceName("floor"), client.NetworkCreateOptions{Driver: "bridge", Labels: labels})
	if err != nil {
		return 0, nil, err
	}
	ready := map[string]chan struct{}{}
	for _, sp := range plan.Services {
		ready[sp.Name] = make(chan struct{})
	}
	var mu sync.Mutex
	at := map[string]time.Duration{}
	g, gctx := errgroup.WithContext(ctx)
	for _, sp := range plan.Services {
		g.Go(func() error {
			for dep := range sp.DependsOn {
				select {
				case <-ready[dep]:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			mounts, _, err := f.resolveMounts(sp)
			if err != nil {
				return err
			}
			opts, err := f.createOptions(sp, mounts, []attachment{{id: netw.ID, aliases: []string{sp.Name}}})
			if err != nil {
				return err
			}
			opts.Config.Healthcheck = nil
			opts.HostConfig.PortBindings = network.PortMap{}
			for _, p := range sp.Ports {
				opts.HostConfig.PortBindings[network.MustParsePort(p.Key())] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1")}}
			}
			created, err := cli.ContainerCreate(gctx, opts)
			if err != nil {
				return fmt.Errorf("floor %s: create: %w", sp.Name, err)
			}
			if _, err := cli.ContainerStart(gctx, created.ID, client.ContainerStartOptions{}); err != nil {
				return fmt.Errorf("floor %s: start: %w", sp.Name, err)
			}
			check, err := floorCheck(gctx, cli, created.ID, sp)
			if err != nil {
				return err
			}
			deadline := time.Now().Add(2 * time.Minute)
			for check(gctx) != nil {
				if time.Now().After(deadline) {
					return fmt.Errorf("floor %s: not ready after 2m: %v", sp.Name, check(gctx))
				}
				select {
				case <-gctx.Done():
					return gctx.Err()
				case <-time.After(floorPoll):
				}
			}
			mu.Lock()
			at[sp.Name] = time.Since(t0)
			mu.Unlock()
			close(ready[sp.Name])
			return nil
		})
	}
	err = g.Wait()
	return time.Since(t0), at, err
}

// floorCheck is the floor's readiness check of a service, from the host
// through its published port.
func floorCheck(ctx context.Context, cli *client.Client, id string, sp *ServicePlan) (func(context.Context) error, error) {
	if len(sp.Ports) == 0 {
		return nil, fmt.Errorf("floor %s: no published port to check", sp.Name)
	}
	ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, err
	}
	b := ins.Container.NetworkSettings.Ports[network.MustParsePort(sp.Ports[0].Key())]
	if len(b) == 0 {
		return nil, fmt.Errorf("floor %s: %s not published", sp.Name, sp.Ports[0].Key())
	}
	addr := "127.0.0.1:" + b[0].HostPort
	if sp.Ext.Probe != nil && sp.Ext.Probe.SQL != "" { // db: x-rehearse probe {sql: ...}
		dsn := fmt.Sprintf("postgres://postgres:%s@%s/%s?sslmode=disable&connect_timeout=2", sp.Env["POSTGRES_PASSWORD"], addr, sp.Env["POSTGRES_DB"])
		return func(ctx context.Context) error {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return err
			}
			return conn.Close(ctx)
		}, nil
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}, nil
}

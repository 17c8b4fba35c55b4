package probe

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rehearse/rehearse/internal/envtest"
)

// probeDuring samples c every 50 ms (timeout 100 ms) around fn.
func probeDuring(t *testing.T, c Checker, fn func()) Summary {
	t.Helper()
	sum := Summarize(around(t, c, fn), calInterval)
	t.Log(describe(sum))
	tooBusy(t, sum)
	return sum
}

// The exec probe runs the service's own healthcheck; a paused container
// refuses execs, which the probe sees as an outage, and it recovers after.
// An exec costs the engine a good part of a second on a busy machine, so
// this probe samples slowly and only its effect is asserted: the HTTP
// calibration measures.
func TestExecProbeSeesPause(t *testing.T) {
	e := envtest.Start(t, filepath.Join("testdata", "compose.yaml"))
	web := e.Service("web")
	c, err := Exec(web, "/usr/local/bin/web", "-check")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(context.Background()); err != nil {
		t.Fatalf("healthy service: %v", err)
	}
	s, err := NewSampler(c, WithInterval(250*time.Millisecond), WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	f := pause(t, web, 1500*time.Millisecond)
	time.Sleep(2 * time.Second)
	samples := s.Stop()
	sum := Summarize(samples, s.Interval())
	t.Logf("pause window %v\n%s", f.window(), describe(sum))
	seen := false
	for _, o := range sum.Outages {
		seen = seen || o.End.After(f.paused) && o.Start.Before(f.thawed)
	}
	if !seen {
		t.Errorf("no outage during the pause\n%s", describe(sum))
	}
	if last := samples[len(samples)-1]; !last.OK() {
		t.Errorf("still failing 2s after the unpause: %v", last.Err)
	}
}

// startDB starts the bundled world's PostgreSQL alone, building its image
// from the bundled compose file when it is missing or stale, and returns
// its DSN and a connection of the test's own (closed at the test's end).
func startDB(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	envtest.EnsureImages(t, filepath.Join("..", "..", "fixtures", "billing", "compose.yaml"), "db")
	e := envtest.Start(t, filepath.Join("testdata", "pg", "compose.yaml"))
	ep, err := e.Service("db").Endpoint("5432")
	if err != nil {
		t.Fatal(err)
	}
	dsn := "postgres://postgres:test@" + ep + "/billing?sslmode=disable"
	admin, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return dsn, admin
}

// A query that waits on a lock is an outage for the SQL probe, as it is
// for the service that runs it; the probe recovers when the lock goes.
func TestSQLProbeSeesLock(t *testing.T) {
	dsn, admin := startDB(t)
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "CREATE TABLE probed (id int)"); err != nil {
		t.Fatal(err)
	}
	c, err := SQL(dsn, "SELECT count(*) FROM probed")
	if err != nil {
		t.Fatal(err)
	}
	// The lock holds for a second; each sample may take healthyTimeout,
	// so that a busy machine's slow answers around it are not outages of
	// their own (the lock's queries wait far longer than that).
	samples := around(t, c, func() {
		tx, err := admin.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "LOCK TABLE probed IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}, WithTimeout(healthyTimeout))
	sum := Summarize(samples, calInterval)
	t.Log(describe(sum))
	tooBusy(t, sum)
	if len(sum.Outages) != 1 || sum.Outages[0].Open {
		t.Fatalf("%d outages, want 1 closed one\n%s", len(sum.Outages), describe(sum))
	}
	if o := sum.Outages[0]; !errors.Is(o.FirstErr, ErrTimeout) || o.Duration() < 700*time.Millisecond || o.Duration() > 1500*time.Millisecond {
		t.Errorf("outage %v (%v), want about 1s of timeouts", o.Duration(), o.FirstErr)
	}
}

// A probe's query (from an untrusted compose file) changes nothing: it runs
// alone, read-only, and is rolled back.
func TestSQLProbeChangesNothing(t *testing.T) {
	dsn, admin := startDB(t)
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DELETE FROM kept", "SELECT 1; DELETE FROM kept", "WITH d AS (DELETE FROM kept RETURNING 1) SELECT count(*) FROM d"} {
		c, err := SQL(dsn, q)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(ctx); err == nil {
			t.Errorf("probe %q passed: a writing query must fail", q)
		}
		c.Close()
	}
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&n); err != nil || n != 1 {
		t.Errorf("kept has %d rows (%v) after the probes, want 1", n, err)
	}
}

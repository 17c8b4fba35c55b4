package env

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/internal/enginetest"
)

// BenchmarkHealthCheckExec measures what one harness health check of the
// bundled world's db (pg_isready through the engine's exec API, as
// waitReady runs it) costs: wall-ms per check, and engine-cpu-ms per check,
// the CPU time of dockerd, containerd and the containerd shims (runc is
// reaped by its shim, so its time is the shim's children's). The engine's
// processes are read from /proc: the engine must be local. A stretch of
// the same length without checks is measured first and subtracted, so
// background work (other containers, other runs) cancels out roughly.
func BenchmarkHealthCheckExec(b *testing.B) {
	cli := enginetest.Connect(b)
	full, err := loadPlan(b, billingCompose)
	if err != nil {
		b.Fatal(err)
	}
	plan := *full
	plan.Services = []*ServicePlan{full.Service("db")}
	ctx := context.Background()
	e, err := Start(ctx, &plan, WithClient(cli))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Down(ctx)
	sp := plan.Services[0]
	argv := HealthArgv(sp.Health.Test, nil)
	id := e.Service("db").ContainerID
	if res, err := e.runCheck(ctx, id, argv, sp.Health.Timeout); err != nil || !res.passed() {
		b.Fatalf("check: %+v %v", res, err)
	}
	const n = 40
	b.ResetTimer()
	var wall, cpu time.Duration
	for i := 0; i < b.N; i++ {
		t0, c0 := time.Now(), engineCPU(b)
		for range n {
			if _, err := e.runCheck(ctx, id, argv, sp.Health.Timeout); err != nil {
				b.Fatal(err)
			}
		}
		took, used := time.Since(t0), engineCPU(b)-c0
		c1 := engineCPU(b)
		time.Sleep(took)
		idle := engineCPU(b) - c1
		wall += took
		cpu += used - idle
	}
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N*n), "wall-ms/check")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N*n), "engine-cpu-ms/check")
}

// engineCPU is the CPU time dockerd, containerd and every containerd shim
// have used so far, their reaped children included.
func engineCPU(b *testing.B) time.Duration {
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		b.Fatal(err)
	}
	var ticks int64
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // gone
		}
		s := string(data)
		open, shut := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || shut < open {
			continue
		}
		switch comm := s[open+1 : shut]; {
		case comm == "dockerd", comm == "containerd", strings.HasPrefix(comm, "containerd-shim"):
		default:
			continue
		}
		f := strings.Fields(s[shut+1:])
		// Fields after the command: state is f[0]; utime, stime, cutime,
		// cstime are fields 14-17 of the line, f[11:15].
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// runCheck runs one health check command in container id and waits for
// it, bounded by timeout (the healthcheck's, or the engine's default).
func (e *Environment) runCheck(ctx context.Context, id string, argv []string, timeout time.Duration) (checkResult, error) {
	c := e.startCheck(ctx, id, argv, timeout, "", 0)
	for c == nil { // other checks of this process hold the slots
		time.Sleep(10 * time.Millisecond)
		c = e.startCheck(ctx, id, argv, timeout, "", 0)
	}
	defer c.cancel()
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case <-c.done:
		return c.res, c.err
	case <-t.C:
		return c.timedOut(), nil
	}
}

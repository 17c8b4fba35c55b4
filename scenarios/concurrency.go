package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/engine"
)

// What one scenario of the bundled world is budgeted, for AutoConcurrency;
// docs/scaling.md ("Choosing the concurrency") has the measurements.
const (
	// ScenarioCores is the CPU one scenario is given: a core and a half.
	// A scenario keeps about half a core busy on average (5 to 7 CPU
	// seconds over 12 to 14 s: its containers, rehearse and dockerd), but
	// in bursts (start-up, COPY, the migration), and its probes' error
	// budgets were calibrated on a healthy run: two bursts on one core
	// stall a probe. On the 2-core CI machine 2 at a time was 1.2x to
	// 1.5x faster when the machine was quiet, but on 2026-11-30, with
	// other work beside it, 2 at a time failed twice out of two runs of
	// the bundled features: systemd timing out in one, false outages in
	// the other (availability probes without an answer in 250-500 ms
	// while nothing was down). A rehearsal that reports an outage that
	// did not happen is worse than a slower one: 2 cores hold one, 4
	// hold two, 8 hold five.
	ScenarioCores = 1.5
	// ScenarioMemory is the memory one scenario is given: an environment
	// of the bundled world peaks at 109 MiB, and two side by side at 632
	// MiB with the 400,000-invoice dataset; 512 MiB leaves room for that,
	// since the engine's MemTotal also counts what else its machine uses.
	ScenarioMemory = 512 << 20
)

// AutoConcurrency, as RunOptions.Concurrency, runs as many scenarios at
// once as the machine that runs the environments holds (see
// Capacity.Concurrency), never more than there are, and says so on Stderr.
const AutoConcurrency = -1

// Capacity is what the machine that runs the environments has.
type Capacity struct {
	Cores  float64 // CPUs; a cgroup quota of 1.5 CPUs is 1.5
	Memory int64   // bytes; 0 when unknown
	// Engine is set when the figures are the Docker engine's (its /info),
	// not this machine's.
	Engine bool
}

// Concurrency is how many scenarios at once the capacity holds: the
// smaller of Cores/ScenarioCores and Memory/ScenarioMemory (CPU alone when
// the memory is unknown), at least 1.
func (c Capacity) Concurrency() int {
	n := math.Floor(c.Cores/ScenarioCores + 1e-9)
	if c.Memory > 0 {
		n = min(n, math.Floor(float64(c.Memory)/ScenarioMemory))
	}
	return int(max(n, 1))
}

// String is "2 cores and 23.4 GiB for the engine" or "... on this machine".
func (c Capacity) String() string {
	s := strconv.FormatFloat(c.Cores, 'f', -1, 64) + " cores"
	if c.Cores == 1 {
		s = "1 core"
	}
	if c.Memory > 0 {
		s += fmt.Sprintf(" and %.1f GiB", float64(c.Memory)/(1<<30))
	}
	if c.Engine {
		return s + " for the engine"
	}
	return s + " on this machine"
}

// FindCapacity returns the engine's capacity when an engine answers (with
// DOCKER_HOST the environments run on its machine, not this one), else
// this machine's. The engine's cores are capped at this machine's: each
// scenario's own work (generating datasets, encoding COPY, probing,
// comparing snapshots) runs here, whatever engine runs its containers.
func FindCapacity(ctx context.Context) Capacity {
	local, _ := LocalCapacity()
	if c, err := EngineCapacity(ctx); err == nil {
		if local.Cores > 0 && local.Cores < c.Cores {
			c.Cores = local.Cores
		}
		return c
	}
	return local
}

// EngineCapacity asks the Docker engine for its machine's CPUs and memory
// (NCPU and MemTotal of its /info).
func EngineCapacity(ctx context.Context) (Capacity, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cli, err := engine.Connect(ctx)
	if err != nil {
		return Capacity{}, err
	}
	defer cli.Close()
	res, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return Capacity{}, fmt.Errorf("engine info: %w", err)
	}
	if res.Info.NCPU < 1 || res.Info.MemTotal < 1 {
		return Capacity{}, fmt.Errorf("engine info: %d CPUs and %d bytes of memory", res.Info.NCPU, res.Info.MemTotal)
	}
	return Capacity{Cores: float64(res.Info.NCPU), Memory: res.Info.MemTotal, Engine: true}, nil
}

// LocalCapacity reads this machine's capacity: the CPUs this process may
// use, lowered to its cgroup's CPU quota, and the memory available
// (/proc/meminfo MemAvailable), lowered to its cgroup's memory limit.
// Go's runtime reads the CPU quota too (GOMAXPROCS, since Go 1.25), but
// rounds a quota below 2 up to 2 and yields to $GOMAXPROCS, so the quota
// is read here.
func LocalCapacity() (Capacity, error) {
	return localCapacity(os.DirFS("/"), runtime.NumCPU())
}

// localCapacity is LocalCapacity on a file system rooted at /, for tests.
// When the memory cannot be read it is left 0 (unknown), with the error.
func localCapacity(root fs.FS, ncpu int) (Capacity, error) {
	c := Capacity{Cores: float64(max(ncpu, 1))}
	if q, ok := cpuQuota(root); ok && q < c.Cores {
		c.Cores = q
	}
	var err error
	c.Memory, err = memAvailable(root)
	if limit, ok := memoryLimit(root); ok && (err != nil || limit < c.Memory) {
		c.Memory, err = limit, nil
	}
	return c, err
}

// cpuQuota is the cgroup's CPU quota in CPUs: cgroup v2's cpu.max
// ("150000 100000"; "max" is none), else v1's cpu.cfs_quota_us (-1 is
// none) over cpu.cfs_period_us.
func cpuQuota(root fs.FS) (float64, bool) {
	if f := fieldsOf(root, "sys/fs/cgroup/cpu.max"); len(f) == 2 {
		return quota(f[0], f[1])
	}
	for _, dir := range []string{"sys/fs/cgroup/cpu", "sys/fs/cgroup/cpu,cpuacct"} {
		q, p := fieldsOf(root, dir+"/cpu.cfs_quota_us"), fieldsOf(root, dir+"/cpu.cfs_period_us")
		if len(q) == 1 && len(p) == 1 {
			return quota(q[0], p[0])
		}
	}
	return 0, false
}

func quota(q, period string) (float64, bool) {
	qv, err1 := strconv.ParseFloat(q, 64)
	pv, err2 := strconv.ParseFloat(period, 64)
	if err1 != nil || err2 != nil || qv <= 0 || pv <= 0 {
		return 0, false
	}
	return qv / pv, true
}

// memoryLimit is the cgroup's memory limit in bytes: v2's memory.max, else
// v1's memory.limit_in_bytes (a page-rounded 2^63 is none).
func memoryLimit(root fs.FS) (int64, bool) {
	for _, name := range []string{"sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		f := fieldsOf(root, name)
		if len(f) != 1 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || v <= 0 || v >= 1<<62 { // "max", or v1's "unlimited"
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// memAvailable is MemAvailable of /proc/meminfo, in bytes.
func memAvailable(root fs.FS) (int64, error) {
	data, err := fs.ReadFile(root, "proc/meminfo")
	if err != nil {
		return 0, err
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 3 && f[0] == "MemAvailable:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || kb <= 0 {
				return 0, fmt.Errorf("/proc/meminfo: MemAvailable %q", f[1])
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("/proc/meminfo: no MemAvailable")
}

// fieldsOf is the whitespace-separated fields of a small file, none when
// it cannot be read.
func fieldsOf(root fs.FS, name string) []string {
	data, err := fs.ReadFile(root, name)
	if err != nil || len(data) > 4096 {
		return nil
	}
	return strings.Fields(string(data))
}

// autoConcurrency resolves AutoConcurrency for a run of n scenarios: the
// capacity's concurrency, never more than n, and the line that says so. A
// single scenario runs alone without asking for the capacity.
func autoConcurrency(ctx context.Context, n int, capacity func(context.Context) Capacity) (int, string) {
	if n <= 1 {
		return 1, "running 1 scenario"
	}
	if capacity == nil {
		capacity = FindCapacity
	}
	c := capacity(ctx)
	at := min(c.Concurrency(), n)
	return at, fmt.Sprintf("running %d scenarios, %d at a time (from %s; --concurrency to change)", n, at, c)
}

package fault

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/timeline"
)

func TestSqueezeOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []Option
		want string
	}{
		{"nothing", nil, "nothing to squeeze"},
		{"too few CPUs", []Option{WithCPUs(0.001)}, "cpus 0.001: at least 0.01"},
		{"no CPUs", []Option{WithCPUs(0)}, "at least 0.01"},
		{"too little memory", []Option{WithMemory(1 << 20)}, "memory 1048576 bytes: at least"},
		{"not a squeeze option", []Option{WithCPUs(1), WithSignal("HUP")}, `the option "signal" does not apply`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSqueeze(nil, "db", tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "squeeze db") {
				t.Errorf("NewSqueeze: %v, want an error about the squeeze of db containing %q", err, tt.want)
			}
		})
	}
	if _, err := NewKill(nil, "db", WithMemory(64<<20)); err == nil || !strings.Contains(err.Error(), `"memory" does not apply`) {
		t.Errorf("NewKill took WithMemory: %v", err)
	}
	svc := &env.Service{Name: "db"}
	for q, want := range map[*Squeeze]string{
		{svc: svc, cpus: 0.1, memory: 64 << 20}: "squeeze db to 0.1 CPUs, 64MiB",
		{svc: svc, cpus: 1.5}:                   "squeeze db to 1.5 CPUs",
		{svc: svc, memory: 1536 << 20}:          "squeeze db to 1.5GiB",
	} {
		if got := q.Name(); got != want {
			t.Errorf("name %q, want %q", got, want)
		}
	}
}

// burn runs a CPU-bound loop in store and returns how long it took there
// and how long the kernel held it back for a CPU quota (the cgroup's
// throttled time, in nanoseconds), both measured inside the container. A
// busy machine slows the loop down too, but does not throttle it.
func (w *world) burn(t *testing.T) (took, throttled time.Duration) {
	t.Helper()
	res := w.sh(t, "store", `throttled() {
	if [ -f /sys/fs/cgroup/cpu.stat ]; then echo $(( $(sed -n 's/^throttled_usec //p' /sys/fs/cgroup/cpu.stat) * 1000 ))
	else sed -n 's/^throttled_time //p' /sys/fs/cgroup/cpu/cpu.stat; fi
}
t0=$(throttled); s=$(date +%s%N)
i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done
echo $(( $(date +%s%N) - s )) $(( $(throttled) - t0 ))`)
	f := strings.Fields(res.Stdout)
	if res.ExitCode != 0 || len(f) != 2 {
		t.Fatalf("burn: exit %d, %q %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	ns, err1 := strconv.ParseInt(f[0], 10, 64)
	th, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("burn: %q", res.Stdout)
	}
	return time.Duration(ns), time.Duration(th)
}

// cgroupLimits reads store's memory limit and CPU quota as its kernel
// sees them (cgroup v2 or v1 files, read-only in the container).
func (w *world) cgroupLimits(t *testing.T) string {
	t.Helper()
	return w.cgroupLimitsOf(t, "store")
}

// cgroupLimitsOf reads a service's memory limit and CPU quota as its
// kernel sees them.
func (w *world) cgroupLimitsOf(t *testing.T, svc string) string {
	t.Helper()
	res := w.sh(t, svc, `if [ -f /sys/fs/cgroup/memory.max ]; then cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max
else cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us; fi`)
	if res.ExitCode != 0 {
		t.Fatalf("read cgroup limits: %s", res.Stderr)
	}
	return strings.Join(strings.Fields(res.Stdout), " ")
}

// alloc makes one process in store hold 100 MiB for a moment and returns
// its exit code (tail keeps a line without a newline whole).
func (w *world) alloc(t *testing.T) int {
	t.Helper()
	return w.sh(t, "store", "head -c 100m /dev/zero | tail > /dev/null").ExitCode
}

func TestSqueeze(t *testing.T) {
	w := startResources(t)
	ctx := context.Background()
	c := w.e.Service("store").Container()
	before, err := c.Resources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kernelBefore := w.cgroupLimits(t)
	set := NewSet(timeline.New())
	defer set.HealAll(ctx)

	t.Run("cpu", func(t *testing.T) {
		free, held := w.burn(t)
		if held != 0 {
			t.Fatalf("the loop was throttled for %v before any squeeze", held)
		}
		q, err := NewSqueeze(w.e, "store", WithCPUs(0.05))
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Inject(ctx, q); err != nil {
			t.Fatal(err)
		}
		if r, err := c.Resources(ctx); err != nil || r.NanoCPUs != 5e7 {
			t.Errorf("squeezed resources %+v (%v), want 5e7 nano CPUs", r, err)
		}
		slow, held := w.burn(t)
		t.Logf("loop: %v free; %v at 0.05 CPUs, %v of it throttled", free, slow, held)
		// Wall times compare badly on a shared machine (others slow the
		// loop as much as the quota does): the time the quota held the
		// loop back is the squeeze's own measure.
		if held <= 0 {
			t.Errorf("the loop took %v squeezed (%v before) and was never throttled", slow, free)
		}
		if err := set.Heal(ctx, q); err != nil {
			t.Fatal(err)
		}
		if again, held := w.burn(t); held != 0 {
			t.Errorf("after heal the loop took %v and was still throttled for %v", again, held)
		}
	})

	t.Run("memory", func(t *testing.T) {
		if code := w.alloc(t); code != 0 {
			t.Fatalf("allocating 100 MiB before the squeeze exited %d", code)
		}
		q, err := NewSqueeze(w.e, "store", WithMemory(32<<20))
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Inject(ctx, q); err != nil {
			t.Fatal(err)
		}
		if r, err := c.Resources(ctx); err != nil || r.Memory != 32<<20 || r.MemorySwap != 32<<20 {
			t.Errorf("squeezed resources %+v (%v), want 32 MiB and no swap", r, err)
		}
		if code := w.alloc(t); code != 137 {
			t.Errorf("allocating 100 MiB under a 32 MiB limit exited %d, want 137 (OOM-killed)", code)
		}
		w.healthy(t, "store") // the allocating process died, not the service
		if err := set.Heal(ctx, q); err != nil {
			t.Fatal(err)
		}
		if code := w.alloc(t); code != 0 {
			t.Errorf("allocating 100 MiB after heal exited %d", code)
		}
	})

	// Heal put back what there was: the kernel's memory limit is the same
	// (an unset limit comes back as its maximum, which it reads as none),
	// its CPU quota the same or, where there was none, every host CPU; the
	// engine's limits the same or, for one that was unset, the widest it
	// takes (it cannot unset one).
	got, was := strings.Fields(w.cgroupLimits(t)), strings.Fields(kernelBefore)
	if got[0] != was[0] {
		t.Errorf("kernel memory limit %s after heal, %s before", got[0], was[0])
	}
	if unlimited := was[1] == "-1" || was[1] == "max"; got[1] != was[1] && !(unlimited && got[1] == strconv.Itoa(runtime.NumCPU()*100000)) {
		t.Errorf("kernel CPU quota %s after heal, %s before", got[1], was[1])
	}
	if ok, err := c.Unrestricted(ctx, before, env.AllLimits); err != nil || !ok {
		after, _ := c.Resources(ctx)
		t.Errorf("resources %+v after heal, %+v before (%v)", after, before, err)
	}

	t.Run("memory below usage", func(t *testing.T) {
		info, err := w.cli.Info(ctx, client.InfoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info.Info.CgroupVersion != "1" {
			t.Skipf("cgroup v%s: the kernel OOM-kills the service instead of refusing the limit; not verified on this host", info.Info.CgroupVersion)
		}
		// 12 MiB of tmpfs pages, charged to store and unreclaimable without swap.
		if res := w.sh(t, "store", "dd if=/dev/zero of=/data/held bs=1M count=12"); res.ExitCode != 0 {
			t.Fatalf("fill 12 MiB: %s", res.Stderr)
		}
		was, err := c.Resources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		q, err := NewSqueeze(w.e, "store", WithMemory(8<<20))
		if err != nil {
			t.Fatal(err)
		}
		err = set.Inject(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "uses more than 8MiB that the kernel cannot reclaim") {
			t.Errorf("squeezing below usage: %v, want the engine's refusal", err)
		}
		if now, err := c.Resources(ctx); err != nil || now != was {
			t.Errorf("a refused squeeze changed the resources from %+v to %+v (%v)", was, now, err)
		}
		w.healthy(t, "store")
		if err := set.Heal(ctx, q); err != nil {
			t.Errorf("healing a refused squeeze: %v", err)
		}
		if now, err := c.Resources(ctx); err != nil || now != was {
			t.Errorf("healing a refused squeeze changed the resources from %+v to %+v (%v)", was, now, err)
		}
	})
}

// A squeeze heals only the limits it changed: healing a memory squeeze sets
// no CPU quota (which would throttle bursts of a multi-threaded service),
// and healing a CPU squeeze sets no memory limit. Each case squeezes a
// service of its own, which starts with no limit at all.
func TestSqueezeRestoresOnlyWhatItChanged(t *testing.T) {
	w := startResources(t)
	ctx := context.Background()
	set := NewSet(timeline.New())
	defer set.HealAll(ctx)
	for _, tt := range []struct {
		svc  string
		opt  Option
		want env.Resources // after heal
	}{
		{"plain", WithMemory(64 << 20), env.Resources{Memory: env.WidestMemory, MemorySwap: env.WidestMemory}},
		{"store", WithCPUs(0.5), env.Resources{NanoCPUs: int64(runtime.NumCPU()) * 1e9}},
	} {
		c := w.e.Service(tt.svc).Container()
		if r, err := c.Resources(ctx); err != nil || r != (env.Resources{}) {
			t.Fatalf("%s starts with limits %+v (%v), want none", tt.svc, r, err)
		}
		kernel := strings.Fields(w.cgroupLimitsOf(t, tt.svc))
		q, err := NewSqueeze(w.e, tt.svc, tt.opt)
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Inject(ctx, q); err != nil {
			t.Fatal(err)
		}
		if err := set.Heal(ctx, q); err != nil {
			t.Fatal(err)
		}
		if r, err := c.Resources(ctx); err != nil || r != tt.want {
			t.Errorf("%s: after heal the resources are %+v (%v), want %+v", q.Name(), r, err, tt.want)
		}
		// The kernel reads the widest memory limit as none; a CPU quota it
		// never had stays none.
		got := strings.Fields(w.cgroupLimitsOf(t, tt.svc))
		if got[0] != kernel[0] || (tt.want.NanoCPUs == 0 && got[1] != kernel[1]) {
			t.Errorf("%s: after heal the kernel's memory limit and CPU quota are %v, %v before", q.Name(), got, kernel)
		}
	}
}

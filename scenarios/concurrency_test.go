package scenarios

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/fstest"
)

const gib = 1 << 30

// The concurrency is the smaller of what the cores and the memory hold,
// at least 1.
func TestCapacityConcurrency(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    Capacity
		want int
	}{
		{"this CI machine", Capacity{Cores: 2, Memory: 23.5 * gib, Engine: true}, 1},
		{"one core", Capacity{Cores: 1, Memory: 64 * gib}, 1},
		{"a quota of half a core", Capacity{Cores: 0.5, Memory: 64 * gib}, 1},
		{"a quota of 3 cores", Capacity{Cores: 3, Memory: 64 * gib}, 2},
		{"eight cores", Capacity{Cores: 8, Memory: 64 * gib}, 5},
		{"memory binds", Capacity{Cores: 16, Memory: 1 * gib}, 2},
		{"too little memory for one", Capacity{Cores: 16, Memory: 100 << 20}, 1},
		{"memory unknown", Capacity{Cores: 4}, 2},
		{"nothing known", Capacity{}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Concurrency(); got != tt.want {
				t.Errorf("%+v: Concurrency() = %d, want %d", tt.c, got, tt.want)
			}
		})
	}
}

func TestCapacityString(t *testing.T) {
	for _, tt := range []struct {
		c    Capacity
		want string
	}{
		{Capacity{Cores: 2, Memory: 25275318272, Engine: true}, "2 cores and 23.5 GiB for the engine"}, // the CI engine's MemTotal
		{Capacity{Cores: 1, Memory: 512 << 20}, "1 core and 0.5 GiB on this machine"},
		{Capacity{Cores: 1.5}, "1.5 cores on this machine"},
	} {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.c, got, tt.want)
		}
	}
}

// This machine's capacity: the CPUs lowered to a cgroup quota (v1 or v2),
// MemAvailable lowered to a cgroup memory limit.
func TestLocalCapacity(t *testing.T) {
	const meminfo = "MemTotal:       24683620 kB\nMemFree:         1000000 kB\nMemAvailable:   24216360 kB\n"
	const available = 24216360 << 10
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tt := range []struct {
		name    string
		files   fstest.MapFS
		ncpu    int
		want    Capacity
		wantErr bool
	}{
		{"no cgroup", fstest.MapFS{"proc/meminfo": file(meminfo)}, 4, Capacity{Cores: 4, Memory: available}, false},
		{"v2, no limits", fstest.MapFS{"proc/meminfo": file(meminfo),
			"sys/fs/cgroup/cpu.max": file("max 100000\n"), "sys/fs/cgroup/memory.max": file("max\n")},
			4, Capacity{Cores: 4, Memory: available}, false},
		{"v2 limits", fstest.MapFS{"proc/meminfo": file(meminfo),
			"sys/fs/cgroup/cpu.max": file("150000 100000\n"), "sys/fs/cgroup/memory.max": file("2147483648\n")},
			4, Capacity{Cores: 1.5, Memory: 2 * gib}, false},
		{"v2 quota above the CPUs", fstest.MapFS{"proc/meminfo": file(meminfo),
			"sys/fs/cgroup/cpu.max": file("800000 100000\n")},
			2, Capacity{Cores: 2, Memory: available}, false},
		{"v1, no limits", fstest.MapFS{"proc/meminfo": file(meminfo),
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us": file("-1\n"), "sys/fs/cgroup/cpu/cpu.cfs_period_us": file("100000\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854771712\n")},
			2, Capacity{Cores: 2, Memory: available}, false},
		{"v1 limits", fstest.MapFS{"proc/meminfo": file(meminfo),
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": file("50000\n"), "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": file("100000\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("1073741824\n")},
			2, Capacity{Cores: 0.5, Memory: 1 * gib}, false},
		{"a limit above what is available", fstest.MapFS{"proc/meminfo": file(meminfo),
			"sys/fs/cgroup/memory.max": file("68719476736\n")},
			2, Capacity{Cores: 2, Memory: available}, false},
		{"no meminfo, a limit", fstest.MapFS{"sys/fs/cgroup/memory.max": file("1073741824\n")},
			2, Capacity{Cores: 2, Memory: 1 * gib}, false},
		{"no meminfo", fstest.MapFS{}, 2, Capacity{Cores: 2}, true},
		{"no MemAvailable", fstest.MapFS{"proc/meminfo": file("MemTotal: 1000 kB\n")}, 2, Capacity{Cores: 2}, true},
		{"garbage", fstest.MapFS{"proc/meminfo": file("MemAvailable: lots kB\n"),
			"sys/fs/cgroup/cpu.max": file("lots 100000\n"), "sys/fs/cgroup/memory.max": file("-5\n")},
			2, Capacity{Cores: 2}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := localCapacity(tt.files, tt.ncpu)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("localCapacity = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// AutoConcurrency: the run asks for the capacity, runs no more at once
// than there are scenarios, and says so in its first line on stderr; a
// single scenario runs alone without asking; a number says nothing.
func TestRunAutoConcurrency(t *testing.T) {
	const five = "testdata/report/cheap.feature" // five scenarios, none needs an environment
	for _, tt := range []struct {
		name        string
		path        string
		concurrency int
		capacity    Capacity
		want        string // the first line on stderr; "" for none of ours
	}{
		{"two cores", five, AutoConcurrency, Capacity{Cores: 2, Memory: 25275318272, Engine: true},
			"running 5 scenarios, 1 at a time (from 2 cores and 23.5 GiB for the engine; --concurrency to change)"},
		{"more cores than scenarios", five, AutoConcurrency, Capacity{Cores: 32, Memory: 64 * gib},
			"running 5 scenarios, 5 at a time (from 32 cores and 64.0 GiB on this machine; --concurrency to change)"},
		{"half a core", five, AutoConcurrency, Capacity{Cores: 0.5, Memory: 64 * gib},
			"running 5 scenarios, 1 at a time (from 0.5 cores and 64.0 GiB on this machine; --concurrency to change)"},
		{"one scenario", five + ":3", AutoConcurrency, Capacity{}, "running 1 scenario"},
		{"a number", five, 2, Capacity{}, ""},
		{"the zero value", five, 0, Capacity{}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			asked := 0
			var stdout, stderr bytes.Buffer
			sum, err := Run(t.Context(), RunOptions{Paths: []string{tt.path}, Concurrency: tt.concurrency, Format: "progress",
				Capacity: func(context.Context) Capacity { asked++; return tt.capacity },
				Stdout:   &stdout, Stderr: &stderr})
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if tt.want != "" && first != tt.want {
				t.Errorf("stderr starts %q, want %q\n%s", first, tt.want, stderr.String())
			}
			if tt.want == "" && strings.Contains(stderr.String(), "at a time") {
				t.Errorf("--concurrency %d: stderr says how many at a time:\n%s", tt.concurrency, stderr.String())
			}
			if wantAsked := tt.concurrency == AutoConcurrency && tt.path == five; (asked > 0) != wantAsked || asked > 1 {
				t.Errorf("capacity asked %d times", asked)
			}
			if sum.GodogStatus == 0 && tt.path == five {
				t.Errorf("want the scenario that needs an environment to fail:\n%s", stdout.String())
			}
		})
	}
}

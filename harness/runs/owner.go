package runs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Owner identifies the process that owns a run. Host and PID alone do not:
// CI jobs in containers that share one Docker daemon often have the same
// host name and the same pid, so the pid namespace and the boot id come
// with them, and the start time tells a reused pid apart.
type Owner struct {
	Host  string
	PID   int
	Start string // process start time in clock ticks since boot; "" when unknown
	PIDNS string // pid namespace, as readlink /proc/self/ns/pid says; "" when unknown
	Boot  string // /proc/sys/kernel/random/boot_id; "" when unknown
}

// Self is the owner value for the current process.
func Self() Owner {
	host, _ := os.Hostname()
	pidns, _ := os.Readlink("/proc/self/ns/pid")
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return Owner{Host: host, PID: os.Getpid(), Start: procStart(os.Getpid()),
		PIDNS: pidns, Boot: strings.TrimSpace(string(boot))}
}

// String is the rehearse.owner label value: <host>/<pid>.
func (o Owner) String() string { return fmt.Sprintf("%s/%d", o.Host, o.PID) }

// Labels are the labels every resource of runID owned by o carries.
func (o Owner) Labels(runID string) map[string]string {
	l := map[string]string{LabelRun: runID, LabelOwner: o.String()}
	for k, v := range map[string]string{LabelOwnerStart: o.Start, LabelOwnerPIDNS: o.PIDNS, LabelOwnerBoot: o.Boot} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

// OwnerFromLabels parses the owner labels of a resource (Owner.Labels);
// false when they do not name one.
func OwnerFromLabels(l map[string]string) (Owner, bool) {
	host, pid, ok := strings.Cut(l[LabelOwner], "/")
	if !ok {
		return Owner{}, false
	}
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return Owner{}, false
	}
	return Owner{Host: host, PID: n, Start: l[LabelOwnerStart], PIDNS: l[LabelOwnerPIDNS], Boot: l[LabelOwnerBoot]}, true
}

// Alive reports whether the owner process may still run. Only an owner in
// this process's own host, pid namespace and boot can be judged: there its
// pid means the same process. Any other owner (another host, another
// container's pid namespace, another boot, or labels that do not say) counts
// as alive, however old its run: this process cannot see it, and removing a
// live run of another CI job is worse than leaving a dead one to
// `rehearse gc --all`. A judged owner is gone when kill(pid, 0) answers
// ESRCH or its pid now belongs to a process with another start time;
// EPERM means a process we may not signal runs there: alive.
func (o Owner) Alive() bool { return localProbe().alive(o) }

// probe is what judging liveness asks of the system; tests fake it.
type probe struct {
	self  Owner
	kill  func(pid int) error  // kill(pid, 0)
	start func(pid int) string // the start time of pid; "" when unreadable
}

func localProbe() probe {
	return probe{
		self:  Self(),
		kill:  func(pid int) error { return syscall.Kill(pid, 0) },
		start: procStart,
	}
}

func (p probe) alive(o Owner) bool {
	if o.Host != p.self.Host || o.PIDNS == "" || o.Boot == "" || o.PIDNS != p.self.PIDNS || o.Boot != p.self.Boot {
		return true // not ours to judge
	}
	if err := p.kill(o.PID); errors.Is(err, syscall.ESRCH) {
		return false
	}
	// A process with that pid exists (kill answered nil or EPERM); it is
	// the owner unless it started at another time.
	if o.Start != "" {
		if s := p.start(o.PID); s != "" && s != o.Start {
			return false
		}
	}
	return true
}

// procStart reads a process's start time (field 22 of /proc/PID/stat); ""
// when the process does not exist or cannot be read.
func procStart(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

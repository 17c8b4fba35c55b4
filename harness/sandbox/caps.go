package sandbox

import (
	"fmt"
	"strings"
)

// allowedCaps is what cap_add may grant: Docker's default set, which every
// container has unless it drops them, and the few whose reach stays inside
// the container.
//
// Docker's defaults: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW,
// SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL,
// AUDIT_WRITE (re-adding one after cap_drop is harmless).
//
// Beyond them:
//   - NET_ADMIN: interfaces, routes and iptables of the container's own
//     network namespace; the host's rules that keep a run's networks internal
//     are out of its reach. (A service holding it can undo a network fault
//     injected into its namespace: the rehearsal's fault, not an escape.)
//   - NET_BROADCAST: broadcast and multicast in the container's own namespace.
//   - IPC_LOCK: locking its own memory, charged to the container's memory cgroup.
//
// Refused, with why: SYS_ADMIN, SYS_MODULE, SYS_RAWIO, SYS_PTRACE,
// DAC_READ_SEARCH, SYS_BOOT, MAC_ADMIN, MAC_OVERRIDE, BPF, PERFMON, SYSLOG
// and ALL reach the host kernel or other processes directly; SYS_TIME sets
// the host's clock; SYS_NICE grants real-time scheduling, which competes for
// the host's CPUs outside the container's share; SYS_RESOURCE overrides
// limits and quotas meant to bound the container; LINUX_IMMUTABLE makes
// project files undeletable; AUDIT_CONTROL, AUDIT_READ, WAKE_ALARM and
// BLOCK_SUSPEND act on host-wide state. Anything not listed is refused too.
var allowedCaps = map[string]bool{
	"CHOWN": true, "DAC_OVERRIDE": true, "FSETID": true, "FOWNER": true, "MKNOD": true,
	"NET_RAW": true, "SETGID": true, "SETUID": true, "SETFCAP": true, "SETPCAP": true,
	"NET_BIND_SERVICE": true, "SYS_CHROOT": true, "KILL": true, "AUDIT_WRITE": true,
	"NET_ADMIN": true, "NET_BROADCAST": true, "IPC_LOCK": true,
}

// capWhy says why a well-known capability is refused.
var capWhy = map[string]string{
	"ALL":             "it grants every capability",
	"SYS_ADMIN":       "it reaches mounts, namespaces and much of the host kernel",
	"SYS_MODULE":      "it loads kernel modules into the host",
	"SYS_RAWIO":       "it gives raw access to host I/O ports and devices",
	"SYS_PTRACE":      "it traces and reads other processes' memory",
	"DAC_READ_SEARCH": "it opens host files by handle, bypassing the container's root",
	"SYS_BOOT":        "it reboots the host or loads a new kernel",
	"SYS_TIME":        "it sets the host's clock",
	"SYS_NICE":        "real-time scheduling competes for the host's CPUs",
	"SYS_RESOURCE":    "it overrides the limits that bound the container",
	"MAC_ADMIN":       "it changes the host's mandatory access control",
	"MAC_OVERRIDE":    "it bypasses the host's mandatory access control",
	"BPF":             "it loads BPF programs into the host kernel",
	"PERFMON":         "it observes the host's processes and kernel",
	"SYSLOG":          "it reads and clears the host kernel's log",
	"LINUX_IMMUTABLE": "it can make project files undeletable",
}

// checkCapAdd refuses a capability outside the allow-list, naming it.
func checkCapAdd(file, service string, caps []string) error {
	for i, c := range caps {
		name := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
		if allowedCaps[name] {
			continue
		}
		why := capWhy[name]
		if why == "" {
			why = "only Docker's default capabilities and NET_ADMIN, NET_BROADCAST, IPC_LOCK may be added"
		}
		return refuse(file, []string{"services", service, "cap_add", fmt.Sprintf("[%d]", i)},
			"capability %s is %v (service %q): %s", c, ErrNotAllowed, service, why)
	}
	return nil
}

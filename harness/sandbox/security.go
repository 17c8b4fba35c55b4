package sandbox

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// checkSecurityOpt allows only the security_opt values that confine a
// container further and can be checked here without knowing the host:
// no-new-privileges (bare, :true or =true), apparmor=docker-default (the
// engine's own profile), and label=level:<value> or label=user:<value>
// (an SELinux level or user narrows what the container's default type may
// touch). Everything else is refused naming the value: seccomp=unconfined,
// apparmor=unconfined or any other AppArmor profile (the host may have
// loaded one that confines nothing), label=type:<t> (spc_t and
// unconfined_t are unconfined types) and label=role:<r>, label=disable,
// systempaths=unconfined, writable-cgroups=true, and no-new-privileges:false
// (a daemon may set it by default). A seccomp profile file is not honoured:
// the engine's default profile applies.
func checkSecurityOpt(file string, s types.ServiceConfig) error {
	for i, opt := range s.SecurityOpt {
		key := []string{"services", s.Name, "security_opt", fmt.Sprintf("[%d]", i)}
		name, value := splitOpt(opt)
		lname, lvalue := strings.ToLower(name), strings.ToLower(value)
		switch {
		case lname == "no-new-privileges" && (value == "" || lvalue == "true"):
		case lname == "apparmor" && value == "docker-default":
		case lname == "label" && hasAnyPrefix(lvalue, "level:", "user:"):
		case lname == "seccomp" && lvalue != "unconfined":
			return unhonoured(file, key, fmt.Sprintf("security_opt %q: a seccomp profile is not passed on; the engine's default profile applies", opt))
		case slices.Contains([]string{"no-new-privileges", "apparmor", "label", "seccomp", "systempaths", "writable-cgroups", "disable"}, lname):
			return refuse(file, key, "security_opt %q is %v (service %q): it can unconfine the container; only no-new-privileges:true, apparmor=docker-default and label=level:... or label=user:... are allowed", opt, ErrNotAllowed, s.Name)
		default:
			return unhonoured(file, key, fmt.Sprintf("security_opt %q: only no-new-privileges:true, apparmor=docker-default and label=level:... or label=user:... are passed on", opt))
		}
	}
	return nil
}

// splitOpt splits "name=value" or the older "name:value".
func splitOpt(opt string) (string, string) {
	if name, value, ok := strings.Cut(opt, "="); ok {
		return name, value
	}
	name, value, _ := strings.Cut(opt, ":")
	return name, value
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// ipcSysctls are the sysctls of the container's own IPC namespace.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// checkSysctls lets a service set only the sysctls of its own namespaces:
// net.* (its network namespace) and the IPC ones (kernel.shm*, kernel.msg*,
// kernel.sem, fs.mqueue.*). Any other would change the host's kernel.
func checkSysctls(file string, s types.ServiceConfig) error {
	for _, k := range slices.Sorted(maps.Keys(s.Sysctls)) {
		if strings.HasPrefix(k, "net.") || ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue.") {
			continue
		}
		return refuse(file, []string{"services", s.Name, "sysctls", k},
			"sysctl %s is %v (service %q): only net.* and IPC sysctls, which stay in the container's namespaces, may be set", k, ErrNotAllowed, s.Name)
	}
	return nil
}

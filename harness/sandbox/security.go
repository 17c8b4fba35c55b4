package sandbox

import (
	"fmt"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// checkSecurityOpt refuses the security_opt values that unconfine a
// container and those the harness does not pass on. Honoured, and passed to
// the engine as written: no-new-privileges (true or false), apparmor=<profile>
// and label=user|role|type|level:<value>, which only confine further.
// Refused as unconfining: seccomp=unconfined, apparmor=unconfined,
// label=disable, systempaths=unconfined, writable-cgroups=true. A seccomp
// profile file is not honoured (the engine's default profile applies).
func checkSecurityOpt(file string, s types.ServiceConfig) error {
	for i, opt := range s.SecurityOpt {
		key := []string{"services", s.Name, "security_opt", fmt.Sprintf("[%d]", i)}
		name, value := splitOpt(opt)
		lname, lvalue := strings.ToLower(name), strings.ToLower(value)
		switch {
		case lname == "no-new-privileges" && (value == "" || lvalue == "true" || lvalue == "false"):
		case lname == "disable" && value == "",
			lname == "label" && lvalue == "disable",
			(lname == "seccomp" || lname == "apparmor" || lname == "systempaths") && lvalue == "unconfined",
			lname == "writable-cgroups" && lvalue == "true":
			return refuse(file, key, "security_opt %q is %v (service %q): it unconfines the container", opt, ErrNotAllowed, s.Name)
		case lname == "apparmor" && value != "":
		case lname == "label" && hasAnyPrefix(lvalue, "user:", "role:", "type:", "level:"):
		default:
			return unhonoured(file, key, fmt.Sprintf("security_opt %q: only no-new-privileges, apparmor=<profile> and label=user|role|type|level:... are passed on", opt))
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
	for _, k := range sortedKeys(s.Sysctls) {
		if strings.HasPrefix(k, "net.") || ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue.") {
			continue
		}
		return refuse(file, []string{"services", s.Name, "sysctls", k},
			"sysctl %s is %v (service %q): only net.* and IPC sysctls, which stay in the container's namespaces, may be set", k, ErrNotAllowed, s.Name)
	}
	return nil
}

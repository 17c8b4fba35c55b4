package env

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Labels on every container, network and volume a run creates.
const (
	LabelRun     = "rehearse.run"     // the run id
	LabelOwner   = "rehearse.owner"   // <host>/<pid> of the process that owns the run
	LabelService = "rehearse.service" // the compose service (containers only)
	// LabelOwnerStart is the owner's start time in clock ticks since boot, so
	// a reused pid is not mistaken for a live owner.
	LabelOwnerStart = "rehearse.owner.start"
	// LabelKept marks the volume that says a run was deliberately left up
	// (rehearse up, --keep); gc leaves such runs alone unless --all.
	LabelKept = "rehearse.kept"
)

var runIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,39}$`)

// NewRunID returns a fresh random run id.
func NewRunID() string {
	b := make([]byte, 5)
	rand.Read(b)
	return "r" + hex.EncodeToString(b)
}

// ValidRunID checks a user-chosen run id: lowercase letters, digits, '.',
// '_' and '-', at most 40 characters.
func ValidRunID(id string) error {
	if !runIDRE.MatchString(id) {
		return fmt.Errorf("run id %q: use lowercase letters, digits, '.', '_' and '-' (at most 40)", id)
	}
	return nil
}

// Owner identifies this process as the owner of a run.
type Owner struct {
	Host  string
	PID   int
	Start string // process start time; "" when unknown
}

// Self is the owner value for the current process.
func Self() Owner {
	host, _ := os.Hostname()
	return Owner{Host: host, PID: os.Getpid(), Start: procStart(os.Getpid())}
}

// String is the rehearse.owner label value.
func (o Owner) String() string { return fmt.Sprintf("%s/%d", o.Host, o.PID) }

func (o Owner) labels(runID string) map[string]string {
	l := map[string]string{LabelRun: runID, LabelOwner: o.String()}
	if o.Start != "" {
		l[LabelOwnerStart] = o.Start
	}
	return l
}

// ownerFromLabels parses the owner of a resource.
func ownerFromLabels(l map[string]string) (Owner, bool) {
	host, pid, ok := strings.Cut(l[LabelOwner], "/")
	if !ok {
		return Owner{}, false
	}
	n, err := strconv.Atoi(pid)
	if err != nil {
		return Owner{}, false
	}
	return Owner{Host: host, PID: n, Start: l[LabelOwnerStart]}, true
}

// Alive reports whether the owner process still runs. An owner on another
// host counts as alive: this host cannot tell.
func (o Owner) Alive() bool {
	host, _ := os.Hostname()
	if o.Host != host {
		return true
	}
	start := procStart(o.PID)
	if start == "" {
		return false
	}
	return o.Start == "" || o.Start == start
}

// procStart reads a process's start time (field 22 of /proc/PID/stat); ""
// when the process does not exist.
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

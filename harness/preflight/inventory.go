package preflight

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Inventory is what preflight knows of the environment a package is
// applied to. The zero Inventory knows nothing, and the checks that need
// it (unknown units, the environment's configuration files, the installed
// version) are not made.
type Inventory struct {
	// Source says where it was read, for reports: "running environment
	// (run r-1234)", "planned images of compose.yaml".
	Source string
	// Hosts are the environment's own host names: its services, their
	// aliases and localhost. Calls to them are not external.
	Hosts []string
	// Services by compose service name.
	Services map[string]ServiceInventory
}

// ServiceInventory is what is known of one service.
type ServiceInventory struct {
	// Systemd: the service runs systemd (x-rehearse init: systemd), and
	// Units is its unit inventory (names such as billing-api.service).
	Systemd bool
	Units   map[string]bool
	// Version is the installed version ("" unknown) and VersionFrom where
	// it was read or why it is not known.
	Version     string
	VersionFrom string
	// Configs are the service's declared configuration files (x-rehearse
	// config: files), text files only.
	Configs []ConfigFile
	// Unread are the declared configuration files (or paths) that were
	// not read: over maxConfigFileBytes, past maxConfigFiles. Check
	// reports each as a cannot-tell finding.
	Unread []UnreadConfig
}

// ConfigFile is one configuration file of a service.
type ConfigFile struct {
	Path string // absolute, in the service
	Data []byte
}

// UnreadConfig is a configuration path of a service that was not read, and why.
type UnreadConfig struct {
	Path   string // absolute, in the service
	Reason string
}

// Bounds on what is read of an environment's configuration: its files
// are read into memory.
const (
	maxConfigFiles     = 500
	maxConfigFileBytes = 1 << 20
)

// configReader collects one service's configuration files from the tar
// stream of a declared path (the engine's archive of it, from a running
// service or a created container), the same way for both: regular files
// only (links are entries of their own, never followed), a file over
// maxConfigFileBytes or past maxConfigFiles is Unread, a binary (a NUL
// in its first 8000 bytes: a program under a declared path) skipped.
type configReader struct {
	si   *ServiceInventory
	full bool // maxConfigFiles reached: said once
}

func (r *configReader) entry(h *tar.Header, content io.Reader) error {
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	switch {
	case r.full:
		return nil
	case len(r.si.Configs) == maxConfigFiles:
		r.full = true
		r.si.Unread = append(r.si.Unread, UnreadConfig{Path: h.Name,
			Reason: fmt.Sprintf("more than %d configuration files: this one and the ones after it were not read", maxConfigFiles)})
		return nil
	case h.Size > maxConfigFileBytes:
		head := make([]byte, binarySniff)
		n, _ := io.ReadFull(content, head)
		if bytes.IndexByte(head[:n], 0) >= 0 {
			return nil // a program under a declared path: not configuration
		}
		r.si.Unread = append(r.si.Unread, UnreadConfig{Path: h.Name,
			Reason: fmt.Sprintf("%d bytes, over the %d bytes read of a configuration file", h.Size, maxConfigFileBytes)})
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(content, maxConfigFileBytes+1))
	if err != nil {
		return err
	}
	if len(data) > maxConfigFileBytes {
		r.si.Unread = append(r.si.Unread, UnreadConfig{Path: h.Name,
			Reason: fmt.Sprintf("over the %d bytes read of a configuration file", maxConfigFileBytes)})
		return nil
	}
	if bytes.IndexByte(data[:min(len(data), binarySniff)], 0) < 0 {
		r.si.Configs = append(r.si.Configs, ConfigFile{Path: h.Name, Data: data})
	}
	return nil
}

// known says whether the inventory holds anything.
func (inv *Inventory) known() bool {
	return inv != nil && (len(inv.Services) > 0 || len(inv.Hosts) > 0)
}

// units is the unit inventory a script run in service sees: that
// service's (empty when it runs no systemd: no unit exists there), or,
// for a script no step places (service ""), every systemd service's. Nil
// when the inventory is not known.
func (inv *Inventory) units(service string) map[string]bool {
	if !inv.known() {
		return nil
	}
	if s, ok := inv.Services[service]; ok {
		if s.Units == nil {
			return map[string]bool{}
		}
		return s.Units
	}
	all := map[string]bool{}
	for _, s := range inv.Services {
		maps.Copy(all, s.Units)
	}
	return all
}

// parseUnitList reads the unit names of `systemctl list-unit-files
// --no-legend` or `systemctl list-units --all --no-legend --plain`: the
// first field of each line, after the bullet list-units puts before a
// failed unit.
func parseUnitList(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == "●" || f[0] == "*" || f[0] == "×") {
			f = f[1:]
		}
		if len(f) > 0 && isUnitFile(f[0]) {
			names = append(names, f[0])
		}
	}
	return names
}

// isUnitFile says whether a name is a unit's (one of UnitTypes).
func isUnitFile(s string) bool {
	return slices.ContainsFunc(UnitTypes, func(suf string) bool { return len(s) > len(suf) && strings.HasSuffix(s, suf) })
}

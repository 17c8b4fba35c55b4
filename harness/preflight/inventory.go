package preflight

import (
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
}

// ConfigFile is one configuration file of a service.
type ConfigFile struct {
	Path string // absolute, in the service
	Data []byte
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

// unitTypes are the unit types systemd knows.
var unitTypes = []string{".service", ".socket", ".target", ".timer", ".path", ".mount", ".automount", ".swap", ".slice", ".scope", ".device"}

func isUnitFile(s string) bool {
	return slices.ContainsFunc(unitTypes, func(suf string) bool { return len(s) > len(suf) && strings.HasSuffix(s, suf) })
}

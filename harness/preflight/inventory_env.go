package preflight

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/rehearse/rehearse/harness/env"
)

// FromEnvironment reads the inventory of a running environment: its host
// names, the unit inventory of each service that runs systemd (systemctl
// list-unit-files and list-units --all, run in the service), each
// service's installed version (its x-rehearse version command) and its
// declared configuration files (x-rehearse config: files, read as the
// engine archives them, with no tool of the service's image: text files of
// at most 1 MiB, at most 500 a service; the others are Unread). It only
// reads.
func FromEnvironment(ctx context.Context, e *env.Environment) (Inventory, error) {
	inv := Inventory{Source: fmt.Sprintf("running environment %s (run %s)", e.Plan.Project, e.RunID), Services: map[string]ServiceInventory{}}
	inv.Hosts = planHosts(e.Plan)
	for _, sp := range e.Plan.Services {
		s := e.Service(sp.Name)
		if s == nil {
			continue
		}
		var si ServiceInventory
		if sp.Ext.Init == "systemd" {
			si.Systemd, si.Units = true, map[string]bool{}
			for _, cmd := range [][]string{
				{"systemctl", "list-unit-files", "--no-legend", "--no-pager"},
				{"systemctl", "list-units", "--all", "--no-legend", "--no-pager", "--plain"},
			} {
				res, err := s.Exec(ctx, cmd)
				if err == nil && res.ExitCode != 0 {
					err = fmt.Errorf("exited %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
				}
				if err != nil {
					return inv, fmt.Errorf("preflight inventory: %s in %s: %w", strings.Join(cmd, " "), sp.Name, err)
				}
				for _, u := range parseUnitList(res.Stdout) {
					si.Units[u] = true
				}
			}
		}
		if len(sp.Ext.Version) > 0 {
			v, err := e.Version(ctx, sp.Name)
			if err != nil {
				si.VersionFrom = fmt.Sprintf("its version command failed: %v", err)
			} else {
				si.Version, si.VersionFrom = v, "its version command "+strings.Join(sp.Ext.Version, " ")
			}
		} else {
			si.VersionFrom = "it has no x-rehearse version command"
		}
		if sp.Ext.Config != nil {
			// Read as the engine archives each path (docker cp): no tool
			// of the service's image is needed, distroless ones included.
			r := &configReader{si: &si}
			for _, dir := range sp.Ext.Config.Files {
				err := s.ReadTree(ctx, path.Clean(dir), r.entry)
				if errors.Is(err, fs.ErrNotExist) {
					continue // not there (yet): nothing to check
				}
				if err != nil {
					return inv, fmt.Errorf("preflight inventory: configuration %s of %s: %w", dir, sp.Name, err)
				}
			}
		}
		inv.Services[sp.Name] = si
	}
	return inv, nil
}

// planHosts are the names the environment's own services answer to.
func planHosts(p *env.Plan) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, sp := range p.Services {
		hosts = append(hosts, sp.Name)
		if sp.Hostname != "" {
			hosts = append(hosts, sp.Hostname)
		}
		for _, aliases := range sp.Networks {
			hosts = append(hosts, aliases...)
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

package preflight

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/rehearse/rehearse/harness/env"
)

// Bounds on what is read of an environment's configuration: its files
// are read into memory.
const (
	maxConfigFiles     = 500
	maxConfigFileBytes = 1 << 20
)

// FromEnvironment reads the inventory of a running environment: its host
// names, the unit inventory of each service that runs systemd (systemctl
// list-unit-files and list-units --all, run in the service), each
// service's installed version (its x-rehearse version command) and its
// declared configuration files (x-rehearse config: files, text files of at
// most 1 MiB, at most 500 a service). It only reads.
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
			for _, dir := range sp.Ext.Config.Files {
				files, err := serviceConfigs(ctx, s, dir)
				if err != nil {
					return inv, fmt.Errorf("preflight inventory: configuration %s of %s: %w", dir, sp.Name, err)
				}
				si.Configs = append(si.Configs, files...)
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

// serviceConfigs reads the text files under one declared path (a file or
// a directory; links are not followed, other file systems not entered).
func serviceConfigs(ctx context.Context, s *env.Service, dir string) ([]ConfigFile, error) {
	res, err := s.Exec(ctx, []string{"find", dir, "-xdev", "-type", "f", "-size", fmt.Sprintf("-%dc", maxConfigFileBytes+1), "-print0"})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		if strings.Contains(res.Stderr, "No such file") {
			return nil, nil // not there (yet): nothing to check
		}
		return nil, fmt.Errorf("find exited %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	names := strings.Split(strings.TrimSuffix(res.Stdout, "\x00"), "\x00")
	slices.Sort(names)
	var out []ConfigFile
	for _, name := range names {
		if name == "" || !path.IsAbs(name) {
			continue
		}
		if len(out) == maxConfigFiles {
			return out, fmt.Errorf("more than %d files", maxConfigFiles)
		}
		data, err := s.CopyOut(ctx, name)
		if err != nil {
			return nil, err
		}
		if len(data) > maxConfigFileBytes || bytes.IndexByte(data[:min(len(data), binarySniff)], 0) >= 0 {
			continue // grew, or a binary (a program under a declared path)
		}
		out = append(out, ConfigFile{Path: name, Data: data})
	}
	return out, nil
}

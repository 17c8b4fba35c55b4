package upgrade

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ManifestFile is the optional manifest at the package root.
const ManifestFile = "upgrade.yaml"

// Manifest describes a package and how to apply it.
type Manifest struct {
	Name         string        `yaml:"name"`
	Version      string        `yaml:"version"`
	UpgradesFrom []string      `yaml:"upgrades_from"`
	Downtime     time.Duration `yaml:"-"` // promised downtime
	DowntimeText string        `yaml:"downtime"`
	Service      string        `yaml:"service"` // default target service for steps
	User         string        `yaml:"user"`    // default user for steps
	Steps        []StepSpec    `yaml:"steps"`
	Rollback     []StepSpec    `yaml:"rollback"`
	Cleanup      []StepSpec    `yaml:"cleanup"`
}

// StepSpec is one step of the manifest.
type StepSpec struct {
	Name        string        `yaml:"name"`
	Command     string        `yaml:"command"` // run with sh -c in the package directory
	User        string        `yaml:"user"`
	Service     string        `yaml:"service"`
	Timeout     time.Duration `yaml:"-"`
	TimeoutText string        `yaml:"timeout"`
}

// clone copies the manifest, so a caller's changes do not reach the
// package (nil stays nil).
func (m *Manifest) clone() *Manifest {
	if m == nil {
		return nil
	}
	c := *m
	c.UpgradesFrom = slices.Clone(m.UpgradesFrom)
	c.Steps, c.Rollback, c.Cleanup = slices.Clone(m.Steps), slices.Clone(m.Rollback), slices.Clone(m.Cleanup)
	return &c
}

// DefaultStepTimeout bounds a step that names no timeout.
const DefaultStepTimeout = 10 * time.Minute

// maxManifestBytes bounds the manifest: it is read into memory.
const maxManifestBytes = 1 << 20

// readManifest reads the manifest through the workspace root, so a link
// cannot make it read a file outside the package.
func readManifest(root *os.Root) (*Manifest, error) {
	f, err := root.Open(ManifestFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", ManifestFile, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ManifestFile, err)
	}
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("%s: more than %d bytes", ManifestFile, maxManifestBytes)
	}
	var m Manifest
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if m.DowntimeText != "" {
		if m.Downtime, err = time.ParseDuration(m.DowntimeText); err != nil {
			return nil, fmt.Errorf("%s: downtime: %w", ManifestFile, err)
		}
	}
	if len(m.Steps) == 0 {
		return nil, fmt.Errorf("%s: steps: at least one step is required", ManifestFile)
	}
	for _, list := range []struct {
		key   string
		steps []StepSpec
	}{{"steps", m.Steps}, {"rollback", m.Rollback}, {"cleanup", m.Cleanup}} {
		seen := map[string]bool{}
		for i := range list.steps {
			s := &list.steps[i]
			if s.Name == "" || s.Command == "" {
				return nil, fmt.Errorf("%s: %s[%d]: name and command are required", ManifestFile, list.key, i)
			}
			if seen[s.Name] {
				return nil, fmt.Errorf("%s: %s: step %q appears twice", ManifestFile, list.key, s.Name)
			}
			seen[s.Name] = true
			if s.Service == "" {
				s.Service = m.Service
			}
			if s.User == "" {
				s.User = m.User
			}
			if s.Service == "" {
				return nil, fmt.Errorf("%s: %s: step %q: no service (set service: on the step or the manifest)", ManifestFile, list.key, s.Name)
			}
			s.Timeout = DefaultStepTimeout
			if s.TimeoutText != "" {
				if s.Timeout, err = time.ParseDuration(s.TimeoutText); err != nil {
					return nil, fmt.Errorf("%s: %s: step %q: timeout: %w", ManifestFile, list.key, s.Name, err)
				}
			}
		}
	}
	return &m, nil
}

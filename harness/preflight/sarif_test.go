package preflight

import (
	"testing"
)

// TestSARIFLocations: every result has a location (code scanning refuses
// a log where one has none): an environment finding is anchored on
// upgrade.yaml's service: line; a path is a relative URI reference.
func TestSARIFLocations(t *testing.T) {
	dir := writePackage(t, map[string]string{
		"upgrade.yaml": "# billing\nname: x\nversion: \"1.0\"\nservice: app\nsteps:\n  - name: run\n    command: \"true\"\n",
	})
	p := openDir(t, dir)
	fs := []Finding{
		{Rule: RuleDeprecatedConfig, Severity: Error, Message: "app:/etc/app.conf:3: removed"},
		{Rule: RuleSudo, Severity: Error, File: "c:x.sh", Line: 2},
		{Rule: RuleSudo, Severity: Error, File: "dir/a b#?.sh", Line: 0},
	}
	for _, c := range []struct {
		name string
		opts []SARIFOption
		line int
	}{{"anchored", []SARIFOption{SARIFAnchor(p)}, 4}, {"default", nil, 1}} {
		t.Run(c.name, func(t *testing.T) {
			log := ToSARIF(fs, c.opts...)
			res := log.Runs[0].Results
			for i, r := range res {
				if len(r.Locations) != 1 {
					t.Fatalf("result %d has %d locations", i, len(r.Locations))
				}
			}
			env := res[0].Locations[0].PhysicalLocation
			if env.ArtifactLocation.URI != "upgrade.yaml" || env.Region == nil || env.Region.StartLine != c.line {
				t.Errorf("environment finding at %+v %+v, want upgrade.yaml:%d", env.ArtifactLocation, env.Region, c.line)
			}
			if got := res[1].Locations[0].PhysicalLocation.ArtifactLocation.URI; got != "./c:x.sh" {
				t.Errorf("c:x.sh: uri %q", got)
			}
			if got := res[2].Locations[0].PhysicalLocation.ArtifactLocation.URI; got != "dir/a%20b%23%3F.sh" {
				t.Errorf("dir/a b#?.sh: uri %q", got)
			}
			// GitHub's upload validator wants region.startLine on every
			// result: a file-level finding (line 0) is on line 1.
			for i, r := range res {
				if reg := r.Locations[0].PhysicalLocation.Region; reg == nil || reg.StartLine < 1 {
					t.Errorf("result %d (%s) has region %+v, want startLine >= 1", i, r.RuleID, reg)
				}
			}
		})
	}
}

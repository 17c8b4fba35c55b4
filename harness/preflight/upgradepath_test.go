package preflight

import "testing"

func TestUpgradePathRule(t *testing.T) {
	for _, c := range []struct {
		name      string
		from      []string
		installed string
		want      string // rule; "" none
	}{
		{"listed", []string{"2.3"}, "2.3", ""},
		{"a release of a listed line", []string{"2.3"}, "2.3.7", ""},
		{"the same version written longer", []string{"2.3"}, "v2.3.0", ""},
		{"a wildcard", []string{"2.x"}, "2.9.1", ""},
		{"any", []string{"*"}, "0.1", ""},
		{"older", []string{"2.3"}, "2.2", RuleUnsupportedUpgrade},
		{"not a prefix", []string{"2.3"}, "2.30", RuleUnsupportedUpgrade},
		{"newer", []string{"2.3", "2.4"}, "3.0", RuleUnsupportedUpgrade},
		{"unknown", []string{"2.3"}, "", RuleCannotTell},
		{"nothing listed", nil, "1.0", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := upgradePathRule{from: c.from, line: 4}.check("billing", c.installed, "test")
			got := ""
			if len(fs) > 0 {
				got = fs[0].Rule
				if fs[0].File != "upgrade.yaml" || fs[0].Line != 4 {
					t.Errorf("located at %s:%d", fs[0].File, fs[0].Line)
				}
			}
			if got != c.want || len(fs) > 1 {
				t.Errorf("got%s, want %q", show(fs), c.want)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"3.0", "3.0.0", 0}, {"v1.16.0", "1.16", 0}, {"2.10", "2.9", 1}, {"3.0-rc1", "3.0", -1}, {"2.3", "3.0", -1}, {"abc", "abd", -1},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

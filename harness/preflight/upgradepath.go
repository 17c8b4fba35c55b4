package preflight

import (
	"fmt"
	"strings"
)

// upgradePathRule is unsupported-upgrade-path: the version installed on
// the service is not one the package says it upgrades from. Vendors test
// an upgrade from the versions they list; from any other, migrations meet
// a schema they never saw (a column already there, one missing), and the
// failure comes halfway through, with the data half moved.
type upgradePathRule struct {
	from []string // the manifest's upgrades_from
	line int      // its line in upgrade.yaml
}

// check judges the installed version of service, read from where (the
// version command, an image label). An unknown version cannot be judged:
// cannot-tell says so.
func (r upgradePathRule) check(service, installed, where string) []Finding {
	if len(r.from) == 0 {
		return nil
	}
	if installed == "" {
		return []Finding{{Rule: RuleCannotTell, Severity: Info, File: "upgrade.yaml", Line: r.line,
			Message: fmt.Sprintf("the installed version of %s is not known (%s), so upgrades_from %s was not checked", service, where, strings.Join(r.from, ", ")),
			Fix:     "give the service an x-rehearse version command, a running environment, or --installed-version"}}
	}
	for _, v := range r.from {
		if versionMatches(installed, v) {
			return nil
		}
	}
	return []Finding{{Rule: RuleUnsupportedUpgrade, Severity: Error, File: "upgrade.yaml", Line: r.line,
		Message: fmt.Sprintf("%s runs %s (%s); the package upgrades only from %s", service, installed, where, strings.Join(r.from, ", ")),
		Fix:     "upgrade first to a version the package supports, or ask the vendor for a package that upgrades from " + installed}}
}

package upgrade_test

import (
	"fmt"

	"github.com/rehearse/rehearse/harness/upgrade"
)

// Open unpacks a package into a private workspace and reads its manifest.
func ExampleOpen() {
	p, err := upgrade.Open("../../fixtures/billing/packages/billing-3.0/rehearsed")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	m := p.Manifest()
	fmt.Printf("%s %s from %v, promises %s of downtime\n", m.Name, m.Version, m.UpgradesFrom, m.Downtime)
	for _, s := range m.Steps {
		fmt.Printf("  %s on %s as %s\n", s.Name, s.Service, s.User)
	}
	// Output:
	// billing 3.0 from [2.3], promises 5m0s of downtime
	//   precheck on billing as deploy
	//   migrate on db as postgres
	//   register-webhook on billing as deploy
	//   install on billing as deploy
	//   restart on billing as root
}

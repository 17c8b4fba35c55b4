package fault_test

import (
	"context"
	"log"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/fault"
	"github.com/rehearse/rehearse/harness/timeline"
)

// A scenario cuts invoicing off from its database while it watches
// billing, then heals every fault it injected, whatever happened.
func ExampleSet() {
	ctx := context.Background()
	var e *env.Environment // started by env.Start
	tl := timeline.New()
	faults := fault.NewSet(tl)
	defer func() {
		if err := faults.HealAll(ctx); err != nil {
			log.Print(err)
		}
	}()
	cut, err := fault.NewCut(e, "invoicing", "db", fault.WithBothWays(true))
	if err != nil {
		log.Fatal(err)
	}
	if err := faults.Inject(ctx, cut); err != nil {
		log.Fatal(err)
	}
	// ... probe billing and invoicing, apply the upgrade ...
	if err := faults.Heal(ctx, cut); err != nil { // "the network ... is restored"
		log.Fatal(err)
	}
}

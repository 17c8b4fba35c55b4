package env_test

import (
	"context"
	"fmt"

	"github.com/rehearse/rehearse/harness/env"
)

// A compose file becomes a plan without touching any engine: the sandbox
// rules are checked here, before anything starts.
func ExampleNewPlan() {
	file := "../../fixtures/billing/compose.yaml"
	plan, err := env.LoadPlan(context.Background(), file)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range plan.Services {
		fmt.Printf("%s: image %s, waits for %v, init %q\n", s.Name, s.Image.Ref, s.DependsOn, s.Ext.Init)
	}
	// Output:
	// billing: image rehearse/billing:2.3, waits for map[db:service_healthy], init "systemd"
	// db: image rehearse/billing-db:15, waits for map[], init ""
	// invoicing: image rehearse/invoicing:1, waits for map[billing:service_healthy db:service_healthy], init ""
	// payments: image rehearse/payments:1, waits for map[], init ""
}

// Settings that would let a rehearsal reach the host are refused with the
// file, line, service and key.
func ExampleNewPlan_refused() {
	file := "testdata/privileged.yaml"
	_, err := env.LoadPlan(context.Background(), file)
	fmt.Println(err)
	// Output:
	// testdata/privileged.yaml:4: services.app.privileged: privileged containers are not allowed in a rehearsal sandbox (service "app")
}

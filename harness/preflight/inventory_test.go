package preflight

import (
	"slices"
	"testing"
)

func TestParseUnitList(t *testing.T) {
	out := "billing-api.service                enabled         enabled\n" +
		"cron.service                       enabled         enabled\n" +
		"● postgresql.service  loaded failed failed PostgreSQL\n" +
		"getty@.service                     static          -\n" +
		"\n" +
		"2 unit files listed.\n"
	got := parseUnitList(out)
	want := []string{"billing-api.service", "cron.service", "postgresql.service", "getty@.service"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestInventoryUnits(t *testing.T) {
	inv := &Inventory{Services: map[string]ServiceInventory{
		"billing": {Systemd: true, Units: map[string]bool{"billing-api.service": true}},
		"db":      {},
	}}
	for _, c := range []struct {
		inv     *Inventory
		service string
		want    []string // nil: unknown
	}{
		{inv, "billing", []string{"billing-api.service"}},
		{inv, "db", []string{}},                    // no systemd there: no unit exists
		{inv, "", []string{"billing-api.service"}}, // no step places it: any systemd service's
		{nil, "billing", nil},
	} {
		got := c.inv.units(c.service)
		if (got == nil) != (c.want == nil) || len(got) != len(c.want) {
			t.Errorf("units(%q) = %v, want %v", c.service, got, c.want)
		}
		for _, u := range c.want {
			if !got[u] {
				t.Errorf("units(%q) lacks %s", c.service, u)
			}
		}
	}
}

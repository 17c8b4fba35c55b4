package preflight

import (
	"archive/tar"
	"context"
	"fmt"
	"slices"
	"strings"
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

// TestConfigReader: the bounds both inventories read configuration with:
// past maxConfigFiles and over maxConfigFileBytes a file is Unread (once
// for the files past the count), a binary skipped; Check says what was
// unread, naming the service and path.
func TestConfigReader(t *testing.T) {
	var si ServiceInventory
	r := &configReader{si: &si}
	entry := func(name string, size int, data string) {
		t.Helper()
		h := &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(size)}
		if err := r.entry(h, strings.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	entry("/etc/big.conf", maxConfigFileBytes+1, "")
	entry("/etc/bigprog", maxConfigFileBytes+1, "\x7fELF\x00")             // a program: skipped, not unread
	entry("/etc/grew.conf", 10, strings.Repeat("x", maxConfigFileBytes+1)) // larger than its header said
	entry("/etc/prog", 3, "\x7fE\x00")
	for i := range maxConfigFiles + 3 {
		entry(fmt.Sprintf("/etc/c/%04d.conf", i), 3, "a=1")
	}
	if len(si.Configs) != maxConfigFiles || len(si.Unread) != 3 ||
		si.Unread[0].Path != "/etc/big.conf" || si.Unread[1].Path != "/etc/grew.conf" || !strings.Contains(si.Unread[2].Reason, "more than 500") {
		t.Errorf("%d configs, unread %+v", len(si.Configs), si.Unread)
	}

	inv := billingInventory(t)
	b := inv.Services["billing"]
	b.Unread = []UnreadConfig{{Path: "/etc/billing/huge.conf", Reason: "too big"}}
	inv.Services["billing"] = b
	p := openDir(t, "../../fixtures/billing/packages/billing-3.0/as-shipped")
	fs, err := Check(context.Background(), p, WithInventory(inv), WithMatrix(billingMatrix(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(fs, func(f Finding) bool {
		return f.Rule == RuleCannotTell && f.File == "" && strings.Contains(f.Message, "billing:/etc/billing/huge.conf") && strings.Contains(f.Message, "too big")
	}) {
		t.Errorf("the unread configuration file not said:%s", show(fs))
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

package preflight

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/runs"
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/internal/envtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// checkInventory: the declared configuration of testdata/inventory.yaml's
// app, as both inventories must read it.
func checkInventory(t *testing.T, inv Inventory) {
	t.Helper()
	si, ok := inv.Services["app"]
	if !ok {
		t.Fatalf("no app in %+v", inv)
	}
	if !slices.ContainsFunc(si.Configs, func(c ConfigFile) bool {
		return c.Path == "/etc/apt/sources.list.d/0000debian.sources" && strings.Contains(string(c.Data), "deb.debian.org")
	}) {
		t.Errorf("0000debian.sources not read: %d configs", len(si.Configs))
	}
	const big = "/usr/share/perl/5.36.0/Unicode/Collate/allkeys.txt" // 1.9 MB of text
	if len(si.Unread) != 1 || si.Unread[0].Path != big || !strings.Contains(si.Unread[0].Reason, "over the") {
		t.Errorf("want only %s unread (/usr/bin/perl is a program), got %+v", big, si.Unread)
	}
}

// TestInventoryFromImages: the image is read without saving it anywhere:
// nothing is left in the temporary directory, and no container is left.
func TestInventoryFromImages(t *testing.T) {
	cli := enginetest.Connect(t)
	ctx := context.Background()
	plan, err := env.LoadPlan(ctx, "testdata/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	inv, err := FromImages(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	checkInventory(t, inv)
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Errorf("left in TMPDIR: %v %v", left, err)
	}
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", runs.LabelOwner+"="+runs.Self().String()).Add("name", "rehearse-preflight-")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("%d containers left: %+v", len(list.Items), list.Items[0].Names)
	}
}

// TestInventoryFromEnvironment: a service without find is read (the
// engine archives its paths), with the same bounds as FromImages.
func TestInventoryFromEnvironment(t *testing.T) {
	e := envtest.Start(t, "testdata/inventory.yaml")
	inv, err := FromEnvironment(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	checkInventory(t, inv)
}

package env

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/runs"
)

// capNetAdmin is CAP_NET_ADMIN's bit in /proc/<pid>/status CapEff.
const capNetAdmin = 1 << 12

func capEff(t *testing.T, status string) uint64 {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("CapEff %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no CapEff in %q", status)
	return 0
}

func TestRunInNetns(t *testing.T) {
	e, cli := startPlan(t, filepath.Join("testdata", "container.yaml"))
	ctx := context.Background()
	target := e.Service("target")
	c := target.Container()

	addrs, err := target.Addresses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].Network != "default" || !addrs[0].IP.Is4() {
		t.Fatalf("addresses of target = %v, want one IPv4 address on default", addrs)
	}

	t.Run("shares the namespace, with only the capabilities asked for", func(t *testing.T) {
		res, err := c.RunInNetns(ctx, image.DebianBase,
			[]string{"sh", "-c", "cat /sys/class/net/eth0/address; hostname -I; cat /proc/self/status"}, []string{"NET_ADMIN"})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("helper: %+v %v", res, err)
		}
		lines := strings.SplitN(res.Stdout, "\n", 3)
		own := exec1(t, target, "", "cat", "/sys/class/net/eth0/address")
		if lines[0] != strings.TrimSpace(own.Stdout) {
			t.Errorf("helper sees eth0 %q, the target %q: not the same namespace", lines[0], own.Stdout)
		}
		if got := strings.Fields(lines[1]); len(got) != 1 || got[0] != addrs[0].IP.String() {
			t.Errorf("helper's addresses %q, want the target's %s", lines[1], addrs[0].IP)
		}
		if got := capEff(t, lines[2]); got != capNetAdmin {
			t.Errorf("helper's effective capabilities %#x, want NET_ADMIN only (%#x)", got, capNetAdmin)
		}
		status := exec1(t, target, "", "cat", "/proc/self/status")
		if capEff(t, status.Stdout)&capNetAdmin != 0 {
			t.Error("the target has NET_ADMIN")
		}
	})

	t.Run("exit code and output", func(t *testing.T) {
		res, err := c.RunInNetns(ctx, image.DebianBase, []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 3 || res.Stdout != "out\n" || res.Stderr != "err\n" {
			t.Errorf("helper result %+v, want exit 3, out, err", res)
		}
	})

	t.Run("errors name what was run", func(t *testing.T) {
		_, err := c.RunInNetns(ctx, "rehearse/no-such-image:0", []string{"true"}, nil)
		if err == nil || !strings.Contains(err.Error(), `run "true" in the network namespace of target`) {
			t.Errorf("missing image: %v", err)
		}
		if _, err := c.RunInNetns(ctx, image.DebianBase, nil, nil); err == nil {
			t.Error("ran an empty command")
		}
	})

	t.Run("no helper left behind", func(t *testing.T) {
		f := client.Filters{}.Add("label", runs.LabelRun+"="+e.RunID).Add("label", LabelHelper)
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.Items) != 0 {
			t.Errorf("%d helper containers left: %v", len(cs.Items), cs.Items[0].Names)
		}
	})
}

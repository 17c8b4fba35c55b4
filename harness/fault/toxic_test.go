package fault

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/sandbox"
	"github.com/rehearse/rehearse/internal/enginetest"
	"github.com/rehearse/rehearse/internal/envtest"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{in: "100KB/s", want: 100},
		{in: "100kB/s", want: 100},
		{in: "1MB/s", want: 1000},
		{in: "1.5MB/s", want: 1500},
		{in: "2GB/s", want: 2_000_000},
		{in: "512kbit/s", want: 64},
		{in: "8Mbit/s", want: 1000},
		{in: "1MiB/s", want: 1049},
		{in: "1000B/s", want: 1},
		{in: " 20 KB/s ", want: 20},
		{in: "100", err: "want a number and a unit per second"},
		{in: "100KB", err: "want a number and a unit per second"},
		{in: "-1KB/s", err: "want a number and a unit per second"},
		{in: "fastKB/s", err: "want a number and a unit per second"},
		{in: "100parsec/s", err: `unknown unit "parsec"`},
		{in: "1KiB/s", want: 1},
		{in: "1000KiB/s", want: 1024},
		{in: "1mb/s", err: "KB = 1000 bytes, KiB = 1024"},
		{in: "1GiB/s", want: 1_073_742},
		{in: "100Kib/s", err: "KB = 1000 bytes, KiB = 1024"},
		{in: "100parsec/s", err: "KB = 1000 bytes, KiB = 1024"},
		{in: "10B/s", err: "below 1KB/s"},
		{in: "0KB/s", err: "below 1KB/s"},
	} {
		got, err := ParseRate(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseRate(%q) = %d, %v; want an error with %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, kb := range []int64{1, 64, 100, 1000, 1500, 2_000_000} {
		if got, err := ParseRate(FormatRate(kb)); err != nil || got != kb {
			t.Errorf("ParseRate(FormatRate(%d) = %q) = %d, %v", kb, FormatRate(kb), got, err)
		}
	}
}

// Toxiproxy counts whole milliseconds: a duration it would cut to
// something else is refused, before the environment is looked at.
func TestToxicDurations(t *testing.T) {
	for _, tc := range []struct {
		make func() error
		want string
	}{
		{func() error { _, err := NewLatency(nil, "a", "b", 500*time.Microsecond, 0); return err }, "latency 500µs: want at least 1ms"},
		{func() error { _, err := NewLatency(nil, "a", "b", 1900*time.Microsecond, 0); return err }, "latency 1.9ms: want a whole number of milliseconds"},
		{func() error { _, err := NewLatency(nil, "a", "b", time.Second, 1500*time.Microsecond); return err }, "jitter 1.5ms: want a whole number"},
		{func() error { _, err := NewTimeout(nil, "a", "b", 10*time.Microsecond); return err }, "time 10µs: want at least 1ms"},
		{func() error { _, err := NewReset(nil, "a", "b", time.Millisecond+time.Nanosecond); return err }, "want a whole number of milliseconds"},
	} {
		if err := tc.make(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

// The toxiproxy image is named after the module version go.mod requires,
// and a compose file may not build into it.
func TestToxiproxyVersion(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", ToxiproxyModule).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m %s: %v: %s", ToxiproxyModule, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "v"+ToxiproxyVersion {
		t.Errorf("go.mod requires %s %s, the image is built from %s", ToxiproxyModule, got, ToxiproxyVersion)
	}
	if !slices.Contains(sandbox.ReservedImages, ToxiproxyImage) {
		t.Errorf("sandbox.ReservedImages %v does not hold %s", sandbox.ReservedImages, ToxiproxyImage)
	}
}

// answer is one request of the test node's client.
type answer struct {
	start   time.Time
	elapsed time.Duration
	reused  bool
	body    string // "from 172.18.0.3", "100000 bytes" or "error ..."
}

// requests makes n requests from one service to a URL, every apart, over
// one connection pool.
func requests(t *testing.T, e *env.Environment, from, url string, n int, every, timeout time.Duration) []answer {
	t.Helper()
	out, err := request(e, from, url, n, every, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func request(e *env.Environment, from, url string, n int, every, timeout time.Duration) ([]answer, error) {
	res, err := e.Service(from).Exec(context.Background(), []string{"/usr/local/bin/node", "-get", url,
		"-n", strconv.Itoa(n), "-every", every.String(), "-timeout", timeout.String()})
	if err != nil {
		return nil, err
	}
	var out []answer
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		f := strings.SplitN(line, " ", 4)
		if len(f) < 4 {
			return nil, fmt.Errorf("%s: bad client output %q (stderr %q)", from, res.Stdout, res.Stderr)
		}
		ms, _ := strconv.ParseInt(f[0], 10, 64)
		el, _ := strconv.ParseInt(f[1], 10, 64)
		out = append(out, answer{start: time.UnixMilli(ms), elapsed: time.Duration(el) * time.Millisecond,
			reused: f[2] == "reused", body: f[3]})
	}
	if len(out) != n {
		return nil, fmt.Errorf("%s: %d answers, want %d: %q", from, len(out), n, res.Stdout)
	}
	return out, nil
}

// one makes one request and returns its answer.
func one(t *testing.T, e *env.Environment, from, to string, timeout time.Duration) answer {
	t.Helper()
	return requests(t, e, from, "http://"+to+":8080/", 1, 0, timeout)[0]
}

// ip is a service's address on the default network.
func ip(t *testing.T, addrs []env.Address) string {
	t.Helper()
	for _, a := range addrs {
		if a.Network == "default" && a.IP.Is4() {
			return a.IP.String()
		}
	}
	t.Fatalf("no IPv4 address on the default network in %v", addrs)
	return ""
}

func addressOf(t *testing.T, e *env.Environment, svc string) string {
	t.Helper()
	addrs, err := e.Service(svc).Addresses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ip(t, addrs)
}

// clean fails unless no rule and no proxy of the run is left.
func clean(t *testing.T, e *env.Environment) {
	t.Helper()
	ctx := context.Background()
	for _, svc := range []string{"a", "b", "c"} {
		rules, err := Rules(ctx, e, svc)
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) > 0 {
			t.Errorf("rules left in %s: %q", svc, rules)
		}
	}
	proxies, err := Proxies(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if len(proxies) > 0 {
		t.Errorf("proxies left: %q", proxies)
	}
}

func inject(t *testing.T, f Fault) {
	t.Helper()
	if err := f.Inject(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func heal(t *testing.T, f Fault) {
	t.Helper()
	for i := 0; i < 2; i++ { // healing twice does nothing
		if err := f.Heal(context.Background()); err != nil {
			t.Fatalf("heal %d: %v", i+1, err)
		}
	}
}

func TestToxics(t *testing.T) {
	e := envtest.Start(t, filepath.Join("testdata", "toxic", "compose.yaml"))
	cli := enginetest.Connect(t)
	ctx := context.Background()
	a, c := addressOf(t, e, "a"), addressOf(t, e, "c")
	if got := one(t, e, "a", "b", 5*time.Second).body; got != "from "+a {
		t.Fatalf("before any fault, b sees a as %q, want from %s", got, a)
	}

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			make func() error
			want string
		}{
			{func() error { _, err := NewLatency(e, "a", "a", time.Second, 0); return err }, "cannot be its own client"},
			{func() error { _, err := NewLatency(e, "a", "zz", time.Second, 0); return err }, `no service "zz"`},
			{func() error { _, err := NewLatency(e, "a", "b", time.Second, 2*time.Second); return err }, "jitter from 0 to the latency"},
			{func() error { _, err := NewLatency(e, "a", "b", 0, 0); return err }, "latency above 0"},
			{func() error { _, err := NewBandwidth(e, "a", "b", 0); return err }, "at least 1KB/s"},
			{func() error { _, err := NewReset(e, "a", "b", -time.Second); return err }, "negative"},
			{func() error { _, err := NewTimeout(e, "a", "b", 0, WithPort(70000)); return err }, "not a TCP port"},
			{func() error { _, err := NewTimeout(e, "a", "b", 0, WithStream("sideways")); return err }, `stream "sideways"`},
		} {
			if err := tc.make(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		}
	})

	// The first toxic starts the server; its address is where b sees
	// redirected connections come from.
	var proxyIP string
	server := func(t *testing.T) string {
		t.Helper()
		if proxyIP == "" {
			sc, err := e.Sidecar(ctx, toxiproxySidecar)
			if err != nil || sc == nil {
				t.Fatalf("no toxiproxy server: %v", err)
			}
			addrs, err := sc.Addresses(ctx)
			if err != nil {
				t.Fatal(err)
			}
			proxyIP = ip(t, addrs)
		}
		return proxyIP
	}

	t.Run("latency", func(t *testing.T) {
		const latency = 700 * time.Millisecond
		tx, err := NewLatency(e, "a", "b", latency, 0)
		if err != nil {
			t.Fatal(err)
		}
		if tx.Name() != "latency 700ms a -> b" || !slices.Equal(tx.Targets(), []string{"a", "b"}) {
			t.Errorf("name %q, targets %v", tx.Name(), tx.Targets())
		}
		inject(t, tx)
		proxy := server(t)
		for _, ans := range requests(t, e, "a", "http://b:8080/", 3, 0, 10*time.Second) {
			if ans.body != "from "+proxy {
				t.Errorf("a -> b under latency: b saw %q, want from the proxy %s", ans.body, proxy)
			}
			if ans.elapsed < latency {
				t.Errorf("a -> b under %v latency took %v", latency, ans.elapsed)
			}
		}
		if got := one(t, e, "c", "b", 5*time.Second).body; got != "from "+c {
			t.Errorf("c -> b during a's fault: b saw %q, want from c %s (not through the proxy)", got, c)
		}
		// The server's API answers on 127.0.0.1 only, never on the run's
		// networks: a service that reached it could proxy to anywhere.
		if got := requests(t, e, "c", "http://"+proxy+":8474/proxies", 1, 0, 2*time.Second)[0]; !strings.HasPrefix(got.body, "error") {
			t.Errorf("c reaches the toxiproxy API at %s:8474: %q", proxy, got.body)
		}
		rules, err := Rules(ctx, e, "a")
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != 1 || !strings.Contains(rules[0], "-t nat -A OUTPUT") || !strings.Contains(rules[0], tx.Tag()) {
			t.Errorf("rules in a: %q, want one nat rule tagged %s", rules, tx.Tag())
		}
		heal(t, tx)
		if got := one(t, e, "a", "b", 5*time.Second).body; got != "from "+a {
			t.Errorf("a -> b after heal: b saw %q, want from a %s", got, a)
		}
		clean(t, e)
	})

	t.Run("a pooled connection is redirected", func(t *testing.T) {
		const latency = 400 * time.Millisecond
		tx, err := NewLatency(e, "a", "b", latency, 0)
		if err != nil {
			t.Fatal(err)
		}
		var answers []answer
		var rerr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers, rerr = request(e, "a", "http://b:8080/", 30, 250*time.Millisecond, 10*time.Second)
		}()
		time.Sleep(3 * time.Second)
		inject(t, tx)
		injected := time.Now()
		wg.Wait()
		heal(t, tx)
		if rerr != nil {
			t.Fatal(rerr)
		}
		proxy := server(t)
		var before, after int
		for _, ans := range answers {
			switch {
			case ans.start.Before(injected.Add(-2*time.Second)) && ans.reused && ans.body == "from "+a:
				before++ // the pool's connection, straight to b
			case ans.start.After(injected):
				after++
				if ans.body != "from "+proxy || ans.elapsed < latency {
					t.Errorf("a request made %v after the redirect: %+v, want from the proxy %s, %v or more",
						ans.start.Sub(injected), ans, proxy, latency)
				}
			}
		}
		if before == 0 || after == 0 {
			t.Errorf("%d pooled requests before the fault and %d after it; want some of each: %+v", before, after, answers)
		}
		if t.Failed() {
			for _, ans := range answers {
				t.Logf("%s %v reused=%v %s", ans.start.Sub(injected), ans.elapsed, ans.reused, ans.body)
			}
		}
		clean(t, e)
	})

	t.Run("bandwidth", func(t *testing.T) {
		const size, rate = 100_000, 25 // bytes, KB/s: 4s at least
		tx, err := NewBandwidth(e, "a", "b", rate)
		if err != nil {
			t.Fatal(err)
		}
		if tx.Name() != "bandwidth 25KB/s a -> b" {
			t.Errorf("name %q", tx.Name())
		}
		url := "http://b:8080/bytes?n=" + strconv.Itoa(size)
		fast := requests(t, e, "a", url, 1, 0, 30*time.Second)[0]
		inject(t, tx)
		slow := requests(t, e, "a", url, 1, 0, 60*time.Second)[0]
		heal(t, tx)
		if slow.body != "100000 bytes" || slow.elapsed < 3500*time.Millisecond {
			t.Errorf("%d bytes at %dKB/s: %+v, want all of it in 4s or more", size, rate, slow)
		}
		t.Logf("%d bytes: %v unlimited, %v at %dKB/s", size, fast.elapsed, slow.elapsed, rate)
		clean(t, e)
	})

	t.Run("reset", func(t *testing.T) {
		tx, err := NewReset(e, "a", "b", 0)
		if err != nil {
			t.Fatal(err)
		}
		inject(t, tx)
		got := one(t, e, "a", "b", 5*time.Second)
		if !strings.HasPrefix(got.body, "error") || !(strings.Contains(got.body, "reset by peer") || strings.Contains(got.body, "EOF")) {
			t.Errorf("a -> b with resets: %q, want connection reset", got.body)
		}
		if got := one(t, e, "c", "b", 5*time.Second).body; got != "from "+c {
			t.Errorf("c -> b during a's fault: %q", got)
		}
		heal(t, tx)
		if got := one(t, e, "a", "b", 5*time.Second).body; got != "from "+a {
			t.Errorf("a -> b after heal: %q", got)
		}
		clean(t, e)
	})

	t.Run("timeout", func(t *testing.T) {
		tx, err := NewTimeout(e, "a", "b", 0, WithPort(8080))
		if err != nil {
			t.Fatal(err)
		}
		if tx.Name() != "timeout a -> b:8080" {
			t.Errorf("name %q", tx.Name())
		}
		inject(t, tx)
		got := one(t, e, "a", "b", 2*time.Second)
		if !strings.Contains(got.body, "deadline exceeded") && !strings.Contains(got.body, "Timeout") {
			t.Errorf("a -> b with a stalled connection: %q, want a time-out", got.body)
		}
		heal(t, tx)
		if got := one(t, e, "a", "b", 5*time.Second).body; got != "from "+a {
			t.Errorf("a -> b after heal: %q", got)
		}
		clean(t, e)
	})

	t.Run("sweep", func(t *testing.T) {
		tx, err := NewLatency(e, "a", "b", time.Second, 0)
		if err != nil {
			t.Fatal(err)
		}
		inject(t, tx)
		if err := Sweep(ctx, e); err != nil {
			t.Fatal(err)
		}
		clean(t, e)
		if got := one(t, e, "a", "b", 5*time.Second).body; got != "from "+a {
			t.Errorf("a -> b after sweep: %q", got)
		}
		heal(t, tx)
	})

	// Down removes the server and its bridge with the run.
	if err := e.Down(ctx); err != nil {
		t.Fatal(err)
	}
	enginetest.AssertGone(t, cli, e.RunID, 30*time.Second)
}

// addrOn is a service's IPv4 address on a network.
func addrOn(t *testing.T, addrs []env.Address, network string) string {
	t.Helper()
	for _, a := range addrs {
		if a.Network == network && a.IP.Is4() {
			return a.IP.String()
		}
	}
	t.Fatalf("no IPv4 address on network %s in %v", network, addrs)
	return ""
}

// proxyTo is the listen address of the run's proxy to an upstream.
func proxyTo(t *testing.T, e *env.Environment, upstream string) string {
	t.Helper()
	s, err := findServer(context.Background(), e)
	if err != nil || s == nil {
		t.Fatalf("no toxiproxy server: %v", err)
	}
	proxies, err := s.api.Proxies()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range proxies {
		if p.Upstream == upstream {
			return p.Listen
		}
	}
	t.Fatalf("no proxy to %s in %v", upstream, proxies)
	return ""
}

// fromServer makes one HTTP request from the toxiproxy server's namespace
// (bash's /dev/tcp, in a helper) and returns what came back.
func fromServer(t *testing.T, e *env.Environment, addr string) string {
	t.Helper()
	s, err := findServer(context.Background(), e)
	if err != nil || s == nil {
		t.Fatalf("no toxiproxy server: %v", err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	script := `exec 3<>/dev/tcp/$1/$2 && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && timeout 10 cat <&3`
	res, err := s.sc.RunInNetns(context.Background(), Image, []string{"bash", "-c", script, "get", host, port}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Stdout + res.Stderr
}

// A toxic's proxy serves its client only: the server joins every network
// a toxic touches, and a service on another one, or another service on
// the same one, must not reach the toxic's upstream through it. A proxy
// made by anyone else through the API reaches nothing but the upstreams
// of the toxics in force. A server that stopped is replaced; a rule a
// service planted with the toxic's tag inside its comment does not stop
// the heal.
func TestToxicNetworks(t *testing.T) {
	e := envtest.Start(t, filepath.Join("testdata", "toxic", "networks.yaml"))
	cli := enginetest.Connect(t)
	ctx := context.Background()
	addrs := map[string][]env.Address{}
	for _, svc := range []string{"a", "b", "c", "d"} {
		as, err := e.Service(svc).Addresses(ctx)
		if err != nil {
			t.Fatal(err)
		}
		addrs[svc] = as
	}
	a, b, d := addrOn(t, addrs["a"], "front"), addrOn(t, addrs["b"], "front"), addrOn(t, addrs["d"], "back")

	// A server whose entry failed is there, stopped: the first toxic
	// replaces it.
	if _, err := EnsureToxiproxyImage(ctx, e); err != nil {
		t.Fatal(err)
	}
	dead, err := e.StartSidecar(ctx, env.SidecarSpec{Name: toxiproxySidecar, Image: ToxiproxyImage,
		Entrypoint: []string{"/bin/false"}, Networks: []string{"front"}, Publish: []string{toxiproxyAPI}})
	if err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, 30*time.Second, 200*time.Millisecond, func() string {
		if ok, _ := dead.Running(ctx); ok {
			return "the broken server still runs"
		}
		return ""
	})

	ab, err := NewLatency(e, "a", "b", 10*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	cd, err := NewLatency(e, "c", "d", 10*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	inject(t, ab)
	inject(t, cd)
	sc, err := e.Sidecar(ctx, toxiproxySidecar)
	if err != nil || sc == nil {
		t.Fatalf("no toxiproxy server: %v", err)
	}
	if sc.ID == dead.ID {
		t.Fatalf("the stopped server %s was reused", dead.ID)
	}
	scAddrs, err := sc.Addresses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	proxyFront, proxyBack := addrOn(t, scAddrs, "front"), addrOn(t, scAddrs, "back")
	abListen := proxyTo(t, e, b+":8080")
	abPort := port(t, abListen)
	if abListen != proxyFront+":"+abPort {
		t.Errorf("the a -> b proxy listens on %s, want the server's address on front %s only", abListen, proxyFront)
	}

	if got := one(t, e, "a", "b", 5*time.Second).body; got != "from "+proxyFront {
		t.Errorf("a -> b under the toxic: b saw %q, want from the proxy %s", got, proxyFront)
	}
	if got := one(t, e, "c", "d", 5*time.Second).body; got != "from "+proxyBack {
		t.Errorf("c -> d under the toxic: d saw %q, want from the proxy %s", got, proxyBack)
	}
	// d, on back only, at the a -> b proxy's port on the server's back
	// address; b, on front but not the toxic's client, at the proxy itself.
	for _, probe := range []struct{ from, url string }{
		{"d", "http://" + proxyBack + ":" + abPort + "/"},
		{"b", "http://" + proxyFront + ":" + abPort + "/"},
		{"c", "http://" + proxyBack + ":" + port(t, proxyTo(t, e, d+":8080")) + "/"}, // c's own proxy: allowed
	} {
		got := requests(t, e, probe.from, probe.url, 1, 0, 2*time.Second)[0]
		if probe.from == "c" {
			if got.body != "from "+proxyBack {
				t.Errorf("c through its own proxy %s: %q", probe.url, got.body)
			}
			continue
		}
		if !strings.HasPrefix(got.body, "error") {
			t.Errorf("%s reaches the a -> b proxy at %s: %q", probe.from, probe.url, got.body)
		} else {
			t.Logf("%s -> %s: %s", probe.from, probe.url, got.body)
		}
	}

	// A second toxic on the same pair, injected and healed while a's pool
	// holds a connection through the first one's proxy, leaves that
	// connection alone: neither its redirect nor its heal forgets it.
	t.Run("a second toxic on the pair", func(t *testing.T) {
		second, err := NewLatency(e, "a", "b", 20*time.Millisecond, 0)
		if err != nil {
			t.Fatal(err)
		}
		var answers []answer
		var rerr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers, rerr = request(e, "a", "http://b:8080/", 24, 250*time.Millisecond, 5*time.Second)
		}()
		time.Sleep(1500 * time.Millisecond)
		inject(t, second)
		heal(t, second)
		wg.Wait()
		if rerr != nil {
			t.Fatal(rerr)
		}
		for i, ans := range answers {
			if ans.body != "from "+proxyFront || (i > 0 && !ans.reused) {
				t.Errorf("request %d: %+v, want from the first proxy %s over the pool's connection", i, ans, proxyFront)
			}
		}
	})

	// Someone on the host makes proxies through the API: to a's port, which
	// no toxic targets, it reaches nothing; to b's, which a toxic does, it
	// does (the control).
	for _, p := range []struct {
		upstream string
		reaches  bool
	}{{a + ":8080", false}, {b + ":8080", true}} {
		name := runTag(e) + "api-" + strings.ReplaceAll(p.upstream, ":", "-")
		px, err := mustServer(t, e).api.CreateProxy(name, "127.0.0.1:0", p.upstream)
		if err != nil {
			t.Fatal(err)
		}
		got := fromServer(t, e, px.Listen)
		if reached := strings.Contains(got, "from "+proxyFront); reached != p.reaches {
			t.Errorf("a proxy made through the API to %s: reached=%v, want %v: %q", p.upstream, reached, p.reaches, got)
		}
		if err := px.Delete(); err != nil {
			t.Fatal(err)
		}
	}

	// A rule a planted (a service with NET_ADMIN could) whose comment holds
	// the toxic's tag between other words.
	planted := []string{"iptables", "-w", "-I", "OUTPUT", "-m", "comment", "--comment", "x --comment " + ab.Tag() + " y", "-j", "ACCEPT"}
	plant := func(op string) {
		t.Helper()
		cmd := slices.Clone(planted)
		cmd[2] = op
		res, err := e.Service("a").Container().RunInNetns(ctx, Image, cmd, helperCaps)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%q: %v %+v", cmd, err, res)
		}
	}
	plant("-I")
	heal(t, ab)
	plant("-D") // it was left alone
	if got := one(t, e, "a", "b", 5*time.Second).body; got != "from "+a {
		t.Errorf("a -> b after heal: b saw %q, want from a %s", got, a)
	}
	// The server left front with its last proxy there.
	scAddrs, err = sc.Addresses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range scAddrs {
		if ad.Network == "front" {
			t.Errorf("the server is still on front, where no proxy is left: %v", scAddrs)
		}
	}
	if got := one(t, e, "c", "d", 5*time.Second).body; got != "from "+proxyBack {
		t.Errorf("c -> d after a -> b healed: d saw %q, want from the proxy %s", got, proxyBack)
	}
	heal(t, cd)
	for _, svc := range []string{"a", "c"} {
		if rules, err := Rules(ctx, e, svc); err != nil || len(rules) > 0 {
			t.Errorf("rules left in %s: %q %v", svc, rules, err)
		}
	}
	if rules, err := serverRules(ctx, e); err != nil || len(rules) > 0 {
		t.Errorf("rules left in the toxiproxy server: %q %v", rules, err)
	}
	if proxies, err := Proxies(ctx, e); err != nil || len(proxies) > 0 {
		t.Errorf("proxies left: %q %v", proxies, err)
	}
	if err := e.Down(ctx); err != nil {
		t.Fatal(err)
	}
	enginetest.AssertGone(t, cli, e.RunID, 30*time.Second)
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustServer(t *testing.T, e *env.Environment) *toxiServer {
	t.Helper()
	s, err := findServer(context.Background(), e)
	if err != nil || s == nil {
		t.Fatalf("no toxiproxy server: %v", err)
	}
	return s
}

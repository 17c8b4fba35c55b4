package fault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/rehearse/rehearse/harness/env"
)

// Toxic degrades the TCP traffic from one service A (the client) to the
// ports of another, B (the server), and nothing else, through the run's
// toxiproxy server: added latency, limited bandwidth, connections that
// stall (timeout) or are reset. The kernel's netem is not used.
//
// The run has one toxiproxy server, a container of the run (env.Sidecar:
// removed with it) started by the first toxic fault, on B's networks that A
// shares, its API published on 127.0.0.1 only. Inject creates, for each of
// B's ports, a proxy there to B's address and the toxic on it, then
// redirects A's connections to B's ports to the proxy: a helper container
// sharing A's network namespace (as for Cut) adds nat rules there, tagged
// rehearse-<run>-toxic-<id>. B sees A's connections come from the proxy; a
// third service C still reaches B directly, unharmed.
//
// Connections A already had open to B (a connection pool's) are forced
// through the proxy too: the helper deletes their connection tracking
// entries, so their next packet meets the new rule, goes to the proxy,
// which knows nothing of them, and is answered with a reset. The client
// sees "connection reset by peer" once per pooled connection, on its next
// use (Go's HTTP client retries an idempotent request by itself; a pgx pool
// fails that query and opens a new connection), and its new connections go
// through the proxy. Heal does the same the other way: it removes the
// rules, deletes the proxies (closing the connections through them: the
// client sees them closed) and forgets what is left, so connections made
// during the fault reach B directly again, after one reset at most.
//
// Addresses are read when the fault is injected: a service that restarts
// while it holds comes back with a fresh namespace (A: without the rules)
// or maybe a new address (B: the proxy points at the old one).
type Toxic struct {
	e      *env.Environment
	a, b   *env.Service
	kind   string // toxiproxy's toxic type: latency, bandwidth, timeout, reset_peer
	attrs  toxiproxy.Attributes
	what   string // "latency 200ms", for Name
	stream string // downstream, upstream or both
	ports  []uint32
	port   bool // ports is the one WithPort named
	tag    string

	mu         sync.Mutex
	redirected []string // ADDR,PORT of B that a helper may have redirected in A
}

// ToxicOption configures a toxic fault.
type ToxicOption func(*toxicOptions) error

type toxicOptions struct {
	port   uint32
	stream string
}

// Streams of a toxic: the data B sends A (its answers), the data A sends
// B (its requests), or both.
const (
	Downstream = "downstream"
	Upstream   = "upstream"
	Both       = "both"
)

// WithPort degrades only the connections to that port of B. Default:
// every port B declares (ports and expose in the compose file).
func WithPort(port uint32) ToxicOption {
	return func(o *toxicOptions) error {
		if port == 0 || port > math.MaxUint16 {
			return fmt.Errorf("port %d: not a TCP port", port)
		}
		o.port = port
		return nil
	}
}

// WithStream is the data the toxic acts on: Downstream (what B sends A),
// Upstream (what A sends B) or Both. Defaults: Both for bandwidth,
// Downstream for the others (latency is then added once per answer).
func WithStream(stream string) ToxicOption {
	return func(o *toxicOptions) error {
		switch stream {
		case Downstream, Upstream, Both:
			o.stream = stream
			return nil
		}
		return fmt.Errorf("stream %q: want %s, %s or %s", stream, Downstream, Upstream, Both)
	}
}

// NewLatency prepares delaying the data between a and b by latency, give or
// take up to jitter (uniformly), on each chunk of data: by default on B's
// answers, so that each request-answer round trip takes latency longer.
func NewLatency(e *env.Environment, a, b string, latency, jitter time.Duration, opts ...ToxicOption) (*Toxic, error) {
	what := "latency " + latency.String()
	if jitter > 0 {
		what += "±" + jitter.String()
	}
	if latency <= 0 || jitter < 0 || jitter > latency {
		return nil, fmt.Errorf("%s %s -> %s: want a latency above 0 and a jitter from 0 to the latency", what, a, b)
	}
	return newToxic(e, a, b, "latency", what, Downstream, toxiproxy.Attributes{
		"latency": latency.Milliseconds(), "jitter": jitter.Milliseconds()}, opts)
}

// NewBandwidth prepares limiting the data between a and b to kbPerSec
// kilobytes (1000 bytes) per second, by default each way (see ParseRate).
func NewBandwidth(e *env.Environment, a, b string, kbPerSec int64, opts ...ToxicOption) (*Toxic, error) {
	what := "bandwidth " + FormatRate(kbPerSec)
	if kbPerSec <= 0 {
		return nil, fmt.Errorf("bandwidth %dKB/s %s -> %s: want a rate of at least 1KB/s", kbPerSec, a, b)
	}
	return newToxic(e, a, b, "bandwidth", what, Both, toxiproxy.Attributes{"rate": kbPerSec}, opts)
}

// NewTimeout prepares stalling the connections between a and b: no data
// gets through (by default, none of B's answers), and each connection is
// closed after `after`; with 0 it stays open, silent, until Heal. Clients
// see their own time-outs.
func NewTimeout(e *env.Environment, a, b string, after time.Duration, opts ...ToxicOption) (*Toxic, error) {
	what := "timeout"
	if after > 0 {
		what += " closing after " + after.String()
	}
	if after < 0 {
		return nil, fmt.Errorf("%s %s -> %s: negative time %v", what, a, b, after)
	}
	return newToxic(e, a, b, "timeout", what, Downstream, toxiproxy.Attributes{"timeout": after.Milliseconds()}, opts)
}

// NewReset prepares resetting the connections between a and b `after` they
// open (0: at once): clients see "connection reset by peer".
func NewReset(e *env.Environment, a, b string, after time.Duration, opts ...ToxicOption) (*Toxic, error) {
	what := "reset"
	if after > 0 {
		what += " after " + after.String()
	}
	if after < 0 {
		return nil, fmt.Errorf("%s %s -> %s: negative time %v", what, a, b, after)
	}
	return newToxic(e, a, b, "reset_peer", what, Downstream, toxiproxy.Attributes{"timeout": after.Milliseconds()}, opts)
}

func newToxic(e *env.Environment, a, b, kind, what, stream string, attrs toxiproxy.Attributes, opts []ToxicOption) (*Toxic, error) {
	fail := func(format string, args ...any) (*Toxic, error) {
		return nil, fmt.Errorf("%s %s -> %s: %s", what, a, b, fmt.Sprintf(format, args...))
	}
	o := toxicOptions{stream: stream}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return fail("%v", err)
		}
	}
	if a == b {
		return fail("a service cannot be its own client")
	}
	sa, err := lookup(e, what, a)
	if err != nil {
		return nil, err
	}
	sb, err := lookup(e, what, b)
	if err != nil {
		return nil, err
	}
	var ports []uint32
	if sp := e.Plan.Service(b); sp != nil {
		for _, p := range append(slices.Clone(sp.Ports), sp.Expose...) {
			if p.Protocol == "tcp" && !slices.Contains(ports, p.Target) {
				ports = append(ports, p.Target)
			}
		}
	}
	slices.Sort(ports)
	if o.port != 0 {
		ports = []uint32{o.port}
	}
	if len(ports) == 0 {
		return fail("%s declares no TCP port (ports or expose in %s): name one with WithPort", b, e.Plan.File)
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	return &Toxic{e: e, a: sa, b: sb, kind: kind, attrs: attrs, what: what, stream: o.stream, ports: ports, port: o.port != 0,
		tag: runTag(e) + "toxic-" + hex.EncodeToString(id)}, nil
}

// Name is "latency 200ms a -> b", "bandwidth 100KB/s a -> b", with the
// the port when WithPort named one, and the stream when it is not the
// kind's default.
func (t *Toxic) Name() string {
	n := t.what + " " + t.a.Name + " -> " + t.b.Name
	if t.port {
		n += ":" + strconv.FormatUint(uint64(t.ports[0]), 10)
	}
	def := Downstream
	if t.kind == "bandwidth" {
		def = Both
	}
	if t.stream != def {
		n += " (" + t.stream + ")"
	}
	return n
}

// Targets are A and B.
func (t *Toxic) Targets() []string { return []string{t.a.Name, t.b.Name} }

// Tag is the comment on the toxic's nat rules in A, and the prefix of its
// proxies' names.
func (t *Toxic) Tag() string { return t.tag }

// Inject starts the run's toxiproxy server if it has none (building its
// image if missing), creates a proxy with the toxic for each of B's ports,
// and redirects A's connections to those ports to the proxies, the open
// ones included. A failure half-way leaves what Heal removes.
func (t *Toxic) Inject(ctx context.Context) error {
	fail := func(err error) error { return fmt.Errorf("%s: %w", t.Name(), err) }
	if _, err := EnsureImage(ctx, t.e); err != nil {
		return fail(err)
	}
	aAddrs, err := t.a.Addresses(ctx)
	if err != nil {
		return fail(err)
	}
	bAddrs, err := t.b.Addresses(ctx)
	if err != nil {
		return fail(err)
	}
	// B's addresses on the networks A is on: where A reaches B.
	var shared []env.Address
	var nets []string
	for _, ba := range bAddrs {
		if slices.ContainsFunc(aAddrs, func(aa env.Address) bool { return aa.Network == ba.Network }) {
			shared = append(shared, ba)
			if !slices.Contains(nets, ba.Network) {
				nets = append(nets, ba.Network)
			}
		}
	}
	if len(shared) == 0 {
		return fail(fmt.Errorf("%s and %s share no network in %s", t.a.Name, t.b.Name, t.e.Plan.File))
	}
	srv, err := ensureServer(ctx, t.e, nets)
	if err != nil {
		return fail(err)
	}
	proxyAddrs, err := srv.sc.Addresses(ctx)
	if err != nil {
		return fail(err)
	}
	var redirects []string
	for _, port := range t.ports {
		upstream := netip.AddrPortFrom(shared[0].IP, uint16(port)).String()
		listen, err := t.proxy(srv, port, upstream)
		if err != nil {
			return fail(err)
		}
		for _, ba := range shared {
			i := slices.IndexFunc(proxyAddrs, func(pa env.Address) bool {
				return pa.Network == ba.Network && pa.IP.Is4() == ba.IP.Is4()
			})
			if i < 0 {
				return fail(fmt.Errorf("the toxiproxy server has no address on network %s", ba.Network))
			}
			redirects = append(redirects, fmt.Sprintf("%s,%d,%s,%d", ba.IP, port, proxyAddrs[i].IP, listen))
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range redirects {
		addrPort := strings.Join(strings.Split(r, ",")[:2], ",")
		if !slices.Contains(t.redirected, addrPort) {
			t.redirected = append(t.redirected, addrPort)
		}
	}
	what := fmt.Sprintf("%s: redirect in %s", t.Name(), t.a.Name)
	return runHelper(ctx, t.a, what, append([]string{helper, "redirect", t.tag}, redirects...))
}

// proxy creates the proxy of one of B's ports, with the toxic, and
// returns the port it listens on.
func (t *Toxic) proxy(srv *toxiServer, port uint32, upstream string) (int, error) {
	name := fmt.Sprintf("%s-%d", t.tag, port)
	p, err := srv.api.CreateProxy(name, "0.0.0.0:0", upstream)
	if err != nil {
		return 0, fmt.Errorf("toxiproxy server: create proxy %s to %s: %w", name, upstream, err)
	}
	streams := []string{t.stream}
	if t.stream == Both {
		streams = []string{Upstream, Downstream}
	}
	for _, s := range streams {
		if _, err := p.AddToxic(t.kind+"_"+s, t.kind, s, 1, t.attrs); err != nil {
			return 0, fmt.Errorf("toxiproxy server: add the %s toxic to proxy %s: %w", t.kind, name, err)
		}
	}
	_, ps, err := net.SplitHostPort(p.Listen)
	if err != nil {
		return 0, fmt.Errorf("toxiproxy server: proxy %s listens on %q: %w", name, p.Listen, err)
	}
	listen, err := strconv.Atoi(ps)
	if err != nil || listen <= 0 {
		return 0, fmt.Errorf("toxiproxy server: proxy %s listens on %q", name, p.Listen)
	}
	return listen, nil
}

// Heal removes the redirect from A's namespace, deletes the proxies
// (closing the connections through them) and makes A forget the
// connections that were redirected. A service that no longer runs lost its
// namespace, and the rules with it. Healing twice, or a toxic never
// injected, does nothing.
func (t *Toxic) Heal(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.redirected) > 0 {
		if err := unfilter(ctx, t.a, t.Name(), "heal", t.tag); err != nil {
			return err
		}
	}
	srv, err := findServer(ctx, t.e)
	if err != nil {
		return fmt.Errorf("%s: %w", t.Name(), err)
	}
	if srv != nil {
		if err := srv.deleteProxies(t.tag + "-"); err != nil {
			return fmt.Errorf("%s: %w", t.Name(), err)
		}
	}
	if len(t.redirected) > 0 {
		st, err := t.a.State(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name(), err)
		}
		if st.Status == "running" || st.Status == "paused" {
			what := fmt.Sprintf("%s: forget redirected connections in %s", t.Name(), t.a.Name)
			if err := runHelper(ctx, t.a, what, append([]string{helper, "forget"}, t.redirected...)); err != nil {
				return err
			}
		}
		t.redirected = nil
	}
	return nil
}

// rateUnits are the units ParseRate knows, in bytes per second.
var rateUnits = map[string]float64{
	"B": 1, "KB": 1e3, "kB": 1e3, "MB": 1e6, "GB": 1e9,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
	"bit": 1.0 / 8, "kbit": 1e3 / 8, "Kbit": 1e3 / 8, "Mbit": 1e6 / 8, "Gbit": 1e9 / 8,
}

var rateRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)/s$`)

// ParseRate reads a rate such as "100KB/s", "1MB/s", "1.5MiB/s" or
// "512kbit/s" and returns it in kilobytes (1000 bytes) per second, the
// unit of NewBandwidth and toxiproxy. Bytes: B, KB (kB), MB, GB, KiB, MiB,
// GiB; bits: bit, kbit, Mbit, Gbit. The result is rounded to the nearest
// KB/s and must be at least 1KB/s.
func ParseRate(s string) (int64, error) {
	m := rateRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("rate %q: want a number and a unit per second, such as 100KB/s, 1MB/s or 512kbit/s", s)
	}
	unit, ok := rateUnits[m[2]]
	if !ok {
		return 0, fmt.Errorf("rate %q: unknown unit %q (B, KB, MB, GB, KiB, MiB, GiB, bit, kbit, Mbit or Gbit, per second)", s, m[2])
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("rate %q: %w", s, err)
	}
	kb := math.Round(n * unit / 1000)
	if kb < 1 {
		return 0, fmt.Errorf("rate %q: below 1KB/s, the least toxiproxy can limit to", s)
	}
	if kb > math.MaxInt64/2 {
		return 0, fmt.Errorf("rate %q: too large", s)
	}
	return int64(kb), nil
}

// FormatRate writes a rate in KB/s the way ParseRate reads it: "100KB/s",
// "2MB/s".
func FormatRate(kbPerSec int64) string {
	if kbPerSec >= 1000 && kbPerSec%1000 == 0 {
		return strconv.FormatInt(kbPerSec/1000, 10) + "MB/s"
	}
	return strconv.FormatInt(kbPerSec, 10) + "KB/s"
}

package fault

import (
	"context"
	"errors"
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
	"github.com/docker/go-units"

	"github.com/rehearse/rehearse/harness/env"
)

// Toxic degrades the TCP traffic from one service A (the client) to the
// ports of another, B (the server), and nothing else, through the run's
// toxiproxy server: added latency, limited bandwidth, connections that
// stall (timeout) or are reset. The kernel's netem is not used.
//
// The run has one toxiproxy server, a container of the run (env.Sidecar:
// removed with it) started by the first toxic fault, its API published on
// 127.0.0.1 only. Inject puts it on the networks A and B share and
// creates, for each such network and each of B's ports, a proxy there to
// B's address, with the toxic. A proxy listens on the server's address on
// that one network, and rules in the server's namespace (added by a helper
// sharing it, tagged like the toxic; the server itself has no capability)
// let only A's address connect to it, and let the server connect only to
// the upstreams of the toxics in force: a service on another network the
// server joined cannot reach B through it, and a proxy made by anyone else
// through the API reaches nothing. Inject then redirects A's connections
// to B's ports to the proxies: a helper container sharing A's network
// namespace (as for Cut) adds nat rules there, tagged
// rehearse-<run>-toxic-<id>. B sees A's connections come from the proxy; a
// third service C still reaches B directly, unharmed.
//
// Only IPv4 is redirected: on a network with IPv6, A's connections to B's
// IPv6 address go straight to B, unharmed (name B by its IPv4 address, or
// let A resolve B's name to it, to degrade them).
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
// client sees them closed) and forgets what is left of the connections
// through them, so connections made during the fault reach B directly
// again, after one reset at most. Connections another toxic on the same
// pair redirects are not touched, by either.
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
	redirected []string // B,PORT,PROXY,LISTEN that a helper may have redirected in A
	allowed    bool     // a helper may have added the proxies' rules in the server
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
	if err := errors.Join(checkMillis("latency", latency, false), checkMillis("jitter", jitter, true)); err != nil {
		return nil, fmt.Errorf("%s %s -> %s: %w", what, a, b, err)
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
	if err := checkMillis("time", after, true); err != nil {
		return nil, fmt.Errorf("%s %s -> %s: %w", what, a, b, err)
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
	if err := checkMillis("time", after, true); err != nil {
		return nil, fmt.Errorf("%s %s -> %s: %w", what, a, b, err)
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
	return &Toxic{e: e, a: sa, b: sb, kind: kind, attrs: attrs, what: what, stream: o.stream, ports: ports, port: o.port != 0,
		tag: runTag(e) + "toxic-" + newID()}, nil
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

// Inject starts the run's toxiproxy server if it has none (or none that
// runs: a stopped one is removed first), building its image if missing,
// and puts it on the networks A and B share. For each such network and
// each of B's ports it creates a proxy, listening on the server's address
// on that network only, to B's address there, with the toxic; lets A, and
// A only, connect to it, and the server connect to B's port, and nothing
// else (rules in the server's namespace, through the helper); then
// redirects A's connections to those ports to the proxies, the open ones
// included. A failure half-way leaves what Heal removes.
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
	// B's IPv4 addresses on the networks A is on, where A reaches B, with
	// A's address there, where A's connections come from. IPv6 is not
	// redirected (see Toxic).
	var pairs []clientServer
	for _, ba := range bAddrs {
		i := slices.IndexFunc(aAddrs, func(aa env.Address) bool { return aa.Network == ba.Network && aa.IP.Is4() })
		if ba.IP.Is4() && i >= 0 {
			pairs = append(pairs, clientServer{a: aAddrs[i], b: ba})
		}
	}
	if len(pairs) == 0 {
		return fail(fmt.Errorf("%s and %s share no network (with IPv4) in %s", t.a.Name, t.b.Name, t.e.Plan.File))
	}
	redirects, err := t.proxies(ctx, pairs)
	if err != nil {
		return fail(err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range redirects {
		if !slices.Contains(t.redirected, r) {
			t.redirected = append(t.redirected, r)
		}
	}
	what := fmt.Sprintf("%s: redirect in %s", t.Name(), t.a.Name)
	return runHelper(ctx, t.a, what, append([]string{helper, "redirect", t.tag}, redirects...))
}

// clientServer is A's and B's address on one network they share.
type clientServer struct{ a, b env.Address }

// proxies makes the server's side of the toxic: the proxies, each with
// the toxic, and the rules that confine each to A and to its upstream. It
// returns the redirects for A's namespace: B,PORT,PROXY,LISTEN.
func (t *Toxic) proxies(ctx context.Context, pairs []clientServer) ([]string, error) {
	var nets []string
	for _, p := range pairs {
		if !slices.Contains(nets, p.b.Network) {
			nets = append(nets, p.b.Network)
		}
	}
	// The server is not changed by another toxic meanwhile (a heal that
	// takes it off a network this one needs).
	serverMu.Lock()
	defer serverMu.Unlock()
	srv, err := ensureServer(ctx, t.e, nets)
	if err != nil {
		return nil, err
	}
	proxyAddrs, err := srv.sc.Addresses(ctx)
	if err != nil {
		return nil, err
	}
	var redirects, allows []string
	for n, p := range pairs {
		i := slices.IndexFunc(proxyAddrs, func(pa env.Address) bool { return pa.Network == p.b.Network && pa.IP.Is4() })
		if i < 0 {
			return nil, fmt.Errorf("the toxiproxy server has no IPv4 address on network %s", p.b.Network)
		}
		px := proxyAddrs[i].IP
		for _, port := range t.ports {
			name := fmt.Sprintf("%s-%d-%d", t.tag, port, n)
			listen, err := t.proxy(srv, name, px, netip.AddrPortFrom(p.b.IP, uint16(port)))
			if err != nil {
				return nil, err
			}
			allows = append(allows, fmt.Sprintf("%s,%s,%d,%s,%d", p.a.IP, px, listen, p.b.IP, port))
			redirects = append(redirects, fmt.Sprintf("%s,%d,%s,%d", p.b.IP, port, px, listen))
		}
	}
	t.mu.Lock()
	t.allowed = true
	t.mu.Unlock()
	what := fmt.Sprintf("%s: confine its proxies", t.Name())
	if err := srv.filter(ctx, what, append([]string{helper, "allow", t.tag}, allows...)); err != nil {
		return nil, err
	}
	return redirects, nil
}

// proxy creates a proxy listening on an address of the server (at a port
// it picks) to an upstream, with the toxic, and returns the port.
func (t *Toxic) proxy(srv *toxiServer, name string, listenIP netip.Addr, upstream netip.AddrPort) (int, error) {
	p, err := srv.api.CreateProxy(name, netip.AddrPortFrom(listenIP, 0).String(), upstream.String())
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
// (closing the connections through them) and their rules in the server's
// namespace, takes the server off the networks where no proxy is left,
// and makes A forget the connections this toxic redirected (those another
// toxic still redirects are left alone). It attempts every part whatever
// fails, and returns every error; a part that failed is attempted again by
// the next Heal. A service that no longer runs lost its namespace, and the
// rules with it. Healing twice, or a toxic never injected, does nothing.
func (t *Toxic) Heal(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	unfiltered := true
	if len(t.redirected) > 0 {
		if err := unfilter(ctx, t.a, t.Name(), "heal", t.tag); err != nil {
			errs = append(errs, err)
			unfiltered = false
		}
	}
	if err := t.healServer(ctx); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", t.Name(), err))
	}
	if len(t.redirected) > 0 {
		st, err := t.a.State(ctx)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", t.Name(), err))
		case !st.Live():
			t.redirected = nil
		default:
			what := fmt.Sprintf("%s: forget redirected connections in %s", t.Name(), t.a.Name)
			if err := runHelper(ctx, t.a, what, append([]string{helper, "forget"}, t.redirected...)); err != nil {
				errs = append(errs, err)
			} else if unfiltered {
				t.redirected = nil
			}
		}
	}
	return errors.Join(errs...)
}

// healServer deletes the toxic's proxies and rules from the server, if
// the run has one that runs (a stopped one has neither), and takes it off
// the networks where none of its proxies listens any more.
func (t *Toxic) healServer(ctx context.Context) error {
	serverMu.Lock()
	defer serverMu.Unlock()
	srv, err := findServer(ctx, t.e)
	if err != nil {
		return err
	}
	if srv == nil {
		t.allowed = false
		return nil
	}
	var errs []error
	if err := srv.deleteProxies(t.tag + "-"); err != nil {
		errs = append(errs, err)
	}
	if t.allowed {
		what := "remove the rules of its proxies"
		if err := srv.filter(ctx, what, []string{helper, "heal", t.tag}); err != nil {
			errs = append(errs, err)
		} else {
			t.allowed = false
		}
	}
	if err := srv.disconnectUnused(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkMillis refuses a duration toxiproxy cannot take: it counts whole
// milliseconds, and a duration of less would be cut to nothing.
func checkMillis(name string, d time.Duration, zero bool) error {
	switch {
	case d == 0 && zero:
		return nil
	case d < time.Millisecond:
		return fmt.Errorf("%s %v: want at least 1ms (toxiproxy counts whole milliseconds)", name, d)
	case d%time.Millisecond != 0:
		return fmt.Errorf("%s %v: want a whole number of milliseconds (toxiproxy counts whole milliseconds)", name, d)
	}
	return nil
}

// bitUnits are the bit units ParseRate knows, in bytes per second; byte
// units are go-units'.
var bitUnits = map[string]float64{
	"bit": 1.0 / 8, "kbit": 1e3 / 8, "Kbit": 1e3 / 8, "Mbit": 1e6 / 8, "Gbit": 1e9 / 8,
}

var rateRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)/s$`)

// rateConvention is the unit convention of ParseRate, for its errors.
const rateConvention = "KB = 1000 bytes, KiB = 1024; B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, bit, kbit, Mbit or Gbit, per second"

// ParseRate reads a rate such as "100KB/s", "1MB/s", "1.5MiB/s" or
// "512kbit/s" and returns it in kilobytes (1000 bytes) per second, the
// unit of NewBandwidth and toxiproxy. Byte units end in B (never b: "kb"
// could be bits) and are read by go-units: decimal without an i (KB = kB
// = 1000 bytes, MB, GB, TB: units.FromHumanSize), binary with one (KiB =
// 1024 bytes, MiB, GiB, TiB: units.RAMInBytes). Bit units are bit, kbit (Kbit), Mbit and
// Gbit, decimal. The result is rounded to the nearest KB/s and must be at
// least 1KB/s.
func ParseRate(s string) (int64, error) {
	m := rateRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("rate %q: want a number and a unit per second, such as 100KB/s, 1MiB/s or 512kbit/s (%s)", s, rateConvention)
	}
	var bytes float64
	if unit, ok := bitUnits[m[2]]; ok {
		n, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("rate %q: %w", s, err)
		}
		bytes = n * unit
	} else {
		parse := units.FromHumanSize
		if strings.ContainsAny(m[2], "iI") {
			parse = units.RAMInBytes
		}
		n, err := parse(m[1] + m[2])
		if err != nil || !strings.HasSuffix(m[2], "B") { // kb, Kib: bits or bytes?
			return 0, fmt.Errorf("rate %q: unknown unit %q (%s)", s, m[2], rateConvention)
		}
		bytes = float64(n)
	}
	kb := math.Round(bytes / 1000)
	if bytes < 0 || kb > math.MaxInt64/2 { // go-units wraps beyond int64
		return 0, fmt.Errorf("rate %q: too large", s)
	}
	if kb < 1 {
		return 0, fmt.Errorf("rate %q: below 1KB/s, the least toxiproxy can limit to", s)
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

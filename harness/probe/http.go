package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// HTTPOption configures an HTTP checker.
type HTTPOption func(*httpOptions) error

type httpOptions struct {
	statuses   []int // empty: any 2xx or 3xx
	body       string
	maxLatency time.Duration
}

// WithStatus sets the statuses that count as an answer. Default: any 2xx
// or 3xx (redirects are not followed).
func WithStatus(codes ...int) HTTPOption {
	return func(o *httpOptions) error {
		for _, c := range codes {
			if c < 100 || c > 599 {
				return fmt.Errorf("http status %d: not a status", c)
			}
		}
		o.statuses = append(o.statuses, codes...)
		return nil
	}
}

// WithBody requires the body (its first 64 KiB) to contain text. Default:
// any body.
func WithBody(text string) HTTPOption {
	return func(o *httpOptions) error {
		if text == "" {
			return fmt.Errorf("http body match: empty")
		}
		o.body = text
		return nil
	}
}

// WithMaxLatency fails an answer that takes longer than d, body included.
// Default: no bound but the sampler's timeout.
func WithMaxLatency(d time.Duration) HTTPOption {
	return func(o *httpOptions) error {
		if d <= 0 {
			return fmt.Errorf("http latency bound %v: want more than 0", d)
		}
		o.maxLatency = d
		return nil
	}
}

// maxBody is how much of a body a check reads.
const maxBody = 64 << 10

// HTTPChecker GETs a URL. It keeps connections alive between checks, as
// a dependent service's client would; a check that times out drops its
// connection, so the next one dials afresh.
type HTTPChecker struct {
	url    string
	o      httpOptions
	client *http.Client
}

// HTTP returns a checker that GETs rawURL (http or https).
func HTTP(rawURL string, opts ...HTTPOption) (*HTTPChecker, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("http probe %q: %w", rawURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("http probe %q: want an http:// or https:// URL with a host", rawURL)
	}
	var o httpOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("http probe %s: %w", rawURL, err)
		}
	}
	tr := &http.Transport{
		Proxy:               nil, // a probe talks to the rehearsal, never through a proxy
		DialContext:         (&net.Dialer{}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a 3xx is an answer; following it could leave the sandbox
	}}
	return &HTTPChecker{url: rawURL, o: o, client: client}, nil
}

// String describes the check.
func (c *HTTPChecker) String() string { return "GET " + c.url }

// Check sends one GET and judges the answer.
func (c *HTTPChecker) Check(ctx context.Context) error {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return fmt.Errorf("get %s: %w", c.url, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err // a *url.Error: it names the method and the URL
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("get %s: read body: %w", c.url, err)
	}
	latency := time.Since(start)
	if !c.statusOK(resp.StatusCode) {
		// The body says why (a health endpoint's reason), when it has one.
		if why := excerpt(string(body)); why != "" {
			return fmt.Errorf("get %s: %w %d: %s", c.url, ErrStatus, resp.StatusCode, why)
		}
		return fmt.Errorf("get %s: %w %d", c.url, ErrStatus, resp.StatusCode)
	}
	if c.o.body != "" && !strings.Contains(string(body), c.o.body) {
		return fmt.Errorf("get %s: %w: no %q in %q", c.url, ErrBody, c.o.body, excerpt(string(body)))
	}
	if c.o.maxLatency > 0 && latency > c.o.maxLatency {
		return fmt.Errorf("get %s: %w: %v, bound %v", c.url, ErrSlow, latency.Round(time.Millisecond), c.o.maxLatency)
	}
	return nil
}

func (c *HTTPChecker) statusOK(code int) bool {
	if len(c.o.statuses) > 0 {
		return slices.Contains(c.o.statuses, code)
	}
	return code >= 200 && code < 400
}

// Close drops the idle connections.
func (c *HTTPChecker) Close() error {
	c.client.CloseIdleConnections()
	return nil
}

// excerpt shortens text for an error message.
func excerpt(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

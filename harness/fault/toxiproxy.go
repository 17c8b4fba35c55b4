package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/image"
)

// ToxiproxyImage is the image of a run's toxiproxy server: the server of
// the Go module ToxiproxyModule at ToxiproxyVersion, built from source by
// harness/image and packed onto the network fault helper (Image), whose
// entry script confines it.
const ToxiproxyImage = "rehearse/toxiproxy:" + ToxiproxyVersion

// ToxiproxyModule and ToxiproxyVersion are the Go module the server is
// built from; go.mod requires the same version (a test keeps them equal).
const (
	ToxiproxyModule  = "github.com/Shopify/toxiproxy/v2"
	ToxiproxyVersion = "2.12.0"
)

const (
	// toxiproxySidecar is the name of the run's toxiproxy container
	// (env.LabelSidecar): rehearse-<run>-rehearse-toxiproxy.
	toxiproxySidecar = "toxiproxy"
	// toxiproxyAPI is the server's API port in its container, published
	// on 127.0.0.1.
	toxiproxyAPI = "8474/tcp"
	// toxiproxyReady bounds the wait for a new server's API.
	toxiproxyReady = 60 * time.Second
)

// EnsureToxiproxyImage makes ToxiproxyImage exist: the helper image (its
// base) first, then the server, built from the module in the Go module
// cache (downloaded by the go command when missing) and packed on top.
// An image built from the same inputs is not built again.
func EnsureToxiproxyImage(ctx context.Context, e *env.Environment) (image.Result, error) {
	if _, err := EnsureImage(ctx, e); err != nil {
		return image.Result{}, err
	}
	dir, err := moduleDir(ctx, ToxiproxyModule, "v"+ToxiproxyVersion)
	if err != nil {
		return image.Result{}, fmt.Errorf("toxiproxy image %s: %w", ToxiproxyImage, err)
	}
	rs, err := e.ImageBuilder().Ensure(ctx, toxiproxySpec(dir))
	if err != nil {
		return image.Result{}, fmt.Errorf("toxiproxy image %s: %w", ToxiproxyImage, err)
	}
	return rs[0], nil
}

// moduleDir is the directory of a module version in the Go module cache,
// downloaded if it is missing. It runs outside any module (the rehearsal's
// working directory may be one), with the go command's own settings.
func moduleDir(ctx context.Context, path, version string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", path+"@"+version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOWORK=off", "GOFLAGS=-mod=mod")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var got struct{ Dir, Error string }
	if jerr := json.Unmarshal(stdout.Bytes(), &got); jerr == nil && got.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", path, version, got.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %v: %s", path, version, err, strings.TrimSpace(stderr.String()))
	}
	if got.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: no directory in its answer", path, version)
	}
	return got.Dir, nil
}

// toxiServer is the run's toxiproxy server and a client of its API.
type toxiServer struct {
	sc  *env.Sidecar
	api *toxiproxy.Client
}

// serverMu makes changing the run's server one thing at a time: two
// faults injected at once find or start the same one, and a heal takes it
// off a network only when no toxic is adding a proxy there.
var serverMu sync.Mutex

// ensureServer finds the run's toxiproxy server, or starts it (building
// its image first), and puts it on the networks nets. A server that does
// not run (its entry failed: it never restarts) is removed, with its
// bridge, and a new one started; so is a new one whose API never answers.
// The caller holds serverMu.
func ensureServer(ctx context.Context, e *env.Environment, nets []string) (*toxiServer, error) {
	sc, err := e.Sidecar(ctx, toxiproxySidecar)
	if err != nil {
		return nil, err
	}
	if sc != nil {
		if ok, _ := sc.Running(ctx); !ok {
			if err := sc.Remove(ctx); err != nil {
				return nil, fmt.Errorf("remove the toxiproxy server that stopped: %w", err)
			}
			sc = nil
		}
	}
	if sc != nil {
		for _, n := range nets {
			if err := sc.Connect(ctx, n); err != nil {
				return nil, err
			}
		}
		s, err := newToxiServer(sc)
		if err != nil {
			return nil, err
		}
		return s, s.wait(ctx)
	}
	if _, err := EnsureToxiproxyImage(ctx, e); err != nil {
		return nil, err
	}
	sc, err = e.StartSidecar(ctx, env.SidecarSpec{
		Name:       toxiproxySidecar,
		Image:      ToxiproxyImage,
		Entrypoint: []string{"/usr/local/bin/rehearse-toxiproxy"},
		Env:        []string{"REHEARSE_TOXIPROXY_API_PORT=" + strings.TrimSuffix(toxiproxyAPI, "/tcp")},
		Networks:   nets,
		Publish:    []string{toxiproxyAPI},
		// NET_ADMIN to confine itself, SETPCAP to drop both before
		// the server starts: the server runs with no capability.
		CapAdd: []string{"NET_ADMIN", "SETPCAP"},
	})
	if err != nil {
		return nil, fmt.Errorf("start the toxiproxy server: %w", err)
	}
	s, err := newToxiServer(sc)
	if err == nil {
		err = s.wait(ctx)
	}
	if err != nil {
		if rerr := sc.Remove(context.WithoutCancel(ctx)); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, err
	}
	return s, nil
}

// findServer finds the run's running toxiproxy server: nil, without
// error, when the run has none. A server that stopped holds no proxies
// (they live in its memory) and redirects nothing.
func findServer(ctx context.Context, e *env.Environment) (*toxiServer, error) {
	sc, err := e.Sidecar(ctx, toxiproxySidecar)
	if err != nil || sc == nil {
		return nil, err
	}
	if ok, _ := sc.Running(ctx); !ok {
		return nil, nil
	}
	return newToxiServer(sc)
}

// filter runs the netfilter helper in the server's namespace.
func (s *toxiServer) filter(ctx context.Context, what string, cmd []string) error {
	res, err := s.sc.RunInNetns(ctx, Image, cmd, helperCaps)
	if err != nil {
		return fmt.Errorf("toxiproxy server: %s: %w", what, err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("toxiproxy server: %s: %s exited %d: %s", what, cmd[1], res.ExitCode, strings.TrimSpace(res.Stderr+res.Stdout))
	}
	return nil
}

// disconnectUnused takes the server off each of the run's networks where
// none of its proxies listens.
func (s *toxiServer) disconnectUnused(ctx context.Context) error {
	proxies, err := s.api.Proxies()
	if err != nil {
		return fmt.Errorf("toxiproxy server: list proxies: %w", err)
	}
	addrs, err := s.sc.Addresses(ctx)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, p := range proxies {
		host, _, err := net.SplitHostPort(p.Listen)
		if err != nil {
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || ip.IsUnspecified() {
			return nil // listens everywhere (not a toxic's): stay
		}
		for _, a := range addrs {
			if a.IP == ip.Unmap() {
				used[a.Network] = true
			}
		}
	}
	var errs []error
	for _, a := range addrs {
		if !used[a.Network] {
			used[a.Network] = true // once per network
			if err := s.sc.Disconnect(ctx, a.Network); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func newToxiServer(sc *env.Sidecar) (*toxiServer, error) {
	ep, ok := sc.Ports[toxiproxyAPI]
	if !ok {
		return nil, fmt.Errorf("toxiproxy server: its API port %s is not published", toxiproxyAPI)
	}
	return &toxiServer{sc: sc, api: toxiproxy.NewClient("http://" + ep.String())}, nil
}

// wait waits until the server's API answers; a container that stopped
// fails at once, with its output.
func (s *toxiServer) wait(ctx context.Context) error {
	deadline := time.Now().Add(toxiproxyReady)
	for {
		_, err := s.api.Version()
		if err == nil {
			return nil
		}
		if ok, rerr := s.sc.Running(ctx); !ok {
			return fmt.Errorf("toxiproxy server: %w", rerr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("toxiproxy server: its API does not answer after %s: %w", toxiproxyReady, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("toxiproxy server: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// deleteProxies deletes the server's proxies whose names start with
// prefix; deleting a proxy closes every connection through it.
func (s *toxiServer) deleteProxies(prefix string) error {
	proxies, err := s.api.Proxies()
	if err != nil {
		return fmt.Errorf("toxiproxy server: list proxies: %w", err)
	}
	var errs []error
	for name, p := range proxies {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		if err := p.Delete(); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("toxiproxy server: delete proxy %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	var api *toxiproxy.ApiError
	return errors.As(err, &api) && api.Status == 404
}

// sweepProxies deletes every proxy of the run's toxiproxy server, if it
// has one, and the rules of every toxic of the run in its namespace, and
// takes it off the run's networks (Sweep).
func sweepProxies(ctx context.Context, e *env.Environment) error {
	serverMu.Lock()
	defer serverMu.Unlock()
	s, err := findServer(ctx, e)
	if err != nil || s == nil {
		return err
	}
	return errors.Join(s.deleteProxies(runTag(e)),
		s.filter(ctx, "sweep the rules of its proxies", []string{helper, "sweep", runTag(e)}),
		s.disconnectUnused(ctx))
}

// serverRules lists the rules toxics of e's run have in the namespace of
// its toxiproxy server: none once every toxic is healed, and none when the
// run has no running server.
func serverRules(ctx context.Context, e *env.Environment) ([]string, error) {
	s, err := findServer(ctx, e)
	if err != nil || s == nil {
		return nil, err
	}
	res, err := s.sc.RunInNetns(ctx, Image, []string{helper, "list", runTag(e)}, helperCaps)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("list exited %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	if err != nil {
		return nil, fmt.Errorf("list the rules of the toxiproxy server: %w", err)
	}
	var rules []string
	for _, line := range strings.Split(res.Stdout, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			rules = append(rules, line)
		}
	}
	return rules, nil
}

// Proxies lists the proxies of the run's toxiproxy server by name: none
// once every toxic fault is healed, and none when the run has no server.
func Proxies(ctx context.Context, e *env.Environment) ([]string, error) {
	s, err := findServer(ctx, e)
	if err != nil || s == nil {
		return nil, err
	}
	proxies, err := s.api.Proxies()
	if err != nil {
		return nil, fmt.Errorf("toxiproxy server: list proxies: %w", err)
	}
	var names []string
	for name := range proxies {
		names = append(names, name)
	}
	return names, nil
}

package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/internal/term"
)

// DebianBase is the base image rehearse can make without a registry.
const DebianBase = "debian:bookworm-slim"

const debianSuite = "bookworm"

// debian bootstraps a minimal Debian into ref with mmdebstrap, using the
// host's own configured apt sources (no mirror is named here).
func (b *Builder) debian(ctx context.Context, ref string) error {
	tool, err := ensureMmdebstrap(ctx, b.opts.log)
	if err != nil {
		return err
	}
	sources, err := hostSources(debianSuite)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "rehearse-debian-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "rootfs.tar")
	args := []string{
		"--variant=minbase", "--format=tar",
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-include=/usr/share/doc/*/copyright",
		"--aptopt=Acquire::Languages \"none\"",
		debianSuite, out,
	}
	args = append(args, sources...)
	fmt.Fprintf(b.opts.log, "bootstrapping %s with mmdebstrap from %s\n", ref, strings.Join(sources, ", "))
	cmd := exec.CommandContext(ctx, tool, args...)
	var stderr bytes.Buffer
	cmd.Stderr = io.MultiWriter(&stderr, b.opts.log)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mmdebstrap: %v\n%s", err, term.Tail(stderr.String(), 15))
	}
	f, err := os.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	changes := []string{`CMD ["bash"]`, "LABEL " + InputsLabel + "=mmdebstrap-" + debianSuite}
	if b.opts.prefix != "" {
		changes = append(changes, "LABEL "+benchLabel+"="+strconv.Quote(b.opts.prefix))
	}
	resp, err := b.cli.ImageImport(ctx, client.ImageImportSource{Source: f, SourceName: "-"}, ref, client.ImageImportOptions{
		Changes: changes,
	})
	if err != nil {
		return fmt.Errorf("import %s: %w", ref, err)
	}
	defer resp.Close()
	_, err = io.Copy(io.Discard, resp)
	return err
}

// ensureMmdebstrap finds mmdebstrap, installing it with apt when running as
// root on a Debian host.
func ensureMmdebstrap(ctx context.Context, log io.Writer) (string, error) {
	if p, err := exec.LookPath("mmdebstrap"); err == nil {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("mmdebstrap is not installed (apt-get install mmdebstrap)")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("mmdebstrap is not installed and this host has no apt-get")
	}
	fmt.Fprintln(log, "installing mmdebstrap with apt-get")
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "mmdebstrap"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, term.Tail(string(out), 10))
		}
	}
	return exec.LookPath("mmdebstrap")
}

// hostSources returns the host's apt source files that serve suite.
func hostSources(suite string) ([]string, error) {
	candidates := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.sources", "/etc/apt/sources.list.d/*.list"} {
		m, _ := filepath.Glob(pat)
		candidates = append(candidates, m...)
	}
	var found []string
	for _, c := range candidates {
		data, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		if servesSuite(string(data), suite) {
			found = append(found, c)
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no apt source on this host serves Debian %s (looked in /etc/apt/sources.list and /etc/apt/sources.list.d)", suite)
	}
	return found, nil
}

// servesSuite reports whether an apt sources text (one-line or deb822) has
// an active entry for suite.
func servesSuite(text, suite string) bool {
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if strings.HasPrefix(line, "Suites:") || (fields[0] == "deb") {
			for _, f := range fields[1:] {
				if f == suite {
					return true
				}
			}
		}
	}
	return false
}

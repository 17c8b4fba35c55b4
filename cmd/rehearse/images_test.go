package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/internal/enginetest"
)

func TestImagesSummary(t *testing.T) {
	var out bytes.Buffer
	writeImagesSummary(&out, []image.Result{
		{Ref: "debian:bookworm-slim", ID: "sha256:0123456789abcdef0123", Action: image.Built, Took: 61 * time.Second},
		{Ref: "rehearse/gateway:1", ID: "sha256:aaaa", Action: image.Cached, Took: 20 * time.Millisecond},
		{Ref: "rehearse/billing:2.3", ID: "sha256:bbbb", Action: image.Built, Took: 2*time.Minute + 9*time.Second},
	}, 3*time.Minute+12*time.Second)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("summary:\n%s", out.String())
	}
	if !strings.HasPrefix(lines[0], "built    debian:bookworm-slim") || !strings.HasSuffix(lines[0], "sha256:0123456789ab 1m01s") {
		t.Errorf("first line %q", lines[0])
	}
	if strings.HasSuffix(strings.TrimSpace(lines[1]), "20ms") {
		t.Errorf("a cached image shows a build time: %q", lines[1])
	}
	if want := "built 2 of 3 images in 3m12s (sum of the builds 3m10s)"; lines[3] != want {
		t.Errorf("last line %q, want %q", lines[3], want)
	}
	out.Reset()
	writeImagesSummary(&out, []image.Result{{Ref: "debian:bookworm-slim", Action: image.Present}}, 400*time.Millisecond)
	if !strings.HasSuffix(out.String(), "all 1 images ready in 400ms, none built\n") {
		t.Errorf("nothing built:\n%s", out.String())
	}
}

// rehearse images makes the harness's own images too, says at once on
// stderr what it is doing (no terminal: plain lines), and ends with the
// timings.
func TestImagesProgressAndHarnessImages(t *testing.T) {
	enginetest.Connect(t)
	r := rehearse(t, "images", "-f", filepath.Join("testdata", "quick.yaml"))
	if r.code != 0 {
		t.Fatalf("images: %+v", r)
	}
	first, _, _ := strings.Cut(r.stderr, "\n")
	if first != "images: 0/4 done, 4 waiting" { // debian (services and copy helper), gateway, netfilter, toxiproxy
		t.Errorf("first stderr line %q, want the board of 4 images", first)
	}
	for _, want := range []string{"debian:bookworm-slim", "rehearse/gateway:1", "rehearse/netfilter:1", "rehearse/toxiproxy:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("images output does not list %s:\n%s", want, r.stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^(built \d+ of 4 images in \S+ \(sum of the builds \S+\)|all 4 images ready in \S+, none built)$`).MatchString(r.stdout) {
		t.Errorf("no timing summary:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "images: 4/4 done") {
		t.Errorf("no last progress line:\n%s", r.stderr)
	}
}

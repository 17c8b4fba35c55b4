package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/snapshot"
	"github.com/rehearse/rehearse/internal/enginetest"
)

func TestImagesSummary(t *testing.T) {
	made := []image.Result{
		{Ref: "debian:bookworm-slim", ID: "sha256:0123456789abcdef0123", Action: image.Built, Took: 61 * time.Second},
		{Ref: "rehearse/gateway:1", ID: "sha256:aaaa", Action: image.Cached, Took: 20 * time.Millisecond},
		{Ref: "rehearse/billing:2.3", ID: "sha256:bbbb", Action: image.Built, Took: 2*time.Minute + 9*time.Second},
	}
	var out bytes.Buffer
	writeImagesSummary(&out, imagesSummary{made: made, planned: 3, wall: 3*time.Minute + 12*time.Second})
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
	// the sum of own times while building side by side is not the sum of
	// single builds, and says so
	if want := "built 2 of 3 images in 3m12s (their own times add up to 3m10s while building side by side)"; lines[3] != want {
		t.Errorf("last line %q, want %q", lines[3], want)
	}

	for _, tt := range []struct {
		name string
		s    imagesSummary
		want string
	}{
		{"nothing built", imagesSummary{made: []image.Result{{Ref: "debian:bookworm-slim", Action: image.Present}}, planned: 1, wall: 400 * time.Millisecond},
			"all 1 images ready in 400ms, none built"},
		{"one built", imagesSummary{made: made[:2], planned: 2, wall: 62 * time.Second},
			"built 1 of 2 images in 1m02s (its own time 1m01s)"},
		{"failed", imagesSummary{made: made, planned: 9, failed: 1, wall: time.Minute, err: errors.New("boom")},
			"3 of 9 images ready, 1 failed, 5 not made (after 1m00s)"},
		{"interrupted", imagesSummary{made: made[:1], planned: 3, wall: time.Minute, err: context.Canceled, interrupted: true},
			"1 of 3 images ready, 2 not made: interrupted (after 1m00s)"},
		{"all failed", imagesSummary{planned: 2, failed: 2, wall: time.Second, err: errors.New("boom")},
			"0 of 2 images ready, 2 failed (after 1s)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			writeImagesSummary(&out, tt.s)
			if !strings.HasSuffix(out.String(), "\n"+tt.want+"\n") && out.String() != tt.want+"\n" {
				t.Errorf("summary:\n%s\nwant it to end with %q", out.String(), tt.want)
			}
		})
	}
}

// rehearse images makes the images snapshots run (snapshot.ImageSpecs)
// among the harness's own.
func TestHarnessImagesHaveSnapshotHelpers(t *testing.T) {
	specs, err := harnessImages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range snapshot.ImageSpecs() {
		if !slices.ContainsFunc(specs, func(s image.Spec) bool { return s.Ref == want.Ref }) {
			t.Errorf("harness images lack the snapshot image %s", want.Ref)
		}
	}
}

func TestImagesJobsUsage(t *testing.T) {
	r := rehearse(t, "images", "-f", filepath.Join("testdata", "quick.yaml"), "--jobs", "0")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--jobs 0: want at least 1") {
		t.Errorf("images --jobs 0: %+v", r)
	}
}

// rehearse images makes the harness's own images too, says at once on
// stderr what it is doing (no terminal: plain lines; the board before the
// plan is read), and ends with the timings.
func TestImagesProgressAndHarnessImages(t *testing.T) {
	enginetest.Connect(t)
	r := rehearse(t, "images", "-f", filepath.Join("testdata", "quick.yaml"), "--jobs", "3")
	if r.code != 0 {
		t.Fatalf("images: %+v", r)
	}
	first, _, _ := strings.Cut(r.stderr, "\n")
	if first != "images: planning" {
		t.Errorf("first stderr line %q, want the board before the plan", first)
	}
	for _, want := range []string{"debian:bookworm-slim", "rehearse/gateway:1", "rehearse/netfilter:1", "rehearse/toxiproxy:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("images output does not list %s:\n%s", want, r.stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^(built \d+ of 4 images in \S+ \((its own time \S+|their own times add up to \S+ while building side by side)\)|all 4 images ready in \S+, none built)$`).MatchString(r.stdout) {
		t.Errorf("no timing summary:\n%s", r.stdout)
	}
	// debian (services and copy helper), gateway, netfilter, toxiproxy
	if !strings.Contains(r.stderr, "images: 4/4 done") {
		t.Errorf("no last progress line:\n%s", r.stderr)
	}
}

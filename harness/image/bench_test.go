package image_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/fault"
	"github.com/rehearse/rehearse/harness/gateway"
	"github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/internal/enginetest"
)

// BenchmarkColdBuild makes every image of the bundled world
// (fixtures/billing/compose.yaml) and the harness's own images (the
// Debian base of the copy helpers, the gateway, the fault helper, the
// toxiproxy server) cold, twice per iteration: first one image at a time
// (each image's own time alone; their sum is the baseline), then all at
// once as rehearse images does (the wall time). It reports wall/sum
// (target: at most 0.7), and each in seconds.
//
// Cold: each builder tags its images under a private prefix of its own
// (so it never removes or replaces the images other tests run), the
// Debian base is bootstrapped again with mmdebstrap, and the engine's
// build cache is not used (NoCache; the fresh base has a new ID anyway).
// Go's build cache stays warm (warmed once before timing, as after make
// build), so packs cost the same in both. Each builder's images are
// removed by their private refs afterwards.
//
// One iteration takes minutes and needs the host's apt sources (for
// mmdebstrap and the Dockerfiles' apt-get): make bench runs it with
// -benchtime 1x. ns/op is the concurrent wall time alone.
func BenchmarkColdBuild(b *testing.B) {
	if testing.Short() {
		b.Skip("minutes of cold builds")
	}
	cli := enginetest.Connect(b)
	ctx := context.Background()
	plan, err := env.LoadPlan(ctx, filepath.Join("..", "..", "fixtures", "billing", "compose.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	gw, err := gateway.ImageSpec()
	if err != nil {
		b.Fatal(err)
	}
	faults, err := fault.ImageSpecs(ctx)
	if err != nil {
		b.Fatal(err)
	}
	specs := append(plan.Images(), image.Spec{Ref: image.DebianBase, Origin: "copy helper"}, gw)
	specs = append(specs, faults...)
	warm, err := image.NewBuilder(cli)
	if err != nil {
		b.Fatal(err)
	}
	if err := warm.WarmGo(ctx, specs); err != nil {
		b.Fatal(err)
	}

	var single, wall, concurrentSum time.Duration
	var images int
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		made := coldBuild(b, cli, specs, image.WithSerial())
		for _, r := range made {
			single += r.Took
		}
		b.StartTimer()
		start := time.Now()
		made = coldBuild(b, cli, specs)
		wall += time.Since(start)
		b.StopTimer()
		for _, r := range made {
			concurrentSum += r.Took
		}
		images = len(made)
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(wall.Seconds()/single.Seconds(), "wall/sum")
	b.ReportMetric(single.Seconds()/n, "s-sum-single")
	b.ReportMetric(wall.Seconds()/n, "s-wall")
	b.ReportMetric(concurrentSum.Seconds()/n, "s-sum-concurrent")
	b.ReportMetric(float64(images), "images")
}

// coldBuild makes specs with a new private cold builder, removes what it
// made, and returns what it made (each image's own time in Took).
func coldBuild(b *testing.B, cli *client.Client, specs []image.Spec, opts ...image.Option) []image.Result {
	b.Helper()
	prefix := "rehearse-bench-" + randomHex(b) + "/"
	builder, err := image.NewBuilder(cli, append(opts, image.WithPrivateCold(prefix))...)
	if err != nil {
		b.Fatal(err)
	}
	defer removePrivate(b, cli, prefix, builder)
	if _, err := builder.Ensure(context.Background(), specs...); err != nil {
		b.Fatal(err)
	}
	made := builder.Made()
	for _, r := range made {
		if r.Action != image.Built || !strings.HasPrefix(r.Ref, prefix) {
			b.Fatalf("not a private cold build: %+v", r)
		}
		b.Logf("%s (serial %v): %s", strings.TrimPrefix(r.Ref, prefix), len(opts) > 0, r.Took.Round(100*time.Millisecond))
	}
	return made
}

// removePrivate removes the images builder made under prefix, and only
// those: newest first, so that no image is removed under one built on it.
func removePrivate(b *testing.B, cli *client.Client, prefix string, builder *image.Builder) {
	made := builder.Made()
	slices.Reverse(made)
	for _, r := range made {
		if !strings.HasPrefix(r.Ref, prefix) {
			continue
		}
		_, err := cli.ImageRemove(context.Background(), r.Ref, client.ImageRemoveOptions{PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			b.Errorf("remove benchmark image %s: %v", r.Ref, err)
		}
	}
}

func randomHex(b *testing.B) string {
	buf := make([]byte, 4)
	if _, err := rand.Read(buf); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(buf)
}

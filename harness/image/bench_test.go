package image_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/fault"
	"github.com/rehearse/rehearse/harness/gateway"
	rimage "github.com/rehearse/rehearse/harness/image"
	"github.com/rehearse/rehearse/harness/snapshot"
	"github.com/rehearse/rehearse/internal/enginetest"
)

// BenchmarkColdBuild makes every image of the bundled world
// (fixtures/billing/compose.yaml) and the harness's own images (the
// Debian base of the copy helpers, the gateway, the fault helper, the
// toxiproxy server) cold, twice per iteration: one image at a time (each
// image's own time alone; their sum is the baseline), and all at once as
// rehearse images does (the wall time of its Ensure call alone, not the
// removal afterwards). It reports wall/sum (target: at most 0.7), and
// each in seconds. The two phases alternate which goes first, the
// concurrent one on the first iteration: what the first leaves warm (the
// page cache of the apt downloads) then never favours the concurrent
// build with -benchtime 1x.
//
// Cold: each builder tags its images under a private prefix of its own
// (so it never removes or replaces the images other tests run), the
// Debian base is bootstrapped again with mmdebstrap, and the engine's
// build cache is not used (NoCache; the fresh base has a new ID anyway).
// Go's build cache stays warm (warmed once before timing, as after make
// build), so packs cost the same in both. Each builder's images are
// removed by their private refs afterwards; every image carrying the
// benchmark's label (rehearse.bench, dangling ones too) is removed
// before the first iteration (what an interrupted run left) and at the
// end.
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
	removeBenchImages(b, cli)
	b.Cleanup(func() { removeBenchImages(b, cli) })
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
	specs := append(plan.Images(), snapshot.ImageSpecs()...)
	specs = append(append(specs, gw), faults...)
	warm, err := rimage.NewBuilder(cli)
	if err != nil {
		b.Fatal(err)
	}
	if err := warm.WarmGo(ctx, specs); err != nil {
		b.Fatal(err)
	}

	var single, wall, concurrentSum time.Duration
	var images int
	b.ResetTimer()
	b.StopTimer() // coldBuild times the concurrent Ensure call alone
	for i := range b.N {
		serialFirst := i%2 == 1
		for _, serial := range []bool{serialFirst, !serialFirst} {
			if serial {
				made, _ := coldBuild(b, cli, specs, false, rimage.WithSerial())
				for _, r := range made {
					single += r.Took
				}
				continue
			}
			made, took := coldBuild(b, cli, specs, true)
			wall += took
			for _, r := range made {
				concurrentSum += r.Took
			}
			images = len(made)
		}
	}
	n := float64(b.N)
	b.ReportMetric(wall.Seconds()/single.Seconds(), "wall/sum")
	b.ReportMetric(single.Seconds()/n, "s-sum-single")
	b.ReportMetric(wall.Seconds()/n, "s-wall")
	b.ReportMetric(concurrentSum.Seconds()/n, "s-sum-concurrent")
	b.ReportMetric(float64(images), "images")
}

// coldBuild makes specs with a new private cold builder, removes what it
// made, and returns what it made (each image's own time in Took) and how
// long its Ensure call took. timed: the benchmark's timer runs during
// that call (and only then).
func coldBuild(b *testing.B, cli *client.Client, specs []rimage.Spec, timed bool, opts ...rimage.Option) ([]rimage.Result, time.Duration) {
	b.Helper()
	prefix := "rehearse-bench-" + randomHex(b) + "/"
	builder, err := rimage.NewBuilder(cli, append(opts, rimage.WithPrivateCold(prefix))...)
	if err != nil {
		b.Fatal(err)
	}
	defer removePrivate(b, cli, prefix, builder)
	if timed {
		b.StartTimer()
	}
	start := time.Now()
	_, err = builder.Ensure(context.Background(), specs...)
	took := time.Since(start)
	if timed {
		b.StopTimer()
	}
	if err != nil {
		b.Fatal(err)
	}
	made := builder.Made()
	for _, r := range made {
		if r.Action != rimage.Built || !strings.HasPrefix(r.Ref, prefix) {
			b.Fatalf("not a private cold build: %+v", r)
		}
		ins, err := cli.ImageInspect(context.Background(), r.Ref)
		if err != nil || ins.Config == nil || ins.Config.Labels[rimage.BenchLabel] != prefix {
			b.Fatalf("private image %s does not carry %s=%s (%v)", r.Ref, rimage.BenchLabel, prefix, err)
		}
		b.Logf("%s (serial %v): %s", strings.TrimPrefix(r.Ref, prefix), len(opts) > 0, r.Took.Round(100*time.Millisecond))
	}
	return made, took
}

// removePrivate removes the images builder made under prefix, and only
// those: newest first, so that no image is removed under one built on it.
func removePrivate(b *testing.B, cli *client.Client, prefix string, builder *rimage.Builder) {
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

// removeBenchImages removes every image that carries the benchmark's
// label, tagged or dangling (only private cold builders set it): newest
// first, so that no image is removed under one built on it.
func removeBenchImages(b *testing.B, cli *client.Client) {
	ctx := context.Background()
	list, err := cli.ImageList(ctx, client.ImageListOptions{All: true, Filters: make(client.Filters).Add("label", rimage.BenchLabel)})
	if err != nil {
		b.Errorf("list benchmark images: %v", err)
		return
	}
	items := list.Items
	slices.SortFunc(items, func(x, y image.Summary) int { return cmp.Compare(y.Created, x.Created) })
	for _, img := range items {
		_, err := cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			b.Errorf("remove benchmark image %s %v: %v", img.ID, img.RepoTags, err)
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

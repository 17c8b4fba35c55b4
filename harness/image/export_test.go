package image

import (
	"context"
	"os"
	"path/filepath"
)

// WithPrivateCold makes a builder for the cold build benchmark: every
// image it makes, the Debian base included (bootstrapped again), is tagged
// under prefix, and nothing is reused: no inputs label, no engine build
// cache (NoCache). The shared refs are never touched. Every image it
// makes carries BenchLabel=prefix.
func WithPrivateCold(prefix string) Option {
	return func(o *options) error {
		o.prefix, o.noCache = prefix, true
		return nil
	}
}

// BenchLabel marks every image a WithPrivateCold builder makes; its value
// is the builder's prefix.
const BenchLabel = benchLabel

// WithSerial makes a builder make one image at a time: each image's Took
// is then its time alone, and their sum the time of single builds.
func WithSerial() Option {
	return func(o *options) error {
		o.serial = true
		return nil
	}
}

// WarmGo builds every Go program of specs once, as packGo does, so Go's
// own build cache is as warm for one timed build as for the next.
func (b *Builder) WarmGo(ctx context.Context, specs []Spec) error {
	tmp, err := os.MkdirTemp("", "rehearse-warm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, s := range specs {
		for _, bin := range s.Go {
			if err := b.goBuild(ctx, bin, filepath.Join(tmp, "bin")); err != nil {
				return err
			}
		}
	}
	return nil
}

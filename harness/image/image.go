// Package image makes sure every image a rehearsal needs exists in the local
// engine, without any registry: it builds Dockerfiles, packs Go programs onto
// a base image (ko-style) and bootstraps debian:bookworm-slim with mmdebstrap.
//
// Every image it makes carries the digest of its inputs as the label
// rehearse.inputs; an image whose label matches is not built again.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// InputsLabel holds the digest of the inputs an image was made from.
const InputsLabel = "rehearse.inputs"

// Spec is one image a service runs.
type Spec struct {
	Ref    string     // the tag the service runs, such as rehearse/billing:2.3
	Build  *Build     // built from a Dockerfile when set
	Go     []GoBinary // Go programs packed on top of Build's result, or of Base
	Base   string     // the base for Go programs when there is no Build
	Origin string     // where the spec came from, for errors: "compose.yaml: services.db"
}

// Build is a Dockerfile build.
type Build struct {
	Context    string // absolute directory
	Dockerfile string // relative to Context
	Inline     string // Dockerfile content given inline; overrides Dockerfile
	Target     string
	Args       map[string]string
}

// GoBinary is a Go main package built as a static linux binary. It is also
// the shape of an entry of a compose service's `x-rehearse: {go: [...]}`,
// where Main may be relative to the compose file until the plan resolves it.
type GoBinary struct {
	Main    string `mapstructure:"main"`    // package directory; absolute in a Spec
	Path    string `mapstructure:"path"`    // where the binary lands in the image
	Ldflags string `mapstructure:"ldflags"` // passed to go build -ldflags
}

// Action says what Ensure did for an image.
type Action string

// Actions.
const (
	Present Action = "present" // existed, nothing to build
	Cached  Action = "cached"  // inputs unchanged since the last build
	Built   Action = "built"
)

// Result is the outcome for one image.
type Result struct {
	Ref    string
	ID     string
	Action Action
}

// Client is the part of the Docker API this package uses.
type Client interface {
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageBuild(ctx context.Context, buildContext io.Reader, options client.ImageBuildOptions) (client.ImageBuildResult, error)
	ImageImport(ctx context.Context, source client.ImageImportSource, ref string, options client.ImageImportOptions) (client.ImageImportResult, error)
	ImagePull(ctx context.Context, ref string, options client.ImagePullOptions) (client.ImagePullResponse, error)
}

// Option configures Ensure.
type Option func(*options) error

type options struct {
	log    io.Writer
	goTool string
}

// WithLog streams build output to w. Default: discarded (the tail still
// appears in errors).
func WithLog(w io.Writer) Option {
	return func(o *options) error {
		o.log = w
		return nil
	}
}

// WithGoTool names the go command used to build Go binaries. Default: "go".
func WithGoTool(path string) Option {
	return func(o *options) error {
		o.goTool = path
		return nil
	}
}

// Builder makes images exist. It remembers what it did, so one image named
// by several services is handled once.
type Builder struct {
	cli    Client
	opts   options
	flight singleflight.Group // one build per ref at a time
	mu     sync.Mutex
	done   map[string]Result
}

// NewBuilder returns a Builder on the given engine client.
func NewBuilder(cli Client, opts ...Option) (*Builder, error) {
	o := options{log: io.Discard, goTool: "go"}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &Builder{cli: cli, opts: o, done: map[string]Result{}}, nil
}

// Ensure makes every spec's image exist locally. Independent images are
// made in parallel (image builds here wait on disk more than on CPU); the
// results are in spec order.
func (b *Builder) Ensure(ctx context.Context, specs ...Spec) ([]Result, error) {
	results := make([]Result, len(specs))
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range specs {
		g.Go(func() error {
			r, err := b.once(s.Ref, func() (Result, error) { return b.ensure(gctx, s) })
			if err != nil {
				return fmt.Errorf("%s: image %s: %w", s.Origin, s.Ref, err)
			}
			results[i] = r
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// once runs make for ref at most once per Builder, sharing the result with
// concurrent callers.
func (b *Builder) once(ref string, make func() (Result, error)) (Result, error) {
	b.mu.Lock()
	r, ok := b.done[ref]
	b.mu.Unlock()
	if ok {
		return r, nil
	}
	v, err, _ := b.flight.Do(ref, func() (any, error) {
		r, err := make()
		if err == nil {
			b.mu.Lock()
			b.done[ref] = r
			b.mu.Unlock()
		}
		return r, err
	})
	if err != nil {
		return Result{}, err
	}
	return v.(Result), nil
}

func (b *Builder) ensure(ctx context.Context, s Spec) (Result, error) {
	var (
		r   Result
		err error
	)
	switch {
	case s.Build == nil && len(s.Go) == 0:
		r, err = b.ensureExisting(ctx, s.Ref)
	case len(s.Go) == 0:
		r, err = b.build(ctx, s.Ref, *s.Build)
	default:
		base := s.Base
		if s.Build != nil {
			base = baseTag(s.Ref)
			if _, err := b.once(base, func() (Result, error) { return b.build(ctx, base, *s.Build) }); err != nil {
				return Result{}, err
			}
		} else if base == "" {
			return Result{}, fmt.Errorf("go programs need a build: section or a base image")
		} else if _, err := b.ensureExisting(ctx, base); err != nil {
			return Result{}, err
		}
		r, err = b.packGo(ctx, s.Ref, base, s.Go)
	}
	return r, err
}

// baseTag names the Dockerfile stage of an image that gets Go binaries on top.
func baseTag(ref string) string {
	repo, tag := ref, "latest"
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	return repo + ":" + tag + "-base"
}

// ensureExisting makes an image that rehearse does not build exist: it is
// there, or it can be pulled, or (debian:bookworm-slim) bootstrapped.
func (b *Builder) ensureExisting(ctx context.Context, ref string) (Result, error) {
	return b.once("existing "+ref, func() (Result, error) { return b.findOrMake(ctx, ref) })
}

func (b *Builder) findOrMake(ctx context.Context, ref string) (Result, error) {
	if ins, err := b.cli.ImageInspect(ctx, ref); err == nil {
		return Result{Ref: ref, ID: ins.ID, Action: Present}, nil
	} else if !cerrdefs.IsNotFound(err) {
		return Result{}, fmt.Errorf("inspect: %w", err)
	}
	pullErr := b.pull(ctx, ref)
	if pullErr == nil {
		ins, err := b.cli.ImageInspect(ctx, ref)
		if err != nil {
			return Result{}, fmt.Errorf("inspect after pull: %w", err)
		}
		return Result{Ref: ref, ID: ins.ID, Action: Present}, nil
	}
	if ref == DebianBase {
		if err := b.debian(ctx, ref); err != nil {
			return Result{}, fmt.Errorf("not found locally, pull failed (%v), and bootstrapping it failed: %w", pullErr, err)
		}
		ins, err := b.cli.ImageInspect(ctx, ref)
		if err != nil {
			return Result{}, err
		}
		return Result{Ref: ref, ID: ins.ID, Action: Built}, nil
	}
	return Result{}, fmt.Errorf("not found locally and cannot be pulled (%v); add a build: section or build it first", pullErr)
}

func (b *Builder) pull(ctx context.Context, ref string) error {
	resp, err := b.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	return resp.Wait(ctx)
}

// labelMatches reports whether ref exists with the given inputs digest.
func (b *Builder) labelMatches(ctx context.Context, ref, digest string) (string, bool) {
	ins, err := b.cli.ImageInspect(ctx, ref)
	if err != nil || ins.Config == nil {
		return "", false
	}
	return ins.ID, ins.Config.Labels[InputsLabel] == digest
}

// ErrBuild is wrapped by every failed build.
var ErrBuild = errors.New("build failed")

// Package image makes sure every image a rehearsal needs exists in the local
// engine, without any registry: it builds Dockerfiles, packs Go programs onto
// a base image (ko-style) and bootstraps debian:bookworm-slim with mmdebstrap.
//
// Every image it makes carries the digest of its inputs as the label
// rehearse.inputs; an image whose label matches is not built again.
//
// Ensure makes a graph of the images asked for (Graph): the Debian base
// first, the Dockerfile builds FROM it, the Go programs packed on top.
// Images that do not need each other are made concurrently, with at most
// two engine builds (apt-heavy) at once (WithBuildSlots). WithProgress
// shows each image on a progress board while it is made; WithProgressLines
// writes plain lines of it while making takes long.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/rehearse/rehearse/internal/progress"
)

// InputsLabel holds the digest of the inputs an image was made from.
const InputsLabel = "rehearse.inputs"

// Spec is one image a service runs.
type Spec struct {
	Ref    string     // the tag the service runs, such as rehearse/billing:2.3
	Build  *Build     // built from a Dockerfile when set
	Files  fs.FS      // or built from these files (a Dockerfile at the root), streamed from memory
	Go     []GoBinary // Go programs packed on top of the build's result, or of Base
	Base   string     // the base for Go programs when there is no build
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
	// Took is the image's own time: the sum of the times its work ran
	// (checking, building, packing), not counting its waits for the
	// images it needs or for a build slot. Images made side by side share
	// the machine, so each takes longer than it would alone.
	Took time.Duration
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
	board  *progress.Board
	lines  io.Writer // WithProgressLines
	slots  int
	// For the cold build benchmark (export_test.go): tag every image this
	// builder makes, and the Debian base, under prefix; skip the inputs
	// label and the engine's build cache; make one image at a time.
	prefix  string
	noCache bool
	serial  bool
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

// WithProgress adds a task to board for every image Ensure makes, and
// keeps it up to date: what it waits for, its phase (checking, pulling,
// bootstrapping, building step k/n, compiling, packing) and how it ended.
func WithProgress(board *progress.Board) Option {
	return func(o *options) error {
		o.board = board
		return nil
	}
}

// WithProgressLines writes plain lines of the builder's progress board
// (WithProgress's, or one of its own) to w while its Ensure and EnsureFS
// calls make images for longer than progress.QuietFor: a line then, at
// least every progress.Every after it, and one when the calls end
// (progress.Quiet). Calls that end sooner, every image cached, write
// nothing. For a log other lines share, such as an environment's.
func WithProgressLines(w io.Writer) Option {
	return func(o *options) error {
		o.lines = w
		return nil
	}
}

// DefaultBuildSlots is how many engine builds and Debian bootstraps run at
// once by default. They are apt-heavy (downloads, dpkg, fsync); two keep
// a two-core machine busy without thrashing it.
const DefaultBuildSlots = 2

// WithBuildSlots sets how many engine builds and Debian bootstraps run at
// once (n >= 1). Go packs do not take a slot.
func WithBuildSlots(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("image builder: build slots %d, want at least 1", n)
		}
		o.slots = n
		return nil
	}
}

// Builder makes images exist. It remembers what it did, so one image named
// by several services is handled once.
type Builder struct {
	cli    Client
	opts   options
	flight singleflight.Group // one build per ref at a time
	heavy  chan struct{}      // build slots
	serial chan struct{}      // one image at a time, when opts.serial
	mu     sync.Mutex
	done   map[string]Result         // by node key
	tasks  map[string]*progress.Task // by node key: the task the board shows
	// claimed: the node keys whose board task a call is driving now.
	claimed map[string]bool
	made    []Result
	// calls is how many Ensure and EnsureFS calls run; stopLines stops
	// their progress lines (WithProgressLines) when the last ends.
	calls     int
	stopLines func()
}

// NewBuilder returns a Builder on the given engine client.
func NewBuilder(cli Client, opts ...Option) (*Builder, error) {
	o := options{log: io.Discard, goTool: "go", slots: DefaultBuildSlots}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.lines != nil && o.board == nil {
		o.board = progress.NewBoard("images")
	}
	b := &Builder{cli: cli, opts: o, done: map[string]Result{}, tasks: map[string]*progress.Task{},
		claimed: map[string]bool{}, heavy: make(chan struct{}, o.slots)}
	if o.serial {
		b.serial = make(chan struct{}, 1)
	}
	return b, nil
}

// call counts an Ensure or EnsureFS call while it runs, and writes
// progress lines (WithProgressLines) while any does.
func (b *Builder) call() (end func()) {
	if b.opts.lines == nil {
		return func() {}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.calls == 0 {
		b.stopLines = progress.Quiet(b.opts.lines, b.opts.board)
	}
	b.calls++
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.calls--; b.calls == 0 {
			b.stopLines() // its goroutine takes no lock of the builder's
		}
	}
}

// Ensure makes every spec's image exist locally, and what they need first
// (Graph). Independent images are made concurrently; the results are in
// spec order. The first failure stops the others' work.
func (b *Builder) Ensure(ctx context.Context, specs ...Spec) ([]Result, error) {
	defer b.call()()
	nodes, err := b.Plan(specs...)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]*Node, len(nodes))
	for i := range nodes {
		byKey[nodes[i].Key()] = &nodes[i]
	}
	results := make([]Result, len(specs))
	err = each(ctx, len(specs), func(ctx context.Context, i int) error {
		s := specs[i]
		key := s.Ref
		if _, ok := byKey[key]; !ok {
			key = existingKey(s.Ref)
		}
		r, err := b.make(ctx, byKey, key)
		if err != nil {
			return fmt.Errorf("%s: image %s: %w", s.Origin, s.Ref, err)
		}
		results[i] = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// errStopped ends the context of the work that each stops.
var errStopped = errors.New("another image failed")

// each runs f for 0..n-1 concurrently and returns the first error; that
// error stops the others: their context ends, with errStopped as its
// cause.
func each(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			err := f(ctx, i)
			if err != nil {
				cancel(errStopped)
			}
			return err
		})
	}
	return g.Wait()
}

// baseNotMade is the error of an image whose base was not made.
type baseNotMade struct {
	ref string
	err error
}

func (e *baseNotMade) Error() string { return "base image " + e.ref + ": " + e.err.Error() }
func (e *baseNotMade) Unwrap() error { return e.err }

// Plan is the graph of specs (Graph), with each of its images that this
// builder has not made yet put on the progress board, so that the board
// shows them all before any work starts. Ensure plans first too.
func (b *Builder) Plan(specs ...Spec) ([]Node, error) {
	nodes, err := Graph(specs...)
	if err != nil {
		return nil, err
	}
	for i := range nodes {
		b.plan(&nodes[i])
	}
	return nodes, nil
}

// Made lists every image this builder has checked or made, in the order
// they were ready, with their own times.
func (b *Builder) Made() []Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Result(nil), b.made...)
}

// plan puts n's task on the board the first time n is seen (an image made
// by an earlier call is not shown again).
func (b *Builder) plan(n *Node) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.tasks[n.Key()]; !ok {
		b.tasks[n.Key()] = b.opts.board.Add(n.Ref)
	}
}

// claim is the task of one call that makes n: n's task on the board
// (added the first time n is seen) while it is unfinished and no other
// call drives it; otherwise a fresh task of its own, which keeps the
// call's time and shows nothing. release ends the claim.
func (b *Builder) claim(n *Node) (t *progress.Task, release func()) {
	key := n.Key()
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.tasks[key]
	if !ok {
		t = b.opts.board.Add(n.Ref)
		b.tasks[key] = t
	}
	if b.claimed[key] || t.Ended() {
		return (*progress.Board)(nil).Add(n.Ref), func() {}
	}
	b.claimed[key] = true
	return t, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.claimed, key)
	}
}

// make makes the node key after what it needs, once per Builder, sharing
// the result with concurrent callers.
func (b *Builder) make(ctx context.Context, nodes map[string]*Node, key string) (Result, error) {
	return b.once(key, func() (Result, error) {
		return b.makeNode(ctx, nodes, nodes[key])
	})
}

// makeNode makes n after what it needs, keeping its task up to date, and
// records the result. An image whose work was stopped (its context
// ended) or whose base was not made is not made, which is no failure of
// its own: its task says so, and its error is not a build's.
func (b *Builder) makeNode(ctx context.Context, nodes map[string]*Node, n *Node) (Result, error) {
	t, release := b.claim(n)
	defer release()
	r, err := b.make1(ctx, nodes, n, t)
	if err == nil {
		r.Took = t.Finish(string(r.Action))
		b.record(r)
		return r, nil
	}
	var base *baseNotMade
	stopped := ctx.Err() != nil
	switch {
	case stopped && !errors.Is(context.Cause(ctx), errStopped): // interrupted, timed out
	case errors.As(err, &base):
		t.Cancel("base image " + base.ref + " not made")
		return Result{}, err
	case !stopped:
		t.Fail(err)
		return Result{}, err
	}
	why := stopReason(ctx)
	t.Cancel(why)
	return Result{}, fmt.Errorf("not made: %s (%w)", why, ctx.Err())
}

// stopReason says why ctx ended: another image failed (each), a timeout,
// or an interrupt (ctrl-C).
func stopReason(ctx context.Context) string {
	switch {
	case errors.Is(context.Cause(ctx), errStopped):
		return errStopped.Error()
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "timed out"
	default:
		return "interrupted"
	}
}

func (b *Builder) record(r Result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.made = append(b.made, r)
}

func (b *Builder) make1(ctx context.Context, nodes map[string]*Node, n *Node, t *progress.Task) (Result, error) {
	deps := make([]Result, len(n.Needs))
	if len(n.Needs) > 0 {
		t.Wait("for " + strings.Join(n.needsOf(nodes), ", "))
		err := each(ctx, len(n.Needs), func(ctx context.Context, i int) error {
			k := n.Needs[i]
			r, err := b.make(ctx, nodes, k)
			if err != nil {
				return &baseNotMade{ref: nodes[k].Ref, err: err}
			}
			deps[i] = r
			return nil
		})
		if err != nil {
			return Result{}, err
		}
	}
	release, err := b.acquire(ctx, t, b.serial, "for the image before it")
	if err != nil {
		return Result{}, err
	}
	defer release()
	switch n.Kind {
	case Existing:
		return b.existing(ctx, n.Ref, t)
	case Dockerfile:
		return b.build(ctx, n, deps, t)
	default:
		return b.packGo(ctx, b.engineRef(n.Ref), deps[0].Ref, n.gobins, t)
	}
}

// acquire takes a slot of sem (nil: no limit), saying on t that it waits.
func (b *Builder) acquire(ctx context.Context, t *progress.Task, sem chan struct{}, why string) (func(), error) {
	if sem == nil {
		return func() {}, nil
	}
	select {
	case sem <- struct{}{}:
	default:
		t.Wait(why)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return func() { <-sem }, nil
}

// once runs make for key at most once per Builder, sharing the result
// with concurrent callers.
func (b *Builder) once(key string, make func() (Result, error)) (Result, error) {
	b.mu.Lock()
	r, ok := b.done[key]
	b.mu.Unlock()
	if ok {
		return r, nil
	}
	v, err, _ := b.flight.Do(key, func() (any, error) {
		r, err := make()
		if err == nil {
			b.mu.Lock()
			b.done[key] = r
			b.mu.Unlock()
		}
		return r, err
	})
	if err != nil {
		return Result{}, err
	}
	return v.(Result), nil
}

// benchLabel marks every image a private cold builder (the benchmark's)
// makes, with its prefix as the value, so that what it leaves behind
// can be found and removed.
const benchLabel = "rehearse.bench"

// labels are the labels of an image made from inputs of the given digest.
func (b *Builder) labels(digest string) map[string]string {
	l := map[string]string{InputsLabel: digest}
	if b.opts.prefix != "" {
		l[benchLabel] = b.opts.prefix
	}
	return l
}

// engineRef is the tag an image of the graph gets in the engine: its ref,
// or under the builder's private prefix.
func (b *Builder) engineRef(ref string) string {
	return b.opts.prefix + ref
}

// baseTag names the Dockerfile stage of an image that gets Go binaries on top.
func baseTag(ref string) string {
	repo, tag := ref, "latest"
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	return repo + ":" + tag + "-base"
}

// existing makes an image that rehearse does not build exist: it is there,
// or it can be pulled, or (debian:bookworm-slim) bootstrapped.
func (b *Builder) existing(ctx context.Context, ref string, t *progress.Task) (Result, error) {
	if ref == DebianBase {
		ref = b.engineRef(ref) // the others are not made here: never renamed
	}
	t.Run("checking")
	if ins, err := b.cli.ImageInspect(ctx, ref); err == nil {
		return Result{Ref: ref, ID: ins.ID, Action: Present}, nil
	} else if !cerrdefs.IsNotFound(err) {
		return Result{}, fmt.Errorf("inspect: %w", err)
	}
	pullErr := errors.New("a private build does not pull")
	if b.opts.prefix == "" {
		t.Run("pulling")
		if pullErr = b.pull(ctx, ref); pullErr == nil {
			ins, err := b.cli.ImageInspect(ctx, ref)
			if err != nil {
				return Result{}, fmt.Errorf("inspect after pull: %w", err)
			}
			return Result{Ref: ref, ID: ins.ID, Action: Present}, nil
		}
	}
	if ref == b.engineRef(DebianBase) {
		release, err := b.acquire(ctx, t, b.heavy, "for a build slot")
		if err != nil {
			return Result{}, err
		}
		defer release()
		t.Run("bootstrapping")
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

// labelMatches reports whether ref exists with the given inputs digest
// (never, for a builder that skips the cache).
func (b *Builder) labelMatches(ctx context.Context, ref, digest string) (string, bool) {
	if b.opts.noCache {
		return "", false
	}
	return b.labelIs(ctx, ref, digest)
}

// labelIs reports whether ref exists with the given inputs digest.
func (b *Builder) labelIs(ctx context.Context, ref, digest string) (string, bool) {
	ins, err := b.cli.ImageInspect(ctx, ref)
	if err != nil || ins.Config == nil {
		return "", false
	}
	return ins.ID, ins.Config.Labels[InputsLabel] == digest
}

// ErrBuild is wrapped by every failed build.
var ErrBuild = errors.New("build failed")

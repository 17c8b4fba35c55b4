// Package gateway is the port gateway of a rehearsal run. Services sit on
// internal networks, where Docker publishes no ports; one small socat
// container per run joins those networks and a bridge and publishes each
// declared service port on 127.0.0.1. It is the only container of a run on a
// non-internal network, and it reaches nothing but the services' ports.
package gateway

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"

	"github.com/rehearse/rehearse/harness/image"
)

// Image is the image of the port gateway.
const Image = "rehearse/gateway:1"

// files is the gateway's build context: its Dockerfile starts from
// image.DebianBase.
//
//go:embed files
var files embed.FS

// ImageClient is the part of the Docker API that building the image needs.
type ImageClient interface {
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageBuild(ctx context.Context, buildContext io.Reader, options client.ImageBuildOptions) (client.ImageBuildResult, error)
}

// Option configures EnsureImage.
type Option func(*options) error

type options struct {
	ref string
	log io.Writer
}

// WithRef tags the image ref instead (run it with Spec.Image). Default: Image.
func WithRef(ref string) Option {
	return func(o *options) error {
		if ref == "" {
			return fmt.Errorf("gateway image: empty ref")
		}
		o.ref = ref
		return nil
	}
}

// WithBuildLog streams the build's output to w. Default: discarded (a
// failed build's error still says why).
func WithBuildLog(w io.Writer) Option {
	return func(o *options) error {
		o.log = w
		return nil
	}
}

// EnsureImage makes the gateway image exist. Its build context is the files
// embedded in this package, streamed to the engine as a tar from memory
// (nothing is written to disk); an image built from the same files on the
// same base is not built again. The base image is made to exist through
// images, like every other image of a run.
func EnsureImage(ctx context.Context, cli ImageClient, images *image.Builder, opts ...Option) (image.Result, error) {
	o := options{ref: Image, log: io.Discard}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return image.Result{}, err
		}
	}
	fail := func(err error) (image.Result, error) {
		return image.Result{}, fmt.Errorf("gateway image %s: %w", o.ref, err)
	}
	base, err := images.Ensure(ctx, image.Spec{Ref: image.DebianBase, Origin: "rehearse gateway"})
	if err != nil {
		return fail(err)
	}
	buildContext, err := contextTar()
	if err != nil {
		return fail(err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "base\x00%s\x00", base[0].ID)
	h.Write(buildContext)
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if ins, err := cli.ImageInspect(ctx, o.ref); err == nil && ins.Config != nil && ins.Config.Labels[image.InputsLabel] == digest {
		return image.Result{Ref: o.ref, ID: ins.ID, Action: image.Cached}, nil
	} else if err != nil && !cerrdefs.IsNotFound(err) {
		return fail(fmt.Errorf("inspect: %w", err))
	}
	resp, err := cli.ImageBuild(ctx, bytes.NewReader(buildContext), client.ImageBuildOptions{
		Tags:        []string{o.ref},
		Dockerfile:  "Dockerfile",
		Labels:      map[string]string{image.InputsLabel: digest},
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return fail(fmt.Errorf("%w: %v", image.ErrBuild, err))
	}
	defer resp.Body.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, o.log, 0, false, nil); err != nil {
		return fail(fmt.Errorf("%w: %v", image.ErrBuild, err))
	}
	ins, err := cli.ImageInspect(ctx, o.ref)
	if err != nil {
		return fail(fmt.Errorf("%w: inspect after build: %v", image.ErrBuild, err))
	}
	return image.Result{Ref: o.ref, ID: ins.ID, Action: image.Built}, nil
}

// contextTar is the build context: the embedded files as a tar.
func contextTar() ([]byte, error) {
	sub, err := fs.Sub(files, "files")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(sub); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	return buf.Bytes(), nil
}

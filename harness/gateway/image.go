// Package gateway is the port gateway of a rehearsal run. Services sit on
// internal networks, where Docker publishes no ports; one small socat
// container per run joins those networks and a bridge and publishes each
// declared service port on 127.0.0.1. It is the only container of a run on a
// non-internal network, and it reaches nothing but the services' ports.
package gateway

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/rehearse/rehearse/harness/image"
)

// Image is the image of the port gateway.
const Image = "rehearse/gateway:1"

// files is the gateway's build context: its Dockerfile starts from
// image.DebianBase.
//
//go:embed files
var files embed.FS

// Option configures EnsureImage.
type Option func(*options) error

type options struct {
	ref string
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

// origin names the gateway image in errors and on progress boards.
const origin = "rehearse gateway"

// EnsureImage makes the gateway image exist, built by images from the files
// embedded in this package (image.Builder.EnsureFS: streamed from memory,
// cached by its inputs, on image.DebianBase like every other image of a run).
func EnsureImage(ctx context.Context, images *image.Builder, opts ...Option) (image.Result, error) {
	spec, err := ImageSpec(opts...)
	if err != nil {
		return image.Result{}, err
	}
	return images.EnsureFS(ctx, spec.Ref, spec.Origin, spec.Files)
}

// ImageSpec is the gateway image as an image.Spec, so that Builder.Ensure
// makes it along with other images (rehearse images does); EnsureImage
// then finds it cached.
func ImageSpec(opts ...Option) (image.Spec, error) {
	o := options{ref: Image}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return image.Spec{}, err
		}
	}
	sub, err := fs.Sub(files, "files")
	if err != nil {
		return image.Spec{}, err
	}
	return image.Spec{Ref: o.ref, Files: sub, Origin: origin}, nil
}

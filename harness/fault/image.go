package fault

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/rehearse/rehearse/harness/env"
	"github.com/rehearse/rehearse/harness/image"
)

// Image is the packet filter helper that network faults run in a service's
// network namespace: Debian with iptables and files/netfilter.sh.
const Image = "rehearse/netfilter:1"

// files is the helper's build context: its Dockerfile starts from
// image.DebianBase.
//
//go:embed files
var files embed.FS

const (
	helperOrigin    = "rehearse network fault helper"
	toxiproxyOrigin = "rehearse toxic network faults"
)

// EnsureImage makes the helper image exist, built with the environment's
// image builder from the files embedded in this package
// (image.Builder.EnsureFS: streamed from memory, cached by its inputs).
func EnsureImage(ctx context.Context, e *env.Environment) (image.Result, error) {
	images := e.ImageBuilder()
	if images == nil {
		return image.Result{}, fmt.Errorf("network fault helper image %s: the environment has no image builder", Image)
	}
	sub, err := fs.Sub(files, "files")
	if err != nil {
		return image.Result{}, err
	}
	return images.EnsureFS(ctx, Image, helperOrigin, sub)
}

// ImageSpecs are the images of network faults as image.Specs, so that
// Builder.Ensure makes them along with other images (rehearse images
// does) instead of the first scenario with a fault: the helper (Image)
// and the toxiproxy server packed onto it (ToxiproxyImage), whose module
// is found in the Go module cache (downloaded by the go command when
// missing). EnsureImage and EnsureToxiproxyImage then find them cached.
func ImageSpecs(ctx context.Context) ([]image.Spec, error) {
	sub, err := fs.Sub(files, "files")
	if err != nil {
		return nil, err
	}
	dir, err := moduleDir(ctx, ToxiproxyModule, "v"+ToxiproxyVersion)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy image %s: %w", ToxiproxyImage, err)
	}
	return []image.Spec{
		{Ref: Image, Files: sub, Origin: helperOrigin},
		toxiproxySpec(dir),
	}, nil
}

// toxiproxySpec is ToxiproxyImage: the server of the module in dir packed
// onto the helper image.
func toxiproxySpec(dir string) image.Spec {
	return image.Spec{
		Ref:  ToxiproxyImage,
		Base: Image,
		Go: []image.GoBinary{{
			Main:    filepath.Join(dir, "cmd", "server"),
			Path:    "/usr/local/bin/toxiproxy-server",
			Ldflags: "-X " + ToxiproxyModule + ".Version=" + ToxiproxyVersion,
		}},
		Origin: toxiproxyOrigin,
	}
}

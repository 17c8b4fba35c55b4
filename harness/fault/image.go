package fault

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

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
	return images.EnsureFS(ctx, Image, "rehearse network fault helper", sub)
}

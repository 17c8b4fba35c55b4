package fault

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
// engine from the files embedded in this package (streamed from memory);
// an image built from the same files on the same base is not built again.
func EnsureImage(ctx context.Context, e *env.Environment) (image.Result, error) {
	fail := func(err error) (image.Result, error) {
		return image.Result{}, fmt.Errorf("network fault helper image %s: %w", Image, err)
	}
	cli, images := e.Images()
	if cli == nil || images == nil {
		return fail(fmt.Errorf("the environment has no image builder"))
	}
	base, err := images.Ensure(ctx, image.Spec{Ref: image.DebianBase, Origin: "rehearse network fault helper"})
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
	if ins, err := cli.ImageInspect(ctx, Image); err == nil && ins.Config != nil && ins.Config.Labels[image.InputsLabel] == digest {
		return image.Result{Ref: Image, ID: ins.ID, Action: image.Cached}, nil
	} else if err != nil && !cerrdefs.IsNotFound(err) {
		return fail(fmt.Errorf("inspect: %w", err))
	}
	resp, err := cli.ImageBuild(ctx, bytes.NewReader(buildContext), client.ImageBuildOptions{
		Tags:        []string{Image},
		Dockerfile:  "Dockerfile",
		Labels:      map[string]string{image.InputsLabel: digest},
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return fail(fmt.Errorf("%w: %v", image.ErrBuild, err))
	}
	defer resp.Body.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil); err != nil {
		return fail(fmt.Errorf("%w: %v", image.ErrBuild, err))
	}
	ins, err := cli.ImageInspect(ctx, Image)
	if err != nil {
		return fail(fmt.Errorf("%w: inspect after build: %v", image.ErrBuild, err))
	}
	return image.Result{Ref: Image, ID: ins.ID, Action: image.Built}, nil
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

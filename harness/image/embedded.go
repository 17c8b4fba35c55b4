package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"

	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
)

// EnsureFS makes ref exist, built from files: a build context (a package's
// embedded files, say) whose Dockerfile starts from DebianBase. The context
// is streamed to the engine as a tar from memory, so nothing is written to
// disk, and an image built from the same files on the same base is not
// built again. The harness's own images (the port gateway, the network
// fault helper) are made this way.
func (b *Builder) EnsureFS(ctx context.Context, ref, origin string, files fs.FS) (Result, error) {
	if ref == "" {
		return Result{}, fmt.Errorf("%s: image: empty ref", origin)
	}
	// Concurrent calls share one build; a later call asks the engine again,
	// so a cached image is reported as such.
	v, err, _ := b.flight.Do("fs\x00"+ref, func() (any, error) {
		fail := func(err error) (Result, error) {
			return Result{}, fmt.Errorf("%s: image %s: %w", origin, ref, err)
		}
		base, err := b.Ensure(ctx, Spec{Ref: DebianBase, Origin: origin})
		if err != nil {
			return fail(err)
		}
		buildContext, err := tarFS(files)
		if err != nil {
			return fail(err)
		}
		h := sha256.New()
		fmt.Fprintf(h, "base\x00%s\x00", base[0].ID)
		h.Write(buildContext)
		digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
		if id, ok := b.labelMatches(ctx, ref, digest); ok {
			return Result{Ref: ref, ID: id, Action: Cached}, nil
		}
		resp, err := b.cli.ImageBuild(ctx, bytes.NewReader(buildContext), client.ImageBuildOptions{
			Tags:        []string{ref},
			Dockerfile:  "Dockerfile",
			Labels:      map[string]string{InputsLabel: digest},
			Remove:      true,
			ForceRemove: true,
		})
		if err != nil {
			return fail(fmt.Errorf("%w: %v", ErrBuild, err))
		}
		defer resp.Body.Close()
		if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, b.opts.log, 0, false, nil); err != nil {
			return fail(fmt.Errorf("%w: %v", ErrBuild, err))
		}
		id, ok := b.labelMatches(ctx, ref, digest)
		if !ok {
			return fail(fmt.Errorf("%w: the built image does not carry its inputs label", ErrBuild))
		}
		return Result{Ref: ref, ID: id, Action: Built}, nil
	})
	if err != nil {
		return Result{}, err
	}
	return v.(Result), nil
}

// tarFS is files as a tar, in memory.
func tarFS(files fs.FS) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(files); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	return buf.Bytes(), nil
}

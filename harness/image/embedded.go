package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"

	"github.com/moby/go-archive"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/internal/progress"
)

// EnsureFS makes ref exist, built from files: a build context (a package's
// embedded files, say) whose Dockerfile starts from DebianBase. The context
// is streamed to the engine as a tar from memory, so nothing is written to
// disk, and an image built from the same files on the same base is not
// built again. The harness's own images (the port gateway, the network
// fault helper) are made this way; Ensure with Spec.Files makes the same
// image, found cached here afterwards.
//
// Unlike Ensure, every call asks the engine again, so an image made by an
// earlier call is reported as cached. Each call has a task of its own:
// the board's for ref while that is unfinished and no other call drives
// it, otherwise one the board does not show.
func (b *Builder) EnsureFS(ctx context.Context, ref, origin string, files fs.FS) (Result, error) {
	if ref == "" {
		return Result{}, fmt.Errorf("%s: image: empty ref", origin)
	}
	defer b.call()()
	nodes, err := Graph(Spec{Ref: ref, Files: files, Origin: origin})
	if err != nil {
		return Result{}, err
	}
	byKey := make(map[string]*Node, len(nodes))
	for i := range nodes {
		byKey[nodes[i].Key()] = &nodes[i]
	}
	r, err := b.makeNode(ctx, byKey, byKey[ref]) // the bases once per Builder; the image itself each call
	if err != nil {
		return Result{}, fmt.Errorf("%s: image %s: %w", origin, ref, err)
	}
	return r, nil
}

// buildFS builds files, with dockerfile as their Dockerfile, into ref on
// the bases baseIDs, unless the inputs are unchanged. Callers share one
// build per ref (flight key "fs\x00"+ref).
func (b *Builder) buildFS(ctx context.Context, ref string, files fs.FS, dockerfile string, baseIDs []string, t *progress.Task) (Result, error) {
	buildContext, err := tarFS(files, dockerfile)
	if err != nil {
		return Result{}, err
	}
	h := sha256.New()
	for _, id := range baseIDs {
		fmt.Fprintf(h, "base\x00%s\x00", id)
	}
	h.Write(buildContext)
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if id, ok := b.labelMatches(ctx, ref, digest); ok {
		return Result{Ref: ref, ID: id, Action: Cached}, nil
	}
	release, err := b.acquire(ctx, t, b.heavy, "for a build slot")
	if err != nil {
		return Result{}, err
	}
	defer release()
	t.Run("building")
	resp, err := b.cli.ImageBuild(ctx, bytes.NewReader(buildContext), client.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  "Dockerfile",
		Labels:      b.labels(digest),
		NoCache:     b.opts.noCache,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrBuild, err)
	}
	defer resp.Body.Close()
	if err := followBuild(resp.Body, b.opts.log, t.Step); err != nil {
		return Result{}, err
	}
	id, ok := b.labelIs(ctx, ref, digest)
	if !ok {
		return Result{}, fmt.Errorf("%w: the built image does not carry its inputs label", ErrBuild)
	}
	return Result{Ref: ref, ID: id, Action: Built}, nil
}

// tarFS is files as a tar, in memory, with dockerfile as the content of
// its Dockerfile when that differs (a Dockerfile whose FROM lines a
// builder with a private prefix rewrote).
func tarFS(files fs.FS, dockerfile string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(files); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if orig, err := fs.ReadFile(files, "Dockerfile"); err != nil || string(orig) == dockerfile {
		return buf.Bytes(), nil
	}
	rc := archive.ReplaceFileTarWrapper(io.NopCloser(&buf), map[string]archive.TarModifierFunc{
		"Dockerfile": func(_ string, h *tar.Header, _ io.Reader) (*tar.Header, []byte, error) {
			h.Size = int64(len(dockerfile))
			return h, []byte(dockerfile), nil
		},
	})
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	return data, nil
}

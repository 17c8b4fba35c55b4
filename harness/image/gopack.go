package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rehearse/rehearse/internal/progress"
)

// packGo builds each Go program as a static binary and writes ref as base
// plus one layer holding the binaries (the way ko does, no Dockerfile).
func (b *Builder) packGo(ctx context.Context, ref, base string, bins []GoBinary, t *progress.Task) (Result, error) {
	t.Run("compiling")
	dc, ok := b.cli.(daemon.Client)
	if !ok {
		return Result{}, fmt.Errorf("engine client cannot load images")
	}
	baseIns, err := b.cli.ImageInspect(ctx, base)
	if err != nil {
		return Result{}, fmt.Errorf("base %s: %w", base, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "layout\x002\x00base\x00%s\x00", baseIns.ID)
	files := map[string][]byte{}
	for i, bin := range bins {
		if len(bins) > 1 {
			t.Step(i+1, len(bins))
		}
		// Built once per process while its inputs are unchanged
		// (goMemo): a cached image costs a stat walk, not a compile.
		sum, data, err := b.goBinary(ctx, bin)
		if err != nil {
			return Result{}, err
		}
		fmt.Fprintf(h, "bin\x00%s\x00%x\x00", bin.Path, sum)
		files[bin.Path] = data
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if id, ok := b.labelMatches(ctx, ref, digest); ok {
		return Result{Ref: ref, ID: id, Action: Cached}, nil
	}
	t.Run("packing Go binaries")

	baseRef, err := name.ParseReference(base)
	if err != nil {
		return Result{}, err
	}
	dopts := []daemon.Option{daemon.WithClient(dc), daemon.WithContext(ctx), daemon.WithFileBufferedOpener()}
	baseImg, err := daemon.Image(baseRef, dopts...)
	if err != nil {
		return Result{}, fmt.Errorf("read base %s: %w", base, err)
	}
	want := map[string]bool{}
	for p := range files {
		for _, d := range parents(strings.TrimPrefix(path.Clean("/"+p), "/")) {
			want[d] = true
		}
	}
	baseDirs, err := baseDirectories(baseImg, want)
	if err != nil {
		return Result{}, fmt.Errorf("read base %s: %w", base, err)
	}
	layerTar, err := binaryLayer(files, baseDirs)
	if err != nil {
		return Result{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return Result{}, err
	}
	img, err := mutate.AppendLayers(baseImg, layer)
	if err != nil {
		return Result{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return Result{}, err
	}
	cfg := cf.Config
	labels := map[string]string{}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	maps.Copy(labels, b.labels(digest))
	cfg.Labels = labels
	if img, err = mutate.Config(img, cfg); err != nil {
		return Result{}, err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return Result{}, err
	}
	if _, err := daemon.Write(tag, img, dopts...); err != nil {
		return Result{}, fmt.Errorf("%w: write %s: %v", ErrBuild, ref, err)
	}
	id, ok := b.labelIs(ctx, ref, digest)
	if !ok {
		return Result{}, fmt.Errorf("%w: image %s missing after write", ErrBuild, ref)
	}
	return Result{Ref: ref, ID: id, Action: Built}, nil
}

// goBuild runs go build of bin into out, every time; packGo goes through
// goBinary, which remembers builds.
func (b *Builder) goBuild(ctx context.Context, bin GoBinary, out string) error {
	goBuildRuns.Add(1)
	args := []string{"build", "-trimpath", "-o", out}
	if bin.Ldflags != "" {
		args = append(args, "-ldflags", bin.Ldflags)
	}
	args = append(args, ".")
	cmd := exec.CommandContext(ctx, b.opts.goTool, args...)
	cmd.Dir = bin.Main
	cmd.Env = goBuildEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: go build %s: %v\n%s", ErrBuild, bin.Main, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// binaryLayer is a tar with each binary at its path, and entries for its
// parent directories. Storage drivers unpack a layer into its own directory,
// so a parent left out would come back as root:root 0755 and hide the base's
// owner and mode: each parent carries the attributes it has in the base.
// The tar is written here, as ko does: go-archive tars host directories
// (one owner for all, host modes), and crane.Layer writes no directories.
func binaryLayer(files map[string][]byte, baseDirs map[string]*tar.Header) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	written := map[string]bool{}
	for _, p := range sortedPaths(files) {
		clean := strings.TrimPrefix(path.Clean("/"+p), "/")
		for _, d := range parents(clean) {
			if written[d] {
				continue
			}
			written[d] = true
			h := &tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir}
			if b, ok := baseDirs[d]; ok {
				h.Mode, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime = b.Mode, b.Uid, b.Gid, b.Uname, b.Gname, b.ModTime
			}
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
		}
		data := files[p]
		if err := tw.WriteHeader(&tar.Header{Name: clean, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// parents lists a path's parent directories, outermost first.
func parents(p string) []string {
	var out []string
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

// baseDirectories reads the headers of the given directories from the base
// image's flattened filesystem.
func baseDirectories(img v1.Image, want map[string]bool) (map[string]*tar.Header, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	found := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for len(found) < len(want) {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "/")
		if want[name] && h.Typeflag == tar.TypeDir {
			found[name] = h
		}
	}
	return found, nil
}

func sortedPaths(m map[string][]byte) []string {
	return slices.Sorted(maps.Keys(m)) // the same layer bytes give the same image ID
}

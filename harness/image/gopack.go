package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// packGo builds each Go program as a static binary and writes ref as base
// plus one layer holding the binaries (the way ko does, no Dockerfile).
func (b *Builder) packGo(ctx context.Context, ref, base string, bins []GoBinary) (Result, error) {
	dc, ok := b.cli.(daemon.Client)
	if !ok {
		return Result{}, fmt.Errorf("engine client cannot load images")
	}
	baseIns, err := b.cli.ImageInspect(ctx, base)
	if err != nil {
		return Result{}, fmt.Errorf("base %s: %w", base, err)
	}
	tmp, err := os.MkdirTemp("", "rehearse-go-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)

	h := sha256.New()
	fmt.Fprintf(h, "base\x00%s\x00", baseIns.ID)
	files := map[string][]byte{}
	for i, bin := range bins {
		out := filepath.Join(tmp, fmt.Sprintf("bin%d", i))
		if err := b.goBuild(ctx, bin, out); err != nil {
			return Result{}, err
		}
		data, err := os.ReadFile(out)
		if err != nil {
			return Result{}, err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(h, "bin\x00%s\x00%x\x00", bin.Path, sum)
		files[bin.Path] = data
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if id, ok := b.labelMatches(ctx, ref, digest); ok {
		return Result{Ref: ref, ID: id, Action: Cached}, nil
	}

	layerTar, err := binaryLayer(files)
	if err != nil {
		return Result{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return Result{}, err
	}
	baseRef, err := name.ParseReference(base)
	if err != nil {
		return Result{}, err
	}
	dopts := []daemon.Option{daemon.WithClient(dc), daemon.WithContext(ctx)}
	baseImg, err := daemon.Image(baseRef, dopts...)
	if err != nil {
		return Result{}, fmt.Errorf("read base %s: %w", base, err)
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
	labels[InputsLabel] = digest
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
	id, ok := b.labelMatches(ctx, ref, digest)
	if !ok {
		return Result{}, fmt.Errorf("%w: image %s missing after write", ErrBuild, ref)
	}
	return Result{Ref: ref, ID: id, Action: Built}, nil
}

func (b *Builder) goBuild(ctx context.Context, bin GoBinary, out string) error {
	args := []string{"build", "-trimpath", "-o", out}
	if bin.Ldflags != "" {
		args = append(args, "-ldflags", bin.Ldflags)
	}
	args = append(args, ".")
	cmd := exec.CommandContext(ctx, b.opts.goTool, args...)
	cmd.Dir = bin.Main
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: go build %s: %v\n%s", ErrBuild, bin.Main, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// binaryLayer is a tar with each binary at its path, with parent directories.
func binaryLayer(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, p := range sortedPaths(files) {
		clean := strings.TrimPrefix(path.Clean("/"+p), "/")
		var parents []string
		for d := path.Dir(clean); d != "." && d != "/"; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
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

func sortedPaths(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the same layer bytes give the same image ID
	return keys
}

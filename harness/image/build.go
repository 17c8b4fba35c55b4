package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/go-archive"
	"github.com/moby/moby/client"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/rehearse/rehearse/internal/progress"
)

const inlineDockerfile = ".rehearse.inline.Dockerfile"

// build builds a Dockerfile node of a graph on its bases (deps, in the
// order of n.bases) unless the inputs are unchanged.
func (b *Builder) build(ctx context.Context, n *Node, deps []Result, t *progress.Task) (Result, error) {
	t.Run("checking")
	ref := b.engineRef(n.Ref)
	dockerfile := n.dockerfile
	rename := map[string]string{}
	var baseIDs, ids []string
	for i, base := range n.bases {
		baseIDs = append(baseIDs, base+"="+deps[i].ID)
		ids = append(ids, deps[i].ID)
		if deps[i].Ref != base {
			rename[base] = deps[i].Ref
		}
	}
	if len(rename) > 0 {
		var err error
		if dockerfile, err = n.renameBases(rename); err != nil {
			return Result{}, err
		}
	}
	if n.files != nil {
		v, err, _ := b.flight.Do("fs\x00"+ref, func() (any, error) {
			return b.buildFS(ctx, ref, n.files, dockerfile, ids, t)
		})
		if err != nil {
			return Result{}, err
		}
		return v.(Result), nil
	}
	bd := *n.build
	if dockerfile != n.dockerfile {
		bd.Inline = dockerfile
	}
	return b.buildDir(ctx, ref, bd, dockerfile, baseIDs, t)
}

// buildDir builds a Dockerfile with a build context directory into ref
// unless the inputs are unchanged.
func (b *Builder) buildDir(ctx context.Context, ref string, bd Build, dockerfile string, baseIDs []string, t *progress.Task) (Result, error) {
	excludes, err := dockerignore(bd.Context)
	if err != nil {
		return Result{}, err
	}
	digest, err := buildDigest(bd, dockerfile, baseIDs, excludes)
	if err != nil {
		return Result{}, err
	}
	if id, ok := b.labelMatches(ctx, ref, digest); ok {
		return Result{Ref: ref, ID: id, Action: Cached}, nil
	}
	release, err := b.acquire(ctx, t, b.heavy, "for a build slot")
	if err != nil {
		return Result{}, err
	}
	defer release()
	t.Run("building")
	body, err := archive.TarWithOptions(bd.Context, &archive.TarOptions{ExcludePatterns: excludes})
	if err != nil {
		return Result{}, fmt.Errorf("build context %s: %w", bd.Context, err)
	}
	dfName := bd.Dockerfile
	if bd.Inline != "" {
		dfName = inlineDockerfile
		body = withInlineDockerfile(body, bd.Inline)
	}
	defer body.Close() // stops the goroutines writing the context if the build ends early
	args := map[string]*string{}
	for k, v := range bd.Args {
		args[k] = &v
	}
	resp, err := b.cli.ImageBuild(ctx, body, client.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  dfName,
		BuildArgs:   args,
		Target:      bd.Target,
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
		return Result{}, fmt.Errorf("%w: image %s missing after build", ErrBuild, ref)
	}
	return Result{Ref: ref, ID: id, Action: Built}, nil
}

// dockerfileName names a build's Dockerfile for errors.
func dockerfileName(bd Build) string {
	if bd.Inline != "" {
		return "inline Dockerfile"
	}
	return "Dockerfile " + filepath.Join(bd.Context, bd.Dockerfile)
}

func dockerfileText(bd Build) (string, error) {
	if bd.Inline != "" {
		return bd.Inline, nil
	}
	data, err := os.ReadFile(filepath.Join(bd.Context, bd.Dockerfile))
	if err != nil {
		return "", fmt.Errorf("dockerfile: %w", err)
	}
	return string(data), nil
}

// stepLine is the classic builder's line for each instruction.
var stepLine = regexp.MustCompile(`^Step (\d+)/(\d+) :`)

// followBuild copies the build's output to log and returns the build's error
// with the last lines of output. step is told each "Step k/n :" of the
// classic builder's output.
func followBuild(r io.Reader, log io.Writer, step func(k, n int)) error {
	dec := json.NewDecoder(r)
	var tail []string
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("%w: reading build output: %v", ErrBuild, err)
		}
		if msg.Stream != "" {
			io.WriteString(log, msg.Stream)
			for _, line := range strings.Split(strings.TrimRight(msg.Stream, "\n"), "\n") {
				tail = append(tail, line)
				if m := stepLine.FindStringSubmatch(line); m != nil {
					k, _ := strconv.Atoi(m[1])
					n, _ := strconv.Atoi(m[2])
					step(k, n)
				}
			}
			if len(tail) > 15 {
				tail = tail[len(tail)-15:]
			}
		}
		if msg.Error != "" {
			return fmt.Errorf("%w: %s\n--- last build output ---\n%s", ErrBuild, msg.Error, strings.Join(tail, "\n"))
		}
	}
}

// withInlineDockerfile returns the build context tar with the inline
// Dockerfile added as inlineDockerfile, and that name added to the
// .dockerignore the engine reads, so the engine drops it from the context
// after reading it and COPY . never sees it (what docker build - does).
func withInlineDockerfile(buildContext io.ReadCloser, dockerfile string) io.ReadCloser {
	return archive.ReplaceFileTarWrapper(buildContext, map[string]archive.TarModifierFunc{
		inlineDockerfile: func(string, *tar.Header, io.Reader) (*tar.Header, []byte, error) {
			return &tar.Header{Name: inlineDockerfile, Mode: 0o644, Typeflag: tar.TypeReg}, []byte(dockerfile), nil
		},
		".dockerignore": func(_ string, h *tar.Header, content io.Reader) (*tar.Header, []byte, error) {
			var b bytes.Buffer
			if h == nil { // one made here names itself, so it is dropped too
				h = &tar.Header{Name: ".dockerignore", Mode: 0o644, Typeflag: tar.TypeReg}
				b.WriteString(".dockerignore")
			} else if _, err := b.ReadFrom(content); err != nil {
				return nil, nil, err
			}
			b.WriteString("\n" + inlineDockerfile + "\n")
			return h, b.Bytes(), nil
		},
	})
}

func dockerignore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	return ignorefile.ReadAll(f)
}

// buildDigest hashes what a build depends on: file paths, modes and
// contents (not times: a fresh clone must hit the cache), the Dockerfile,
// arguments, target and the base images' IDs.
func buildDigest(bd Build, dockerfile string, baseIDs, excludes []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "dockerfile\x00%s\x00target\x00%s\x00", dockerfile, bd.Target)
	keys := make([]string, 0, len(bd.Args))
	for k := range bd.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "arg\x00%s=%s\x00", k, bd.Args[k])
	}
	for _, id := range baseIDs {
		fmt.Fprintf(h, "base\x00%s\x00", id)
	}
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return "", fmt.Errorf(".dockerignore: %w", err)
	}
	err = filepath.WalkDir(bd.Context, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(bd.Context, path)
		if rel == "." {
			return nil
		}
		if skip, _ := pm.MatchesOrParentMatches(rel); skip {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "file\x00%s\x00%o\x00", filepath.ToSlash(rel), info.Mode())
		switch {
		case info.Mode().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(h, f)
			return err
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			io.WriteString(h, target)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash build context: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

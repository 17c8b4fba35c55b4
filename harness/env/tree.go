package env

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ReadTree reads a path of the service's file system as the engine archives
// it (docker cp): fn is called for every entry under p, p included, in the
// archive's order, with the entry's header (Name is the absolute path inside
// the service; Uid and Gid are numeric, Uname and Gname empty) and, for a
// regular file, its content. A link is an entry of its own, never followed.
// It reads the files without any tool of the service's image and changes
// nothing; the service may be stopped or paused.
//
// The archive streams as fn goes: fn bounds what it reads and keeps (a
// file's header says its size before its content comes), and an error from
// fn stops the walk and is returned as is. A path that does not exist is an
// error wrapping fs.ErrNotExist.
func (s *Service) ReadTree(ctx context.Context, p string, fn func(h *tar.Header, content io.Reader) error) error {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return fmt.Errorf("read %s:%s: not an absolute, clean path", s.Name, p)
	}
	res, err := s.env.cli.CopyFromContainer(ctx, s.ContainerID, client.CopyFromContainerOptions{SourcePath: p})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			// The engine answers 404 for a missing container as well.
			if _, ierr := s.env.cli.ContainerInspect(ctx, s.ContainerID, client.ContainerInspectOptions{}); ierr == nil {
				return fmt.Errorf("read %s:%s: %w", s.Name, p, fs.ErrNotExist)
			}
		}
		return fmt.Errorf("read %s:%s: %w", s.Name, p, err)
	}
	defer res.Content.Close()
	// The archive names entries after p's last element.
	parent := path.Dir(p)
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s:%s: %w", s.Name, p, err)
		}
		name := path.Join(parent, h.Name)
		if name != p && !strings.HasPrefix(name, strings.TrimSuffix(p, "/")+"/") {
			return fmt.Errorf("read %s:%s: the engine archived %q, outside it", s.Name, p, h.Name)
		}
		h.Name = name
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

package env

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/rehearse/rehearse/harness/image"
)

// slowPull is an engine without images whose pulls hang until released.
type slowPull struct{ release chan struct{} }

func (s slowPull) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	return client.ImageInspectResult{}, fmt.Errorf("image %s: %w", ref, cerrdefs.ErrNotFound)
}

func (s slowPull) ImageBuild(context.Context, io.Reader, client.ImageBuildOptions) (client.ImageBuildResult, error) {
	return client.ImageBuildResult{}, fmt.Errorf("no builds")
}

func (s slowPull) ImageImport(context.Context, client.ImageImportSource, string, client.ImageImportOptions) (client.ImageImportResult, error) {
	return nil, fmt.Errorf("no imports")
}

func (s slowPull) ImagePull(context.Context, string, client.ImagePullOptions) (client.ImagePullResponse, error) {
	<-s.release
	return nil, fmt.Errorf("no registry")
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The environment's image builder writes progress lines to the progress
// writer while an image takes long, or to WithImageProgress's writer.
func TestImageProgressLines(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opts   func(log, lines io.Writer) []StartOption
		toLine bool // to WithImageProgress's writer, not the log
	}{
		{"the progress writer", func(log, _ io.Writer) []StartOption { return []StartOption{WithProgress(log)} }, false},
		{"WithImageProgress", func(log, lines io.Writer) []StartOption {
			return []StartOption{WithProgress(log), WithImageProgress(lines)}
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log, lines syncBuf
			o := startOptions{log: io.Discard}
			for _, opt := range tt.opts(&log, &lines) {
				if err := opt(&o); err != nil {
					t.Fatal(err)
				}
			}
			engine := slowPull{release: make(chan struct{})}
			b, err := image.NewBuilder(engine, o.builderOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := b.Ensure(context.Background(), image.Spec{Ref: "w/slow:1", Origin: "services.slow"})
				done <- err
			}()
			want := &log
			if tt.toLine {
				want = &lines
			}
			deadline := time.Now().Add(time.Minute) // a guard against hanging
			for !strings.Contains(want.String(), "images: 0/1 done, pulling w/slow:1") {
				if time.Now().After(deadline) {
					t.Fatalf("no progress line:\nlog: %s\nlines: %s", log.String(), lines.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			close(engine.release)
			<-done
			if tt.toLine && log.String() != "" {
				t.Errorf("image progress in the log too: %q", log.String())
			}
		})
	}
}

package enginetest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// recorder is a testing.TB whose Fatalf ends only the checking goroutine.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func check(t *testing.T, f func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

// "Nothing left behind" proves nothing for a run that never made anything:
// AssertGone alone passes then, AssertCreatedThenGone does not.
func TestAssertCreatedThenGone(t *testing.T) {
	cli := Connect(t)
	ctx := context.Background()
	id := fmt.Sprintf("enginetest-%d", time.Now().UnixNano())
	since := time.Now()
	if msg := check(t, func(tb testing.TB) { AssertGone(tb, cli, id, 0) }); msg != "" {
		t.Fatalf("AssertGone on a run that made nothing: %s", msg)
	}
	if msg := check(t, func(tb testing.TB) { AssertCreatedThenGone(tb, cli, id, since, 0) }); !strings.Contains(msg, "created nothing") {
		t.Errorf("AssertCreatedThenGone on a run that made nothing: %q, want a failure", msg)
	}
	name := "rehearse-" + id + "-v"
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: map[string]string{"rehearse.run": id}}); err != nil {
		t.Fatal(err)
	}
	if msg := check(t, func(tb testing.TB) { AssertCreatedThenGone(tb, cli, id, since, 0) }); !strings.Contains(msg, "left 0 containers, 0 networks, 1 volumes") {
		t.Errorf("AssertCreatedThenGone with a volume left: %q", msg)
	}
	if _, err := cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if msg := check(t, func(tb testing.TB) { AssertCreatedThenGone(tb, cli, id, since, 0) }); msg != "" {
		t.Errorf("AssertCreatedThenGone after removal: %s", msg)
	}
}

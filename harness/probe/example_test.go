package probe_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/rehearse/rehearse/harness/probe"
	"github.com/rehearse/rehearse/harness/timeline"
)

// Probe a service over HTTP every 50 ms while something happens, then ask
// the samples how it went.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()

	check, err := probe.HTTP(srv.URL+"/health", probe.WithBody("ok"))
	if err != nil {
		panic(err)
	}
	tl := timeline.New()
	s, err := probe.NewSampler(check, probe.WithInterval(50*time.Millisecond),
		probe.WithTimeout(time.Second), probe.WithTimeline(tl), probe.WithName("web"))
	if err != nil {
		panic(err)
	}
	if err := s.Start(context.Background()); err != nil {
		panic(err)
	}
	time.Sleep(300 * time.Millisecond) // the upgrade, the fault: whatever is rehearsed
	samples := s.Stop()

	sum := probe.Summarize(samples, s.Interval())
	fmt.Printf("availability %.0f%%, %d outages\n", sum.Availability*100, len(sum.Outages))
	for _, e := range tl.Filter(probe.Kind) {
		fmt.Println(e.Actor, e.Name)
	}
	// Output:
	// availability 100%, 0 outages
	// web start
	// web up
	// web stop
}

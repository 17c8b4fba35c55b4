// Command node is every service of the scenarios fault tests (a copy of
// harness/fault/testdata/node): an HTTP server on :8080, its own client
// (-get URL) and its healthcheck (-check).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	get := flag.String("get", "", "fetch this URL, print the answer, exit 1 on any failure")
	check := flag.Bool("check", false, "healthcheck: fetch the local server")
	timeout := flag.Duration("timeout", time.Second, "time limit of -get and -check")
	flag.Parse()
	if *check {
		*get = "http://127.0.0.1:8080/"
	}
	if *get != "" {
		os.Exit(fetch(*get, *timeout))
	}
	host, _ := os.Hostname()
	started := time.Now().UnixNano()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s %d\n", host, started)
	})
	// /bytes/N answers N bytes, for the bandwidth step.
	http.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 || n > 64<<20 {
			http.Error(w, "bytes: 0 to 64MiB", http.StatusBadRequest)
			return
		}
		w.Write(bytes.Repeat([]byte{'x'}, n))
	})
	fmt.Println("node: listening on :8080")
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
}

func fetch(url string, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status, err)
		return 1
	}
	fmt.Print(string(body))
	return 0
}

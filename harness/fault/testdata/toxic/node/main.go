// Command node is every service of the toxic fault tests: an HTTP server on
// :8080 that answers "/" with the address the request came from and
// "/bytes?n=N" with N bytes, its own client, and its healthcheck (-check).
//
// As a client (-get URL) it makes -n requests, -every apart, over one
// keep-alive connection pool (as a service's connection pool would), and
// prints one line per request:
//
//	START_UNIX_MS ELAPSED_MS reused|new BODY-or-error
//
// It exits 1 if the last request failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	get := flag.String("get", "", "fetch this URL")
	check := flag.Bool("check", false, "healthcheck: fetch the local server")
	n := flag.Int("n", 1, "requests to make")
	every := flag.Duration("every", 0, "time between the starts of two requests")
	timeout := flag.Duration("timeout", 5*time.Second, "time limit of each request")
	flag.Parse()
	if *check {
		*get = "http://127.0.0.1:8080/"
	}
	if *get != "" {
		os.Exit(fetchAll(*get, *n, *every, *timeout))
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host := r.RemoteAddr
		if i := strings.LastIndex(host, ":"); i >= 0 {
			host = strings.Trim(host[:i], "[]")
		}
		fmt.Fprintf(w, "from %s", host)
	})
	http.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 {
			http.Error(w, "n: want a count", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		chunk := make([]byte, 4096)
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	fmt.Println("node: listening on :8080")
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
}

func fetchAll(url string, n int, every, timeout time.Duration) int {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}}
	code := 0
	next := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(next))
		next = next.Add(every)
		code = fetch(client, url, timeout)
	}
	return code
}

func fetch(client *http.Client, url string, timeout time.Duration) int {
	start := time.Now()
	reused := "new"
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) {
		if c.Reused {
			reused = "reused"
		} else {
			reused = "new"
		}
	}})
	line := func(what string) {
		fmt.Printf("%d %d %s %s\n", start.UnixMilli(), time.Since(start).Milliseconds(), reused, what)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		line("error " + err.Error())
		return 2
	}
	resp, err := client.Do(req)
	if err != nil {
		line("error " + err.Error())
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		line(fmt.Sprintf("error %s %v", resp.Status, err))
		return 1
	}
	if len(body) > 100 {
		body = []byte(fmt.Sprintf("%d bytes", len(body)))
	}
	line(string(body))
	return 0
}

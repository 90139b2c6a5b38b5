// Command loadgen is a small closed-loop HTTP load generator for the
// llm_affinity benchmarks. It only talks to loopback addresses.
//
//	loadgen -url http://127.0.0.1:8080/v1/chat/completions -body req.json \
//	        -concurrency 64 -duration 4s -warmup 1s -sessions 64
//
// It prints one JSON line: requests, errors, rps, p50_us, p99_us, mean_us.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error {
	if !strings.Contains(v, ":") {
		return fmt.Errorf("header %q: want key:value", v)
	}
	*h = append(*h, v)
	return nil
}

const (
	maxDuration = 5 * time.Minute
	maxRequests = 10_000_000
)

type result struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	RPS      float64 `json:"rps"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	MeanUs   float64 `json:"mean_us"`
	Seconds  float64 `json:"seconds"`
	Workers  int     `json:"concurrency"`
	Sessions int     `json:"sessions"`
}

// checkLoopback refuses any URL whose host is not a loopback IP or "localhost".
func checkLoopback(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return u, nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("url %q: host %q is not a loopback address; refusing", raw, host)
	}
	return u, nil
}

func main() {
	var (
		rawURL      = flag.String("url", "", "target URL (loopback only)")
		concurrency = flag.Int("concurrency", 1, "concurrent workers (closed loop)")
		duration    = flag.Duration("duration", 0, "measurement duration (max 5m); default 10s if -requests is 0")
		requests    = flag.Int64("requests", 0, "total measured requests (instead of -duration)")
		bodyFile    = flag.String("body", "", "request body file (POST); empty means GET")
		method      = flag.String("method", "", "HTTP method (default POST with -body, else GET)")
		sessions    = flag.Int("sessions", 0, "when >0, each worker sends X-Model-Affinity from a fixed pool of N ids")
		sessHeader  = flag.String("session-header", "X-Model-Affinity", "header carrying the session id")
		warmup      = flag.Duration("warmup", 0, "warm-up duration before measuring (not counted)")
		timeout     = flag.Duration("timeout", 30*time.Second, "per-request timeout")
		headers     headerFlags
	)
	flag.Var(&headers, "header", "extra request header key:value (repeatable)")
	flag.Parse()

	if err := run(*rawURL, *concurrency, *duration, *requests, *bodyFile, *method,
		*sessions, *sessHeader, *warmup, *timeout, headers); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(rawURL string, concurrency int, duration time.Duration, requests int64,
	bodyFile, method string, sessions int, sessHeader string, warmup, timeout time.Duration,
	headers headerFlags) error {
	u, err := checkLoopback(rawURL)
	if err != nil {
		return err
	}
	if concurrency < 1 || concurrency > 4096 {
		return errors.New("-concurrency must be in 1..4096")
	}
	if requests < 0 || requests > maxRequests {
		return fmt.Errorf("-requests must be in 0..%d", maxRequests)
	}
	if requests == 0 && duration == 0 {
		duration = 10 * time.Second
	}
	if duration < 0 || duration > maxDuration || warmup < 0 || warmup > maxDuration {
		return fmt.Errorf("-duration and -warmup must be in 0..%s", maxDuration)
	}
	var body []byte
	if bodyFile != "" {
		if body, err = os.ReadFile(bodyFile); err != nil {
			return err
		}
	}
	if method == "" {
		method = http.MethodGet
		if bodyFile != "" {
			method = http.MethodPost
		}
	}
	hdr := http.Header{}
	if body != nil {
		hdr.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}

	tr := &http.Transport{
		Proxy:               nil, // never go through a proxy: loopback only
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency * 2,
		MaxIdleConnsPerHost: concurrency * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // never follow a redirect off loopback
		},
	}

	// Session pool: worker i uses id i % sessions, fixed for the whole run,
	// so after its first request every request of a session is a pin hit.
	sessionID := func(worker int) string {
		if sessions <= 0 {
			return ""
		}
		return fmt.Sprintf("bench-session-%04d", worker%sessions)
	}

	doOne := func(ctx context.Context, worker int, buf []byte) (time.Duration, bool) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
		if err != nil {
			return 0, false
		}
		req.Header = hdr.Clone()
		if id := sessionID(worker); id != "" {
			req.Header.Set(sessHeader, id)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return time.Since(start), false
		}
		_, cerr := io.CopyBuffer(io.Discard, resp.Body, buf)
		resp.Body.Close()
		el := time.Since(start)
		return el, cerr == nil && resp.StatusCode >= 200 && resp.StatusCode < 300
	}

	// phase runs the closed loop until the deadline or until n requests
	// (n > 0) have been issued, recording latencies when rec is true.
	phase := func(d time.Duration, n int64, rec bool) ([][]time.Duration, int64, int64, time.Duration) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var issued, errs, done atomic.Int64
		lats := make([][]time.Duration, concurrency)
		var wg sync.WaitGroup
		var deadline time.Time
		if d > 0 {
			deadline = time.Now().Add(d)
		}
		start := time.Now()
		for w := 0; w < concurrency; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				var mine []time.Duration
				if rec {
					mine = make([]time.Duration, 0, 4096)
				}
				for {
					if n > 0 && issued.Add(1) > n {
						break
					}
					if !deadline.IsZero() && !time.Now().Before(deadline) {
						break
					}
					el, ok := doOne(ctx, w, buf)
					done.Add(1)
					if !ok {
						errs.Add(1)
					}
					if rec {
						mine = append(mine, el)
					}
				}
				lats[w] = mine
			}(w)
		}
		wg.Wait()
		return lats, done.Load(), errs.Load(), time.Since(start)
	}

	if warmup > 0 {
		phase(warmup, 0, false)
	}
	lats, n, errs, elapsed := phase(duration, requests, true)

	all := make([]time.Duration, 0, n)
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res := result{Requests: n, Errors: errs, Seconds: elapsed.Seconds(), Workers: concurrency, Sessions: sessions}
	if elapsed > 0 {
		res.RPS = float64(n) / elapsed.Seconds()
	}
	if len(all) > 0 {
		var sum time.Duration
		for _, l := range all {
			sum += l
		}
		res.MeanUs = float64(sum.Microseconds()) / float64(len(all))
		res.P50us = float64(pct(all, 0.50).Microseconds())
		res.P99us = float64(pct(all, 0.99).Microseconds())
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// pct returns the q-quantile (nearest rank) of sorted latencies.
func pct(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

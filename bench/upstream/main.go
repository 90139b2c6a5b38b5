// Command upstream is a fast fake OpenAI-compatible provider for the
// llm_affinity benchmarks: POST /v1/chat/completions drains the request body
// and answers a small fixed chat.completion; GET /healthz answers ok.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

const completion = `{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,` +
	`"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant",` +
	`"content":"OK, I will call the tool next."},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":100,"completion_tokens":8,"total_tokens":108}}`

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address (loopback)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		log.Fatal(err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fmt.Fprintf(os.Stderr, "upstream: %q is not a loopback address; refusing\n", host)
		os.Exit(1)
	}

	resp := []byte(completion)
	clen := strconv.Itoa(len(resp))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{clen}
		_, _ = w.Write(resp)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	srv := &http.Server{
		Addr:              *addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	log.Fatal(srv.ListenAndServe())
}

package llmaffinity

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/llmaffinity/caddy-llm-affinity/internal/agentbody"
	"github.com/llmaffinity/caddy-llm-affinity/routing"
)

// Benchmarks of what the handler adds to a request, without the network: a
// request prepared as Caddy's server prepares it goes through ServeHTTP to a
// next handler that reads the body, as reverse_proxy would. "direct" calls
// that next handler alone, so the difference is the module's cost.
//
//	go test -run '^$' -bench ServeHTTP -benchmem .
//
// benchReply is the upstream's answer in BenchmarkServeHTTP: a short Chat
// completion with its usage, as a provider sends it.
var benchReply = []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"I read internal/proxy/file_3.go: the handler buffers the whole body ` +
	`before it forwards it, so a large body waits for the read. I will stream it instead and run the tests.","refusal":null},` +
	`"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":8123,"completion_tokens":48,"total_tokens":8171,` +
	`"prompt_tokens_details":{"cached_tokens":7936,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,` +
	`"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_bench"}`)

func BenchmarkServeHTTP(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"1KB", 1 << 10}, {"32KB", 32 << 10}, {"256KB", 256 << 10}} {
		body := agentbody.Generate(size.bytes)
		h := &Handler{
			Default: "a",
			Models: []*Model{
				{Name: "a", To: []string{"127.0.0.1:9"}, APIKey: "sk-bench-a"},
				{Name: "b", To: []string{"127.0.0.1:9"}, APIKey: "sk-bench-b", UpstreamModel: "b-upstream"},
			},
			Routes: []*Route{{Name: "chat", Models: []string{"b"}, When: []*routing.Condition{{LastRole: "user"}}}},
		}
		if err := cfgProvision(b, h); err != nil {
			b.Fatal(err)
		}
		h.logger = zap.NewNop() // a server logs at info; the test context logs debug
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			defer r.Body.Close() // as reverse_proxy's transport always does
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				return err
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, err := w.Write(benchReply)
			return err
		})
		scenarios := []struct {
			name   string
			header string // X-Model-Affinity, "" for none
			serve  func(w http.ResponseWriter, r *http.Request) error
		}{
			{"direct", "", func(w http.ResponseWriter, r *http.Request) error { return next.ServeHTTP(w, r) }},
			{"pinned", "bench-session", func(w http.ResponseWriter, r *http.Request) error { return h.ServeHTTP(w, r, next) }},
			{"rules", "", func(w http.ResponseWriter, r *http.Request) error { return h.ServeHTTP(w, r, next) }},
		}
		for _, sc := range scenarios {
			b.Run(size.name+"/"+sc.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					w := httptest.NewRecorder()
					r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
					r.Header.Set("Authorization", "Bearer client-key")
					if sc.header != "" {
						r.Header.Set(DefaultHeader, sc.header)
					}
					r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, &caddyhttp.Server{})
					if err := sc.serve(w, r); err != nil || w.Code != http.StatusOK {
						b.Fatalf("status %d, error %v", w.Code, err)
					}
				}
			})
		}
	}
}

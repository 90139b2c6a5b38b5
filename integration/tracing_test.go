package integration

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestTracingSpanAttributes: with Caddy's tracing directive on, the span of
// each chat request, as Caddy exports it over OTLP/HTTP (the exporter its
// OTEL_* variables choose), carries the GenAI semantic-convention
// attributes of the turn (provider, requested and answering model, tokens
// with cache reads and writes, for a stream the time to its first chunk) and
// the gateway's decision (model, route, status, the key's hash), and no
// attribute of any span or resource carries the prompt, the affinity key or
// the model's API key.
func TestTracingSpanAttributes(t *testing.T) {
	setKeys(t)
	const (
		secret = "sk-openai-test-secret" // what setKeys gives the model
		key    = "S-tracing-session-5e1f"
		prompt = "Compare the Postgres and MySQL replication docs for ACME-TRACE-PROMPT"
	)
	col := newOTLPCollector(t)
	col.exportTo(t)
	gpt := newFakeUpstreamFunc(t, "gpt", usageReplies)
	site := testSite{
		directives:   []string{"tracing {\n\tspan llm_gateway\n}"},
		defaultModel: "gpt-4o",
		models:       []siteModel{{name: "gpt-4o", to: gpt.addr(), apiKey: "{env.LLMA_TEST_OPENAI_KEY}"}},
		routes:       []siteRoute{{name: "chat", when: "last_role user", models: "gpt-4o"}},
	}
	startCaddy(t, site)
	// a config without tracing: Caddy flushes and shuts down its tracer
	// provider before the collector goes away
	t.Cleanup(func() { closeLogFiles(t) })

	// each request is the child of a trace the test names in traceparent,
	// so its span is found by its trace id
	const plainTrace, streamTrace = "4bf92f3577b34da6a3ce929d0e0e4736", "5ce0e9a56015fec5aadfa328ae398115"
	mustChat(t, gateway, chat("gpt-4o", prompt), "X-Model-Affinity", key,
		"Traceparent", "00-"+plainTrace+"-00f067aa0ba902b7-01")
	streamed, err := json.Marshal(map[string]any{"model": "gpt-4o", "stream": true,
		"stream_options": map[string]any{"include_usage": true},
		"messages":       []map[string]any{{"role": "user", "content": prompt}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, "/v1/chat/completions", streamed, "X-Model-Affinity", key,
		"Traceparent", "00-"+streamTrace+"-00f067aa0ba902b7-01")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("data: [DONE]")) {
		t.Fatalf("streamed request: status %d: %s", resp.StatusCode, body)
	}

	digest := sha256.Sum256([]byte(key))
	keyHash := hex.EncodeToString(digest[:8])
	common := map[string]any{
		"gen_ai.operation.name":                    "chat",
		"gen_ai.provider.name":                     "openai",
		"gen_ai.request.model":                     "gpt-4o",
		"gen_ai.response.model":                    "gpt-4o-2024-08-06",
		"gen_ai.usage.input_tokens":                int64(1200),
		"gen_ai.usage.output_tokens":               int64(85),
		"gen_ai.usage.cache_read.input_tokens":     int64(1024),
		"gen_ai.usage.cache_creation.input_tokens": int64(0),
		"llm_affinity.model":                       "gpt-4o",
		"llm_affinity.route":                       "chat",
		"llm_affinity.key_hash":                    keyHash,
	}
	for _, tc := range []struct {
		name, traceID, status string
		streamed              bool
	}{
		{"plain", plainTrace, "routed", false},
		{"streamed", streamTrace, "pinned", true},
	} {
		span := col.waitForSpan(t, tc.traceID, "llm_gateway")
		attrs := spanAttributes(span)
		want := map[string]any{"llm_affinity.status": tc.status}
		for k, v := range common {
			want[k] = v
		}
		if tc.streamed {
			want["gen_ai.request.stream"] = true
		}
		var missing []string
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if got, ok := attrs[k]; !ok {
				missing = append(missing, k)
			} else if got != want[k] {
				t.Errorf("%s span: %s = %#v, want %#v", tc.name, k, got, want[k])
			}
		}
		if missing != nil {
			t.Errorf("%s span: no %s; it has %v", tc.name, strings.Join(missing, ", "), attrs)
		}
		ttft, ok := attrs["gen_ai.response.time_to_first_chunk"].(float64)
		switch {
		case tc.streamed && (!ok || ttft <= 0 || ttft > patience.Seconds()):
			t.Errorf("%s span: gen_ai.response.time_to_first_chunk = %v, want seconds > 0", tc.name, attrs["gen_ai.response.time_to_first_chunk"])
		case !tc.streamed && attrs["gen_ai.response.time_to_first_chunk"] != nil:
			t.Errorf("%s span: gen_ai.response.time_to_first_chunk set on a response that is not a stream", tc.name)
		}
		if _, priced := attrs["llm_affinity.cost_usd"]; priced {
			t.Errorf("%s span: llm_affinity.cost_usd set for a model without a price", tc.name)
		}
	}

	// nothing exported carries what a client or the config holds secret
	for _, text := range col.allStrings() {
		for _, s := range []string{prompt, "ACME-TRACE-PROMPT", key, secret} {
			if strings.Contains(text, s) {
				t.Errorf("an exported span carries %q: %q", s, text)
			}
		}
	}
}

// usageReplies answers a chat request as gpt-4o-2024-08-06 with 1200 input
// tokens, 1024 of them read from the cache, and 85 output tokens: a JSON
// response, or for a stream two chunks and a usage chunk.
func usageReplies(w http.ResponseWriter, _ *http.Request, body []byte) {
	const usage = `{"prompt_tokens":1200,"completion_tokens":85,"total_tokens":1285,` +
		`"prompt_tokens_details":{"cached_tokens":1024}}`
	if !bytes.Contains(body, []byte(`"stream":true`)) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"chatcmpl-t","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"Postgres."},"finish_reason":"stop"}],`+
			`"usage":`+usage+`}`)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(rest string) {
		fmt.Fprint(w, `data: {"id":"chatcmpl-t","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-08-06",`+rest+"}\n\n")
		w.(http.Flusher).Flush()
	}
	chunk(`"choices":[{"index":0,"delta":{"role":"assistant","content":"Post"},"finish_reason":null}]`)
	chunk(`"choices":[{"index":0,"delta":{"content":"gres."},"finish_reason":"stop"}]`)
	chunk(`"choices":[],"usage":` + usage)
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// otlpCollector is an OTLP/HTTP trace receiver on loopback: what Caddy's
// tracing exports, decoded.
type otlpCollector struct {
	srv *httptest.Server

	mu    sync.Mutex
	spans []*tracepb.ResourceSpans
}

func newOTLPCollector(t *testing.T) *otlpCollector {
	t.Helper()
	c := &otlpCollector{}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

// exportTo points the OTLP exporter that Caddy's tracing module creates
// from the environment at the collector: OTLP over HTTP with protobuf, all
// sampled, W3C trace context, a batch sent every 50ms.
func (c *otlpCollector) exportTo(t *testing.T) {
	t.Helper()
	for k, v := range map[string]string{
		"OTEL_SDK_DISABLED":                  "false",
		"OTEL_TRACES_EXPORTER":               "otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "",
		"OTEL_EXPORTER_OTLP_ENDPOINT":        c.srv.URL,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
		"OTEL_TRACES_SAMPLER":                "parentbased_always_on",
		"OTEL_PROPAGATORS":                   "tracecontext",
		"OTEL_BSP_SCHEDULE_DELAY":            "50",
	} {
		t.Setenv(k, v)
	}
}

// serve receives one export request.
func (c *otlpCollector) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.Error(w, "want POST /v1/traces", http.StatusNotFound)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(raw, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.spans = append(c.spans, req.ResourceSpans...)
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// waitForSpan waits for the span named name of the trace traceID (hex).
func (c *otlpCollector) waitForSpan(t *testing.T, traceID, name string) *tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		if s := c.find(traceID, name); s != nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span %q of trace %s reached the collector in %v", name, traceID, patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *otlpCollector) find(traceID, name string) *tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range c.spans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				if hex.EncodeToString(s.TraceId) == traceID && s.Name == name {
					return s
				}
			}
		}
	}
	return nil
}

// allStrings is every string the collector received: span names, attribute
// keys and values of resources, scopes, spans, events and links, and status
// messages.
func (c *otlpCollector) allStrings() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	attrs := func(kvs []*commonpb.KeyValue) {
		for _, kv := range kvs {
			out = append(out, kv.Key, fmt.Sprint(anyValue(kv.Value)))
		}
	}
	for _, rs := range c.spans {
		attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.ScopeSpans {
			attrs(ss.GetScope().GetAttributes())
			for _, s := range ss.Spans {
				out = append(out, s.Name, s.GetStatus().GetMessage(), s.TraceState)
				attrs(s.Attributes)
				for _, e := range s.Events {
					out = append(out, e.Name)
					attrs(e.Attributes)
				}
				for _, l := range s.Links {
					attrs(l.Attributes)
				}
			}
		}
	}
	return out
}

// spanAttributes is a span's attributes by key, each value as Go has it
// (string, bool, int64, float64, []any, map[string]any).
func spanAttributes(s *tracepb.Span) map[string]any {
	out := map[string]any{}
	for _, kv := range s.Attributes {
		out[kv.Key] = anyValue(kv.Value)
	}
	return out
}

// anyValue is an OTLP attribute value as a Go value.
func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return string(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		var out []any
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := map[string]any{}
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.Key] = anyValue(kv.Value)
		}
		return out
	}
	return nil
}

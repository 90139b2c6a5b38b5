package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
	"github.com/llmaffinity/caddy-llm-affinity/routing"
)

// capturedRequest is what the fake routing model saw.
type capturedRequest struct {
	method, path, contentType, auth string
	body                            map[string]any
}

// fakeModel serves chat completions answering content; it records each
// request it receives.
type fakeModel struct {
	mu       sync.Mutex
	requests []capturedRequest
	status   int
	reply    string // raw response body; when empty, a completion of content
	content  string
}

func (m *fakeModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	m.mu.Lock()
	m.requests = append(m.requests, capturedRequest{
		method:      r.Method,
		path:        r.URL.Path,
		contentType: r.Header.Get("Content-Type"),
		auth:        r.Header.Get("Authorization"),
		body:        body,
	})
	status, reply, content := m.status, m.reply, m.content
	m.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
	}
	if reply == "" {
		b, _ := json.Marshal(map[string]any{
			"id":     "chatcmpl-1",
			"object": "chat.completion",
			"choices": []any{map[string]any{
				"index":         0,
				"message":       map[string]any{"role": "assistant", "content": content},
				"finish_reason": "stop",
			}},
		})
		reply = string(b)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, reply)
}

func (m *fakeModel) captured(t *testing.T) capturedRequest {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.requests) != 1 {
		t.Fatalf("routing model received %d requests, want 1", len(m.requests))
	}
	return m.requests[0]
}

// provisioned returns a provisioned and validated LLM router.
func provisioned(t *testing.T, l *LLM) *LLM {
	t.Helper()
	if err := l.Provision(caddy.Context{}); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := l.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return l
}

var (
	testRoutes = []routing.Route{
		{Name: "code_generation", Description: "writing code"},
		{Name: "summarize", Description: "summaries"},
	}
	testConv = []llmapi.Utterance{
		{Role: "user", Content: "hi"},
		{Role: "assistant", Content: "hello"},
		{Role: "user", Content: "write a quicksort in Go"},
	}
)

func TestLLMModuleInfo(t *testing.T) {
	info := LLM{}.CaddyModule()
	if info.ID != "http.handlers.llm_affinity.routers.llm" {
		t.Errorf("module ID = %q", info.ID)
	}
	if _, ok := info.New().(*LLM); !ok {
		t.Errorf("New() returns %T, want *LLM", info.New())
	}
}

func TestLLMRoute(t *testing.T) {
	model := &fakeModel{content: "```json\n{\"route\": \"code_generation\"}\n```"}
	srv := httptest.NewServer(model)
	defer srv.Close()
	t.Setenv("LLM_ROUTER_TEST_KEY", "secret-key-123")
	t.Setenv("LLM_ROUTER_TEST_URL", srv.URL)

	l := provisioned(t, &LLM{
		Endpoint: "{env.LLM_ROUTER_TEST_URL}/v1/chat/completions",
		Model:    "katanemo/Arch-Router-1.5B",
		APIKey:   "{env.LLM_ROUTER_TEST_KEY}",
		Timeout:  caddy.Duration(time.Minute),
	})
	got, err := l.Route(context.Background(), testRoutes, testConv)
	if err != nil {
		t.Fatalf("Route: %v", err)
	}
	if got != "code_generation" {
		t.Errorf("Route = %q, want %q", got, "code_generation")
	}

	req := model.captured(t)
	if req.method != http.MethodPost {
		t.Errorf("method = %s, want POST", req.method)
	}
	if req.path != "/v1/chat/completions" {
		t.Errorf("path = %q, want /v1/chat/completions", req.path)
	}
	if !strings.HasPrefix(req.contentType, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", req.contentType)
	}
	if req.auth != "Bearer secret-key-123" {
		t.Errorf("Authorization = %q, want %q", req.auth, "Bearer secret-key-123")
	}
	if req.body == nil {
		t.Fatalf("request body is not a JSON object")
	}
	if req.body["model"] != "katanemo/Arch-Router-1.5B" {
		t.Errorf("model = %#v", req.body["model"])
	}
	temp, present := req.body["temperature"]
	if !present || temp != float64(0) {
		t.Errorf("temperature = %#v (present %v), want an explicit 0", temp, present)
	}
	if stream, ok := req.body["stream"]; ok && stream != false {
		t.Errorf("stream = %#v, want false or absent", stream)
	}
	msgs, ok := req.body["messages"].([]any)
	if !ok || len(msgs) != 1 {
		t.Fatalf("messages = %#v, want exactly one message", req.body["messages"])
	}
	msg, _ := msgs[0].(map[string]any)
	if msg["role"] != "user" {
		t.Errorf("message role = %#v, want user", msg["role"])
	}
	if want := routing.Prompt(testRoutes, testConv); msg["content"] != want {
		t.Errorf("message content is not the Arch-Router prompt:\n%v", msg["content"])
	}
	if l.APIKey != "{env.LLM_ROUTER_TEST_KEY}" || l.Endpoint != "{env.LLM_ROUTER_TEST_URL}/v1/chat/completions" {
		t.Errorf("Provision overwrote the configured values: %q %q", l.Endpoint, l.APIKey)
	}
}

func TestLLMRouteAuthorization(t *testing.T) {
	t.Setenv("LLM_ROUTER_TEST_KEY2", "k2")
	tests := []struct {
		name, apiKey, want string
	}{
		{"no api_key", "", ""},
		{"literal api_key", "literal-key", "Bearer literal-key"},
		{"placeholder api_key", "{env.LLM_ROUTER_TEST_KEY2}", "Bearer k2"},
		{"placeholder resolving to nothing", "{env.LLM_ROUTER_TEST_UNSET_KEY}", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := &fakeModel{content: `{"route": "summarize"}`}
			srv := httptest.NewServer(model)
			defer srv.Close()
			l := provisioned(t, &LLM{Endpoint: srv.URL + "/v1/chat/completions", Model: "m", APIKey: tt.apiKey})
			got, err := l.Route(context.Background(), testRoutes, testConv)
			if err != nil || got != "summarize" {
				t.Fatalf("Route = %q, %v; want summarize", got, err)
			}
			if auth := model.captured(t).auth; auth != tt.want {
				t.Errorf("Authorization = %q, want %q", auth, tt.want)
			}
		})
	}
}

func TestLLMRouteAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		reply   string
		content string
		want    string
		wantErr string
	}{
		{name: "plain route", content: `{"route": "summarize"}`, want: "summarize"},
		{name: "array route", content: `{"route": ["code_generation", "summarize"]}`, want: "code_generation"},
		{name: "other", content: `{"route": "other"}`, want: ""},
		{name: "unparseable answer", content: `I think code.`, want: ""},
		{name: "empty answer", content: ``, reply: `{"choices":[{"message":{"role":"assistant","content":""}}]}`, want: ""},
		{name: "HTTP 500", status: http.StatusInternalServerError, content: `{"route": "summarize"}`, wantErr: "500"},
		{name: "HTTP 404", status: http.StatusNotFound, reply: `{"error":"not found"}`, wantErr: "404"},
		{name: "HTTP 429", status: http.StatusTooManyRequests, reply: `rate limited`, wantErr: "429"},
		{name: "non-JSON", reply: `<html>bad gateway</html>`, wantErr: "not a chat completion"},
		{name: "truncated JSON", reply: `{"choices":[{"message":`, wantErr: "not a chat completion"},
		{name: "no choices", reply: `{"choices":[]}`, wantErr: "not a chat completion"},
		{name: "wrong shape", reply: `{"choices":"x"}`, wantErr: "not a chat completion"},
		{name: "JSON array", reply: `[1,2]`, wantErr: "not a chat completion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&fakeModel{status: tt.status, reply: tt.reply, content: tt.content})
			defer srv.Close()
			l := provisioned(t, &LLM{Endpoint: srv.URL, Model: "m", Timeout: caddy.Duration(time.Minute)})
			got, err := l.Route(context.Background(), testRoutes, testConv)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Route = %q, want an error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Route: %v", err)
			}
			if got != tt.want {
				t.Errorf("Route = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLLMRouteUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	l := provisioned(t, &LLM{Endpoint: url, Model: "m", Timeout: caddy.Duration(5 * time.Second)})
	if got, err := l.Route(context.Background(), testRoutes, testConv); err == nil {
		t.Fatalf("Route = %q, want an error for a closed server", got)
	}
}

// slowServer answers only once the client gives up (or the test ends).
func slowServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv
}

// The slow server answers only when the test ends, so Route returning at all
// means the timeout ended the call; it must not end it before the timeout.
func TestLLMRouteTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv := slowServer(t)
	l := provisioned(t, &LLM{Endpoint: srv.URL, Model: "m", Timeout: caddy.Duration(timeout)})
	start := time.Now()
	got, err := l.Route(context.Background(), testRoutes, testConv)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatalf("Route = %q, want a timeout error", got)
	}
	if elapsed < timeout {
		t.Errorf("Route gave up after %v, before the %v timeout (%v)", elapsed, timeout, err)
	}
}

// With a configured timeout longer than any test run, only the caller's
// context can end a call to the slow server: Route returning at all means it
// did, and not before the caller's deadline.
func TestLLMRouteCallerContext(t *testing.T) {
	const deadline = 200 * time.Millisecond
	srv := slowServer(t)
	l := provisioned(t, &LLM{Endpoint: srv.URL, Model: "m", Timeout: caddy.Duration(24 * time.Hour)})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	if got, err := l.Route(ctx, testRoutes, testConv); err == nil {
		t.Fatalf("Route = %q, want an error when the caller's context ends", got)
	}
	if elapsed := time.Since(start); elapsed < deadline {
		t.Errorf("Route returned after %v, before the caller's %v deadline", elapsed, deadline)
	}
}

func TestLLMProvisionDefaults(t *testing.T) {
	l := &LLM{Endpoint: "http://127.0.0.1:1/v1/chat/completions", Model: "m"}
	if err := l.Provision(caddy.Context{}); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if time.Duration(l.Timeout) != 2*time.Second {
		t.Errorf("default timeout = %v, want 2s", time.Duration(l.Timeout))
	}
	if l.client == nil || l.client.Timeout != 2*time.Second {
		t.Errorf("client timeout not set from the default")
	}

	l = &LLM{Endpoint: "http://127.0.0.1:1/v1/chat/completions", Model: "m", Timeout: caddy.Duration(750 * time.Millisecond)}
	if err := l.Provision(caddy.Context{}); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if time.Duration(l.Timeout) != 750*time.Millisecond {
		t.Errorf("timeout = %v, want the configured 750ms", time.Duration(l.Timeout))
	}
}

func TestLLMValidate(t *testing.T) {
	t.Setenv("LLM_ROUTER_TEST_ENDPOINT", "https://router.example/v1/chat/completions")
	tests := []struct {
		name     string
		endpoint string
		model    string
		wantErr  string // "" for valid
	}{
		{name: "http", endpoint: "http://127.0.0.1:11434/v1/chat/completions", model: "m"},
		{name: "https", endpoint: "https://router.example/v1/chat/completions", model: "m"},
		{name: "endpoint placeholder", endpoint: "{env.LLM_ROUTER_TEST_ENDPOINT}", model: "m"},
		{name: "missing endpoint", endpoint: "", model: "m", wantErr: "endpoint is required"},
		{name: "ftp scheme", endpoint: "ftp://router.example/v1", model: "m", wantErr: "http:// or https://"},
		{name: "ws scheme", endpoint: "ws://router.example/v1", model: "m", wantErr: "http:// or https://"},
		{name: "no scheme", endpoint: "router.example/v1/chat/completions", model: "m", wantErr: "http:// or https://"},
		{name: "host:port without scheme", endpoint: "localhost:8080/v1", model: "m", wantErr: "http:// or https://"},
		{name: "no host", endpoint: "http:///v1/chat/completions", model: "m", wantErr: "http:// or https://"},
		{name: "unparseable", endpoint: "http://[::1", model: "m", wantErr: "http:// or https://"},
		{name: "placeholder resolving to nothing", endpoint: "{env.LLM_ROUTER_TEST_UNSET_VARIABLE}", model: "m", wantErr: "http:// or https://"},
		{name: "missing model", endpoint: "http://127.0.0.1:11434/v1/chat/completions", model: "", wantErr: "model is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &LLM{Endpoint: tt.endpoint, Model: tt.model}
			if err := l.Provision(caddy.Context{}); err != nil {
				t.Fatalf("Provision: %v", err)
			}
			err := l.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate: unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestLLMUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    LLM
		wantErr string // substring; "" for success
	}{
		{
			name:  "every subdirective",
			input: "llm {\n endpoint http://x/v1/chat/completions\n model m\n timeout 3s\n api_key k\n}",
			want:  LLM{Endpoint: "http://x/v1/chat/completions", Model: "m", Timeout: caddy.Duration(3 * time.Second), APIKey: "k"},
		},
		{
			name:  "other order with placeholder key",
			input: "llm {\n api_key {env.ROUTER_API_KEY}\n timeout 1m30s\n model katanemo/Arch-Router-1.5B\n endpoint https://r.example/v1/chat/completions\n}",
			want:  LLM{Endpoint: "https://r.example/v1/chat/completions", Model: "katanemo/Arch-Router-1.5B", Timeout: caddy.Duration(90 * time.Second), APIKey: "{env.ROUTER_API_KEY}"},
		},
		{
			name:  "required only",
			input: "llm {\n endpoint http://x\n model m\n}",
			want:  LLM{Endpoint: "http://x", Model: "m"},
		},
		{
			name:  "quoted argument",
			input: "llm {\n endpoint http://x\n model \"my model\"\n}",
			want:  LLM{Endpoint: "http://x", Model: "my model"},
		},
		{
			name:  "empty block",
			input: "llm {\n}",
			want:  LLM{},
		},
		{
			name:  "no block",
			input: "llm",
			want:  LLM{},
		},
		{name: "argument after llm", input: "llm extra {\n model m\n}", wantErr: "wrong argument count"},
		{name: "unknown subdirective", input: "llm {\n temperature 0\n}", wantErr: "unrecognized subdirective 'temperature'"},
		{name: "duplicate endpoint", input: "llm {\n endpoint http://a\n endpoint http://b\n}", wantErr: "endpoint already specified"},
		{name: "duplicate model", input: "llm {\n model a\n model b\n}", wantErr: "model already specified"},
		{name: "duplicate api_key", input: "llm {\n api_key a\n api_key b\n}", wantErr: "api_key already specified"},
		{name: "duplicate timeout", input: "llm {\n timeout 1s\n timeout 2s\n}", wantErr: "timeout already specified"},
		{name: "endpoint missing argument", input: "llm {\n endpoint\n model m\n}", wantErr: "wrong argument count"},
		{name: "model missing argument", input: "llm {\n model\n}", wantErr: "wrong argument count"},
		{name: "api_key missing argument", input: "llm {\n api_key\n}", wantErr: "wrong argument count"},
		{name: "timeout missing argument", input: "llm {\n timeout\n}", wantErr: "wrong argument count"},
		{name: "endpoint extra argument", input: "llm {\n endpoint http://a http://b\n}", wantErr: "wrong argument count"},
		{name: "model extra argument", input: "llm {\n model a b\n}", wantErr: "wrong argument count"},
		{name: "api_key extra argument", input: "llm {\n api_key a b\n}", wantErr: "wrong argument count"},
		{name: "timeout extra argument", input: "llm {\n timeout 1s 2s\n}", wantErr: "wrong argument count"},
		{name: "bad timeout", input: "llm {\n timeout soon\n}", wantErr: "invalid timeout 'soon'"},
		{name: "zero timeout", input: "llm {\n timeout 0s\n}", wantErr: "invalid timeout"},
		{name: "negative timeout", input: "llm {\n timeout -1s\n}", wantErr: "invalid timeout"},
		{name: "timeout without unit", input: "llm {\n timeout 5\n}", wantErr: "invalid timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got LLM
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("UnmarshalCaddyfile succeeded (%+v), want an error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			if got.Endpoint != tt.want.Endpoint || got.Model != tt.want.Model ||
				got.Timeout != tt.want.Timeout || got.APIKey != tt.want.APIKey {
				t.Errorf("UnmarshalCaddyfile = %s, want %s", describe(got), describe(tt.want))
			}
		})
	}
}

func describe(l LLM) string {
	return fmt.Sprintf("{endpoint %q model %q timeout %v api_key %q}", l.Endpoint, l.Model, time.Duration(l.Timeout), l.APIKey)
}

func TestLLMJSONConfig(t *testing.T) {
	var l LLM
	cfg := `{"endpoint":"http://x/v1/chat/completions","model":"m","timeout":"3s","api_key":"k"}`
	if err := json.Unmarshal([]byte(cfg), &l); err != nil {
		t.Fatalf("json.Unmarshal: %v", err)
	}
	want := LLM{Endpoint: "http://x/v1/chat/completions", Model: "m", Timeout: caddy.Duration(3 * time.Second), APIKey: "k"}
	if describe(l) != describe(want) {
		t.Errorf("decoded %s, want %s", describe(l), describe(want))
	}
}

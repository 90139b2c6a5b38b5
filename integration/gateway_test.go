package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"golang.org/x/crypto/bcrypt"
)

func TestPinnedSessionSkipsRouter(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	startCaddy(t, f.keyedSite())

	var models []string
	for turn := 1; turn <= 5; turn++ {
		resp, body := post(t, "/v1/chat/completions", chat("gpt-4o-mini", fmt.Sprintf("turn %d", turn)),
			"X-Model-Affinity", "session-pinned-1")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("turn %d: status %d: %s", turn, resp.StatusCode, body)
		}
		model, route, status := decisionOf(resp)
		wantStatus := "pinned"
		if turn == 1 {
			wantStatus = "routed"
		}
		if status != wantStatus || route != "code" {
			t.Errorf("turn %d: status %q route %q, want %q and code", turn, status, route, wantStatus)
		}
		models = append(models, model)
	}
	if got := f.router.calls.Load(); got != 1 {
		t.Errorf("router calls = %d, want 1 for a pinned session", got)
	}
	for _, m := range models {
		if m != "claude" {
			t.Fatalf("models per turn = %v, want claude for every turn", models)
		}
	}
	if n := len(f.claude.requests()); n != 5 {
		t.Errorf("claude upstream got %d requests, want 5", n)
	}
}

func TestNoHeaderRoutesEveryTurn(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	startCaddy(t, f.keyedSite())

	var models []string
	for turn := 1; turn <= 4; turn++ {
		resp, body := post(t, "/v1/chat/completions", chat("gpt-4o-mini", fmt.Sprintf("turn %d", turn)))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("turn %d: status %d: %s", turn, resp.StatusCode, body)
		}
		model, _, status := decisionOf(resp)
		if status != "routed" {
			t.Errorf("turn %d: status %q, want routed", turn, status)
		}
		models = append(models, model)
	}
	if got := f.router.calls.Load(); got != 4 {
		t.Errorf("router calls = %d, want 4 (one per unpinned turn)", got)
	}
	want := []string{"claude", "gpt-4o", "claude", "gpt-4o"}
	if strings.Join(models, ",") != strings.Join(want, ",") {
		t.Errorf("models = %v, want %v", models, want)
	}
}

func TestConcurrentFirstRequestsMakeOneRouterCall(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	f.router.delay.Store(int64(300 * time.Millisecond))
	startCaddy(t, f.keyedSite())

	const clients = 50
	var wg sync.WaitGroup
	models := make([]string, clients)
	statuses := make([]int, clients)
	for i := range clients {
		wg.Go(func() {
			resp, _ := post(t, "/v1/chat/completions", chat("gpt-4o-mini", "first turn"),
				"X-Model-Affinity", "session-race")
			statuses[i] = resp.StatusCode
			models[i], _, _ = decisionOf(resp)
		})
	}
	wg.Wait()
	if got := f.router.calls.Load(); got != 1 {
		t.Errorf("router calls = %d under %d concurrent first requests, want 1", got, clients)
	}
	for i := range clients {
		if statuses[i] != http.StatusOK || models[i] != models[0] || models[0] == "" {
			t.Fatalf("request %d: status %d model %q; all must be 200 on one model (first %q)",
				i, statuses[i], models[i], models[0])
		}
	}
}

func TestRouterFailureFallsBack(t *testing.T) {
	setKeys(t)
	deadEndpoint := "http://" + deadAddr(t) + "/v1/chat/completions"

	// the routers in these cases answer at once or fail at once, except the
	// one that holds every call until the test has its response
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name       string
		answer     func(int64, string) string
		hold       bool // the router answers only after the response arrived
		endpoint   bool // use the dead endpoint
		model      string
		wantModel  string
		wantStatus string
	}{
		{name: "router down, unknown requested model", endpoint: true, model: "whatever", wantModel: "small"},
		{name: "router down, configured requested model", endpoint: true, model: "gpt-4o", wantModel: "gpt-4o"},
		{name: "router slow", hold: true, model: "whatever", wantModel: "small"},
		{name: "router answers other", answer: func(int64, string) string { return `{"route": "other"}` }, model: "x", wantModel: "small"},
		{name: "router answers unknown route", answer: func(int64, string) string { return `{"route": "poetry"}` }, model: "x", wantModel: "small"},
		{name: "router answers garbage", answer: func(int64, string) string { return `I think code` }, model: "x", wantModel: "small"},
		{name: "router answers fenced single quotes", answer: func(int64, string) string { return "```json\n{'route': ['analysis', 'code']}\n```" }, model: "x", wantModel: "gpt-4o", wantStatus: "routed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer := tt.answer
			if answer == nil {
				answer = alternating
			}
			f := newFleet(t, answer)
			if tt.hold {
				// released only once the response is in: a request that
				// waited for the router's answer would never finish
				release := make(chan struct{})
				f.router.holdUntil(release)
				defer close(release)
			}
			site := f.keyedSite()
			site.router.timeout = timeout.String()
			if tt.endpoint {
				site.router.endpoint = deadEndpoint
			}
			startCaddy(t, site)
			start := time.Now()
			resp, body := post(t, "/v1/chat/completions", chat(tt.model, "hello"), "X-Model-Affinity", "s-"+tt.name)
			elapsed := time.Since(start)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			model, _, status := decisionOf(resp)
			wantStatus := tt.wantStatus
			if wantStatus == "" {
				wantStatus = "default"
			}
			if model != tt.wantModel || status != wantStatus {
				t.Errorf("model %q status %q, want %q %q", model, status, tt.wantModel, wantStatus)
			}
			// the held router was called and is still unanswered: the
			// request gave up on it, and not before the router timeout
			if tt.hold && (f.router.calls.Load() != 1 || elapsed < timeout) {
				t.Errorf("the held router got %d calls and the request took %v; want 1 call and at least the %v timeout",
					f.router.calls.Load(), elapsed, timeout)
			}
		})
	}
}

// TestTTLExpiryReroutes: uses within the TTL keep a pin alive past the TTL
// overall, and a pin idle for longer than the TTL is gone, so the session is
// routed again. The TTL runs on Caddy's wall clock, so the test measures each
// gap between two uses of the pin from outside: at least from the end of one
// request to the start of the next, at most from the start of one to the end
// of the next. It asserts only what those bounds decide. When a loaded
// machine stretches a use meant to be within the TTL past it, the attempt
// proves nothing and is repeated with a fresh session and twice the TTL.
func TestTTLExpiryReroutes(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	for ttl, attempt := time.Second, 1; !ttlAttempt(t, f, ttl, fmt.Sprintf("session-ttl-%d", attempt)); ttl, attempt = 2*ttl, attempt+1 {
		t.Logf("attempt %d: a use meant to be within the %v TTL may have come after it; again with twice the TTL", attempt, ttl)
	}
}

// ttlAttempt is one run of TestTTLExpiryReroutes with ttl and session key:
// three uses ttl/2 apart, then ttl*1.6 idle. It reports false, having
// asserted nothing about the TTL, if a use within the TTL was not proven to be.
func ttlAttempt(t *testing.T, f *fleet, ttl time.Duration, key string) bool {
	t.Helper()
	site := f.keyedSite()
	site.ttl = ttl.String()
	startCaddy(t, site)
	callsBefore := f.router.calls.Load()
	var lastStart, lastEnd time.Time
	send := func() (model, status string, minGap, maxGap time.Duration) {
		start := time.Now()
		resp, body := post(t, "/v1/chat/completions", chat("gpt-4o-mini", "hi"), "X-Model-Affinity", key)
		end := time.Now()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		minGap, maxGap = start.Sub(lastEnd), end.Sub(lastStart)
		lastStart, lastEnd = start, end
		model, _, status = decisionOf(resp)
		return model, status, minGap, maxGap
	}
	first, s, _, _ := send()
	if s != "routed" {
		t.Fatalf("first: %s %s, want routed", first, s)
	}
	for range 3 {
		time.Sleep(ttl / 2)
		m, s, _, maxGap := send()
		if maxGap >= ttl {
			return false
		}
		if m != first || s != "pinned" {
			t.Fatalf("used again at most %v after the last use (ttl %v): %s %s, want %s pinned", maxGap, ttl, m, s, first)
		}
	}
	time.Sleep(ttl * 16 / 10)
	if m, s, minGap, _ := send(); m == first || s != "routed" {
		t.Errorf("after at least %v idle (ttl %v): %s %s, want routed to the other model (second router call)", minGap, ttl, m, s)
	}
	if got := f.router.calls.Load() - callsBefore; got != 2 {
		t.Errorf("router calls = %d, want 2", got)
	}
	return true
}

// The upstream sees the serving model's upstream_model in the body and its
// credential in place of the client's.
func TestUpstreamModelAndCredentials(t *testing.T) {
	setKeys(t)
	f := newFleet(t, func(int64, string) string { return `{"route": "code"}` })
	startCaddy(t, f.keyedSite())

	body := []byte(`{"temperature":0.2,"model":"gpt-4o-mini","messages":[{"role":"user","content":"fix my code"}],"metadata":{"a":[1,2,3]}}`)
	resp, out := post(t, "/v1/chat/completions", body,
		"Authorization", "Bearer client-key", "X-Api-Key", "client-x-key", "X-Model-Affinity", "s-cred")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	seen := f.claude.requests()
	if len(seen) != 1 {
		t.Fatalf("claude got %d requests, want 1", len(seen))
	}
	got := seen[0]
	want := `{"temperature":0.2,"model":"claude-sonnet-4-20250514","messages":[{"role":"user","content":"fix my code"}],"metadata":{"a":[1,2,3]}}`
	if string(got.Body) != want {
		t.Errorf("upstream body\n got %s\nwant %s", got.Body, want)
	}
	if got.ContentLength != int64(len(want)) {
		t.Errorf("upstream Content-Length %d, want %d", got.ContentLength, len(want))
	}
	if got.APIKey != "sk-ant-test-secret" || got.Authorization != "" {
		t.Errorf("anthropic model got x-api-key %q authorization %q; want the configured key only", got.APIKey, got.Authorization)
	}
	if got.RoutedModel != "claude" || got.RoutedRoute != "code" || got.RoutedStatus != "routed" {
		t.Errorf("{http.llm_affinity.model/route/status} placeholders gave %q %q %q, want claude code routed",
			got.RoutedModel, got.RoutedRoute, got.RoutedStatus)
	}
	var parsed struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(out, &parsed)
	if parsed.Model != "claude-sonnet-4-20250514" {
		t.Errorf("response model %q", parsed.Model)
	}

	// an openai-provider model gets a bearer token and no x-api-key
	f.router.mu.Lock()
	f.router.answer = func(int64, string) string { return `{"route": "analysis"}` }
	f.router.mu.Unlock()
	resp, out = post(t, "/v1/chat/completions", chat("gpt-4o-mini", "compare"), "Authorization", "Bearer client-key", "X-Api-Key", "client-x-key")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	g := f.gpt.requests()
	if len(g) != 1 || g[0].Authorization != "Bearer sk-openai-test-secret" || g[0].APIKey != "" || g[0].Model != "gpt-4o" {
		t.Errorf("gpt upstream saw %+v; want Bearer sk-openai-test-secret, no x-api-key, model gpt-4o", g)
	}

	// a model without a key gets no credential: other models have keys, so
	// the client's (perhaps the gateway's own password) stays here
	f.router.mu.Lock()
	f.router.answer = func(int64, string) string { return `{"route": "other"}` }
	f.router.mu.Unlock()
	post(t, "/v1/chat/completions", chat("gpt-4o-mini", "hi"), "Authorization", "Bearer client-key", "Api-Key", "azure-key")
	s := f.small.requests()
	if len(s) != 1 || s[0].Authorization != "" || s[0].APIKey != "" || s[0].Model != "gpt-4o-mini" {
		t.Errorf("small upstream saw %+v; want no credential and model gpt-4o-mini", s)
	}

	// unless the operator opts in: then it forwards the client's own
	reloadCaddy(t, globalOptions+f.keyedSite().with("forward_client_credentials on").String())
	post(t, "/v1/chat/completions", chat("gpt-4o-mini", "hi"), "Authorization", "Bearer client-key")
	s = f.small.requests()
	if len(s) != 2 || s[1].Authorization != "Bearer client-key" || s[1].Model != "gpt-4o-mini" {
		t.Errorf("with forward_client_credentials on, small upstream saw %+v; want the client's key and model gpt-4o-mini", s)
	}
}

func TestSideCallKeepsMainPin(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	startCaddy(t, f.keyedSite())

	main1, _ := post(t, "/v1/chat/completions", chat("gpt-4o-mini", "main loop"), "X-Model-Affinity", "s-side")
	side, _ := post(t, "/v1/chat/completions", chat("summarizer", "side call"), "X-Model-Affinity", "s-side")
	main2, _ := post(t, "/v1/chat/completions", chat("gpt-4o-mini", "main loop again"), "X-Model-Affinity", "s-side")
	m1, _, _ := decisionOf(main1)
	ms, _, ss := decisionOf(side)
	m2, _, s2 := decisionOf(main2)
	if ss != "routed" || ms == m1 {
		t.Errorf("side call: %s %s; want its own routing decision (router alternates), main was %s", ms, ss, m1)
	}
	if m2 != m1 || s2 != "pinned" {
		t.Errorf("main loop after side call: %s %s, want %s pinned", m2, s2, m1)
	}
	if got := f.router.calls.Load(); got != 2 {
		t.Errorf("router calls = %d, want 2", got)
	}
}

func TestStreamingArrivesIncrementally(t *testing.T) {
	setKeys(t)
	f := newFleet(t, func(int64, string) string { return `{"route": "analysis"}` })
	f.gpt.streamGate = make(chan struct{})
	startCaddy(t, f.keyedSite())

	body := []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"stream please"}]}`)
	req, _ := http.NewRequest(http.MethodPost, gateway+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("X-Model-Affinity", "s-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	expectChunkByChunk(t, resp, func() { close(f.gpt.streamGate) })
}

func TestBadInput(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	site := f.keyedSite()
	site.maxBody = "2KB"
	startCaddy(t, site)

	big := chat("gpt-4o-mini", strings.Repeat("x", 4000))
	tests := []struct {
		name    string
		path    string
		body    []byte
		headers []string
		status  int
		errText string
	}{
		{"malformed json", "/v1/chat/completions", []byte(`{"model":"a","messages":[`), nil, 400, "malformed JSON"},
		{"not an object", "/v1/chat/completions", []byte(`[1,2]`), nil, 400, "JSON object"},
		{"missing messages", "/v1/chat/completions", []byte(`{"model":"a"}`), nil, 400, `"messages" is required`},
		{"empty messages", "/v1/chat/completions", []byte(`{"model":"a","messages":[]}`), nil, 400, "must not be empty"},
		{"messages wrong type", "/v1/chat/completions", []byte(`{"model":"a","messages":"hi"}`), nil, 400, "must be an array"},
		{"model wrong type", "/v1/chat/completions", []byte(`{"model":5,"messages":[{"role":"user","content":"x"}]}`), nil, 400, `"model" must be a string`},
		{"content wrong type", "/v1/chat/completions", []byte(`{"model":"a","messages":[{"role":"user","content":5}]}`), nil, 400, "content must be"},
		{"model case variant", "/v1/chat/completions", []byte(`{"model":"a","messages":[{"role":"user","content":"x"}],"MODEL":"b"}`), nil, 400, `a case variant of "model"`},
		{"duplicate tools", "/v1/chat/completions", []byte(`{"model":"a","messages":[{"role":"user","content":"x"}],"tools":[],"tools":[]}`), nil, 400, `duplicate "tools"`},
		{"invalid UTF-8", "/v1/chat/completions", []byte("{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}"), nil, 400, "invalid UTF-8"},
		{"body too large", "/v1/chat/completions", big, nil, 413, "exceeds"},
		{"key too long", "/v1/chat/completions", chat("a", "x"), []string{"X-Model-Affinity", strings.Repeat("k", 257)}, 400, "X-Model-Affinity"},
		{"key not ascii", "/v1/chat/completions", chat("a", "x"), []string{"X-Model-Affinity", "séance"}, 400, "X-Model-Affinity"},
		{"two keys", "/v1/chat/completions", chat("a", "x"), []string{"X-Model-Affinity", "a", "X-Model-Affinity", "b"}, 400, "more than one"},
		{"anthropic malformed", "/v1/messages", []byte(`{"model":`), nil, 400, "malformed JSON"},
		{"anthropic missing messages", "/v1/messages", []byte(`{"model":"claude","max_tokens":5}`), nil, 400, `"messages" is required`},
		{"anthropic model case variant", "/v1/messages", []byte(`{"Model":"b","model":"claude","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`), nil, 400, `a case variant of "model"`},
		{"anthropic invalid UTF-8", "/v1/messages", []byte("{\"model\":\"claude\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"\xed\xa0\x80\"}]}"), nil, 400, "invalid UTF-8"},
		{"anthropic too large", "/v1/messages", big, nil, 413, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, tt.path, tt.body, tt.headers...)
			if msg := checkAPIError(t, tt.name, strings.HasSuffix(tt.path, "/messages"), tt.status, resp, body); !strings.Contains(msg, tt.errText) {
				t.Errorf("%s: error message %q, want it to contain %q", tt.name, msg, tt.errText)
			}
		})
	}
	for _, u := range []*fakeUpstream{f.gpt, f.claude, f.small} {
		if n := len(u.requests()); n != 0 {
			t.Errorf("upstream %s got %d requests; bad input must not reach an upstream", u.name, n)
		}
	}
	if got := f.router.calls.Load(); got != 0 {
		t.Errorf("router calls = %d for bad input, want 0", got)
	}
}

func TestAnthropicMessages(t *testing.T) {
	setKeys(t)
	f := newFleet(t, func(int64, string) string { return `{"route": "code"}` })
	startCaddy(t, f.keyedSite().speaking("claude", "messages"))

	body := []byte(`{"model":"claude-3-haiku","max_tokens":64,"system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"write a function"}]}]}`)
	for turn := 1; turn <= 3; turn++ {
		resp, out := post(t, "/v1/messages", body, "X-Model-Affinity", "s-anthropic", "X-Api-Key", "client-key", "Anthropic-Version", "2023-06-01")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, out)
		}
		if m, _, _ := decisionOf(resp); m != "claude" {
			t.Fatalf("turn %d model %s", turn, m)
		}
	}
	seen := f.claude.requests()
	if len(seen) != 3 || seen[0].Path != "/v1/messages" || seen[0].Model != "claude-sonnet-4-20250514" || seen[0].APIKey != "sk-ant-test-secret" {
		t.Errorf("claude saw %+v", seen)
	}
	if got := f.router.calls.Load(); got != 1 {
		t.Errorf("router calls = %d, want 1", got)
	}
}

func TestPassThrough(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	startCaddy(t, f.keyedSite())

	// (GET .../models is the gateway's own answer: see TestModelList)
	req, _ := http.NewRequest(http.MethodGet, gateway+"/v1/files", nil)
	req.Header.Set("Authorization", "Bearer client-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Upstream") != "small" {
		t.Errorf("GET /v1/files: status %d upstream %q, want 200 from the default model's upstream",
			resp.StatusCode, resp.Header.Get("X-Upstream"))
	}
	if resp.Header.Get("X-Model-Affinity-Status") != "" {
		t.Errorf("pass-through request got a routing decision header")
	}
	seen := f.small.requests()
	if len(seen) != 1 || seen[0].Authorization != "" {
		t.Errorf("small saw %+v; want the request without the client's credential (other models have keys)", seen)
	}
	if f.router.calls.Load() != 0 {
		t.Errorf("router was called for a pass-through request")
	}
}

func TestJSONConfigBehavesTheSame(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfgJSON, warnings, err := adapter.Adapt([]byte(globalOptions+f.keyedSite().String()), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("adapt warnings: %v", warnings)
	}
	if bytes.Contains(cfgJSON, []byte("sk-openai-test-secret")) {
		t.Errorf("adapted JSON contains the resolved API key; {env.*} must stay a placeholder")
	}
	tester := newTester(t)
	tester.InitServer(string(cfgJSON), "json")
	flushPins(t)

	var models []string
	for turn := 1; turn <= 3; turn++ {
		resp, body := post(t, "/v1/chat/completions", chat("gpt-4o-mini", "turn"), "X-Model-Affinity", "s-json")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		m, _, _ := decisionOf(resp)
		models = append(models, m)
	}
	if strings.Join(models, ",") != "claude,claude,claude" || f.router.calls.Load() != 1 {
		t.Errorf("models %v with %d router calls; want claude x3 and 1 call", models, f.router.calls.Load())
	}
}

func TestLogsCarryNoSecretsOrPrompts(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	dir := t.TempDir()
	serverLog, accessLog := dir+"/server.log", dir+"/access.log"
	// debug logging everywhere and an access log, both filtered as README
	// recommends: Caddy redacts Authorization itself, but reverse_proxy's
	// debug log and the access log print other request headers as they are
	const filter = "format filter {\n\trequest>headers>X-Api-Key delete\n\trequest>headers>X-Model-Affinity hash\n}"
	globals := globalOptionsWith("\tlog {\n\t\toutput file " + serverLog + "\n\t\tlevel DEBUG\n" + indent(filter, 2) + "\t}")
	site := f.keyedSite().withDirectives("log {\n\toutput file " + accessLog + "\n" + indent(filter, 1) + "}")
	startCaddyConfig(t, globals+site.String())

	const prompt = "CONFIDENTIAL-PROMPT-TEXT about our merger"
	const sessionKey = "session-key-that-must-not-be-logged"
	for range 2 {
		resp, body := post(t, "/v1/chat/completions", chat("gpt-4o-mini", prompt),
			"X-Model-Affinity", sessionKey, "Authorization", "Bearer client-secret-key", "X-Api-Key", "client-x-secret")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	// the router-down path logs an error: it must not carry the prompt either
	post(t, "/v1/messages", []byte(`{"model":"x","messages":[{"role":"user","content":"`+prompt+`"}]}`))

	// so that the log files are flushed and closed
	closeLogFiles(t)
	var all []byte
	for _, path := range []string{serverLog, accessLog} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		all = append(all, b...)
	}
	for _, secret := range []string{prompt, "CONFIDENTIAL", sessionKey, "sk-openai-test-secret",
		"sk-ant-test-secret", "client-secret-key", "client-x-secret"} {
		if bytes.Contains(all, []byte(secret)) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !bytes.Contains(all, []byte(`"msg":"routing decision"`)) || !bytes.Contains(all, []byte(`"affinity_key_hash"`)) {
		t.Errorf("debug log has no routing decision with a hashed key; the test would prove nothing:\n%s", all)
	}
}

// TestCaddyfileExampleLoads adapts and validates Caddyfile.example the way
// `caddy adapt` and `caddy validate` do, with its variables set as its
// header says: the site is the domain, basic_auth runs before llm_affinity
// and the keys stay {env.*} placeholders.
func TestCaddyfileExampleLoads(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-placeholder")
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-placeholder")
	t.Setenv("LLM_GATEWAY_DOMAIN", "llm.example.com")
	hash, err := bcrypt.GenerateFromPassword([]byte("a long random password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GATEWAY_PASSWORD_HASH", string(hash))
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(raw, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("adapt warnings: %v", warnings)
	}
	if bytes.Contains(cfgJSON, []byte("sk-placeholder")) {
		t.Errorf("adapted config contains the API key; it must keep the {env.*} placeholder")
	}
	if !bytes.Contains(cfgJSON, []byte(`"host":["llm.example.com"]`)) {
		t.Errorf("the site is not LLM_GATEWAY_DOMAIN: %s", cfgJSON)
	}
	auth, affinity := bytes.Index(cfgJSON, []byte(`"handler":"authentication"`)), bytes.Index(cfgJSON, []byte(`"handler":"llm_affinity"`))
	if auth < 0 || affinity < 0 || auth > affinity {
		t.Errorf("basic_auth must run before llm_affinity (offsets %d, %d): %s", auth, affinity, cfgJSON)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("validate: %v", err)
	}
}

// Package integration boots a real Caddy (caddytest, one per test binary)
// with the llm_affinity module, fake model upstreams and a fake routing model
// on loopback, and drives it over real HTTP.
//
// This file holds the package's helpers: Caddy and its configs, the one
// builder of the test sites (testSite), the fakes, requests, assertions, the
// admin API and metrics, logs, Redis and a second gateway instance. The
// other files hold the tests, by topic, each with the helpers only it uses.
package integration

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/redis/go-redis/v9"

	_ "github.com/llmaffinity/caddy-llm-affinity"
	"github.com/llmaffinity/caddy-llm-affinity/internal/redistest"
)

// gateway is where the site under test listens (caddytest's conventions).
const gateway = "http://localhost:9080"

// patience bounds a wait for something that is due (a server coming up, a
// stream reaching its gate, a log line being written), so that a regression
// fails with a message instead of hanging until the test binary's -timeout.
// It is minutes: a loaded machine never reaches it, and it decides nothing
// about speed. Requests themselves have no client timeout.
const patience = 2 * time.Minute

// routerTimeout is the router timeout of the test sites whose router is meant
// to answer: generous, so that a slow machine never turns a routing decision
// into a fallback. Tests of the timeout itself configure their own.
const routerTimeout = "1m"

// ---------------------------------------------------------------------------
// Caddy: the test binary's instance, and its configs

// globalOptions are the Caddyfile global options every test config starts with.
const globalOptions = `{
	skip_install_trust
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
}
`

// globalOptionsWith returns globalOptions with extra lines inside the block.
func globalOptionsWith(extra string) string {
	return strings.Replace(globalOptions, "grace_period 1ns\n", "grace_period 1ns\n"+extra+"\n", 1)
}

// adminURL is the test Caddy's admin endpoint.
const adminURL = "http://localhost:2999"

// TestMain starts the in-process Caddy with only its admin endpoint before
// any test runs. caddytest would start it on first use, but it gives Caddy 10
// seconds to come up and skips every test if it is slower, which a loaded
// machine can be; caddy.Load returns once the admin endpoint listens.
func TestMain(m *testing.M) {
	if err := caddy.Load([]byte(`{"admin":{"listen":"`+strings.TrimPrefix(adminURL, "http://")+`"}}`), true); err != nil {
		fmt.Fprintf(os.Stderr, "starting Caddy's admin endpoint on %s: %v\n", adminURL, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// newTester is a caddytest.Tester whose config loads and requests may take
// up to patience: caddytest's default of 5 seconds is a bound a loaded
// machine can exceed while provisioning a config (a TLS site, say).
func newTester(t *testing.T) *caddytest.Tester {
	return caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{
		LoadRequestTimeout: patience,
		TestRequestTimeout: patience,
	})
}

// startCaddy loads a site (global options are added) into the test binary's
// Caddy.
func startCaddy(t *testing.T, site testSite) *caddytest.Tester {
	t.Helper()
	return startCaddyConfig(t, globalOptions+site.String())
}

// startCaddyConfig loads a whole Caddyfile into the test binary's Caddy and
// flushes every pin store: pins outlive config reloads, and each test starts
// from none.
func startCaddyConfig(t *testing.T, caddyfile string) *caddytest.Tester {
	t.Helper()
	tester := reloadCaddy(t, caddyfile)
	flushPins(t)
	return tester
}

// reloadCaddy loads a whole Caddyfile as a config reload: pins are kept.
func reloadCaddy(t *testing.T, caddyfile string) *caddytest.Tester {
	t.Helper()
	tester := newTester(t)
	tester.InitServer(caddyfile, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	return tester
}

// closeLogFiles loads a site without llm_affinity or logs: Caddy closes the
// log files of the config before, having written all it had to.
func closeLogFiles(t *testing.T) {
	t.Helper()
	startCaddyConfig(t, globalOptions+"http://localhost:9080 {\n\trespond ok\n}\n")
}

// flushPins empties every pin store through the admin API.
func flushPins(t *testing.T) {
	t.Helper()
	for name := range listStores(t) {
		if status, body := adminCall(t, http.MethodDelete, "/llm_affinity/"+name); status != http.StatusOK {
			t.Fatalf("flushing pin store %s: status %d: %s", name, status, body)
		}
	}
}

// postLoad posts a config to the in-process Caddy's /load and returns the
// status and body.
func postLoad(t *testing.T, contentType string, cfg []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(adminURL+"/load", contentType, bytes.NewReader(cfg))
	if err != nil {
		t.Fatalf("POST /load: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// ---------------------------------------------------------------------------
// The test sites

// testSite is the one builder of the test Caddyfile sites: site directives,
// then llm_affinity with its settings, models, routes and router, then
// reverse_proxy with the dynamic llm_affinity upstreams. String renders it;
// a field left empty renders nothing, so ttl, max_body and the router
// timeout are the module's defaults unless set. Entries of directives,
// settings and proxy are Caddyfile text, several lines if need be, indented
// relative to where they go (nested lines one tab per level): String indents
// each line to its place.
type testSite struct {
	address      string   // the site address; default gateway (http://localhost:9080)
	directives   []string // site directives before llm_affinity: tls, log, metrics, basic_auth, ...
	settings     []string // llm_affinity subdirectives: name, scope, store, max_entries, switches, ...
	ttl          string
	maxBody      string
	defaultModel string
	models       []siteModel
	routes       []siteRoute
	router       *siteRouter // nil: no router
	proxy        []string    // reverse_proxy subdirectives after dynamic llm_affinity
	staticProxy  string      // reverse_proxy <staticProxy> instead of the dynamic one
	noProxy      bool        // nothing after llm_affinity
}

// siteModel is a model block of a testSite.
type siteModel struct {
	name          string
	to            string // one or more host:port, space-separated
	upstreamModel string
	apiKey        string
	provider      string
	api           string // chat, messages or responses; "": the default for the provider
	path          string
	weight        int    // 0: no weight line
	price         string // the price line's pairs, e.g. "input 3 output 15"; "": none
}

// siteRoute is a route block of a testSite.
type siteRoute struct {
	name        string
	description string
	when        string // one rule: "tools", "last_role user", "regex (?i)refactor", ...
	models      string // the candidates, space-separated, in order
	policy      string
}

// siteRouter is the "router llm" block of a testSite.
type siteRouter struct {
	endpoint, model string
	timeout         string // "": the module's default
}

// String is the site as a Caddyfile site block.
func (s testSite) String() string {
	var b strings.Builder
	put := func(depth int, text string) { b.WriteString(indent(text, depth)) }
	putIf := func(depth int, directive, value string) {
		if value != "" {
			put(depth, directive+" "+value)
		}
	}
	put(0, cmp.Or(s.address, gateway)+" {")
	for _, d := range s.directives {
		put(1, d)
	}
	put(1, "llm_affinity {")
	for _, line := range s.settings {
		put(2, line)
	}
	putIf(2, "ttl", s.ttl)
	putIf(2, "max_body", s.maxBody)
	putIf(2, "default", s.defaultModel)
	for _, m := range s.models {
		put(2, "model "+m.name+" {")
		put(3, "to "+m.to)
		putIf(3, "upstream_model", m.upstreamModel)
		putIf(3, "api_key", m.apiKey)
		putIf(3, "provider", m.provider)
		putIf(3, "api", m.api)
		putIf(3, "path", m.path)
		putIf(3, "price", m.price)
		if m.weight != 0 {
			put(3, "weight "+strconv.Itoa(m.weight))
		}
		put(2, "}")
	}
	for _, r := range s.routes {
		put(2, "route "+r.name+" {")
		putIf(3, "description", r.description)
		putIf(3, "when", r.when)
		put(3, "models "+r.models)
		putIf(3, "policy", r.policy)
		put(2, "}")
	}
	if r := s.router; r != nil {
		put(2, "router llm {")
		put(3, "endpoint "+r.endpoint)
		put(3, "model "+r.model)
		putIf(3, "timeout", r.timeout)
		put(2, "}")
	}
	put(1, "}")
	switch {
	case s.noProxy:
	case s.staticProxy != "":
		put(1, "reverse_proxy "+s.staticProxy)
	default:
		put(1, "reverse_proxy {")
		put(2, "dynamic llm_affinity")
		for _, line := range s.proxy {
			put(2, line)
		}
		put(1, "}")
	}
	put(0, "}")
	return b.String()
}

// indent is text with depth tabs before each of its lines, each line ending
// in a newline; empty text is nothing.
func indent(text string, depth int) string {
	if text == "" {
		return ""
	}
	var b strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		b.WriteString(strings.Repeat("\t", depth) + line + "\n")
	}
	return b.String()
}

// with is the site with settings added to its llm_affinity block.
func (s testSite) with(settings ...string) testSite {
	s.settings = append(slices.Clone(s.settings), settings...)
	return s
}

// withDirectives is the site with site directives added before llm_affinity.
func (s testSite) withDirectives(directives ...string) testSite {
	s.directives = append(slices.Clone(s.directives), directives...)
	return s
}

// model is the site's model name, to be changed in place (copies of the
// site share their models).
func (s testSite) model(name string) *siteModel {
	for i := range s.models {
		if s.models[i].name == name {
			return &s.models[i]
		}
	}
	panic("testSite has no model " + name)
}

// fleet is the set of fakes one test runs against.
type fleet struct {
	gpt, claude, small *fakeUpstream
	router             *fakeRouter
}

func newFleet(t *testing.T, answer func(int64, string) string) *fleet {
	t.Helper()
	return &fleet{
		gpt:    newFakeUpstream(t, "gpt"),
		claude: newFakeUpstream(t, "claude"),
		small:  newFakeUpstream(t, "small"),
		router: newFakeRouter(t, answer),
	}
}

// plainSite is the fleet's site: three models (claude, with upstream_model
// claude-up; gpt-4o; small, the default), two routes the fleet's router
// chooses between (code: claude then gpt-4o; analysis: gpt-4o), no keys, and
// the module's ttl and max_body.
func (f *fleet) plainSite() testSite {
	return testSite{
		defaultModel: "small",
		models: []siteModel{
			{name: "claude", to: f.claude.addr(), upstreamModel: "claude-up"},
			{name: "gpt-4o", to: f.gpt.addr()},
			{name: "small", to: f.small.addr()},
		},
		routes: []siteRoute{
			{name: "code", description: "Writing, calling tools for, or fixing code", models: "claude gpt-4o"},
			{name: "analysis", description: "Reasoning about results and comparing options", models: "gpt-4o"},
		},
		router: &siteRouter{endpoint: f.router.endpoint(), model: "katanemo/Arch-Router-1.5B", timeout: routerTimeout},
	}
}

// keyedSite is the fleet's site as a gateway to providers: plainSite with
// the models' keys (those setKeys sets) and upstream names (gpt-4o; claude,
// provider anthropic but api chat, as the fakes speak Chat Completions,
// upstream_model claude-sonnet-4-20250514; small,
// upstream_model gpt-4o-mini), ttl 10m, max_body 10MiB, and the decision
// placeholders passed upstream in X-Routed-Model, X-Routed-Route and
// X-Routed-Status.
func (f *fleet) keyedSite() testSite {
	s := f.plainSite()
	s.ttl, s.maxBody = "10m", "10MiB"
	s.models = []siteModel{
		{name: "gpt-4o", to: f.gpt.addr(), apiKey: "{env.LLMA_TEST_OPENAI_KEY}"},
		{name: "claude", to: f.claude.addr(), upstreamModel: "claude-sonnet-4-20250514",
			apiKey: "{env.LLMA_TEST_ANTHROPIC_KEY}", provider: "anthropic", api: "chat"},
		{name: "small", to: f.small.addr(), upstreamModel: "gpt-4o-mini"},
	}
	s.routes[0].description = "Generating, calling tools for, or fixing code and data"
	s.proxy = []string{
		"header_up X-Routed-Model {http.llm_affinity.model}",
		"header_up X-Routed-Route {http.llm_affinity.route}",
		"header_up X-Routed-Status {http.llm_affinity.status}",
	}
	return s
}

// speaking is the site with model name speaking api, for a test whose
// client speaks that API to it and expects no translation.
func (s testSite) speaking(name, api string) testSite {
	s.models = slices.Clone(s.models)
	s.model(name).api = api
	return s
}

// setKeys sets the variables of keyedSite's keys.
func setKeys(t *testing.T) {
	t.Setenv("LLMA_TEST_OPENAI_KEY", "sk-openai-test-secret")
	t.Setenv("LLMA_TEST_ANTHROPIC_KEY", "sk-ant-test-secret")
}

// ---------------------------------------------------------------------------
// Fakes: model upstreams and a routing model

// seenRequest is what a fake upstream recorded of one request.
type seenRequest struct {
	Path          string
	Model         string
	Authorization string
	APIKey        string
	Affinity      string
	RoutedModel   string // the X-Routed-* headers set from placeholders
	RoutedRoute   string
	RoutedStatus  string
	ContentLength int64
	Body          []byte
	Header        http.Header // every request header, as received
}

// fakeUpstream is an OpenAI- and Anthropic-compatible model server that
// records what reaches it and echoes the model it was asked for.
type fakeUpstream struct {
	name string
	srv  *httptest.Server

	mu   sync.Mutex
	seen []seenRequest

	// streamGate, when set, is awaited between the first and the rest of the
	// SSE events of a streamed response.
	streamGate chan struct{}

	// respond, when set, answers each request instead of the echoing
	// default, after the request is recorded.
	respond func(w http.ResponseWriter, r *http.Request, body []byte)
}

func newFakeUpstream(t *testing.T, name string) *fakeUpstream {
	t.Helper()
	return newFakeUpstreamFunc(t, name, nil)
}

// newFakeUpstreamFunc is a fakeUpstream that records requests like any other
// and answers them with respond (nil: the echoing default).
func newFakeUpstreamFunc(t *testing.T, name string, respond func(w http.ResponseWriter, r *http.Request, body []byte)) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{name: name, respond: respond}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

// count is how many requests reached the upstream.
func (u *fakeUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// addr is the upstream's host:port.
func (u *fakeUpstream) addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

func (u *fakeUpstream) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.seen...)
}

func (u *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	u.mu.Lock()
	u.seen = append(u.seen, seenRequest{
		Path:          r.URL.Path,
		Model:         req.Model,
		Authorization: r.Header.Get("Authorization"),
		APIKey:        r.Header.Get("X-Api-Key"),
		Affinity:      r.Header.Get("X-Model-Affinity"),
		RoutedModel:   r.Header.Get("X-Routed-Model"),
		RoutedRoute:   r.Header.Get("X-Routed-Route"),
		RoutedStatus:  r.Header.Get("X-Routed-Status"),
		ContentLength: r.ContentLength,
		Body:          body,
		Header:        r.Header.Clone(),
	})
	u.mu.Unlock()

	if u.respond != nil {
		u.respond(w, r, body)
		return
	}
	w.Header().Set("X-Upstream", u.name)
	switch {
	case r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"list","data":[{"id":%q,"object":"model"}]}`, u.name)
	case req.Stream:
		u.stream(w, req.Model)
	case strings.HasSuffix(r.URL.Path, "/messages"):
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"msg_1","type":"message","role":"assistant","model":%q,`+
			`"content":[{"type":"text","text":"hello from %s"}],"stop_reason":"end_turn",`+
			`"usage":{"input_tokens":1,"output_tokens":1}}`, req.Model, u.name)
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":%q,`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"hello from %s"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`, req.Model, u.name)
	}
}

// stream answers with three SSE chunks and [DONE], flushing each; when
// streamGate is set it waits for it after the first chunk.
func (u *fakeUpstream) stream(w http.ResponseWriter, model string) {
	w.Header().Set("Content-Type", "text/event-stream")
	flusher := w.(http.Flusher)
	for i, word := range []string{"one", "two", "three"} {
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,"+
			"\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", model, word)
		flusher.Flush()
		if i == 0 && u.streamGate != nil {
			select {
			case <-u.streamGate:
			case <-time.After(patience):
				return
			}
		}
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	flusher.Flush()
}

// newFakeUpstreams starts a fakeUpstream per name; it returns them by name,
// and a site's models of the same names on them, in the order of names.
func newFakeUpstreams(t *testing.T, names ...string) (map[string]*fakeUpstream, []siteModel) {
	t.Helper()
	ups := map[string]*fakeUpstream{}
	var models []siteModel
	for _, n := range names {
		ups[n] = newFakeUpstream(t, n)
		models = append(models, siteModel{name: n, to: ups[n].addr()})
	}
	return ups, models
}

// fixedResponse answers every request with status, the given headers (name,
// value pairs) and body.
func fixedResponse(status int, body string, headers ...string) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// deadAddr is a loopback host:port with nothing listening (connection refused).
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fakeRouter is an Arch-Router compatible routing model over HTTP.
type fakeRouter struct {
	srv   *httptest.Server
	calls atomic.Int64
	delay atomic.Int64 // nanoseconds to wait before answering

	mu      sync.Mutex
	answer  func(call int64, prompt string) string
	release <-chan struct{} // when set, every call waits for it to close
}

// holdUntil makes every later call wait, unanswered, until release is closed
// (or the caller gives up): a router that answers only once the test says so.
func (fr *fakeRouter) holdUntil(release <-chan struct{}) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	fr.release = release
}

func newFakeRouter(t *testing.T, answer func(call int64, prompt string) string) *fakeRouter {
	t.Helper()
	fr := &fakeRouter{answer: answer}
	fr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := fr.calls.Add(1)
		var req struct {
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		fr.mu.Lock()
		release := fr.release
		fr.mu.Unlock()
		if release != nil {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		if d := fr.delay.Load(); d > 0 {
			select {
			case <-time.After(time.Duration(d)):
			case <-r.Context().Done():
				return
			}
		}
		prompt := ""
		if len(req.Messages) > 0 {
			prompt = req.Messages[0].Content
		}
		fr.mu.Lock()
		content := fr.answer(n, prompt)
		fr.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		out, _ := json.Marshal(map[string]any{
			"id": "r", "object": "chat.completion", "model": "arch-router",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": content}}},
		})
		_, _ = w.Write(out)
	}))
	t.Cleanup(fr.srv.Close)
	return fr
}

func (fr *fakeRouter) endpoint() string { return fr.srv.URL + "/v1/chat/completions" }

// alternating answers "code" on odd calls and "analysis" on even ones, the
// way a real router flips between differently shaped agent turns.
func alternating(call int64, _ string) string {
	if call%2 == 1 {
		return `{"route": "code"}`
	}
	return `{"route": "analysis"}`
}

// ---------------------------------------------------------------------------
// Requests

// chat is a minimal OpenAI chat request body for model: a system prompt
// and a user message per text (JSON-encoded from maps, so "messages" comes
// before "model").
func chat(model string, userText ...string) []byte {
	msgs := []map[string]any{{"role": "system", "content": "You are a database selection analyst."}}
	for _, text := range userText {
		msgs = append(msgs, map[string]any{"role": "user", "content": text})
	}
	b, _ := json.Marshal(map[string]any{"model": model, "messages": msgs})
	return b
}

// openAIBody and anthropicBody wrap messages given as raw JSON (tool calls,
// tool results, content blocks) into a request body for a fixed client
// model, "model" first.
func openAIBody(msgs ...string) []byte {
	return []byte(`{"model":"gpt-4o-mini","messages":[` + strings.Join(msgs, ",") + `]}`)
}

func anthropicBody(msgs ...string) []byte {
	return []byte(`{"model":"claude-client","max_tokens":64,"system":"You are an agent.","messages":[` +
		strings.Join(msgs, ",") + `]}`)
}

// jsonQuote is s as a JSON string.
func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// sendTo posts body to base+path without touching t, so it can run in
// worker goroutines.
func sendTo(client *http.Client, base, path string, body []byte, headers ...string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp, out, err
}

// post sends body to the test gateway's path with headers (name, value
// pairs) and returns the response and its body.
func post(t *testing.T, path string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	resp, out, err := sendTo(http.DefaultClient, gateway, path, body, headers...)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return resp, out
}

// mustChat posts a chat request to the gateway instance at base and fails
// the test unless it is answered 200.
func mustChat(t *testing.T, base string, body []byte, headers ...string) *http.Response {
	t.Helper()
	resp, out, err := sendTo(http.DefaultClient, base, "/v1/chat/completions", body, headers...)
	if err != nil {
		t.Fatalf("POST %s/v1/chat/completions: %v", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s/v1/chat/completions: status %d: %s", base, resp.StatusCode, out)
	}
	return resp
}

// openaiClient is the official OpenAI SDK pointed at the gateway, with no
// retries so that every SDK call is exactly one gateway request.
func openaiClient() openai.Client {
	return openai.NewClient(option.WithBaseURL(gateway+"/v1"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
}

// anthropicClient is the official Anthropic SDK pointed at the gateway, with
// no retries.
func anthropicClient(t *testing.T) anthropic.Client {
	t.Helper()
	// a developer's environment must not add a bearer token to the requests
	t.Setenv("ANTHROPIC_AUTH_TOKEN", "")
	return anthropic.NewClient(anthropicoption.WithBaseURL(gateway), anthropicoption.WithAPIKey("client-anthropic-key"),
		anthropicoption.WithMaxRetries(0))
}

// ---------------------------------------------------------------------------
// Assertions

// decisionOf returns the decision headers of a gateway response.
func decisionOf(resp *http.Response) (model, route, status string) {
	return resp.Header.Get("X-Model-Affinity-Model"), resp.Header.Get("X-Model-Affinity-Route"),
		resp.Header.Get("X-Model-Affinity-Status")
}

// expectDecision checks a response's decision headers.
func expectDecision(t *testing.T, what string, resp *http.Response, model, route, status string) {
	t.Helper()
	m, r, s := decisionOf(resp)
	if m != model || r != route || s != status {
		t.Errorf("%s: decision model/route/status %q/%q/%q, want %q/%q/%q", what, m, r, s, model, route, status)
	}
}

// checkAPIError checks an error the gateway answered itself: status, JSON,
// and the error shape and type of the request's API. It returns the error's
// message.
func checkAPIError(t *testing.T, what string, anthropic bool, status int, resp *http.Response, body []byte) string {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s: status %d content type %q, want %d JSON: %s", what, resp.StatusCode, resp.Header.Get("Content-Type"), status, body)
		return ""
	}
	if anthropic {
		want := map[int]string{400: "invalid_request_error", 413: "request_too_large", 502: "api_error", 503: "overloaded_error"}[status]
		var e struct {
			Type  string `json:"type"`
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Type != "error" || e.Error.Type != want || e.Error.Message == "" {
			t.Errorf("%s: body %s, want the Anthropic error shape with type %s", what, body, want)
		}
		return e.Error.Message
	}
	want := "invalid_request_error"
	if status >= 500 {
		want = "server_error"
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Type != want || e.Error.Message == "" {
		t.Errorf("%s: body %s, want the OpenAI error shape with type %s", what, body, want)
	}
	return e.Error.Message
}

// expectChunkByChunk reads an SSE response from a fakeUpstream whose stream
// waits at its gate after the first chunk: the first line must arrive while
// the upstream still holds the rest (had anything buffered the response, it
// would not), then open lets the upstream go on and the rest must follow.
func expectChunkByChunk(t *testing.T, resp *http.Response, open func()) {
	t.Helper()
	reader := bufio.NewReader(resp.Body)
	first, err := reader.ReadString('\n')
	if err != nil || !strings.Contains(first, `"one"`) {
		t.Fatalf("first SSE line %q, %v", first, err)
	}
	open()
	rest, err := io.ReadAll(reader)
	if err != nil || !bytes.Contains(rest, []byte(`"three"`)) || !bytes.Contains(rest, []byte("[DONE]")) {
		t.Errorf("rest of the stream %q, %v", rest, err)
	}
}

// upstreamTotal is how many requests the fleet's models got.
func (f *fleet) upstreamTotal() int { return f.claude.count() + f.gpt.count() + f.small.count() }

// checkAuthInFront checks a gateway with auth in front of llm_affinity:
// rejected requests reach no router, pin and upstream; two users sending the
// same affinity key get a decision each, keep their own pins, and the
// upstream sees the model's key, never the user's credentials.
// creds(user) returns the request headers that authenticate user.
func checkAuthInFront(t *testing.T, f *fleet, creds func(user string) []string, rejected map[string][]string) {
	t.Helper()
	for name, headers := range rejected {
		resp, out := post(t, "/v1/chat/completions", chat("gpt-4o-mini", "hi"), append(headers, "X-Model-Affinity", "shared")...)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401: %s", name, resp.StatusCode, out)
		}
		if _, _, s := decisionOf(resp); s != "" {
			t.Errorf("%s: a rejected request got a routing decision (%s)", name, s)
		}
	}
	if calls, pins, ups := f.router.calls.Load(), listStores(t)["authed"], f.upstreamTotal(); calls != 0 || pins != 0 || ups != 0 {
		t.Fatalf("after rejected requests: %d router calls, %d pins, %d upstream requests; want none", calls, pins, ups)
	}

	send := func(user string) *http.Response {
		t.Helper()
		return mustChat(t, gateway, chat("gpt-4o-mini", "hi"), append(creds(user), "X-Model-Affinity", "shared")...)
	}
	// the router alternates: alice's session goes to code, bob's to analysis
	expectDecision(t, "alice, first", send("alice"), "claude", "code", "routed")
	expectDecision(t, "bob, same key", send("bob"), "gpt-4o", "analysis", "routed")
	expectDecision(t, "alice again", send("alice"), "claude", "code", "pinned")
	expectDecision(t, "bob again", send("bob"), "gpt-4o", "analysis", "pinned")
	if calls, pins := f.router.calls.Load(), listStores(t)["authed"]; calls != 2 || pins != 2 {
		t.Errorf("two users, one key: %d router calls and %d pins, want 2 and 2", calls, pins)
	}
	for _, seen := range f.gpt.requests() {
		if seen.Authorization != "Bearer sk-openai-test-secret" || seen.APIKey != "" {
			t.Errorf("gpt-4o saw Authorization %q, x-api-key %q; want only its own key", seen.Authorization, seen.APIKey)
		}
	}
	for _, seen := range f.claude.requests() {
		if seen.APIKey != "sk-ant-test-secret" || seen.Authorization != "" {
			t.Errorf("claude saw Authorization %q, x-api-key %q; want only its own key", seen.Authorization, seen.APIKey)
		}
	}
}

// ---------------------------------------------------------------------------
// Admin API and metrics

// adminSessionStats are a pin's session stats as the admin API shows them.
type adminSessionStats struct {
	Created       time.Time  `json:"created"`
	LastUsed      *time.Time `json:"last_used"`
	Turns         int64      `json:"turns"`
	InputTokens   int64      `json:"input_tokens"`
	CachedTokens  int64      `json:"cached_tokens"`
	OutputTokens  int64      `json:"output_tokens"`
	CacheHitRatio *float64   `json:"cache_hit_ratio"`
}

// adminCall calls the in-process Caddy's admin API.
func adminCall(t *testing.T, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, adminURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// listStores is GET /llm_affinity/: store name -> pin count.
func listStores(t *testing.T) map[string]int {
	t.Helper()
	status, body := adminCall(t, http.MethodGet, "/llm_affinity/")
	var list struct {
		Stores map[string]int `json:"stores"`
	}
	if err := json.Unmarshal(body, &list); err != nil || status != http.StatusOK || list.Stores == nil {
		t.Fatalf("GET /llm_affinity/: status %d body %s (%v)", status, body, err)
	}
	return list.Stores
}

// sample is one metric sample of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
	line   string
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// scrape reads the metrics endpoint at url.
func scrape(t *testing.T, url string) (samples []sample, raw string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	for _, line := range strings.Split(string(body), "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v, line: line}
		for _, lp := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[lp[1]] = lp[2]
		}
		samples = append(samples, s)
	}
	return samples, string(body)
}

// sum adds up the samples named name whose labels include want.
func sum(samples []sample, name string, want map[string]string) (total float64, found bool) {
	for _, s := range samples {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
				break
			}
		}
		if match {
			total += s.value
			found = true
		}
	}
	return total, found
}

// ---------------------------------------------------------------------------
// Logs

// waitForLogEntry waits for the JSON log file at path to hold an entry that
// match accepts and returns the first; what names it in the failure.
func waitForLogEntry(t *testing.T, path, what string, match func(entry map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		if entry := findLogEntry(t, path, match); entry != nil {
			return entry
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			t.Fatalf("no log entry %s within %v:\n%s", what, patience, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// findLogEntry returns the first entry of the JSON log file at path that
// match accepts, or nil.
func findLogEntry(t *testing.T, path string, match func(entry map[string]any) bool) map[string]any {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		return nil // not created yet
	}
	defer file.Close()
	lines := bufio.NewReader(file)
	for {
		line, err := lines.ReadString('\n')
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && match(entry) {
			return entry
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
	}
}

// ---------------------------------------------------------------------------
// Redis

// redisClient is a go-redis client for inspecting what the gateway stored.
func redisClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: patience, ReadTimeout: patience, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniquePrefix is a Redis key prefix no other test or run uses, so tests can
// share a Redis server; its keys are deleted when the test ends.
func uniquePrefix(t *testing.T, addr string) string {
	t.Helper()
	prefix := fmt.Sprintf("llma-itest:%s:%d:", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if keys, err := c.Keys(ctx, prefix+"*").Result(); err == nil && len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return prefix
}

// redisKeys lists the keys under prefix (SCAN, bounded).
func redisKeys(t *testing.T, c *redis.Client, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	var keys []string
	iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN %s*: %v", prefix, err)
	}
	return keys
}

// healthyRedisTimeout is the store timeout of tests whose Redis is up: no
// call to it should ever be cut, however loaded the machine (the module's
// default is 100ms).
var healthyRedisTimeout = patience.String()

// storeRedis is the llm_affinity settings of a shared Redis store.
func storeRedis(name, addr, prefix, timeout string) string {
	return fmt.Sprintf("name %s\nstore redis {\n\taddress %s\n\tprefix %s\n\ttimeout %s\n}", name, addr, prefix, timeout)
}

// ---------------------------------------------------------------------------
// A second gateway instance: the real binary

// buildCaddyBinary builds ./cmd/caddy (Caddy with this module) into a
// directory removed when the test ends.
func buildCaddyBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "caddy")
	start := time.Now()
	var out []byte
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		cmd := exec.Command("go", "build", "-o", bin, "../cmd/caddy")
		out, err = cmd.CombinedOutput()
		if err == nil {
			break
		}
		// the module may be mid-edit; wait a little and retry
		time.Sleep(5 * time.Second)
	}
	if err != nil {
		t.Fatalf("go build ../cmd/caddy: %v\n%s", err, out)
	}
	t.Logf("built the caddy binary in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// caddyProcess is a gateway instance run from the binary.
type caddyProcess struct {
	base   string // http://127.0.0.1:<port>
	admin  string
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// startCaddyBinary runs bin with its own Caddyfile: admin, http and https
// ports are free loopback ports, and site is served on this instance's
// address instead of its own. It waits until the site answers and stops the
// process when the test ends.
func startCaddyBinary(t *testing.T, bin string, site testSite) *caddyProcess {
	t.Helper()
	dir := t.TempDir()
	port, adminPort, httpsPort := redistest.FreePort(t), redistest.FreePort(t), redistest.FreePort(t)
	p := &caddyProcess{
		base:  fmt.Sprintf("http://127.0.0.1:%d", port),
		admin: fmt.Sprintf("http://localhost:%d", adminPort),
		log:   filepath.Join(dir, "caddy.log"),
	}
	caddyfile := fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	persist_config off
	skip_install_trust
	grace_period 1ns
}
`, adminPort, port, httpsPort)
	site.address = p.base
	caddyfile += site.String()
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	p.cmd = exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	// keep the instance's storage and config dirs out of the user's home
	p.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir+"/data", "XDG_CONFIG_HOME="+dir+"/config")
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	p.exited = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("second instance's log:\n%s", tail(string(b), 4000))
		}
	})

	// a GET passes through to the default model's upstream: 200 once the
	// site is up
	client := &http.Client{Timeout: patience}
	deadline := time.Now().Add(patience)
	for {
		select {
		case <-p.exited:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("the second instance exited at start:\n%s", tail(string(b), 4000))
		default:
		}
		resp, err := client.Get(p.base + "/v1/models")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("the second instance did not answer on %s within %v (%v):\n%s", p.base, patience, err, tail(string(b), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

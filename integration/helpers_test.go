// Package integration boots a real Caddy (caddytest, one per test binary)
// with the llm_affinity module, fake model upstreams and a fake routing model
// on loopback, and drives it over real HTTP.
package integration

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/llmaffinity/caddy-llm-affinity"
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
	weight        int // 0: no weight line
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
// provider anthropic, upstream_model claude-sonnet-4-20250514; small,
// upstream_model gpt-4o-mini), ttl 10m, max_body 10MiB, and the decision
// placeholders passed upstream in X-Routed-Model, X-Routed-Route and
// X-Routed-Status.
func (f *fleet) keyedSite() testSite {
	s := f.plainSite()
	s.ttl, s.maxBody = "10m", "10MiB"
	s.models = []siteModel{
		{name: "gpt-4o", to: f.gpt.addr(), apiKey: "{env.LLMA_TEST_OPENAI_KEY}"},
		{name: "claude", to: f.claude.addr(), upstreamModel: "claude-sonnet-4-20250514",
			apiKey: "{env.LLMA_TEST_ANTHROPIC_KEY}", provider: "anthropic"},
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

// setKeys sets the variables of keyedSite's keys.
func setKeys(t *testing.T) {
	t.Setenv("LLMA_TEST_OPENAI_KEY", "sk-openai-test-secret")
	t.Setenv("LLMA_TEST_ANTHROPIC_KEY", "sk-ant-test-secret")
}

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
	u := &fakeUpstream{name: name}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

// newFakeUpstreamFunc is a fakeUpstream that records requests like any other
// and answers them with respond.
func newFakeUpstreamFunc(t *testing.T, name string, respond func(w http.ResponseWriter, r *http.Request, body []byte)) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{name: name, respond: respond}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
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

// closeLogFiles loads a site without llm_affinity or logs: Caddy closes the
// log files of the config before, having written all it had to.
func closeLogFiles(t *testing.T) {
	t.Helper()
	startCaddyConfig(t, globalOptions+"http://localhost:9080 {\n\trespond ok\n}\n")
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

// adminURL is the test Caddy's admin endpoint.
const adminURL = "http://localhost:2999"

// flushPins empties every pin store through the admin API.
func flushPins(t *testing.T) {
	t.Helper()
	resp, err := http.Get(adminURL + "/llm_affinity/")
	if err != nil {
		t.Fatalf("listing pin stores: %v", err)
	}
	defer resp.Body.Close()
	var list struct {
		Stores map[string]int `json:"stores"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("listing pin stores: status %d, %v", resp.StatusCode, err)
	}
	for name := range list.Stores {
		req, _ := http.NewRequest(http.MethodDelete, adminURL+"/llm_affinity/"+name, nil)
		del, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("flushing pin store %s: %v", name, err)
		}
		del.Body.Close()
		if del.StatusCode != http.StatusOK {
			t.Fatalf("flushing pin store %s: status %d", name, del.StatusCode)
		}
	}
}

// chat is a minimal OpenAI chat request body.
func chat(model string, userText ...string) []byte {
	msgs := []map[string]any{{"role": "system", "content": "You are a database selection analyst."}}
	for _, text := range userText {
		msgs = append(msgs, map[string]any{"role": "user", "content": text})
	}
	b, _ := json.Marshal(map[string]any{"model": model, "messages": msgs})
	return b
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

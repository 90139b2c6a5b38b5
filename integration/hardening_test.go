package integration

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"golang.org/x/crypto/bcrypt"

	"github.com/llmaffinity/caddy-llm-affinity/internal/redistest"
)

// credentialHeaderNames are the client credential headers the gateway must
// never pass to a provider on its own.
var credentialHeaderNames = []string{"Authorization", "X-Api-Key", "Api-Key", "Cookie"}

// TestEveryPathReplacesCredentials: with basic_auth in front, whatever path
// a request takes through llm_affinity (routed, with a trailing slash, or
// passed through to the default model), no client credential and no
// affinity header reaches an upstream; a model's key replaces them. Before,
// GET /v1/files, POST /v1/embeddings and the trailing-slash chat path
// reached the default model with the gateway password and the affinity id.
func TestEveryPathReplacesCredentials(t *testing.T) {
	setKeys(t)
	f := newFleet(t, func(int64, string) string { return `{"route": "code"}` })
	hash, err := bcrypt.GenerateFromPassword([]byte("agent-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("agent:agent-pw"))
	clientHeaders := []string{
		"Authorization", basic, "X-Api-Key", "client-x-key", "Api-Key", "client-azure-key",
		"Cookie", "gateway_session=s3cret", "X-Model-Affinity", "session-creds", "X-Model-Affinity-Mode", "on",
	}
	send := func(method, path string, body []byte) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, gateway+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(clientHeaders); i += 2 {
			req.Header.Set(clientHeaders[i], clientHeaders[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, out)
		}
		return resp
	}
	// lastSeen checks what the upstream up got last: only wantCredential
	// (name, value) of the credential headers, no affinity headers.
	lastSeen := func(what string, up *fakeUpstream, wantCredential ...string) seenRequest {
		t.Helper()
		seen := up.requests()
		if len(seen) == 0 {
			t.Fatalf("%s: %s got no request", what, up.name)
		}
		got := seen[len(seen)-1]
		for _, name := range append(credentialHeaderNames, "X-Model-Affinity", "X-Model-Affinity-Mode") {
			want := ""
			if len(wantCredential) == 2 && wantCredential[0] == name {
				want = wantCredential[1]
			}
			if v := got.Header.Get(name); v != want {
				t.Errorf("%s: %s saw %s %q, want %q", what, up.name, name, v, want)
			}
		}
		return got
	}

	for _, defaultKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("default model has a key: %v", defaultKey), func(t *testing.T) {
			site := f.keyedSite().with("name creds").withDirectives("basic_auth {\n\tagent " + string(hash) + "\n}")
			wantDefault := []string(nil)
			if defaultKey {
				site.model("small").apiKey = "sk-small-test-secret"
				wantDefault = []string{"Authorization", "Bearer sk-small-test-secret"}
			}
			startCaddy(t, site)

			send(http.MethodGet, "/v1/files", nil)
			lastSeen("GET /v1/files", f.small, wantDefault...)
			send(http.MethodPost, "/v1/embeddings", []byte(`{"model":"text-embedding-3-small","input":"hi"}`))
			lastSeen("POST /v1/embeddings", f.small, wantDefault...)
			// (POST .../responses is routed, as the chat paths are)
			send(http.MethodPost, "/v1/completions", []byte(`{"model":"gpt-3.5-turbo-instruct","prompt":"hi"}`))
			lastSeen("POST /v1/completions", f.small, wantDefault...)

			// the chat paths with a trailing slash are routed like without one
			resp := send(http.MethodPost, "/v1/chat/completions/", chat("o1-pro", "fix my code"))
			expectDecision(t, "chat path with a trailing slash", resp, "claude", "code", "routed")
			if got := lastSeen("POST /v1/chat/completions/", f.claude, "X-Api-Key", "sk-ant-test-secret"); got.Model != "claude-sonnet-4-20250514" {
				t.Errorf("trailing-slash chat request reached claude with model %q, want claude-sonnet-4-20250514", got.Model)
			}
			resp = send(http.MethodPost, "/v1/messages/", anthropicBody(`{"role":"user","content":"fix my code"}`))
			expectDecision(t, "messages path with a trailing slash", resp, "claude", "code", "routed")
			lastSeen("POST /v1/messages/", f.claude, "X-Api-Key", "sk-ant-test-secret")
		})
	}
}

// TestBodyMemoryFollowsBytesReceived: clients that declare a large body and
// send almost nothing cost the gateway what they sent, not what they
// declared. Before, each such request allocated its whole Content-Length
// (up to max_body) before reading a byte.
func TestBodyMemoryFollowsBytesReceived(t *testing.T) {
	up := newFakeUpstream(t, "m")
	startCaddyConfig(t, globalOptionsWith("\tmetrics")+testSite{
		defaultModel: "m",
		models:       []siteModel{{name: "m", to: up.addr()}},
	}.String())

	const conns, declared = 40, 10 << 20
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range conns {
		c, err := net.Dial("tcp", "localhost:9080")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost:9080\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", declared)
	}
	// wait until every request is in the handler, reading its body
	for {
		samples, _ := scrape(t, adminURL+"/metrics")
		inFlight, _ := sum(samples, "caddy_http_requests_in_flight", nil)
		buffered, _ := sum(samples, "caddy_llm_affinity_buffered_bytes", nil)
		if inFlight >= conns && buffered >= conns {
			break
		}
		runtime.Gosched()
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d requests declaring %d bytes and sending 1 grew the heap by %d bytes", conns, declared, grown)
	// a buffer starts at most at 64 KiB; 1 MiB a request leaves room for
	// everything else a request costs, and is a tenth of what was declared
	if limit := int64(conns) << 20; grown > limit {
		t.Errorf("%d requests declaring %d bytes and sending 1 grew the heap by %d bytes, want under %d",
			conns, declared, grown, limit)
	}
	if up.count() != 0 {
		t.Errorf("an incomplete body reached the upstream")
	}
}

// TestBufferedBodiesBounded: beyond max_buffered bytes of request bodies in
// flight, a request gets 503 in its API's error shape, and the others are
// served once their bodies arrive. Before, there was no bound.
func TestBufferedBodiesBounded(t *testing.T) {
	up := newFakeUpstream(t, "m")
	// each body below declares 60,000 bytes, so its buffer starts at 64 KiB:
	// 128 KiB holds two of them
	startCaddy(t, testSite{
		settings:     []string{"max_buffered 128KiB"},
		maxBody:      "64KiB",
		defaultModel: "m",
		models:       []siteModel{{name: "m", to: up.addr()}},
	})

	body := []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 59900) + `"}]}`)
	body = append(body, bytes.Repeat([]byte(" "), 60000-len(body))...)
	type result struct {
		conn int
		resp *http.Response
		body []byte
		err  error
	}
	const conns = 3
	results := make(chan result, conns)
	sockets := make([]net.Conn, conns)
	for i := range conns {
		c, err := net.Dial("tcp", "localhost:9080")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		sockets[i] = c
		fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost:9080\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		c.Write(body[:10])
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			var out []byte
			if err == nil {
				out, err = io.ReadAll(resp.Body)
			}
			results <- result{conn: i, resp: resp, body: out, err: err}
		}()
	}
	// two bodies fit; the third is refused while the two wait for theirs
	refused := <-results
	if refused.err != nil {
		t.Fatalf("first answer: %v", refused.err)
	}
	checkAPIError(t, "the body beyond max_buffered", false, http.StatusServiceUnavailable, refused.resp, refused.body)
	for i, c := range sockets {
		if i != refused.conn {
			c.Write(body[10:])
		}
	}
	for range conns - 1 {
		r := <-results
		if r.err != nil || r.resp.StatusCode != http.StatusOK {
			t.Errorf("conn %d, body complete: %v %v %s; want 200", r.conn, r.err, r.resp, r.body)
		}
	}
	if up.count() != conns-1 {
		t.Errorf("upstream got %d requests, want %d", up.count(), conns-1)
	}
}

// adaptJSON adapts a whole Caddyfile to JSON, failing the test on warnings.
func adaptJSON(t *testing.T, caddyfile string) map[string]any {
	t.Helper()
	raw, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("adapt: %v %v", err, warnings)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// llmAffinityHandler finds the llm_affinity handler in an adapted config.
func llmAffinityHandler(t *testing.T, node any) map[string]any {
	t.Helper()
	var found map[string]any
	var walk func(any)
	walk = func(n any) {
		switch v := n.(type) {
		case map[string]any:
			if v["handler"] == "llm_affinity" && found == nil {
				found = v
				return
			}
			for _, child := range v {
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(node)
	if found == nil {
		t.Fatal("no llm_affinity handler in the config")
	}
	return found
}

// TestRejectedLoadLeavesStore: a config that fails to load (in validation,
// or when it starts) leaves the live pin store exactly as it was: its pins,
// its bound and its Redis attachment. Before, Provision applied the new
// max_entries and detached Redis before the load was known to succeed: a
// rejected load shrank 50 pins to 1 and cut the instance off Redis.
func TestRejectedLoadLeavesStore(t *testing.T) {
	addr := redistest.Addr(t)
	rc := redisClient(t, addr)
	prefix := uniquePrefix(t, addr)
	f := newFleet(t, alternating)
	startCaddy(t, f.plainSite().with(storeRedis("reload-guard", addr, prefix, healthyRedisTimeout), "max_entries 100"))
	const sessions = 50
	models := map[string]string{}
	for i := range sessions {
		key := fmt.Sprintf("guard-%02d", i)
		m, _, _ := decisionOf(mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "X-Model-Affinity", key))
		models[key] = m
	}
	if n := listStores(t)["reload-guard"]; n != sessions {
		t.Fatalf("%d pins before the rejected loads, want %d", n, sessions)
	}
	if n := len(redisKeys(t, rc, prefix)); n != sessions {
		t.Fatalf("%d pins in Redis before the rejected loads, want %d", n, sessions)
	}

	// the same site with max_entries 1 and no Redis
	shrunkSite := f.plainSite().with("name reload-guard", "max_entries 1")
	shrunk := adaptJSON(t, globalOptions+shrunkSite.String())
	invalid := adaptJSON(t, globalOptions+shrunkSite.String())
	llmAffinityHandler(t, invalid)["default"] = "no-such-model" // fails Validate, after Provision
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := strings.TrimPrefix(busy.Addr().String(), "127.0.0.1:")
	unstartableSite := shrunkSite
	unstartableSite.address = "http://127.0.0.1:" + busyPort
	unstartable := adaptJSON(t, strings.Replace(globalOptions, "http_port 9080", "http_port "+busyPort, 1)+unstartableSite.String())
	for name, cfg := range map[string]map[string]any{"fails validation": invalid, "fails to start": unstartable} {
		raw, _ := json.Marshal(cfg)
		if status, body := postLoad(t, "application/json", raw); status == http.StatusOK {
			t.Fatalf("the config that %s loaded: %s", name, body)
		}
		if n := listStores(t)["reload-guard"]; n != sessions {
			t.Errorf("after a config that %s: %d pins, want %d", name, n, sessions)
		}
	}
	// every session is still pinned, and new pins still reach Redis
	for key, model := range models {
		expectDecision(t, key, mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "X-Model-Affinity", key), model, map[string]string{"claude": "code", "gpt-4o": "analysis"}[model], "pinned")
	}
	mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "X-Model-Affinity", "guard-after")
	if n := len(redisKeys(t, rc, prefix)); n != sessions+1 {
		t.Errorf("%d pins in Redis after the rejected loads and one new session, want %d: the store was detached", n, sessions+1)
	}

	// a config that loads applies its settings: the bound, and no Redis
	raw, _ := json.Marshal(shrunk)
	if status, body := postLoad(t, "application/json", raw); status != http.StatusOK {
		t.Fatalf("loading the shrunk config: %d %s", status, body)
	}
	for listStores(t)["reload-guard"] > 1 {
		// otter evicts down to a new bound as it maintains the cache; each
		// request is maintenance
		mustChat(t, gateway, chat("gpt-4o-mini", "hi"))
	}
	mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "X-Model-Affinity", "guard-detached")
	if n := len(redisKeys(t, rc, prefix)); n != sessions+1 {
		t.Errorf("%d pins in Redis after loading a config without Redis, want %d", n, sessions+1)
	}
}

// TestNoDynamicProxy: llm_affinity with no reverse_proxy after it answers
// 502 in the API's error shape naming what is missing, on every path, and a
// config load warns about it, as it does about a reverse_proxy with static
// upstreams. Before, such a site answered 200 with an empty body.
func TestNoDynamicProxy(t *testing.T) {
	up := newFakeUpstream(t, "m")
	logPath := filepath.Join(t.TempDir(), "caddy.log")
	globals := globalOptionsWith("\tlog {\n\t\toutput file " + logPath + "\n\t}")
	site := testSite{defaultModel: "m", models: []siteModel{{name: "m", to: up.addr()}}}
	noProxy, staticProxy := site, site
	noProxy.noProxy = true
	staticProxy.staticProxy = up.addr()
	startCaddyConfig(t, globals+noProxy.String())
	for _, tc := range []struct {
		method, path string
		body         []byte
		anthropic    bool
	}{
		{http.MethodPost, "/v1/chat/completions", chat("m", "hi"), false},
		{http.MethodPost, "/v1/messages", anthropicBody(`{"role":"user","content":"hi"}`), true},
		{http.MethodGet, "/v1/files", nil, false},
	} {
		req, _ := http.NewRequest(tc.method, gateway+tc.path, bytes.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		what := tc.method + " " + tc.path + " without reverse_proxy"
		checkAPIError(t, what, tc.anthropic, http.StatusBadGateway, resp, out)
		if !strings.Contains(string(out), "reverse_proxy { dynamic llm_affinity }") {
			t.Errorf("%s: the error does not name the missing reverse_proxy: %s", what, out)
		}
	}
	reloadCaddy(t, globals+staticProxy.String())
	logs, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// both configs so far lack the dynamic source; the second has a static one
	for want, times := range map[string]int{
		"no 'reverse_proxy { dynamic llm_affinity }' follows llm_affinity": 2,
		"a reverse_proxy with static upstreams follows llm_affinity":       1,
	} {
		if n := strings.Count(string(logs), want); n != times {
			t.Errorf("the log has %q %d times, want %d:\n%s", want, n, times, logs)
		}
	}
	// the standard layout warns about nothing
	before := strings.Count(string(logs), "follows llm_affinity")
	reloadCaddy(t, globals+site.String())
	if logs, _ = os.ReadFile(logPath); strings.Count(string(logs), "follows llm_affinity") != before {
		t.Errorf("reverse_proxy with dynamic llm_affinity drew a warning:\n%s", logs)
	}
}

// TestUnsetKeyFailsLoad: an api_key naming an unset environment variable
// fails the load with a message naming the model and the variable. Before,
// it loaded, and the client's own credential went upstream.
func TestUnsetKeyFailsLoad(t *testing.T) {
	up := newFakeUpstream(t, "m")
	status, body := postLoad(t, "text/caddyfile", []byte(globalOptions+testSite{
		defaultModel: "m",
		models:       []siteModel{{name: "m", to: up.addr(), apiKey: "{env.LLMA_TEST_NEVER_SET_KEY}"}},
	}.String()))
	want := "model 'm': api_key: environment variable LLMA_TEST_NEVER_SET_KEY is not set"
	if status == http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("load with an unset key variable: %d %s; want a failure naming %q", status, body, want)
	}
}

// TestClientChoiceSwitches: client_model off keeps a client from choosing a
// configured model by asking for it, and client_preferences off makes the
// gateway ignore a body's routing_preferences (still removed before the
// request goes upstream). Both are on by default.
func TestClientChoiceSwitches(t *testing.T) {
	// the router picks the request's own route when it is offered one
	f := newFleet(t, func(_ int64, prompt string) string {
		if strings.Contains(prompt, "mine") {
			return `{"route": "mine"}`
		}
		return `{"route": "other"}`
	})
	prefs := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],` +
		`"routing_preferences":[{"name":"mine","description":"everything","models":["claude"]}]}`)
	for _, tc := range []struct {
		extra                string
		wantAsked, wantPrefs string // the model that serves asking for gpt-4o, and with preferences
	}{
		{extra: "", wantAsked: "gpt-4o", wantPrefs: "claude"},
		{extra: "client_model off", wantAsked: "small", wantPrefs: "claude"},
		{extra: "client_preferences off", wantAsked: "gpt-4o", wantPrefs: "gpt-4o"},
		{extra: "client_model off\nclient_preferences off", wantAsked: "small", wantPrefs: "small"},
	} {
		startCaddy(t, f.plainSite().with(tc.extra))
		what := fmt.Sprintf("%q", tc.extra)
		if m, _, _ := decisionOf(mustChat(t, gateway, chat("gpt-4o", "hi"))); m != tc.wantAsked {
			t.Errorf("%s: asking for gpt-4o served %s, want %s", what, m, tc.wantAsked)
		}
		resp := mustChat(t, gateway, prefs)
		if m, _, _ := decisionOf(resp); m != tc.wantPrefs {
			t.Errorf("%s: routing_preferences for claude served %s, want %s", what, m, tc.wantPrefs)
		}
	}
	for _, up := range []*fakeUpstream{f.claude, f.gpt, f.small} {
		for _, seen := range up.requests() {
			if bytes.Contains(seen.Body, []byte("routing_preferences")) {
				t.Errorf("%s got routing_preferences: %s", up.name, seen.Body)
			}
		}
	}
}

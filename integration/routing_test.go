package integration

// Integration tests of the routing features: failover across a route's
// candidates, weighted route policies, turn-level routing
// (route_on_user_only), implicit affinity keys, opt-out, the decision API,
// in-process routing rules and per-request routing_preferences. Each test
// loads its own Caddyfile site into the test binary's Caddy.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFailoverToNextCandidate: when the route's pick fails before any byte
// reaches the client, the next candidate serves, the client sees only its
// response, and the pin follows it. Without failover the client would get the
// first candidate's 502/504/429/500/503 (with X-Bad and "bad"), and the second
// request would still go to the failing model.
func TestFailoverToNextCandidate(t *testing.T) {
	const goodBody = `{"id":"chatcmpl-good","object":"chat.completion","model":"good-up","choices":[]}`
	// never answers: only the gateway's response_header_timeout ends it
	silent := func(_ http.ResponseWriter, r *http.Request, _ []byte) { <-r.Context().Done() }
	tests := []struct {
		name      string
		respond   func(http.ResponseWriter, *http.Request, []byte) // nil: nothing listens
		transport string
	}{
		{name: "connection refused"},
		{name: "timeout", respond: silent, transport: "transport http {\n\tresponse_header_timeout 300ms\n}"},
		{name: "429", respond: fixedResponse(429, "bad", "X-Bad", "1")},
		{name: "500", respond: fixedResponse(500, "bad", "X-Bad", "1")},
		{name: "503", respond: fixedResponse(503, "bad", "X-Bad", "1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bad *fakeUpstream
			var badAddr string
			if tt.respond == nil {
				badAddr = deadAddr(t)
			} else {
				bad = newFakeUpstreamFunc(t, "bad", tt.respond)
				badAddr = bad.addr()
			}
			good := newFakeUpstreamFunc(t, "good", fixedResponse(http.StatusOK, goodBody, "X-Good", "1"))
			other := newFakeUpstream(t, "other")
			startCaddy(t, testSite{
				defaultModel: "other",
				models: []siteModel{
					{name: "bad", to: badAddr, upstreamModel: "bad-up", apiKey: "key-bad"},
					{name: "good", to: good.addr(), upstreamModel: "good-up", apiKey: "key-good"},
					{name: "other", to: other.addr()},
				},
				routes: []siteRoute{{name: "r", when: "last_role user", models: "bad good"}},
				proxy:  []string{tt.transport},
			})

			body := []byte(`{"model":"client-model","messages":[{"role":"user","content":"hello"}]}`)
			// (had the timeout not fired, this would wait for the silent upstream forever)
			resp, out := post(t, "/v1/chat/completions", body, "X-Model-Affinity", "s-failover", "Authorization", "Bearer client-key")
			if resp.StatusCode != http.StatusOK || string(out) != goodBody {
				t.Fatalf("status %d body %q; want the good model's 200 %q unchanged", resp.StatusCode, out, goodBody)
			}
			if resp.Header.Get("X-Good") != "1" {
				t.Errorf("the serving upstream's header X-Good did not reach the client")
			}
			if resp.Header.Get("X-Bad") != "" {
				t.Errorf("the failed attempt's header X-Bad reached the client")
			}
			expectDecision(t, "first request", resp, "good", "r", "routed")

			want := `{"model":"good-up","messages":[{"role":"user","content":"hello"}]}`
			seen := good.requests()
			if len(seen) != 1 {
				t.Fatalf("good upstream got %d requests, want 1", len(seen))
			}
			if string(seen[0].Body) != want || seen[0].ContentLength != int64(len(want)) {
				t.Errorf("good upstream body %s (Content-Length %d), want %s (%d)", seen[0].Body, seen[0].ContentLength, want, len(want))
			}
			if seen[0].Authorization != "Bearer key-good" {
				t.Errorf("good upstream got Authorization %q, want its own key", seen[0].Authorization)
			}
			if bad != nil {
				b := bad.requests()
				if len(b) != 1 || b[0].Authorization != "Bearer key-bad" || b[0].Model != "bad-up" {
					t.Errorf("bad upstream saw %d requests (%+v); want 1 with key-bad and model bad-up", len(b), b)
				}
			}

			// the pin followed the model that served
			resp, out = post(t, "/v1/chat/completions", body, "X-Model-Affinity", "s-failover")
			if resp.StatusCode != http.StatusOK || string(out) != goodBody {
				t.Fatalf("second request: status %d body %q", resp.StatusCode, out)
			}
			expectDecision(t, "second request", resp, "good", "r", "pinned")
			if bad != nil && bad.count() != 1 {
				t.Errorf("bad upstream got %d requests, want 1: the pinned request must go straight to good", bad.count())
			}
			if good.count() != 2 || other.count() != 0 {
				t.Errorf("good got %d requests (want 2), the default %d (want 0)", good.count(), other.count())
			}
		})
	}
}

// TestAllCandidatesFailLeavesNoPin: when every candidate fails, the last
// attempt's response reaches the client unchanged and no pin is left, so the
// session is routed afresh once the models recover. Without it the client
// would see the first model's failure, or the next request would be pinned
// to a model that could not serve.
func TestAllCandidatesFailLeavesNoPin(t *testing.T) {
	var healthy atomic.Bool
	flaky := func(name, failBody string) func(http.ResponseWriter, *http.Request, []byte) {
		return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			w.Header().Set("X-Upstream", name)
			if healthy.Load() {
				_, _ = io.WriteString(w, `{"ok":"`+name+`"}`)
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, failBody)
		}
	}
	bad1 := newFakeUpstreamFunc(t, "bad1", flaky("bad1", "bad1-503"))
	bad2 := newFakeUpstreamFunc(t, "bad2", flaky("bad2", "bad2-503"))
	bad3 := newFakeUpstreamFunc(t, "bad3", flaky("bad3", "last-503"))
	startCaddy(t, testSite{
		defaultModel: "bad3",
		models: []siteModel{
			{name: "bad1", to: bad1.addr()},
			{name: "bad2", to: bad2.addr()},
			{name: "bad3", to: bad3.addr()},
		},
		routes: []siteRoute{{name: "r", when: "last_role user", models: "bad1 bad2"}},
	})

	body := []byte(`{"model":"client-model","messages":[{"role":"user","content":"hello"}]}`)
	resp, out := post(t, "/v1/chat/completions", body, "X-Model-Affinity", "s-allfail")
	if resp.StatusCode != http.StatusServiceUnavailable || string(out) != "last-503" {
		t.Fatalf("status %d body %q; want the last attempt's 503 \"last-503\" unchanged", resp.StatusCode, out)
	}
	if up := resp.Header.Get("X-Upstream"); up != "bad3" {
		t.Errorf("X-Upstream %q, want bad3 (the last attempt's headers)", up)
	}
	expectDecision(t, "all failing", resp, "bad3", "r", "routed")
	for _, u := range []*fakeUpstream{bad1, bad2, bad3} {
		if n := u.count(); n != 1 {
			t.Errorf("%s got %d requests, want 1 (each candidate tried once)", u.name, n)
		}
	}

	healthy.Store(true)
	resp, out = post(t, "/v1/chat/completions", body, "X-Model-Affinity", "s-allfail")
	if resp.StatusCode != http.StatusOK || string(out) != `{"ok":"bad1"}` {
		t.Fatalf("after recovery: status %d body %q, want bad1's 200", resp.StatusCode, out)
	}
	expectDecision(t, "after recovery", resp, "bad1", "r", "routed")
	// and now a pin is written: the routed status above was not for want of pinning
	resp, _ = post(t, "/v1/chat/completions", body, "X-Model-Affinity", "s-allfail")
	expectDecision(t, "after recovery, second", resp, "bad1", "r", "pinned")
}

// TestNoRetryAfterStreamStarted: once a streamed response has reached the
// client, a broken upstream is not retried on another model. Without the
// commit tracking, the second candidate would get the request and its bytes
// would be appended to the half-sent stream.
func TestNoRetryAfterStreamStarted(t *testing.T) {
	breaking := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one\"}}]}\n\n")
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // mid-stream: no terminating chunk, no [DONE]
		}
	}
	first := newFakeUpstreamFunc(t, "first", breaking)
	second := newFakeUpstream(t, "second")
	dflt := newFakeUpstream(t, "dflt")
	startCaddy(t, testSite{
		defaultModel: "dflt",
		models: []siteModel{
			{name: "first", to: first.addr()},
			{name: "second", to: second.addr()},
			{name: "dflt", to: dflt.addr()},
		},
		routes: []siteRoute{{name: "r", when: "last_role user", models: "first second"}},
	})

	body := []byte(`{"model":"client-model","stream":true,"messages":[{"role":"user","content":"stream please"}]}`)
	req, _ := http.NewRequest(http.MethodPost, gateway+"/v1/chat/completions", strings.NewReader(string(body)))
	req.Header.Set("X-Model-Affinity", "s-stream-break")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d content type %q; want the first model's stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	expectDecision(t, "stream", resp, "first", "r", "routed")
	rest, _ := io.ReadAll(bufio.NewReader(resp.Body)) // ends in an error: the stream was cut
	if !strings.Contains(string(rest), `"one"`) {
		t.Errorf("client stream %q lacks the first chunk", rest)
	}
	if strings.Contains(string(rest), "[DONE]") || strings.Contains(string(rest), "second") {
		t.Errorf("client stream %q continued after the upstream broke", rest)
	}
	if first.count() != 1 || second.count() != 0 || dflt.count() != 0 {
		t.Errorf("requests: first %d, second %d, default %d; want 1, 0, 0 (no retry once streaming started)",
			first.count(), second.count(), dflt.count())
	}
}

// TestWeightedPolicyIsStickyPerSession: a weighted route splits sessions by
// weight, and each session keeps its model. Without the weighted policy
// every session would get a; without the pin a session's turns would be
// split 3:1 too.
func TestWeightedPolicyIsStickyPerSession(t *testing.T) {
	a := newFakeUpstream(t, "a")
	b := newFakeUpstream(t, "b")
	dflt := newFakeUpstream(t, "dflt")
	startCaddy(t, testSite{
		defaultModel: "dflt",
		models: []siteModel{
			{name: "a", to: a.addr(), weight: 3},
			{name: "b", to: b.addr(), weight: 1},
			{name: "dflt", to: dflt.addr()},
		},
		routes: []siteRoute{{name: "r", when: "last_role user", models: "a b", policy: "weighted"}},
	})

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)
	body := []byte(`{"model":"client-model","messages":[{"role":"user","content":"hello"}]}`)

	const sessions, workers = 1000, 8
	type session struct {
		models   [3]string
		statuses [3]string
		err      error
	}
	results := make([]session, sessions)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				key := fmt.Sprintf("weighted-session-%d", i)
				for turn := range 3 {
					resp, out, err := sendTo(client, gateway, "/v1/chat/completions", body, "X-Model-Affinity", key)
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, out)
					}
					if err != nil {
						results[i].err = err
						break
					}
					results[i].models[turn], _, results[i].statuses[turn] = decisionOf(resp)
				}
			}
		})
	}
	for i := range sessions {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	firstA, bad := 0, 0
	for i, s := range results {
		if bad > 5 {
			t.FailNow()
		}
		switch {
		case s.err != nil:
			bad++
			t.Errorf("session %d: %v", i, s.err)
		case s.models[0] != s.models[1] || s.models[0] != s.models[2] ||
			s.statuses != [3]string{"routed", "pinned", "pinned"}:
			bad++
			t.Errorf("session %d: models %v statuses %v; want one model, routed then pinned", i, s.models, s.statuses)
		case s.models[0] == "a":
			firstA++
		case s.models[0] != "b":
			bad++
			t.Errorf("session %d: model %q", i, s.models[0])
		}
	}
	if firstA < 675 || firstA > 825 {
		t.Errorf("a served %d of %d sessions; want 750 ± 75 for weights 3:1", firstA, sessions)
	}
	if a.count() != 3*firstA || b.count() != 3*(sessions-firstA) || dflt.count() != 0 {
		t.Errorf("upstream requests a %d b %d default %d; want %d, %d, 0", a.count(), b.count(), dflt.count(),
			3*firstA, 3*(sessions-firstA))
	}

	// without a header every request is a fresh weighted pick
	const unkeyed = 400
	noKeyA := 0
	for i := range unkeyed {
		resp, out, err := sendTo(client, gateway, "/v1/chat/completions", body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("unkeyed request %d: %v %s", i, err, out)
		}
		m, _, status := decisionOf(resp)
		if status != "routed" {
			t.Fatalf("unkeyed request %d: status %q, want routed", i, status)
		}
		if m == "a" {
			noKeyA++
		}
	}
	if noKeyA < 240 || noKeyA > 360 {
		t.Errorf("a served %d of %d unkeyed requests; want 300 ± 60", noKeyA, unkeyed)
	}
}

// turnStep is one request of an agent loop and the decision it should get.
type turnStep struct {
	name        string
	body        []byte
	model       string
	route       string
	status      string
	routerCalls int64 // router calls after the request
}

func runTurns(t *testing.T, f *fleet, path, key string, steps []turnStep) {
	t.Helper()
	for _, s := range steps {
		resp, out := post(t, path, s.body, "X-Model-Affinity", key)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", s.name, resp.StatusCode, out)
		}
		expectDecision(t, s.name, resp, s.model, s.route, s.status)
		if got := f.router.calls.Load(); got != s.routerCalls {
			t.Errorf("%s: router calls %d, want %d", s.name, got, s.routerCalls)
		}
	}
}

// TestRouteOnUserOnly: with route_on_user_only, tool results, assistant
// steps and harness envelopes reuse the session's decision, and a new user
// message re-routes and re-pins. Without the feature the 4th request would
// stay pinned to claude with no second router call; with the feature but a
// broken IsUserUtterance, requests 2, 3 or 5 would call the (alternating)
// router and switch models.
func TestRouteOnUserOnly(t *testing.T) {
	t.Run("openai", func(t *testing.T) {
		f := newFleet(t, alternating)
		startCaddy(t, f.plainSite().with("route_on_user_only"))
		sys := `{"role":"system","content":"You are an agent."}`
		u1 := `{"role":"user","content":"What is 6 times 7?"}`
		call1 := `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"calc","arguments":"{\"a\":6,\"b\":7}"}}]}`
		result1 := `{"role":"tool","tool_call_id":"call_1","content":"42"}`
		asst := `{"role":"assistant","content":"It is 42."}`
		reminder := `{"role":"user","content":"<system-reminder>x</system-reminder>"}`
		u2 := `{"role":"user","content":"Now compare PostgreSQL and MongoDB"}`
		call2 := `{"role":"assistant","content":null,"tool_calls":[{"id":"call_2","type":"function","function":{"name":"bench","arguments":"{}"}}]}`
		result2 := `{"role":"tool","tool_call_id":"call_2","content":"fast"}`
		runTurns(t, f, "/v1/chat/completions", "s-turns-openai", []turnStep{
			{"1 user question", openAIBody(sys, u1), "claude", "code", "routed", 1},
			{"2 tool result", openAIBody(sys, u1, call1, result1), "claude", "code", "pinned", 1},
			{"3 system-reminder only", openAIBody(sys, u1, call1, result1, asst, reminder), "claude", "code", "pinned", 1},
			{"4 new user message", openAIBody(sys, u1, call1, result1, asst, reminder, u2), "gpt-4o", "analysis", "routed", 2},
			{"5 tool result after re-route", openAIBody(sys, u1, call1, result1, asst, reminder, u2, call2, result2), "gpt-4o", "analysis", "pinned", 2},
		})
	})

	t.Run("anthropic", func(t *testing.T) {
		f := newFleet(t, alternating)
		startCaddy(t, f.plainSite().with("route_on_user_only on"))
		u1 := `{"role":"user","content":[{"type":"text","text":"What is 6 times 7?"}]}`
		use1 := `{"role":"assistant","content":[{"type":"text","text":"Calling calc."},{"type":"tool_use","id":"tu_1","name":"calc","input":{"a":6,"b":7}}]}`
		result1 := `{"role":"user","content":[{"type":"tool_result","tool_use_id":"tu_1","content":"42"}]}`
		asst := `{"role":"assistant","content":[{"type":"text","text":"It is 42."}]}`
		reminder := `{"role":"user","content":[{"type":"text","text":"<system-reminder>x</system-reminder>"}]}`
		u2 := `{"role":"user","content":"Now compare PostgreSQL and MongoDB"}`
		use2 := `{"role":"assistant","content":[{"type":"tool_use","id":"tu_2","name":"bench","input":{}}]}`
		result2 := `{"role":"user","content":[{"type":"tool_result","tool_use_id":"tu_2","content":[{"type":"text","text":"fast"}]}]}`
		runTurns(t, f, "/v1/messages", "s-turns-anthropic", []turnStep{
			{"1 user question", anthropicBody(u1), "claude", "code", "routed", 1},
			{"2 tool_result turn", anthropicBody(u1, use1, result1), "claude", "code", "pinned", 1},
			{"3 system-reminder only", anthropicBody(u1, use1, result1, asst, reminder), "claude", "code", "pinned", 1},
			{"4 new user message", anthropicBody(u1, use1, result1, asst, reminder, u2), "gpt-4o", "analysis", "routed", 2},
			{"5 tool_result after re-route", anthropicBody(u1, use1, result1, asst, reminder, u2, use2, result2), "gpt-4o", "analysis", "pinned", 2},
		})
	})

	t.Run("off by default", func(t *testing.T) {
		f := newFleet(t, alternating)
		startCaddy(t, f.plainSite())
		u1 := `{"role":"user","content":"What is 6 times 7?"}`
		asst := `{"role":"assistant","content":"It is 42."}`
		u2 := `{"role":"user","content":"Now compare PostgreSQL and MongoDB"}`
		runTurns(t, f, "/v1/chat/completions", "s-turns-off", []turnStep{
			{"1 user question", openAIBody(u1), "claude", "code", "routed", 1},
			{"2 new user message", openAIBody(u1, asst, u2), "claude", "code", "pinned", 1},
		})
	})
}

// implicitBody is an agent's request: a fixed system prompt and tools, the
// first user message and the turns after it.
func implicitBody(firstUser string, turns ...string) []byte {
	msgs := append([]string{
		`{"role":"system","content":"You are a coding agent. SECRET-SYSTEM-PROMPT"}`,
		`{"role":"user","content":` + jsonQuote(firstUser) + `}`,
	}, turns...)
	return []byte(`{"model":"gpt-4o-mini","tools":[{"type":"function","function":{"name":"read_file_tool","parameters":{"type":"object"}}}],` +
		`"messages":[` + strings.Join(msgs, ",") + `]}`)
}

// TestImplicitAffinity: with implicit on, requests without the header are
// keyed by the system prompt, tools and first user message. Without the
// feature the 2nd and 3rd requests would call the (alternating) router again
// and switch models.
func TestImplicitAffinity(t *testing.T) {
	f := newFleet(t, alternating)
	startCaddy(t, f.plainSite().with("implicit on", "implicit_salt testsalt"))

	const first = "Find the bug in parser.go PROMPT-TEXT-ONE"
	asst := `{"role":"assistant","content":"Looking at it."}`
	u2 := `{"role":"user","content":"Check line 10 too"}`
	call := `{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"read_file_tool","arguments":"{}"}}]}`
	result := `{"role":"tool","tool_call_id":"c1","content":"line 10: x := 1"}`
	steps := []struct {
		body   []byte
		status string
	}{
		{implicitBody(first), "routed"},
		{implicitBody(first, asst, u2), "pinned"},
		{implicitBody(first, asst, u2, call, result, asst, `{"role":"user","content":"Fix it"}`), "pinned"},
	}
	for i, s := range steps {
		resp, out := post(t, "/v1/chat/completions", s.body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d: %s", i+1, resp.StatusCode, out)
		}
		expectDecision(t, fmt.Sprintf("implicit request %d", i+1), resp, "claude", "code", s.status)
	}
	if got := f.router.calls.Load(); got != 1 {
		t.Errorf("router calls %d after one implicit session's 3 requests, want 1", got)
	}

	// another first user message is another session
	resp, _ := post(t, "/v1/chat/completions", implicitBody("Summarize the design doc"))
	expectDecision(t, "another first message", resp, "gpt-4o", "analysis", "routed")
	if got := f.router.calls.Load(); got != 2 {
		t.Errorf("router calls %d, want 2", got)
	}

	// the explicit header wins: same body, its own key, routed afresh
	resp, _ = post(t, "/v1/chat/completions", implicitBody(first, asst, u2), "X-Model-Affinity", "explicit-session")
	expectDecision(t, "explicit header", resp, "claude", "code", "routed")
	if got := f.router.calls.Load(); got != 3 {
		t.Errorf("router calls %d after an explicit-header request, want 3", got)
	}

	// the decision API shows the implicit key: opaque, no prompt text
	resp, out := post(t, "/routing/v1/chat/completions", implicitBody(first, asst, u2))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("decision API: status %d: %s", resp.StatusCode, out)
	}
	var d struct {
		Models    []string `json:"models"`
		SessionID *string  `json:"session_id"`
		Pinned    bool     `json:"pinned"`
	}
	if err := json.Unmarshal(out, &d); err != nil || d.SessionID == nil {
		t.Fatalf("decision API body %s: %v", out, err)
	}
	if !strings.HasPrefix(*d.SessionID, "implicit:") {
		t.Errorf("implicit session_id %q does not start with implicit:", *d.SessionID)
	}
	// no word of the system prompt, the tools, the first user message or the salt
	for _, word := range strings.Fields("You are a coding agent. SECRET-SYSTEM-PROMPT read_file_tool testsalt " + first) {
		if len(word) >= 3 && strings.Contains(*d.SessionID, word) {
			t.Errorf("implicit session_id %q contains prompt text %q", *d.SessionID, word)
		}
	}
	if !d.Pinned || len(d.Models) == 0 || d.Models[0] != "claude" {
		t.Errorf("decision API for the implicit session: %s; want pinned to claude", out)
	}
	if got := f.router.calls.Load(); got != 3 {
		t.Errorf("router calls %d after the decision API on a pinned implicit session, want 3", got)
	}
}

// TestHarnessSessionHeaders: with no X-Model-Affinity header, each default
// session header, spelled on the wire as its harness spells it, keys a
// session: its first turn is routed and the next ones are pinned to the same
// model; another id is another session; with "session_headers off" the same
// requests route every turn. Without the defaults the (alternating) router
// would be called on every turn and switch models. Older Codex's session_id
// is the exception Caddy makes: it drops header names with an underscore
// unless the server's expected_underscore_headers lists them, and then drops
// the hyphenated session-id.
func TestHarnessSessionHeaders(t *testing.T) {
	f := newFleet(t, alternating)
	startCaddy(t, f.plainSite())

	// turns sends n chat turns with one header exactly as spelled (Go's
	// client writes a header map key as it is, so "session_id" and
	// "session-id" reach the gateway lower case, as the harnesses send them)
	// and returns each turn's decision status; every turn must have been
	// served by the model of the first.
	calls := int64(0)
	turns := func(what, name, value string, n int) []string {
		t.Helper()
		var statuses []string
		var first string
		for turn := 1; turn <= n; turn++ {
			req, err := http.NewRequest(http.MethodPost, gateway+"/v1/chat/completions",
				bytes.NewReader(chat("gpt-4o-mini", fmt.Sprintf("%s turn %d", what, turn))))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header[name] = []string{value}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s turn %d: %v", what, turn, err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s turn %d: status %d: %s", what, turn, resp.StatusCode, out)
			}
			model, _, status := decisionOf(resp)
			if status == "routed" {
				calls++
			}
			if turn == 1 {
				first = model
			} else if status == "pinned" && model != first {
				t.Errorf("%s turn %d: pinned to %q, want %q as turn 1", what, turn, model, first)
			}
			statuses = append(statuses, status)
		}
		if got := f.router.calls.Load(); got != calls {
			t.Errorf("%s: router calls %d, want %d (one per routed turn)", what, got, calls)
		}
		return statuses
	}
	const pinned, unpinned = "routed pinned pinned", "routed routed routed"
	expect := func(what string, statuses []string, want string) {
		t.Helper()
		if got := strings.Join(statuses, " "); got != want {
			t.Errorf("%s: statuses %q, want %q", what, got, want)
		}
	}

	const codexID = "019a4f2e-7c3b-7d41-8e95-6b2c1d0a9f83"
	for _, h := range []struct{ harness, header, id string }{
		{"Claude Code", "X-Claude-Code-Session-Id", "0b7e3c1a-5d2f-4e8a-9c61-2f4d8a7b3e10"},
		{"Codex CLI", "session-id", codexID},
		{"OpenCode", "x-session-affinity", "ses_1a2b3c4d5e6fABCDEFGHIJKLMN"},
		{"OpenCode to an opencode provider", "x-opencode-session", "ses_6f5e4d3c2b1aNMLKJIHGFEDCBA"},
	} {
		what := h.harness + " (" + h.header + ")"
		expect(what, turns(what, h.header, h.id, 3), pinned)
	}
	// another id in the same header is another session
	expect("another Codex session", turns("another Codex session", "session-id", "019a4f2e-0000-7000-8000-000000000001", 1), "routed")

	// Caddy drops older Codex's session_id before any handler sees it...
	const oldCodexID = "0199e5d1-2a4b-7c6d-9e8f-0a1b2c3d4e5f"
	expect("older Codex CLI (session_id)", turns("older Codex CLI", "session_id", oldCodexID, 3), unpinned)

	// ...unless the server expects it, and then it is session-id that goes
	startCaddyConfig(t, globalOptionsWith("\tservers {\n\t\texpected_underscore_headers session_id\n\t}")+f.plainSite().String())
	expect("session_id expected", turns("session_id expected", "session_id", oldCodexID, 3), pinned)
	expect("session-id with session_id expected", turns("session-id with session_id expected", "session-id", codexID, 3), unpinned)

	// with the harness headers off, every turn is routed afresh
	startCaddy(t, f.plainSite().with("session_headers off"))
	expect("session_headers off", turns("session_headers off", "session-id", codexID, 3), unpinned)
}

// TestOptOut: "X-Model-Affinity: off" and "X-Model-Affinity-Mode: off"
// route every request fresh and write no pin. Without opt-out "off" would be
// an ordinary key (pinned from the 2nd request), and the Mode header would be
// ignored, so K would be pinned by the opt-out requests.
func TestOptOut(t *testing.T) {
	f := newFleet(t, alternating)
	startCaddy(t, f.plainSite())
	body := chat("gpt-4o-mini", "hello")

	wantModels := []string{"claude", "gpt-4o"} // the router alternates
	for i := range 2 {
		resp, out := post(t, "/v1/chat/completions", body, "X-Model-Affinity", "off")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, out)
		}
		expectDecision(t, fmt.Sprintf("key off, request %d", i+1), resp, wantModels[i], []string{"code", "analysis"}[i], "routed")
	}
	if got := f.router.calls.Load(); got != 2 {
		t.Errorf("router calls %d after 2 requests with key off, want 2", got)
	}

	for i := range 2 {
		resp, _ := post(t, "/v1/chat/completions", body, "X-Model-Affinity", "K-optout", "X-Model-Affinity-Mode", "off")
		expectDecision(t, fmt.Sprintf("mode off, request %d", i+1), resp, wantModels[i], []string{"code", "analysis"}[i], "routed")
	}
	if got := f.router.calls.Load(); got != 4 {
		t.Errorf("router calls %d after 2 requests with the mode header off, want 4", got)
	}

	// no pin was written for K: a normal request routes, and then pins
	resp, _ := post(t, "/v1/chat/completions", body, "X-Model-Affinity", "K-optout")
	expectDecision(t, "K after opt-outs", resp, "claude", "code", "routed")
	resp, _ = post(t, "/v1/chat/completions", body, "X-Model-Affinity", "K-optout")
	expectDecision(t, "K again", resp, "claude", "code", "pinned")
	if got := f.router.calls.Load(); got != 5 {
		t.Errorf("router calls %d, want 5", got)
	}
}

// decisionAnswer is the decision API's body, with session_id kept raw to
// tell null from a string.
type decisionAnswer struct {
	Models    []string        `json:"models"`
	Route     *string         `json:"route"`
	SessionID json.RawMessage `json:"session_id"`
	Pinned    *bool           `json:"pinned"`
}

func decide(t *testing.T, path string, body []byte, headers ...string) (decisionAnswer, string) {
	t.Helper()
	resp, out := post(t, path, body, headers...)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: status %d content type %q: %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), out)
	}
	var d decisionAnswer
	if err := json.Unmarshal(out, &d); err != nil || d.Models == nil || d.Pinned == nil || d.SessionID == nil {
		t.Fatalf("%s: body %s is not {models, route, session_id, pinned}: %v", path, out, err)
	}
	return d, string(out)
}

// TestDecisionAPI: POST .../routing/v1/... answers the decision as JSON,
// pins it like a proxied request and proxies nothing. Without the API these
// paths end in /chat/completions and /messages, so they would be proxied
// upstream and answered with a chat completion.
func TestDecisionAPI(t *testing.T) {
	f := newFleet(t, alternating)
	startCaddy(t, f.plainSite())
	body := chat("gpt-4o-mini", "write a function")

	d, raw := decide(t, "/routing/v1/chat/completions", body, "X-Model-Affinity", "K-decide")
	if *d.Pinned || strings.Join(d.Models, ",") != "claude,gpt-4o,small" || d.Route == nil || *d.Route != "code" ||
		string(d.SessionID) != `"K-decide"` {
		t.Errorf("first decision %s; want pinned false, models claude,gpt-4o,small, route code, session K-decide", raw)
	}
	d, raw = decide(t, "/routing/v1/chat/completions", body, "X-Model-Affinity", "K-decide")
	if !*d.Pinned || strings.Join(d.Models, ",") != "claude,gpt-4o,small" {
		t.Errorf("second decision %s; want pinned true, same models", raw)
	}
	if got := f.router.calls.Load(); got != 1 {
		t.Errorf("router calls %d, want 1", got)
	}
	for _, u := range []*fakeUpstream{f.claude, f.gpt, f.small} {
		if u.count() != 0 {
			t.Errorf("upstream %s got %d requests from the decision API, want 0", u.name, u.count())
		}
	}

	// the client's real call goes where it was told, pinned
	resp, out := post(t, "/v1/chat/completions", body, "X-Model-Affinity", "K-decide")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("proxied call: status %d: %s", resp.StatusCode, out)
	}
	expectDecision(t, "proxied call after the decision API", resp, "claude", "code", "pinned")
	if f.claude.count() != 1 || f.router.calls.Load() != 1 {
		t.Errorf("claude got %d requests, router calls %d; want 1 and 1", f.claude.count(), f.router.calls.Load())
	}

	// Anthropic path; the router now answers analysis
	ab := anthropicBody(`{"role":"user","content":"compare these options"}`)
	d, raw = decide(t, "/routing/v1/messages", ab, "X-Model-Affinity", "K-decide-2")
	if *d.Pinned || strings.Join(d.Models, ",") != "gpt-4o,small" || d.Route == nil || *d.Route != "analysis" ||
		string(d.SessionID) != `"K-decide-2"` {
		t.Errorf("anthropic decision %s; want pinned false, models gpt-4o,small, route analysis", raw)
	}
	d, raw = decide(t, "/routing/v1/messages", ab, "X-Model-Affinity", "K-decide-2")
	if !*d.Pinned || strings.Join(d.Models, ",") != "gpt-4o,small" {
		t.Errorf("anthropic second decision %s; want pinned true", raw)
	}

	// without a header: session_id null, never pinned
	for _, path := range []string{"/routing/v1/chat/completions", "/routing/v1/messages"} {
		d, raw = decide(t, path, body)
		if string(d.SessionID) != "null" || *d.Pinned {
			t.Errorf("%s without a header: %s; want session_id null and pinned false", path, raw)
		}
	}
	if f.gpt.count() != 0 || f.small.count() != 0 || f.claude.count() != 1 {
		t.Errorf("upstreams got requests from the decision API: claude %d gpt %d small %d", f.claude.count(), f.gpt.count(), f.small.count())
	}

	// bad input: the same 400 shapes as the proxied paths
	calls := f.router.calls.Load()
	resp, out = post(t, "/routing/v1/chat/completions", []byte(`{"model":"a","messages":[`))
	checkAPIError(t, "openai malformed", false, http.StatusBadRequest, resp, out)
	resp, out = post(t, "/routing/v1/messages", []byte(`{"model":"a","messages":[]}`))
	checkAPIError(t, "anthropic empty messages", true, http.StatusBadRequest, resp, out)
	resp, out = post(t, "/routing/v1/chat/completions", body, "X-Model-Affinity", "a", "X-Model-Affinity", "b")
	checkAPIError(t, "openai two keys", false, http.StatusBadRequest, resp, out)
	resp, out = post(t, "/routing/v1/messages", body, "X-Model-Affinity", "séance")
	checkAPIError(t, "anthropic bad key", true, http.StatusBadRequest, resp, out)
	if f.router.calls.Load() != calls {
		t.Errorf("bad input called the router")
	}
}

// TestRulesOnly: routes decided by in-process rules alone, with no router
// configured. Without rules every request would get the requested model or
// the default (status default); with rules checked in another order the
// requests matching two rules would get the later route.
func TestRulesOnly(t *testing.T) {
	ups, models := newFakeUpstreams(t, "mt", "mr", "ml", "mh", "direct", "dflt")
	startCaddy(t, testSite{
		defaultModel: "dflt",
		models:       models,
		routes: []siteRoute{
			{name: "tools_r", when: "tools", models: "mt"},
			{name: "refactor_r", when: "regex (?i)refactor", models: "mr"},
			{name: "long_r", when: "tokens_over 50", models: "ml"},
			{name: "team_r", when: "header X-Team infra", models: "mh"},
		},
	})

	tools := `"tools":[{"type":"function","function":{"name":"run_tests","parameters":{"type":"object"}}}],`
	long := strings.Repeat("lorem ipsum ", 30) // 360 characters: about 90 tokens
	req := func(model, extra, text string) []byte {
		return []byte(`{"model":"` + model + `",` + extra + `"messages":[{"role":"user","content":` + jsonQuote(text) + `}]}`)
	}
	tests := []struct {
		name    string
		body    []byte
		headers []string
		model   string
		route   string
		status  string
	}{
		{"tools", req("x", tools, "hi"), nil, "mt", "tools_r", "routed"},
		{"regex", req("x", "", "Please REFACTOR this"), nil, "mr", "refactor_r", "routed"},
		{"tokens_over", req("x", "", long), nil, "ml", "long_r", "routed"},
		{"header", req("x", "", "hi"), []string{"X-Team", "infra"}, "mh", "team_r", "routed"},
		{"header with another value", req("x", "", "hi"), []string{"X-Team", "web"}, "dflt", "", "default"},
		{"tools and regex: first route", req("x", tools, "refactor it"), nil, "mt", "tools_r", "routed"},
		{"regex, long and header: first route", req("x", "", "refactor "+long), []string{"X-Team", "infra"}, "mr", "refactor_r", "routed"},
		{"long and header: first route", req("x", "", long), []string{"X-Team", "infra"}, "ml", "long_r", "routed"},
		{"no match, configured requested model", req("direct", "", "hi"), nil, "direct", "", "default"},
		{"no match, unknown requested model", req("unknown", "", "hi"), nil, "dflt", "", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ups[tt.model].count()
			resp, out := post(t, "/v1/chat/completions", tt.body, tt.headers...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, out)
			}
			expectDecision(t, tt.name, resp, tt.model, tt.route, tt.status)
			if ups[tt.model].count() != before+1 {
				t.Errorf("upstream %s did not get the request", tt.model)
			}
		})
	}
}

// TestRulesOnRolesAndTools: rules that read no message text (tools,
// last_role, header) decide from the envelope, the last message and the
// tools alone; the verdicts must be those of a full decode, on both APIs.
func TestRulesOnRolesAndTools(t *testing.T) {
	ups, models := newFakeUpstreams(t, "mt", "mtool", "ma", "mh", "dflt")
	startCaddy(t, testSite{
		defaultModel: "dflt",
		models:       models,
		routes: []siteRoute{
			{name: "team_r", when: "header X-Team infra", models: "mh"},
			{name: "tool_turn_r", when: "last_role tool", models: "mtool"},
			{name: "tools_r", when: "tools", models: "mt"},
			{name: "assistant_r", when: "last_role assistant", models: "ma"},
		},
	})

	tests := []struct {
		name, path, body string
		headers          []string
		model, route     string
	}{
		{"openai tools", "/v1/chat/completions",
			`{"model":"x","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"run_tests"}}]}`,
			nil, "mt", "tools_r"},
		{"openai empty tools", "/v1/chat/completions",
			`{"model":"x","messages":[{"role":"user","content":"hi"}],"tools":[]}`,
			nil, "dflt", ""},
		{"openai tool result last", "/v1/chat/completions",
			`{"model":"x","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"q"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},` +
				`{"role":"tool","tool_call_id":"c1","content":"out"}]}`,
			nil, "mtool", "tool_turn_r"},
		{"anthropic tool_result-only user turn", "/v1/messages",
			`{"model":"x","max_tokens":10,"messages":[{"role":"user","content":"q"},` +
				`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"out"}]}]}`,
			nil, "mtool", "tool_turn_r"},
		{"anthropic tools", "/v1/messages",
			`{"model":"x","max_tokens":10,"tools":[{"name":"f","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"q"}]}`,
			nil, "mt", "tools_r"},
		{"assistant prefill last", "/v1/messages",
			`{"model":"x","max_tokens":10,"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"The answer is"}]}`,
			nil, "ma", "assistant_r"},
		{"header first", "/v1/chat/completions",
			`{"model":"x","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}`,
			[]string{"X-Team", "infra"}, "mh", "team_r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ups[tt.model].count()
			resp, out := post(t, tt.path, []byte(tt.body), tt.headers...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, out)
			}
			status := "routed"
			if tt.route == "" {
				status = "default"
			}
			expectDecision(t, tt.name, resp, tt.model, tt.route, status)
			if ups[tt.model].count() != before+1 {
				t.Errorf("upstream %s did not get the request", tt.model)
			}
		})
	}
}

// TestRoutingPreferences: a request's routing_preferences replace the
// configured routes for that request and are stripped before it goes
// upstream. Without the feature the router would see the configured routes,
// the request would go to the default, and the upstream would get the field.
func TestRoutingPreferences(t *testing.T) {
	var prompts []string // guarded by the router's mu
	fr := newFakeRouter(t, func(_ int64, prompt string) string {
		prompts = append(prompts, prompt)
		if strings.Contains(prompt, "pref_route") {
			return `{"route":"pref_route"}`
		}
		return `{"route":"zeta_config_route"}`
	})
	a := newFakeUpstream(t, "a")
	b := newFakeUpstream(t, "b")
	dflt := newFakeUpstream(t, "dflt")
	startCaddy(t, testSite{
		defaultModel: "dflt",
		models: []siteModel{
			{name: "a", to: a.addr()},
			{name: "b", to: b.addr(), upstreamModel: "b-up"},
			{name: "dflt", to: dflt.addr()},
		},
		routes: []siteRoute{
			{name: "zeta_config_route", description: "Configured route one", models: "a"},
			{name: "omega_config_route", description: "Configured route two", models: "a"},
		},
		router: &siteRouter{endpoint: fr.endpoint(), model: "arch-router"},
	})

	prefs := `"routing_preferences":[{"name":"pref_route","description":"d","models":["b"]}]`
	msgs := `"messages":[{"role":"user","content":"hello"}]`
	tests := []struct {
		name, body string
	}{
		{"preferences in the middle", `{"model":"x",` + prefs + `,` + msgs + `}`},
		{"preferences last", `{"model":"x",` + msgs + `, ` + prefs + `}`},
		{"preferences first", `{` + prefs + `,"model":"x",` + msgs + `}`},
	}
	want := `{"model":"b-up",` + msgs + `}`
	for i, tt := range tests {
		resp, out := post(t, "/v1/chat/completions", []byte(tt.body))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", tt.name, resp.StatusCode, out)
		}
		expectDecision(t, tt.name, resp, "b", "pref_route", "routed")
		seen := b.requests()
		if len(seen) != i+1 {
			t.Fatalf("%s: b got %d requests, want %d", tt.name, len(seen), i+1)
		}
		got := string(seen[i].Body)
		if got != want {
			t.Errorf("%s: upstream body\n got %s\nwant %s", tt.name, got, want)
		}
	}
	fr.mu.Lock()
	for _, p := range prompts {
		if !strings.Contains(p, `"pref_route"`) || strings.Contains(p, "zeta_config_route") || strings.Contains(p, "omega_config_route") {
			t.Errorf("router prompt has the wrong routes (want pref_route only):\n%s", p)
		}
	}
	nPrompts := len(prompts)
	fr.mu.Unlock()
	if nPrompts != len(tests) {
		t.Errorf("router calls %d, want %d", nPrompts, len(tests))
	}
	if a.count() != 0 || dflt.count() != 0 {
		t.Errorf("a got %d and default %d requests, want 0", a.count(), dflt.count())
	}

	// client errors in routing_preferences: 400, nothing proxied, no router call
	bad := []struct{ name, prefs string }{
		{"unknown model", `[{"name":"p","description":"d","models":["nope"]}]`},
		{"not an array", `{"name":"p","description":"d","models":["b"]}`},
		{"a string", `"pref_route"`},
		{"array of non-objects", `[1]`},
		{"preference without models", `[{"name":"p","description":"d"}]`},
	}
	for _, tt := range bad {
		resp, out := post(t, "/v1/chat/completions", []byte(`{"model":"x",`+msgs+`,"routing_preferences":`+tt.prefs+`}`))
		checkAPIError(t, tt.name, false, http.StatusBadRequest, resp, out)
	}
	resp, out := post(t, "/v1/messages", []byte(`{"model":"x","max_tokens":5,`+msgs+`,"routing_preferences":[{"name":"p","models":["nope"]}]}`))
	checkAPIError(t, "anthropic unknown model", true, http.StatusBadRequest, resp, out)
	if n := int(fr.calls.Load()); n != len(tests) {
		t.Errorf("router calls %d after bad preferences, want %d", n, len(tests))
	}
	if a.count() != 0 || b.count() != len(tests) || dflt.count() != 0 {
		t.Errorf("bad preferences reached an upstream: a %d b %d default %d", a.count(), b.count(), dflt.count())
	}
}

// TestFailoverSkipsCandidatesThatCannotTakeTheRequest: a failover candidate
// of another API that cannot express the request is skipped; when none
// after a failed model can take it, the client gets the failure's status
// in its API's error shape, and the skipped model is never asked.
func TestFailoverSkipsCandidatesThatCannotTakeTheRequest(t *testing.T) {
	failing := newFakeUpstreamFunc(t, "failing", fixedResponse(http.StatusServiceUnavailable, `{"error":{"message":"overloaded","type":"server_error"}}`))
	codex := newFakeUpstreamFunc(t, "codex", fixedResponse(http.StatusOK, `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"codex",`+
		`"output":[{"type":"message","id":"msg_1","role":"assistant","status":"completed","content":[{"type":"output_text","text":"hi","annotations":[]}]}]}`))
	startCaddy(t, testSite{
		defaultModel: "failing",
		models: []siteModel{
			{name: "failing", to: failing.addr()},
			{name: "codex", to: codex.addr(), api: "responses"},
		},
		routes: []siteRoute{{name: "r", when: "last_role user", models: "failing codex"}},
	})
	// stop sequences: a Responses model cannot take them
	body := []byte(`{"model":"m","stop":["END"],"messages":[{"role":"user","content":"hello"}]}`)
	resp, out := post(t, "/v1/chat/completions", body, "X-Model-Affinity", "s-skip")
	checkAPIError(t, "every candidate after the failed one skipped", false, http.StatusServiceUnavailable, resp, out)
	if !strings.Contains(string(out), "no other candidate can take this request") {
		t.Errorf("body %s", out)
	}
	if n := codex.count(); n != 0 {
		t.Errorf("the Responses model got %d requests it cannot take", n)
	}

	// without stop sequences the Responses model takes the failover
	body = []byte(`{"model":"m","messages":[{"role":"user","content":"hello"}]}`)
	resp, out = post(t, "/v1/chat/completions", body, "X-Model-Affinity", "s-skip-2")
	if resp.StatusCode != http.StatusOK || codex.count() != 1 || resp.Header.Get("X-Model-Affinity-Model") != "codex" {
		t.Errorf("status %d, codex got %d requests, served by %q: %s", resp.StatusCode, codex.count(), resp.Header.Get("X-Model-Affinity-Model"), out)
	}
}

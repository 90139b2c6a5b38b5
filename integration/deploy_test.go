package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/crypto/argon2"
)

// The deployment tests: the gateway behind HTTPS (Caddy's internal CA) over
// HTTP/1.1, HTTP/2 and HTTP/3, and with authentication in front of it.

// tlsGateway is the origin of the HTTPS test sites.
const tlsGateway = "https://localhost:9443"

// internalRoots returns a pool with the root certificate of Caddy's internal
// CA, read from the admin API (no system trust store is touched).
func internalRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		status, body := adminCall(t, http.MethodGet, "/pki/ca/local")
		var ca struct {
			Root string `json:"root_certificate"`
		}
		if status == http.StatusOK && json.Unmarshal(body, &ca) == nil && ca.Root != "" {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM([]byte(ca.Root)) {
				t.Fatalf("the internal CA's root is not PEM: %s", body)
			}
			return pool
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /pki/ca/local: status %d body %s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// protocolClient is an HTTPS client that speaks exactly one HTTP version.
type protocolClient struct {
	name   string
	major  int // the response's ProtoMajor it must get
	client *http.Client
}

// tlsClients returns clients for HTTP/1.1, HTTP/2 and HTTP/3 (QUIC, from
// quic-go, which Caddy itself serves HTTP/3 with) trusting roots.
func tlsClients(t *testing.T, roots *x509.CertPool) []protocolClient {
	t.Helper()
	h1 := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
	}
	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(func() {
		h1.CloseIdleConnections()
		h2.CloseIdleConnections()
		_ = h3.Close()
	})
	return []protocolClient{
		{"HTTP/1.1", 1, &http.Client{Transport: h1}},
		{"HTTP/2", 2, &http.Client{Transport: h2}},
		{"HTTP/3", 3, &http.Client{Transport: h3}},
	}
}

// waitTLS waits until the site answers over TLS: Caddy may still be issuing
// its certificate when the config has loaded.
func waitTLS(t *testing.T, client *http.Client) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		resp, err := client.Get(tlsGateway + "/v1/models")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the HTTPS site did not come up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTLSAgentLoopOverEachProtocol drives a pinned agent loop and a streamed
// response through an HTTPS site (tls internal) over HTTP/1.1, HTTP/2 and
// HTTP/3: each must give what plain HTTP gives, the body rewritten to the
// upstream model, one routing decision per session, and SSE chunks that
// reach the client while the upstream still holds the rest.
func TestTLSAgentLoopOverEachProtocol(t *testing.T) {
	f := newFleet(t, func(int64, string) string { return `{"route": "code"}` })
	// one gate for every stream: the upstream waits for a token after its
	// first chunk, and the test sends one once it has read that chunk
	gate := make(chan struct{})
	f.claude.streamGate = gate
	// the fleet's site served on https://localhost:9443 with a certificate
	// from Caddy's internal CA
	site := f.plainSite().withDirectives("tls internal")
	site.address = tlsGateway
	startCaddy(t, site)
	roots := internalRoots(t)

	for _, pc := range tlsClients(t, roots) {
		t.Run(pc.name, func(t *testing.T) {
			waitTLS(t, pc.client)
			key := "tls-session-" + pc.name
			routerBefore, claudeBefore := f.router.calls.Load(), f.claude.count()
			var turns []string
			for i, turn := range []string{"write a JSON parser", "add tests for it", "fix the failing test"} {
				turns = append(turns, turn)
				resp, out, err := sendTo(pc.client, tlsGateway, "/v1/chat/completions", chat("gpt-4o-mini", turns...),
					"X-Model-Affinity", key)
				if err != nil {
					t.Fatalf("turn %d: %v", i+1, err)
				}
				if resp.StatusCode != http.StatusOK || resp.ProtoMajor != pc.major {
					t.Fatalf("turn %d: status %d over %s, want 200 over %s: %s", i+1, resp.StatusCode, resp.Proto, pc.name, out)
				}
				wantStatus := "pinned"
				if i == 0 {
					wantStatus = "routed"
				}
				expectDecision(t, fmt.Sprintf("turn %d", i+1), resp, "claude", "code", wantStatus)
				if !bytes.Contains(out, []byte(`"model":"claude-up"`)) {
					t.Errorf("turn %d: response %s does not echo the upstream model", i+1, out)
				}
			}
			if got := f.router.calls.Load() - routerBefore; got != 1 {
				t.Errorf("router calls for a 3-turn session: %d, want 1", got)
			}
			seen := f.claude.requests()
			if len(seen)-claudeBefore != 3 {
				t.Fatalf("claude got %d requests, want 3", len(seen)-claudeBefore)
			}
			if last := seen[len(seen)-1]; last.Model != "claude-up" || int(last.ContentLength) != len(last.Body) {
				t.Errorf("upstream saw model %q, Content-Length %d for %d bytes; want claude-up and a matching length",
					last.Model, last.ContentLength, len(last.Body))
			}

			// a streamed turn of the same session, chunk by chunk
			body := []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"stream the fix"}]}`)
			req, _ := http.NewRequest(http.MethodPost, tlsGateway+"/v1/chat/completions", bytes.NewReader(body))
			req.Header.Set("X-Model-Affinity", key)
			resp, err := pc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			expectDecision(t, "streamed turn", resp, "claude", "code", "pinned")
			expectChunkByChunk(t, resp, func() {
				select { // the upstream waits at the gate for one token
				case gate <- struct{}{}:
				case <-time.After(patience):
					t.Fatal("the upstream never waited at the gate")
				}
			})
		})
	}
}

// TestBasicAuthInFront: Caddy's basic_auth before llm_affinity, pins scoped
// by {http.auth.user.id}.
//
// The hashes are argon2id, not basic_auth's default bcrypt: an unknown user
// is checked against the algorithm's fixed fake hash (timing safety), and
// bcrypt's is cost 14, some 10 to 20 seconds under -race on a busy 2-core
// machine, while argon2id's takes under a second. A lower bcrypt cost for
// the users' own hashes would not help: the fake hash stays cost 14. The
// users' hashes are cheap ones (64 KiB, one pass), in the PHC format that
// `caddy hash-password --algorithm argon2id` prints.
func TestBasicAuthInFront(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	hash := func(password string) string {
		const passes, memoryKiB, threads = 1, 64, 1
		salt := []byte("salt-of-" + password)
		key := argon2.IDKey([]byte(password), salt, passes, memoryKiB, threads, 32)
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memoryKiB, passes, threads,
			base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
	}
	auth := fmt.Sprintf("basic_auth argon2id {\n\talice %s\n\tbob %s\n}", hash("alice-pw"), hash("bob-pw"))
	startCaddy(t, f.keyedSite().with("name authed", "scope {http.auth.user.id}").withDirectives(auth))

	basic := func(user, password string) []string {
		return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}
	}
	checkAuthInFront(t, f,
		func(user string) []string { return basic(user, user+"-pw") },
		map[string][]string{
			"no credentials": nil,
			"wrong password": basic("alice", "bob-pw"),
			// checked against the algorithm's fake hash (timing safety)
			"unknown user":   basic("mallory", "mallory-pw"),
			"a bearer token": {"Authorization", "Bearer alice-pw"},
		})
}

// TestForwardAuthInFront: Caddy's forward_auth before llm_affinity, with an
// auth service that accepts gateway tokens (what an SDK sends as its API
// key) and names the user in X-User; pins scoped by that header. A client
// cannot choose its scope by sending X-User itself.
func TestForwardAuthInFront(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	users := map[string]string{"Bearer tok-alice": "alice", "Bearer tok-bob": "bob"}
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, ok := users[r.Header.Get("Authorization")]
		if !ok || r.URL.Path != "/verify" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"invalid gateway token","type":"authentication_error"}}`)
			return
		}
		w.Header().Set("X-User", user)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(authSrv.Close)
	auth := fmt.Sprintf("forward_auth %s {\n\turi /verify\n\tcopy_headers X-User\n}", strings.TrimPrefix(authSrv.URL, "http://"))
	startCaddy(t, f.keyedSite().with("name authed", "scope {http.request.header.X-User}").withDirectives(auth))

	checkAuthInFront(t, f,
		func(user string) []string { return []string{"Authorization", "Bearer tok-" + user} },
		map[string][]string{
			"no token":                   nil,
			"unknown token":              {"Authorization", "Bearer tok-mallory"},
			"unknown token, forged user": {"Authorization", "Bearer tok-mallory", "X-User", "alice"},
		})

	// a valid token with a forged X-User is scoped by the token's user
	resp := mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "Authorization", "Bearer tok-bob", "X-User", "alice", "X-Model-Affinity", "shared")
	expectDecision(t, "bob claiming to be alice", resp, "gpt-4o", "analysis", "pinned")
}

// TestReplicaStickiness: one self-hosted model on three replicas behind
// lb_policy llm_affinity keeps each of 300 sessions on one replica over all
// its turns (so the replica's KV/prefix cache stays warm), though no header
// tells reverse_proxy the session: a third of the sessions are keyed
// implicitly (implicit on), a third by X-Model-Affinity, which strip_header
// removes before proxying (no replica sees it), a third by a harness's
// session header, each under one of three tenants' scopes. The sessions
// spread evenly. When a replica dies, passive health checks take it out;
// its sessions move, spread over both survivors, and stay on their new
// replica; no other session moves. Only a request of the dead replica's
// sessions racing its death may fail (a POST sent on a pooled connection
// the replica closed is not retried); every later one is served.
func TestReplicaStickiness(t *testing.T) {
	reps := []*fakeUpstream{newFakeUpstream(t, "r0"), newFakeUpstream(t, "r1"), newFakeUpstream(t, "r2")}
	startCaddy(t, testSite{
		settings:     []string{"strip_header on", "implicit on", "scope {http.request.header.X-Tenant}"},
		defaultModel: "local",
		models: []siteModel{
			{name: "local", to: reps[0].addr() + " " + reps[1].addr() + " " + reps[2].addr(), upstreamModel: "qwen"},
		},
		proxy: []string{"lb_policy llm_affinity", "lb_retries 2", "fail_duration 1m", "max_fails 1"},
	})

	const sessions, workers = 300, 16
	// turn is session i's request of its turn-th turn: the conversation
	// grows, what an implicit key hashes (the system prompt and the first
	// user message) stays
	turn := func(i, turn int) (body []byte, headers []string) {
		texts := []string{fmt.Sprintf("session %d: fix the failing build", i)}
		for k := range turn {
			texts = append(texts, fmt.Sprintf("step %d passed; go on", k+1))
		}
		headers = []string{"X-Tenant", fmt.Sprint("tenant-", i%3)}
		switch i % 3 {
		case 1:
			headers = append(headers, "X-Model-Affinity", fmt.Sprint("session-", i))
		case 2:
			headers = append(headers, "X-Claude-Code-Session-Id", fmt.Sprint("claude-", i))
		}
		return chat("qwen", texts...), headers
	}
	// round sends every session's request of turn n (16 at a time) and
	// returns the replica that served each session; a failed request of a
	// session that mayFail does not excuse fails the test
	round := func(label string, n int, mayFail func(session int) bool) map[int]string {
		t.Helper()
		type served struct {
			session int
			replica string
		}
		jobs := make(chan int)
		results := make(chan served, sessions)
		errs := make(chan error, sessions)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := range jobs {
					body, headers := turn(i, n)
					resp, out, err := sendTo(http.DefaultClient, gateway, "/v1/chat/completions", body, headers...)
					if err != nil || resp.StatusCode != http.StatusOK {
						if !mayFail(i) {
							errs <- fmt.Errorf("%s: session %d: %v %v %s", label, i, err, resp, out)
						}
						continue
					}
					results <- served{i, resp.Header.Get("X-Upstream")}
				}
			})
		}
		for i := range sessions {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		close(results)
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		where := map[int]string{}
		for res := range results {
			where[res.session] = res.replica
		}
		return where
	}

	never := func(int) bool { return false }
	before := round("turn 1, three replicas", 0, never)
	for n := 1; n < 3; n++ {
		label := fmt.Sprintf("turn %d, three replicas", n+1)
		for i, rep := range round(label, n, never) {
			if rep != before[i] {
				t.Errorf("%s: session %d served by %s, turn 1 by %s", label, i, rep, before[i])
			}
		}
	}
	counts := map[string]int{}
	for _, rep := range before {
		counts[rep]++
	}
	// for a uniform hash each replica's count is binomial(300, 1/3) (the
	// replicas' ports and the implicit salt are new on every run); outside
	// lo..hi (60..143) with probability 1e-6/3 each, 1e-6 for any of three
	lo, hi := binomialRange(sessions, 1.0/3, 1e-6/3)
	t.Logf("sessions per replica with three up: %v (want %d..%d each)", counts, lo, hi)
	for _, rep := range reps {
		if n := counts[rep.name]; n < lo || n > hi {
			t.Errorf("replica %s has %d of %d sessions, want %d..%d", rep.name, n, sessions, lo, hi)
		}
	}

	reps[1].srv.Close() // r1 dies: connections to it are refused
	onR1 := func(i int) bool { return before[i] == "r1" }
	after := round("turn 4, r1 down", 3, onR1)
	again := round("turn 5, r1 still down", 4, never)
	moved := map[string]int{}
	for i := range sessions {
		rep := before[i]
		switch {
		case rep != "r1" && (after[i] != rep || again[i] != rep):
			t.Errorf("session %d moved from %s to %s, then %s, though %s is up", i, rep, after[i], again[i], rep)
		case again[i] == "r1" || again[i] == "":
			t.Errorf("session %d served by %q with r1 down", i, again[i])
		case rep == "r1" && after[i] != "" && after[i] != again[i]:
			t.Errorf("session %d moved twice: from r1 to %s, then to %s", i, after[i], again[i])
		case rep == "r1":
			moved[again[i]]++
		}
	}
	// each of r1's sessions moves to r0 or r2 with probability 1/2
	lo, hi = binomialRange(counts["r1"], 0.5, 1e-6/2)
	t.Logf("r1's %d sessions moved to: %v (want %d..%d each); %d of them served in the turn r1 died",
		counts["r1"], moved, lo, hi, len(after)-(sessions-counts["r1"]))
	for _, rep := range []string{"r0", "r2"} {
		if n := moved[rep]; n < lo || n > hi {
			t.Errorf("%s took %d of r1's %d sessions, want %d..%d", rep, n, counts["r1"], lo, hi)
		}
	}
	for _, rep := range reps {
		for _, seen := range rep.requests() {
			if seen.Affinity != "" {
				t.Fatalf("replica %s received X-Model-Affinity %q; strip_header on removes it", rep.name, seen.Affinity)
			}
		}
	}
}

// binomialRange is the narrowest lo..hi that a binomial(n, p) count falls
// outside of with probability at most alpha, at most alpha/2 on each side.
func binomialRange(n int, p, alpha float64) (lo, hi int) {
	pmf := func(k int) float64 {
		ln := func(x int) float64 { v, _ := math.Lgamma(float64(x + 1)); return v }
		return math.Exp(ln(n) - ln(k) - ln(n-k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
	}
	for tail := 0.0; tail+pmf(lo) <= alpha/2; lo++ {
		tail += pmf(lo)
	}
	hi = n
	for tail := 0.0; tail+pmf(hi) <= alpha/2; hi-- {
		tail += pmf(hi)
	}
	return lo, hi
}

// TestSelfHostedTemplate runs examples/self-hosted.Caddyfile as a newcomer
// would, with its two variables pointing at fake replicas: tool-calling
// sessions go to the coder model, each on one of its replicas (lb_policy
// llm_affinity), the others to the chat model; the replicas see their served
// model names and no affinity header.
func TestSelfHostedTemplate(t *testing.T) {
	coders := []*fakeUpstream{newFakeUpstream(t, "coder-0"), newFakeUpstream(t, "coder-1"), newFakeUpstream(t, "coder-2")}
	chats := []*fakeUpstream{newFakeUpstream(t, "chat-0"), newFakeUpstream(t, "chat-1")}
	t.Setenv("CODER_REPLICAS", coders[0].addr()+" "+coders[1].addr()+" "+coders[2].addr())
	t.Setenv("CHAT_REPLICAS", chats[0].addr()+" "+chats[1].addr())
	t.Setenv("LLM_GATEWAY_ADDRESS", "http://localhost:9080") // the test's port; the template's default is :8080
	raw, err := os.ReadFile("../examples/self-hosted.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	startCaddyConfig(t, globalOptions+string(raw))

	agentTurn := []byte(`{"model":"any","tools":[{"type":"function","function":{"name":"run_tests","parameters":{"type":"object"}}}],` +
		`"messages":[{"role":"user","content":"fix the build"}]}`)
	const sessions = 60
	codersUsed := map[string]int{}
	for i := range sessions {
		session := fmt.Sprintf("agent-%d", i)
		first := ""
		for turn := range 3 {
			resp := mustChat(t, gateway, agentTurn, "X-Model-Affinity", session)
			status := "pinned"
			if turn == 0 {
				status = "routed"
			}
			expectDecision(t, session, resp, "coder", "coding", status)
			served := resp.Header.Get("X-Upstream")
			if turn == 0 {
				first = served
				codersUsed[served]++
			} else if served != first {
				t.Errorf("%s: turn %d served by %s, turn 1 by %s", session, turn+1, served, first)
			}
		}
	}
	t.Logf("coder sessions per replica: %v", codersUsed)
	if len(codersUsed) != len(coders) {
		t.Errorf("%d sessions used replicas %v; want all %d", sessions, codersUsed, len(coders))
	}
	resp := mustChat(t, gateway, chat("any", "what is a monad?"), "X-Model-Affinity", "chatter")
	if model, _, _ := decisionOf(resp); model != "chat" || !strings.HasPrefix(resp.Header.Get("X-Upstream"), "chat-") {
		t.Errorf("a turn without tools: model %q on replica %q, want chat on a chat replica", model, resp.Header.Get("X-Upstream"))
	}

	for _, rep := range append(coders, chats...) {
		want := "Qwen/Qwen2.5-Coder-32B-Instruct"
		if strings.HasPrefix(rep.name, "chat-") {
			want = "meta-llama/Llama-3.1-8B-Instruct"
		}
		for _, seen := range rep.requests() {
			if seen.Model != want {
				t.Errorf("replica %s got model %q, want %q", rep.name, seen.Model, want)
			}
			if seen.Affinity != "" {
				t.Errorf("replica %s got X-Model-Affinity %q; the template strips it", rep.name, seen.Affinity)
			}
		}
	}
}

package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
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
// reverse_proxy's header load balancing keeps each of 300 sessions on one
// replica (its KV/prefix cache stays warm) while the sessions spread across
// the replicas. When a replica dies, passive health checks take it out, its
// sessions move, and each then stays on its new replica; no other session
// moves. Only a request of r1's sessions racing its death may fail (a POST
// that reached a dying replica is not retried); every later one is served.
// The affinity header must reach the replicas:
// on a retry reverse_proxy selects before it resets the headers that
// header_up changed, so a header_up that removes it sends a retried request
// to a random replica.
func TestReplicaStickiness(t *testing.T) {
	reps := []*fakeUpstream{newFakeUpstream(t, "r0"), newFakeUpstream(t, "r1"), newFakeUpstream(t, "r2")}
	startCaddy(t, testSite{
		settings:     []string{"strip_header off"},
		defaultModel: "local",
		models: []siteModel{
			{name: "local", to: reps[0].addr() + " " + reps[1].addr() + " " + reps[2].addr(), upstreamModel: "qwen"},
		},
		proxy: []string{"lb_policy header X-Model-Affinity", "lb_retries 2", "fail_duration 1m", "max_fails 1"},
	})

	const sessions, requestsPerRound, workers = 300, 2, 16
	// round sends every session's requests (16 at a time) and returns the
	// replica each session was served by; a session served by two replicas,
	// or a failed request of a session that mayFail does not excuse, fails
	// the test
	round := func(label string, mayFail func(session string) bool) map[string]string {
		t.Helper()
		type served struct{ session, replica string }
		jobs := make(chan string)
		results := make(chan served, sessions*requestsPerRound)
		errs := make(chan error, sessions*requestsPerRound)
		var wg sync.WaitGroup
		client := http.DefaultClient
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s := range jobs {
					resp, out, err := sendTo(client, gateway, "/v1/chat/completions", chat("qwen", "hello"),
						"X-Model-Affinity", s)
					if err != nil || resp.StatusCode != http.StatusOK {
						if !mayFail(s) {
							errs <- fmt.Errorf("%s: session %s: %v %v %s", label, s, err, resp, out)
						}
						continue
					}
					results <- served{s, resp.Header.Get("X-Upstream")}
				}
			}()
		}
		for range requestsPerRound {
			for i := range sessions {
				jobs <- fmt.Sprintf("session-%d", i)
			}
		}
		close(jobs)
		wg.Wait()
		close(results)
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		where := map[string]string{}
		for res := range results {
			if prev, ok := where[res.session]; ok && prev != res.replica {
				t.Errorf("%s: session %s served by %s and %s", label, res.session, prev, res.replica)
			}
			where[res.session] = res.replica
		}
		for i := range sessions {
			if s := fmt.Sprintf("session-%d", i); where[s] == "" && !mayFail(s) {
				t.Fatalf("%s: session %s was never served", label, s)
			}
		}
		return where
	}
	spread := func(where map[string]string) map[string]int {
		counts := map[string]int{}
		for _, rep := range where {
			counts[rep]++
		}
		return counts
	}

	never := func(string) bool { return false }
	before := round("three replicas", never)
	counts := spread(before)
	t.Logf("sessions per replica with three up: %v", counts)
	for _, rep := range reps {
		// 100 expected; rendezvous hashing of 300 ids has a standard
		// deviation near 8, so 60..140 fails only on a real imbalance
		if n := counts[rep.name]; n < 60 || n > 140 {
			t.Errorf("replica %s has %d of %d sessions, want 60..140", rep.name, n, sessions)
		}
	}

	reps[1].srv.Close() // r1 dies: connections to it are refused
	after := round("r1 down", func(s string) bool { return before[s] == "r1" })
	again := round("r1 still down", never)
	moved := map[string]int{}
	for s, rep := range before {
		switch {
		case rep != "r1" && (after[s] != rep || again[s] != rep):
			t.Errorf("session %s moved from %s to %s, then %s, though %s is up", s, rep, after[s], again[s], rep)
		case again[s] == "r1":
			t.Errorf("session %s still served by the dead r1", s)
		case rep == "r1" && after[s] != "" && after[s] != again[s]:
			t.Errorf("session %s moved twice: from r1 to %s, then to %s", s, after[s], again[s])
		case rep == "r1":
			moved[again[s]]++
		}
	}
	t.Logf("r1's %d sessions moved to: %v; %d served in the round r1 died", counts["r1"], moved, len(after)-(sessions-counts["r1"]))
	if moved["r0"] == 0 || moved["r2"] == 0 {
		t.Errorf("r1's sessions all moved to one replica (%v); they should spread over both survivors", moved)
	}
}

// TestSelfHostedTemplate runs examples/self-hosted.Caddyfile as a newcomer
// would, with its two variables pointing at fake replicas: tool-calling
// sessions go to the coder model, each on one of its replicas, the others to
// the chat model; the replicas see their served model names.
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
		}
	}
}

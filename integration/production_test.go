package integration

// Integration tests of the production features: pins that survive config
// reloads, pins shared between gateway instances through Redis (and a Redis
// outage that no request notices), tenant scopes, the admin API, metrics,
// strip_header and the access log fields. Redis is a private redis-server
// child process on loopback (or, for tests that do not kill it, the server
// named by LLM_AFFINITY_TEST_REDIS); the second gateway instance is the real
// ./cmd/caddy binary, built once per test that needs it.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmaffinity/caddy-llm-affinity/internal/redistest"
)

// TestReloadKeepsPins: pins live in a store kept across config generations
// by name. Without the package-level pool (a store per handler instance) the
// reload would drop S's pin and the request after it would call the router
// and switch to gpt-4o; without releasing stores in Cleanup, reload-a would
// still be listed after the rename.
func TestReloadKeepsPins(t *testing.T) {
	f := newFleet(t, alternating)
	extra := newFakeUpstream(t, "extra")
	site := f.plainSite().with("name reload-a")
	site.ttl = "10m"
	startCaddy(t, site)

	resp := mustChat(t, gateway, chat("gpt-4o-mini", "first turn"), "X-Model-Affinity", "S-reload")
	expectDecision(t, "S before the reload", resp, "claude", "code", "routed")

	// an edited config: another ttl, another model
	edited := f.plainSite().with("name reload-a")
	edited.ttl = "20m"
	edited.models = append([]siteModel{{name: "extra", to: extra.addr()}}, edited.models...)
	reloadCaddy(t, globalOptions+edited.String())
	resp = mustChat(t, gateway, chat("gpt-4o-mini", "second turn"), "X-Model-Affinity", "S-reload")
	expectDecision(t, "S after a reload", resp, "claude", "code", "pinned")
	if got := f.router.calls.Load(); got != 1 {
		t.Errorf("router calls %d after a reload with S pinned, want 1", got)
	}
	// a new session after the reload routes normally (2nd router call)
	resp = mustChat(t, gateway, chat("gpt-4o-mini", "hello"), "X-Model-Affinity", "S-new-after-reload")
	expectDecision(t, "a new session after the reload", resp, "gpt-4o", "analysis", "routed")
	if stores := listStores(t); stores["reload-a"] != 2 {
		t.Errorf("stores after the reload: %v; want reload-a with 2 pins", stores)
	}

	// another name is another store: it starts empty, and the old one is gone
	reloadCaddy(t, globalOptions+f.plainSite().with("name reload-b").String())
	resp = mustChat(t, gateway, chat("gpt-4o-mini", "third turn"), "X-Model-Affinity", "S-reload")
	expectDecision(t, "S after renaming the store", resp, "claude", "code", "routed")
	if got := f.router.calls.Load(); got != 3 {
		t.Errorf("router calls %d after renaming the store, want 3", got)
	}
	stores := listStores(t)
	if _, ok := stores["reload-a"]; ok {
		t.Errorf("stores %v still list reload-a after the config that used it was replaced", stores)
	}
	if stores["reload-b"] != 1 {
		t.Errorf("stores %v; want reload-b with 1 pin", stores)
	}
}

// TestTwoInstancesShareRedis runs the in-process Caddy and the real binary
// side by side on one Redis store (same name and prefix).
func TestTwoInstancesShareRedis(t *testing.T) {
	addr := redistest.Addr(t)
	rc := redisClient(t, addr)
	bin := buildCaddyBinary(t)

	// A pin made on instance 1 serves instance 2. Without the shared store,
	// instance 2 would call the (alternating) router and answer gpt-4o.
	t.Run("pin made on one instance serves the other", func(t *testing.T) {
		prefix := uniquePrefix(t, addr)
		f := newFleet(t, alternating)
		site := f.plainSite().with(storeRedis("shared", addr, prefix, healthyRedisTimeout))
		startCaddy(t, site)
		other := startCaddyBinary(t, bin, site)

		const key = "S-shared-session-7f3a"
		const prompt = "SECRET-PROMPT-TEXT compare the two databases"
		resp := mustChat(t, gateway, chat("gpt-4o-mini", prompt), "X-Model-Affinity", key)
		expectDecision(t, "instance 1, first request", resp, "claude", "code", "routed")
		resp = mustChat(t, other.base, chat("gpt-4o-mini", prompt, "next turn"), "X-Model-Affinity", key)
		expectDecision(t, "instance 2, same session", resp, "claude", "code", "pinned")
		if got := f.router.calls.Load(); got != 1 {
			t.Errorf("router calls %d, want 1: instance 2 must use instance 1's pin", got)
		}
		if n := f.claude.count(); n != 2 {
			t.Errorf("claude served %d requests, want 2 (one per instance)", n)
		}

		// Redis holds one key under the prefix; neither it nor its value
		// carries the affinity id or prompt text
		keys := redisKeys(t, rc, prefix)
		if len(keys) != 1 {
			t.Fatalf("redis keys under %q: %v, want exactly 1", prefix, keys)
		}
		val, err := rc.Get(context.Background(), keys[0]).Result()
		if err != nil {
			t.Fatalf("GET %s: %v", keys[0], err)
		}
		for _, secret := range []string{key, "S-shared", prompt, "SECRET", "compare"} {
			if strings.Contains(keys[0], secret) || strings.Contains(val, secret) {
				t.Errorf("redis key %q = %q contains %q", keys[0], val, secret)
			}
		}
		if !strings.Contains(val, "claude") {
			t.Errorf("redis value %q does not name the pinned model claude", val)
		}
		if ttl, err := rc.TTL(context.Background(), keys[0]).Result(); err != nil || ttl <= 0 || ttl > 10*time.Minute {
			t.Errorf("redis key TTL %v (%v), want the pin ttl (10m)", ttl, err)
		}
	})

	// Concurrent first requests for one key on both instances end on one
	// model: each instance makes one router call (the router alternates, so
	// they disagree), and SET NX lets only one decision stand; the loser
	// adopts it. Without SET NX adoption each instance would answer its own
	// router decision: claude on one, gpt-4o on the other.
	t.Run("racing first requests agree", func(t *testing.T) {
		prefix := uniquePrefix(t, addr)
		f := newFleet(t, alternating)
		f.router.delay.Store(int64(300 * time.Millisecond))
		site := f.plainSite().with(storeRedis("shared", addr, prefix, healthyRedisTimeout))
		startCaddy(t, site)
		other := startCaddyBinary(t, bin, site)

		const perInstance = 10
		type result struct {
			base, model string
			status      int
			err         error
		}
		results := make([]result, 2*perInstance)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		client := http.DefaultClient
		for i := range results {
			base := gateway
			if i%2 == 1 {
				base = other.base
			}
			wg.Go(func() {
				<-gate
				resp, _, err := sendTo(client, base, "/v1/chat/completions", chat("gpt-4o-mini", "first turn"),
					"X-Model-Affinity", "R-race")
				r := result{base: base, err: err}
				if err == nil {
					r.status = resp.StatusCode
					r.model, _, _ = decisionOf(resp)
				}
				results[i] = r
			})
		}
		close(gate)
		wg.Wait()
		for i, r := range results {
			if r.err != nil || r.status != http.StatusOK || r.model == "" || r.model != results[0].model {
				t.Errorf("request %d to %s: status %d model %q err %v; all 20 must be 200 on one model (first %q)",
					i, r.base, r.status, r.model, r.err, results[0].model)
			}
		}
		calls := f.router.calls.Load()
		if calls < 1 || calls > 2 {
			t.Errorf("router calls %d, want 1 or 2 (at most one per instance)", calls)
		}
		if calls == 1 {
			t.Logf("only one instance reached the router; the race was not exercised this time")
		}
		// later requests on either instance stay on the winner
		for _, base := range []string{gateway, other.base} {
			resp := mustChat(t, base, chat("gpt-4o-mini", "next turn"), "X-Model-Affinity", "R-race")
			expectDecision(t, "after the race on "+base, resp, results[0].model, map[string]string{"claude": "code", "gpt-4o": "analysis"}[results[0].model], "pinned")
		}
	})
}

// TestRedisOutage: Redis hangs, then dies mid-test. Every request still gets
// a 200 while Redis hangs (pins come from memory, new sessions are decided locally),
// the failures are counted in caddy_llm_affinity_store_errors_total, and
// after Redis comes back new pins reach it again with no reload. Without the
// per-call timeout requests would hang with Redis; without the fall-back to
// memory they would fail; without OnSharedError the metric would not move;
// without a client that reconnects, no key would appear after the restart.
func TestRedisOutage(t *testing.T) {
	rs := redistest.Start(t) // always a private child: this test kills it
	rc := redisClient(t, rs.Addr)
	prefix := uniquePrefix(t, rs.Addr)
	f := newFleet(t, alternating)
	// the per-call timeout: short enough that requests while Redis hangs
	// cost seconds, long enough that no call to a healthy local Redis on a
	// loaded machine reaches it
	const redisTimeout = time.Second
	startCaddy(t, f.plainSite().with(storeRedis("outage", rs.Addr, prefix, redisTimeout.String())).withDirectives("metrics /metrics"))

	resp := mustChat(t, gateway, chat("gpt-4o-mini", "first"), "X-Model-Affinity", "S-outage")
	expectDecision(t, "S before the outage", resp, "claude", "code", "routed")
	if keys := redisKeys(t, rc, prefix); len(keys) != 1 {
		t.Fatalf("redis keys before the outage: %v, want 1", keys)
	}
	samples, _ := scrape(t, gateway+"/metrics")
	errorsBefore, _ := sum(samples, "caddy_llm_affinity_store_errors_total", nil)

	// Redis hangs (CLIENT PAUSE: connections open, no answers) for longer
	// than the test waits for any request, until it is killed below: each
	// call is cut at the timeout, so every request is answered while Redis
	// still hangs. Without the timeout, the first new session would wait out
	// the pause, and this client would give up after patience.
	if err := rc.ClientPause(context.Background(), 5*patience).Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	client := &http.Client{Timeout: patience}
	for i := range 4 {
		key := "S-outage"
		if i%2 == 1 {
			key = fmt.Sprintf("new-while-paused-%d", i)
		}
		resp, out, err := sendTo(client, gateway, "/v1/chat/completions", chat("gpt-4o-mini", "turn"), "X-Model-Affinity", key)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d (%s) while redis hangs: %v %v %s", i, key, err, resp, out)
		}
	}

	// Redis dies: connections are refused at once, so how long a request
	// takes says nothing more than the hang above did; every call still
	// carries the timeout
	rs.Kill()
	for i := range 20 {
		key := "S-outage"
		if i%2 == 1 {
			key = fmt.Sprintf("new-during-outage-%d", i)
		}
		resp, out, err := sendTo(client, gateway, "/v1/chat/completions", chat("gpt-4o-mini", "turn"), "X-Model-Affinity", key)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d (%s) during the outage: %v %v %s", i, key, err, resp, out)
		}
		if key == "S-outage" {
			expectDecision(t, fmt.Sprintf("request %d: S during the outage", i), resp, "claude", "code", "pinned")
		} else if _, _, status := decisionOf(resp); status != "routed" {
			t.Errorf("request %d: a new session during the outage got status %q, want routed", i, status)
		}
	}
	// a session decided during the outage is pinned in memory
	resp = mustChat(t, gateway, chat("gpt-4o-mini", "again"), "X-Model-Affinity", "new-during-outage-1")
	if _, _, status := decisionOf(resp); status != "pinned" {
		t.Errorf("a session decided during the outage, next request: status %q, want pinned (from memory)", status)
	}
	samples, _ = scrape(t, gateway+"/metrics")
	errorsAfter, _ := sum(samples, "caddy_llm_affinity_store_errors_total", nil)
	if errorsAfter <= errorsBefore {
		t.Errorf("caddy_llm_affinity_store_errors_total %v after the outage, was %v; want it to increase", errorsAfter, errorsBefore)
	}

	// Redis comes back, empty; new sessions reach it again by themselves
	rs.Restart()
	var keys []string
	deadline := time.Now().Add(patience)
	for i := 0; len(keys) == 0 && time.Now().Before(deadline); i++ {
		mustChat(t, gateway, chat("gpt-4o-mini", "after"), "X-Model-Affinity", fmt.Sprintf("new-after-restart-%d", i))
		keys = redisKeys(t, rc, prefix)
		if len(keys) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if len(keys) == 0 {
		t.Errorf("no pin reached redis within %v after it restarted", patience)
	}
}

// TestTenantScope: with a scope, the same affinity key of two tenants names
// two pins. Without the scope in the pin key, tenant B would get tenant A's
// pin (claude, no router call), and B's routing could never yield another
// model.
func TestTenantScope(t *testing.T) {
	f := newFleet(t, alternating)
	startCaddy(t, f.plainSite().with("name tenants", "scope {http.request.header.X-Tenant}"))

	send := func(tenant string) *http.Response {
		t.Helper()
		return mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "X-Model-Affinity", "S-tenant", "X-Tenant", tenant)
	}
	expectDecision(t, "tenant A, first", send("A"), "claude", "code", "routed")
	expectDecision(t, "tenant B, same key", send("B"), "gpt-4o", "analysis", "routed")
	if got := f.router.calls.Load(); got != 2 {
		t.Errorf("router calls %d, want 2 (one decision per tenant)", got)
	}
	expectDecision(t, "tenant A again", send("A"), "claude", "code", "pinned")
	expectDecision(t, "tenant B again", send("B"), "gpt-4o", "analysis", "pinned")
	if got := f.router.calls.Load(); got != 2 {
		t.Errorf("router calls %d after both tenants' second requests, want 2", got)
	}

	// the admin API addresses each tenant's pin by its scope value
	for tenant, want := range map[string]string{"A": "claude", "B": "gpt-4o"} {
		status, body := adminCall(t, http.MethodGet, "/llm_affinity/tenants/pin?key=S-tenant&model=gpt-4o-mini&scope="+tenant)
		var p struct {
			Pin struct {
				Model string `json:"model"`
			} `json:"pin"`
		}
		if err := json.Unmarshal(body, &p); err != nil || status != http.StatusOK || p.Pin.Model != want {
			t.Errorf("tenant %s's pin: status %d body %s, want %s", tenant, status, body, want)
		}
	}
	if status, body := adminCall(t, http.MethodGet, "/llm_affinity/tenants/pin?key=S-tenant&model=gpt-4o-mini"); status != http.StatusNotFound {
		t.Errorf("unscoped pin lookup: status %d body %s, want 404 (every pin here is scoped)", status, body)
	}
}

// TestAdminAPI: list, inspect, read, delete and flush pins through Caddy's
// admin endpoint, and its errors.
func TestAdminAPI(t *testing.T) {
	f := newFleet(t, func(int64, string) string { return `{"route": "code"}` })
	startCaddy(t, f.plainSite().with("name admin-test"))
	start := time.Now().Truncate(time.Second)
	for _, key := range []string{"adm-1", "adm-2", "adm-3"} {
		mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "X-Model-Affinity", key)
	}

	if stores := listStores(t); len(stores) != 1 || stores["admin-test"] != 3 {
		t.Errorf("GET /llm_affinity/: %v, want admin-test with 3 pins", stores)
	}

	status, body := adminCall(t, http.MethodGet, "/llm_affinity/admin-test")
	var detail struct {
		Name   string `json:"name"`
		Count  int    `json:"count"`
		Sample []struct {
			Key            string `json:"key"`
			RequestedModel string `json:"requested_model"`
			Pin            struct {
				Model string `json:"model"`
				Route string `json:"route"`
			} `json:"pin"`
		} `json:"sample"`
	}
	if err := json.Unmarshal(body, &detail); err != nil || status != http.StatusOK {
		t.Fatalf("GET /llm_affinity/admin-test: status %d body %s (%v)", status, body, err)
	}
	if detail.Name != "admin-test" || detail.Count != 3 || len(detail.Sample) != 3 {
		t.Errorf("store detail %s; want name admin-test, count 3, 3 samples", body)
	}
	seen := map[string]bool{}
	for _, s := range detail.Sample {
		seen[s.Key] = true
		if s.RequestedModel != "gpt-4o-mini" || s.Pin.Model != "claude" || s.Pin.Route != "code" {
			t.Errorf("sample %+v; want requested_model gpt-4o-mini pinned to claude by route code", s)
		}
	}
	if !seen["adm-1"] || !seen["adm-2"] || !seen["adm-3"] {
		t.Errorf("sample keys %v, want adm-1..3", seen)
	}

	status, body = adminCall(t, http.MethodGet, "/llm_affinity/admin-test/pin?key=adm-1&model=gpt-4o-mini")
	var pin struct {
		Key            string `json:"key"`
		RequestedModel string `json:"requested_model"`
		Pin            struct {
			Model string `json:"model"`
		} `json:"pin"`
		Stats *adminSessionStats `json:"stats"`
	}
	if err := json.Unmarshal(body, &pin); err != nil || status != http.StatusOK ||
		pin.Key != "adm-1" || pin.RequestedModel != "gpt-4o-mini" || pin.Pin.Model != "claude" {
		t.Errorf("GET pin adm-1: status %d body %s; want adm-1/gpt-4o-mini pinned to claude", status, body)
	}
	// the session's stats on this instance: whatever turns were recorded,
	// they are consistent (the counts themselves are asserted where the
	// handler records them)
	if st := pin.Stats; st == nil {
		t.Errorf("GET pin adm-1: no stats in %s", body)
	} else if st.Created.Before(start) || st.Created.After(time.Now()) ||
		(st.LastUsed == nil) != (st.Turns == 0) || (st.LastUsed != nil && st.LastUsed.Before(st.Created)) ||
		st.CachedTokens > st.InputTokens || (st.CacheHitRatio == nil) != (st.InputTokens == 0) {
		t.Errorf("GET pin adm-1: inconsistent stats in %s (test started %v)", body, start)
	}
	// a pin is per requested model: adm-1 has none for another model
	if status, body := adminCall(t, http.MethodGet, "/llm_affinity/admin-test/pin?key=adm-1&model=other"); status != http.StatusNotFound {
		t.Errorf("GET pin for another model: status %d body %s, want 404", status, body)
	}

	// delete one pin: its next request routes again
	if status, body := adminCall(t, http.MethodDelete, "/llm_affinity/admin-test/pin?key=adm-1&model=gpt-4o-mini"); status != http.StatusOK {
		t.Errorf("DELETE pin adm-1: status %d body %s", status, body)
	}
	if status, _ := adminCall(t, http.MethodGet, "/llm_affinity/admin-test/pin?key=adm-1&model=gpt-4o-mini"); status != http.StatusNotFound {
		t.Errorf("GET pin adm-1 after DELETE: status %d, want 404", status)
	}
	calls := f.router.calls.Load()
	resp := mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "X-Model-Affinity", "adm-1")
	expectDecision(t, "adm-1 after its pin was deleted", resp, "claude", "code", "routed")
	resp = mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "X-Model-Affinity", "adm-2")
	expectDecision(t, "adm-2 (not deleted)", resp, "claude", "code", "pinned")
	if got := f.router.calls.Load(); got != calls+1 {
		t.Errorf("router calls %d, want %d (only the deleted pin routes again)", got, calls+1)
	}

	// flush the store
	if status, body := adminCall(t, http.MethodDelete, "/llm_affinity/admin-test"); status != http.StatusOK {
		t.Errorf("DELETE /llm_affinity/admin-test: status %d body %s", status, body)
	}
	status, body = adminCall(t, http.MethodGet, "/llm_affinity/admin-test")
	if err := json.Unmarshal(body, &detail); err != nil || status != http.StatusOK || detail.Count != 0 || len(detail.Sample) != 0 {
		t.Errorf("after flush: status %d body %s, want count 0 and no sample", status, body)
	}
	resp = mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "X-Model-Affinity", "adm-2")
	expectDecision(t, "adm-2 after the flush", resp, "claude", "code", "routed")

	// errors: a JSON body with an error message; a wrong method is 405
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/llm_affinity/admin-test", http.StatusMethodNotAllowed},
		{http.MethodPut, "/llm_affinity/", http.StatusMethodNotAllowed},
		{http.MethodGet, "/llm_affinity/no-such-store", http.StatusNotFound},
		{http.MethodDelete, "/llm_affinity/no-such-store", http.StatusNotFound},
		{http.MethodGet, "/llm_affinity/no-such-store/pin?key=a&model=b", http.StatusNotFound},
		{http.MethodGet, "/llm_affinity/admin-test/pin?key=&model=gpt-4o-mini", http.StatusBadRequest},
		{http.MethodGet, "/llm_affinity/admin-test/pin?model=gpt-4o-mini", http.StatusBadRequest},
		{http.MethodGet, "/llm_affinity/admin-test/pin?key=bad%01key&model=gpt-4o-mini", http.StatusBadRequest},
		{http.MethodDelete, "/llm_affinity/admin-test/pin?key=" + strings.Repeat("k", 257) + "&model=m", http.StatusBadRequest},
	} {
		status, body := adminCall(t, tc.method, tc.path)
		var e struct {
			Error string `json:"error"`
		}
		if status != tc.status || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s %s: status %d body %s; want %d with a JSON error", tc.method, tc.path, status, body, tc.status)
		}
	}
}

// TestMetricsEndpoint: the module's metrics appear on a metrics endpoint of
// the config, labeled by configured names only. Without registerMetrics on
// the config's registry none of them would be scraped.
func TestMetricsEndpoint(t *testing.T) {
	f := newFleet(t, func(int64, string) string { return `{"route": "code"}` })
	startCaddy(t, f.plainSite().with("name metrics-test").withDirectives("metrics /metrics"))

	const key = "S-metrics-key-9c1e"
	const prompt = "METRICS-SECRET-PROMPT about the merger"
	resp := mustChat(t, gateway, chat("gpt-4o-mini", prompt), "X-Model-Affinity", key)
	expectDecision(t, "first", resp, "claude", "code", "routed")
	resp = mustChat(t, gateway, chat("gpt-4o-mini", prompt), "X-Model-Affinity", key)
	expectDecision(t, "second", resp, "claude", "code", "pinned")

	samples, raw := scrape(t, gateway+"/metrics")
	for _, status := range []string{"routed", "pinned"} {
		if v, ok := sum(samples, "caddy_llm_affinity_decisions_total",
			map[string]string{"status": status, "model": "claude", "route": "code"}); !ok || v < 1 {
			t.Errorf("caddy_llm_affinity_decisions_total{status=%q,model=\"claude\",route=\"code\"} = %v (found %v), want >= 1", status, v, ok)
		}
	}
	if v, ok := sum(samples, "caddy_llm_affinity_router_duration_seconds_count", nil); !ok || v < 1 {
		t.Errorf("caddy_llm_affinity_router_duration_seconds_count = %v (found %v), want >= 1", v, ok)
	}
	if v, ok := sum(samples, "caddy_llm_affinity_pins", map[string]string{"name": "metrics-test"}); !ok || v < 1 {
		t.Errorf(`caddy_llm_affinity_pins{name="metrics-test"} = %v (found %v), want >= 1`, v, ok)
	}
	for _, line := range strings.Split(raw, "\n") {
		for _, secret := range []string{key, "S-metrics", prompt, "METRICS-SECRET", "merger"} {
			if strings.Contains(line, secret) {
				t.Errorf("metrics line %q contains %q", line, secret)
			}
		}
	}
}

// headerRecorder is an upstream that records the affinity headers it gets.
type headerRecorder struct {
	mu       sync.Mutex
	affinity []string
	mode     []string
}

func (h *headerRecorder) upstream(t *testing.T) *fakeUpstream {
	return newFakeUpstreamFunc(t, "recorder", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		h.mu.Lock()
		h.affinity = append(h.affinity, strings.Join(r.Header.Values("X-Model-Affinity"), ","))
		h.mode = append(h.mode, strings.Join(r.Header.Values("X-Model-Affinity-Mode"), ","))
		h.mu.Unlock()
		fixedResponse(http.StatusOK, `{"id":"c","object":"chat.completion","model":"m","choices":[]}`)(w, r, nil)
	})
}

// TestStripHeader: the affinity header and X-Model-Affinity-Mode stay at the
// gateway unless strip_header is off. Without stripping the first case would
// see both headers upstream; with stripping forced the second would see none.
func TestStripHeader(t *testing.T) {
	for _, tc := range []struct {
		name, extra, wantAffinity, wantMode string
	}{
		{"default strips", "", "", ""},
		{"strip_header on", "strip_header on", "", ""},
		{"strip_header off", "strip_header off", "S-strip", "on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &headerRecorder{}
			f := newFleet(t, func(int64, string) string { return `{"route": "code"}` })
			f.claude = rec.upstream(t)
			startCaddy(t, f.plainSite().with(tc.extra))
			resp := mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "X-Model-Affinity", "S-strip", "X-Model-Affinity-Mode", "on")
			expectDecision(t, "request", resp, "claude", "code", "routed")
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.affinity) != 1 || rec.affinity[0] != tc.wantAffinity || rec.mode[0] != tc.wantMode {
				t.Errorf("upstream saw X-Model-Affinity %q and X-Model-Affinity-Mode %q; want %q and %q",
					rec.affinity, rec.mode, tc.wantAffinity, tc.wantMode)
			}
		})
	}
}

// TestAccessLogFields: the access log line of a routed request carries the
// decision and a hash of the affinity key. Without the extra log fields the
// line would have no llm_* fields; a raw key in llm_affinity_key_hash would
// leak session ids into logs.
func TestAccessLogFields(t *testing.T) {
	f := newFleet(t, func(int64, string) string { return `{"route": "code"}` })
	logPath := filepath.Join(t.TempDir(), "access.log")
	startCaddy(t, f.plainSite().withDirectives("log {\n\toutput file "+logPath+"\n}"))
	// close the log file before the temp dir goes away
	t.Cleanup(func() { closeLogFiles(t) })

	const key = "S-access-log-key-4d2b"
	mustChat(t, gateway, chat("gpt-4o-mini", "hi"), "X-Model-Affinity", key)

	entry := waitForLogEntry(t, logPath, "with llm_model", func(e map[string]any) bool { return e["llm_model"] != nil })
	digest := sha256.Sum256([]byte(key))
	wantHash := hex.EncodeToString(digest[:8])
	for field, want := range map[string]string{
		"llm_model": "claude", "llm_route": "code", "llm_status": "routed", "llm_affinity_key_hash": wantHash,
	} {
		if got, _ := entry[field].(string); got != want {
			t.Errorf("access log field %s = %q, want %q", field, got, want)
		}
	}
	if h, _ := entry["llm_affinity_key_hash"].(string); strings.Contains(h, key) || strings.Contains(h, "S-access") {
		t.Errorf("llm_affinity_key_hash %q carries the raw key", h)
	}
}

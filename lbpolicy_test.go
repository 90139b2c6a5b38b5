package llmaffinity

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// lbPool is a pool of fresh upstreams on dials, as the llm_affinity
// upstream source returns them.
func lbPool(dials ...string) reverseproxy.UpstreamPool {
	pool := make(reverseproxy.UpstreamPool, len(dials))
	for i, d := range dials {
		pool[i] = &reverseproxy.Upstream{Dial: d}
	}
	return pool
}

// lbSessions are the pin hashes of n sessions with ids that differ only in
// their digits, the way clients number sessions, each under two tenants'
// scopes: the inputs a weak mix would spread unevenly.
func lbSessions(n int) []uint64 {
	pins := make([]uint64, 0, n)
	for i := range n {
		pins = append(pins, pinHash(fmt.Sprintf("%s\x00session-%d\x00gpt-4o", hashScope(fmt.Sprint("tenant-", i%2)), i)))
	}
	return pins
}

// lbAssign is the dial each pin lands on in pool.
func lbAssign(pool reverseproxy.UpstreamPool, pins []uint64) []string {
	where := make([]string, len(pins))
	for i, pin := range pins {
		where[i] = rendezvous(pool, pin).Dial
	}
	return where
}

// lbBound is how far a count of n draws with probability p may stray from
// its mean, at sigmas standard deviations of the binomial distribution.
func lbBound(n int, p, sigmas float64) int {
	return int(math.Ceil(sigmas * math.Sqrt(float64(n)*p*(1-p))))
}

// TestRendezvousSpread: sessions spread over replicas as if assigned at
// random. The inputs are fixed, so each count is too; the bound says the
// hash behaves like a uniform one: for a uniform assignment a count is
// binomial, and stays within 5 standard deviations of its mean with
// probability 1 - 6e-7. Addresses that differ in one character (ports of
// one host, hosts of one subnet) are the hard case for a weak mix.
func TestRendezvousSpread(t *testing.T) {
	const sessions = 30000
	pins := lbSessions(sessions)
	for _, dials := range [][]string{
		{"10.0.0.11:8000", "10.0.0.12:8000", "10.0.0.13:8000"},
		{"127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002"},
		{"gpu-0.internal:8000", "gpu-1.internal:8000", "gpu-2.internal:8000", "gpu-3.internal:8000", "gpu-4.internal:8000"},
		{"10.0.0.1:8000", "10.0.0.2:8000"},
	} {
		counts := map[string]int{}
		for _, d := range lbAssign(lbPool(dials...), pins) {
			counts[d]++
		}
		p := 1 / float64(len(dials))
		mean, bound := int(sessions*p), lbBound(sessions, p, 5)
		t.Logf("%d sessions over %v: %v (want %d±%d each)", sessions, dials, counts, mean, bound)
		for _, d := range dials {
			if n := counts[d]; n < mean-bound || n > mean+bound {
				t.Errorf("%s has %d of %d sessions, want %d±%d", d, n, sessions, mean, bound)
			}
		}
	}
}

// TestRendezvousStable: the choice depends on the pin key's hash and the
// dial addresses only: not on the pool's order, not on the Upstream values
// (fresh on every call), not on the process. The known answers pin the
// score function itself: a change to it moves sessions between replicas
// whenever gateways of two versions serve side by side.
func TestRendezvousStable(t *testing.T) {
	dials := []string{"10.0.0.11:8000", "10.0.0.12:8000", "10.0.0.13:8000"}
	pins := lbSessions(1000)
	want := lbAssign(lbPool(dials...), pins)
	reversed := slices.Clone(dials)
	slices.Reverse(reversed)
	if got := lbAssign(lbPool(reversed...), pins); !slices.Equal(got, want) {
		t.Error("the pool's order changed which replica sessions land on")
	}
	for _, tt := range []struct {
		pin   uint64
		dial  string
		score uint64
	}{
		{1, "10.0.0.11:8000", 0xc47d09ee4114a906},
		{pinHash("session-1"), "10.0.0.11:8000", 0x19ef0ed58501f862},
		{pinHash("session-1"), "10.0.0.12:8000", 0x1bb9db94b3754559},
		{pinHash("session-2"), "10.0.0.11:8000", 0x085ac0ef2369b61a},
	} {
		if got := replicaScore(tt.pin, tt.dial); got != tt.score {
			t.Errorf("replicaScore(%#x, %q) = %#x, want %#x", tt.pin, tt.dial, got, tt.score)
		}
	}
	// SplitMix64 seeded with 0 first outputs the mix of its increment
	if got := mix64(0x9e3779b97f4a7c15); got != 0xe220a8397b1dcdaf {
		t.Errorf("mix64 is not SplitMix64's finalizer: mix64(0x9e3779b97f4a7c15) = %#x, want 0xe220a8397b1dcdaf", got)
	}
}

// TestRendezvousMinimalMovement: when one of three replicas leaves the
// pool, only its sessions move, spread over both others; when it comes
// back, exactly they return. (A replica that is in the pool but not
// available is skipped the same way; the integration test
// TestReplicaStickiness has Caddy's passive health checks take one out.)
func TestRendezvousMinimalMovement(t *testing.T) {
	const sessions = 3000
	dials := []string{"10.0.0.11:8000", "10.0.0.12:8000", "10.0.0.13:8000"}
	pins := lbSessions(sessions)
	before := lbAssign(lbPool(dials...), pins)
	without := lbAssign(lbPool(dials[0], dials[2]), pins)
	moved := map[string]int{}
	for i := range pins {
		switch {
		case before[i] != dials[1] && without[i] != before[i]:
			t.Errorf("session %d moved from %s to %s though %s is still there", i, before[i], without[i], before[i])
		case before[i] == dials[1]:
			moved[without[i]]++
		}
	}
	// the leaving replica held about a third; each survivor takes about
	// half of those, within 5 standard deviations as above
	left := moved[dials[0]] + moved[dials[2]]
	t.Logf("%s's %d sessions moved to: %v", dials[1], left, moved)
	for _, d := range []string{dials[0], dials[2]} {
		if n, bound := moved[d], lbBound(left, 0.5, 5); n < left/2-bound || n > left/2+bound {
			t.Errorf("%s took %d of the %d sessions that moved, want %d±%d", d, n, left, left/2, bound)
		}
	}
	if back := lbAssign(lbPool(dials...), pins); !slices.Equal(back, before) {
		t.Error("with the replica back, sessions are not where they were before it left")
	}
}

// lbPolicy provisions a SelectionPolicy from its JSON, as a config load does.
func lbPolicy(t *testing.T, config string) *SelectionPolicy {
	t.Helper()
	var s SelectionPolicy
	if err := json.Unmarshal([]byte(config), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Provision(cfgContext(t)); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return &s
}

// lbRequest is a request as reverse_proxy passes it to its selection
// policy, with the request variables the handler set (none when vars is nil).
func lbRequest(vars map[string]any) *http.Request {
	w := httptest.NewRecorder()
	r := caddyhttp.PrepareRequest(httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil), caddy.NewReplacer(), w, &caddyhttp.Server{})
	for k, v := range vars {
		caddyhttp.SetVar(r.Context(), k, v)
	}
	return r
}

// TestSelectionPolicyFallback: a request the handler pinned is hashed; one
// it did not pin (hash 0), one no handler saw (no variable) and one whose
// variable is not a hash go to the fallback policy, random by default.
func TestSelectionPolicyFallback(t *testing.T) {
	dials := []string{"10.0.0.11:8000", "10.0.0.12:8000", "10.0.0.13:8000"}
	first := lbPolicy(t, `{"fallback":{"policy":"first"}}`)
	pin := pinHash("session-1")
	hashed := rendezvous(lbPool(dials...), pin).Dial
	if hashed == dials[0] {
		t.Fatal("pick a session that does not hash to the first replica, or the test cannot tell hashing from the fallback")
	}
	for _, tt := range []struct {
		name string
		vars map[string]any
		want string
	}{
		{"pinned", map[string]any{PinHashVar: pin}, hashed},
		{"not pinned", map[string]any{PinHashVar: uint64(0)}, dials[0]},
		{"no handler before reverse_proxy", nil, dials[0]},
		{"a variable of another type", map[string]any{PinHashVar: "session-1"}, dials[0]},
	} {
		if got := first.Select(lbPool(dials...), lbRequest(tt.vars), nil); got == nil || got.Dial != tt.want {
			t.Errorf("%s: selected %v, want %s", tt.name, got, tt.want)
		}
	}
	if got := first.Select(nil, lbRequest(map[string]any{PinHashVar: pin}), nil); got != nil {
		t.Errorf("an empty pool: selected %v, want nil", got)
	}

	random := lbPolicy(t, `{}`)
	if _, ok := random.fallback.(*reverseproxy.RandomSelection); !ok {
		t.Errorf("default fallback is %T, want random", random.fallback)
	}
	if got := random.Select(lbPool(dials...), lbRequest(nil), nil); got == nil {
		t.Error("default fallback selected nothing")
	}

	if err := lbPolicy(t, `{"fallback":{"policy":"llm_affinity"}}`).Validate(); err == nil {
		t.Error("llm_affinity as its own fallback validated")
	}
}

// BenchmarkSelectionPolicy is the policy's cost per attempt with three
// replicas: no allocation.
func BenchmarkSelectionPolicy(b *testing.B) {
	pool := lbPool("10.0.0.11:8000", "10.0.0.12:8000", "10.0.0.13:8000")
	var s SelectionPolicy
	r := lbRequest(map[string]any{PinHashVar: pinHash("session-1")})
	b.ReportAllocs()
	for b.Loop() {
		if s.Select(pool, r, nil) == nil {
			b.Fatal("nothing selected")
		}
	}
}

package llmaffinity

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/llmaffinity/caddy-llm-affinity/internal/subdirective"
)

func init() {
	caddy.RegisterModule(SelectionPolicy{})
}

// selectionPolicyPrefix is the Caddy module namespace of reverse_proxy's
// selection policies, the name of a policy appended.
const selectionPolicyPrefix = "http.reverse_proxy.selection_policies."

// SelectionPolicy is the reverse_proxy selection policy that keeps each
// session on one replica of its model, so the replica's KV/prefix cache for
// the conversation stays warm:
//
//	reverse_proxy {
//		dynamic   llm_affinity
//		lb_policy llm_affinity
//	}
//
// It hashes the session's pin key (scope, affinity key and requested model,
// whichever way the key came: the affinity header, a harness's session
// header or an implicit key), which the llm_affinity handler before
// reverse_proxy leaves in the request variable PinHashVar. So it works when
// the affinity header is stripped, and on retries. Among the available
// upstreams (healthy and not full) it picks by rendezvous (highest random
// weight) hashing: each upstream scores a hash of the pin key's hash and its
// dial address, the highest wins. When a replica becomes unavailable only
// its sessions move, each to the replica that scored next; when it is back
// they return. The score depends on nothing but the key and the address, so
// every gateway instance picks the same replica for a session (implicit keys
// need the same implicit_salt on each instance).
//
// Requests that are not pinned (no key, opted out, paths the handler does
// not route) and requests no llm_affinity handler saw are handed to the
// fallback policy.
type SelectionPolicy struct {
	// The policy for requests without a pin key, as reverse_proxy's
	// selection_policy module object, e.g. {"policy": "least_conn"}.
	// Default: random.
	FallbackRaw json.RawMessage `json:"fallback,omitempty" caddy:"namespace=http.reverse_proxy.selection_policies inline_key=policy"`

	fallback reverseproxy.Selector
}

// CaddyModule returns the Caddy module information.
func (SelectionPolicy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  selectionPolicyPrefix + "llm_affinity",
		New: func() caddy.Module { return new(SelectionPolicy) },
	}
}

// Provision loads the fallback policy, random unless configured.
func (s *SelectionPolicy) Provision(ctx caddy.Context) error {
	if s.FallbackRaw == nil {
		s.FallbackRaw = caddyconfig.JSONModuleObject(reverseproxy.RandomSelection{}, "policy", "random", nil)
	}
	mod, err := ctx.LoadModule(s, "FallbackRaw")
	if err != nil {
		return fmt.Errorf("lb_policy llm_affinity: loading fallback policy: %v", err)
	}
	s.fallback = mod.(reverseproxy.Selector)
	return nil
}

// errFallbackItself refuses llm_affinity as its own fallback, which would
// only ever see requests without a pin key and hand them to its own fallback.
var errFallbackItself = errors.New("lb_policy llm_affinity: fallback llm_affinity would never have a pin key to hash; name another policy")

// Validate refuses llm_affinity as its own fallback.
func (s *SelectionPolicy) Validate() error {
	if _, ok := s.fallback.(*SelectionPolicy); ok {
		return errFallbackItself
	}
	return nil
}

// Select returns the available upstream with the highest score for the
// request's pin key, nil when none is available; a request without a pin
// key gets the fallback policy's choice.
func (s *SelectionPolicy) Select(pool reverseproxy.UpstreamPool, r *http.Request, w http.ResponseWriter) *reverseproxy.Upstream {
	pin, _ := caddyhttp.GetVar(r.Context(), PinHashVar).(uint64)
	if pin == 0 {
		return s.fallback.Select(pool, r, w)
	}
	return rendezvous(pool, pin)
}

// rendezvous returns the available upstream whose dial address scores
// highest for pin; a tie (as unlikely as a 64-bit collision) goes to the
// lower address, so the choice does not depend on the pool's order either.
func rendezvous(pool []*reverseproxy.Upstream, pin uint64) *reverseproxy.Upstream {
	var best *reverseproxy.Upstream
	var bestScore uint64
	for _, u := range pool {
		if !u.Available() {
			continue
		}
		score := replicaScore(pin, u.String())
		if best == nil || score > bestScore || (score == bestScore && u.String() < best.String()) {
			best, bestScore = u, score
		}
	}
	return best
}

// replicaScore is the rendezvous weight of the replica at dial for the
// session whose pin key hashes to pin. The address is hashed (FNV-1a) and
// mixed into a 64-bit identifier, which is combined with the pin hash and
// mixed again, so that every bit of both inputs reaches every bit of the
// score: addresses that differ in one digit and pin keys that differ in one
// character give unrelated scores. It uses no seed, so every process scores
// alike; changing it moves sessions between replicas on upgrade.
func replicaScore(pin uint64, dial string) uint64 {
	return mix64(pin ^ mix64(fnv1a(dial)))
}

// mix64 is the finalizer of SplitMix64 (Steele, Lea and Flood, "Fast
// splittable pseudorandom number generators", 2014, with Stafford's
// "Mix13" constants): a bijection of uint64 in which each input bit flips
// each output bit with probability close to 1/2.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// UnmarshalCaddyfile sets up the policy from Caddyfile tokens. Syntax:
//
//	lb_policy llm_affinity {
//		fallback <policy> [<args...>]   # for requests without a pin key; default random
//	}
//
// The block is optional. fallback takes any other selection policy with its
// own arguments and block, as reverse_proxy's lb_policy does.
func (s *SelectionPolicy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the policy name
	if d.NextArg() {
		return d.ArgErr()
	}
	const prefix = "lb_policy llm_affinity: "
	return subdirective.Each(d, prefix, func(sub string) error {
		if sub != "fallback" {
			return subdirective.ErrUnrecognized
		}
		if s.FallbackRaw != nil {
			return d.Errf("%sfallback already specified", prefix)
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		name := d.Val()
		if name == "llm_affinity" {
			return d.Err(errFallbackItself.Error())
		}
		unm, err := caddyfile.UnmarshalModule(d, selectionPolicyPrefix+name)
		if err != nil {
			return err
		}
		sel, ok := unm.(reverseproxy.Selector)
		if !ok {
			return d.Errf("%sfallback: module %s is not a selection policy", prefix, selectionPolicyPrefix+name)
		}
		s.FallbackRaw = caddyconfig.JSONModuleObject(sel, "policy", name, nil)
		return nil
	})
}

// Interface guards
var (
	_ reverseproxy.Selector = (*SelectionPolicy)(nil)
	_ caddy.Provisioner     = (*SelectionPolicy)(nil)
	_ caddy.Validator       = (*SelectionPolicy)(nil)
	_ caddyfile.Unmarshaler = (*SelectionPolicy)(nil)
)

package llmaffinity

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func init() {
	caddy.RegisterModule(Upstreams{})
}

// errNoDecision is returned to reverse_proxy when no llm_affinity handler ran
// before it for the request.
var errNoDecision = errors.New("llm_affinity upstreams: no llm_affinity handler ran before reverse_proxy for this request")

// Upstreams is the dynamic upstream source that returns the replicas of the
// model the llm_affinity handler chose for the request:
//
//	reverse_proxy {
//		dynamic llm_affinity
//	}
//
// reverse_proxy calls it before every attempt (retries included) and does
// load balancing, passive health checks and retries across the replicas.
type Upstreams struct{}

// CaddyModule returns the Caddy module information.
func (Upstreams) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.upstreams.llm_affinity",
		New: func() caddy.Module { return new(Upstreams) },
	}
}

// GetUpstreams returns fresh upstreams for the chosen model's dial addresses;
// reverse_proxy writes into them, so they are never shared between calls.
func (Upstreams) GetUpstreams(r *http.Request) ([]*reverseproxy.Upstream, error) {
	target, _ := caddyhttp.GetVar(r.Context(), upstreamVar).(*upstreamTarget)
	if target == nil {
		return nil, errNoDecision
	}
	upstreams := make([]*reverseproxy.Upstream, len(target.dials))
	for i, dial := range target.dials {
		upstreams[i] = &reverseproxy.Upstream{Dial: dial}
	}
	return upstreams, nil
}

// UnmarshalCaddyfile sets up the source from Caddyfile tokens. It takes no
// options:
//
//	dynamic llm_affinity
func (u *Upstreams) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the source name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("dynamic llm_affinity takes no options; configure models in the llm_affinity directive")
	}
	return nil
}

// Interface guards
var (
	_ reverseproxy.UpstreamSource = Upstreams{}
	_ caddyfile.Unmarshaler       = (*Upstreams)(nil)
)

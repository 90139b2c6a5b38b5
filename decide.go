package llmaffinity

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
	"github.com/llmaffinity/caddy-llm-affinity/router"
)

// processSalt salts implicit keys when no implicit_salt is configured. It is
// random per process: implicit pins survive config reloads, not restarts.
var processSalt = cryptorand.Text()

// optOutValue, as the affinity header's value or in X-Model-Affinity-Mode,
// routes a request fresh and writes no pin.
const optOutValue = "off"

// incoming is one chat request on its way through the handler.
type incoming struct {
	r      *http.Request
	api    router.API // the wire format the client speaks
	env    *router.Envelope
	body   *requestBody // valid until ServeHTTP returns
	key    string       // affinity key: the header's, or an implicit one; "" for none
	optOut bool         // route fresh, pin nothing
	scope  string       // hashed tenant scope; "" without one

	// preferences are the request's own routes (routing_preferences),
	// replacing the configured ones; nil when it has none.
	preferences []*Route

	req *router.Request // decoded on first use
}

// decoded returns the decoded request, decoding it on first use.
func (in *incoming) decoded() (*router.Request, error) {
	if in.req != nil {
		return in.req, nil
	}
	req, err := router.Decode(in.body.bytes)
	if err != nil {
		return nil, err
	}
	in.req = req
	return req, nil
}

// decodedForRouting returns what routing reads: the full decode when it
// reads message text (a routing model, regex or tokens_over rules) or the
// request was decoded already, else the shallow one rules on roles and
// tools need, which skips the conversation.
func (in *incoming) decodedForRouting(readsMessages bool) (*router.Request, error) {
	if readsMessages || in.req != nil {
		return in.decoded()
	}
	return router.DecodeShallow(in.env)
}

// decision is the outcome of routing one request.
type decision struct {
	// candidates are the models to try in order: the chosen model first,
	// then the route's other models, then the default.
	candidates []*Model
	route      string
	status     string
	pinKey     string // the pin this decision lives in; "" when not pinned
}

// affinityKey returns the request's affinity key ("" when it has none) and
// whether the request opted out of affinity.
func (h *Handler) affinityKey(r *http.Request) (key string, optOut bool, err error) {
	if strings.EqualFold(r.Header.Get(HeaderMode), optOutValue) {
		return "", true, nil
	}
	values := r.Header.Values(h.Header)
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
		if strings.EqualFold(values[0], optOutValue) {
			return "", true, nil
		}
		if err := affinity.ValidateKey(values[0]); err != nil {
			return "", false, fmt.Errorf("invalid %s header: %v", h.Header, err)
		}
		return values[0], false, nil
	default:
		return "", false, fmt.Errorf("more than one %s header", h.Header)
	}
}

// implicitKey derives a session key from what stays the same across an
// agent's turns: the system prompt, the tool names and the first user
// message. It is a salted hash, so a stored key reveals no prompt content.
func (h *Handler) implicitKey(req *router.Request) string {
	sum := sha256.New()
	for _, part := range []string{h.implicitSalt, req.System, strings.Join(req.ToolNames, "\x00"), req.FirstUserText} {
		sum.Write([]byte(part))
		sum.Write([]byte{0xff}) // cannot occur in UTF-8 text: parts stay apart
	}
	return "implicit:" + hex.EncodeToString(sum.Sum(nil)[:16])
}

// scopeOf evaluates the scope placeholder for a request and hashes it, so
// pin keys hold no tenant credentials.
func (h *Handler) scopeOf(r *http.Request) string {
	if h.Scope == "" {
		return ""
	}
	value := h.Scope
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		value = repl.ReplaceAll(h.Scope, "")
	}
	return hashScope(value)
}

// hashScope is how a tenant scope value appears in pin keys.
func hashScope(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:16])
}

// hashKey is how an affinity key appears in logs: a short SHA-256 prefix.
func hashKey(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// decide returns the models for a request: the session's pin when there is
// one, else a fresh routing decision, pinned when the request has a key.
func (h *Handler) decide(ctx context.Context, in *incoming) decision {
	if in.key == "" || in.optOut {
		return h.route(ctx, in)
	}
	pinKey := affinity.PinKey(in.scope, in.key, in.env.Model)
	if h.RouteOnUserOnly && router.IsUserUtterance(in.env.LastMessage) {
		// a new user turn: route afresh and re-pin
		d := h.route(ctx, in)
		h.pins.Set(ctx, pinKey, affinity.Pin{Model: d.candidates[0].Name, Route: d.route})
		d.pinKey = pinKey
		return d
	}
	if pin, ok := h.pins.Cached(pinKey); ok {
		if d, ok := h.pinned(pin, in); ok { // the hot path: no closure built
			d.pinKey = pinKey
			return d
		}
	}
	var fresh decision
	pin, decided := h.pins.GetOrDecide(ctx, pinKey, func(ctx context.Context) affinity.Pin {
		fresh = h.route(ctx, in)
		return affinity.Pin{Model: fresh.candidates[0].Name, Route: fresh.route}
	})
	if decided {
		fresh.pinKey = pinKey
		return fresh
	}
	if d, ok := h.pinned(pin, in); ok {
		d.pinKey = pinKey
		return d
	}
	// pinned to a model this config no longer has: decide afresh and re-pin
	d := h.route(ctx, in)
	h.pins.Set(ctx, pinKey, affinity.Pin{Model: d.candidates[0].Name, Route: d.route})
	d.pinKey = pinKey
	return d
}

// pinned rebuilds a decision from a pin; false when its model is gone.
func (h *Handler) pinned(pin affinity.Pin, in *incoming) (decision, bool) {
	m := h.models[pin.Model]
	if m == nil {
		return decision{}, false
	}
	return decision{candidates: h.candidates(m, h.findRoute(pin.Route, in)), route: pin.Route, status: StatusPinned}, true
}

// findRoute looks a route up among the request's own preferences, if it has
// any, else the configured routes.
func (h *Handler) findRoute(name string, in *incoming) *Route {
	if name == "" {
		return nil
	}
	if in.preferences != nil {
		for _, r := range in.preferences {
			if r.Name == name {
				return r
			}
		}
		return nil
	}
	return h.routeByName[name]
}

// route decides afresh: the first route whose rules all hold, else the
// router's choice, each serving the model its policy picks. With no match or
// a router failure, the requested model serves if it is configured, else the
// default.
func (h *Handler) route(ctx context.Context, in *incoming) decision {
	routes := h.Routes
	if in.preferences != nil {
		routes = in.preferences
	}
	hasRules := false
	for _, rt := range routes {
		if len(rt.When) > 0 {
			hasRules = true
			break
		}
	}
	if hasRules || h.router != nil {
		// request preferences carry no rules, so only configured rules count
		req, err := in.decodedForRouting(h.router != nil || h.rulesReadMessages)
		if err != nil {
			h.logger.Warn("decoding request for routing failed; falling back", zap.Error(err))
			return h.fallback(in)
		}
		for _, rt := range routes {
			if router.MatchAll(rt.When, req, in.r.Header) {
				return h.routed(rt)
			}
		}
		if h.router != nil && len(req.Conversation) > 0 {
			start := time.Now()
			name, err := h.router.Route(ctx, routerRoutes(routes), req.Conversation)
			routerDuration.Observe(time.Since(start).Seconds())
			switch {
			case err != nil:
				routerErrors.Inc()
				h.logger.Warn("router failed; falling back", zap.Error(err))
			case name == "":
			default:
				for _, rt := range routes {
					if rt.Name == name {
						return h.routed(rt)
					}
				}
				h.logger.Warn("router answered an unknown route; falling back", zap.Int("route_name_len", len(name)))
			}
		}
	}
	return h.fallback(in)
}

// routed is the decision for a matched route.
func (h *Handler) routed(rt *Route) decision {
	return decision{candidates: h.candidates(pick(rt), rt), route: rt.Name, status: StatusRouted}
}

// fallback serves the requested model if it is configured and clients may
// choose (client_model), else the default.
func (h *Handler) fallback(in *incoming) decision {
	m := h.defaultModel
	if requested := h.models[in.env.Model]; requested != nil && h.clientModel {
		m = requested
	}
	return decision{candidates: h.candidates(m, nil), status: StatusDefault}
}

// routerRoutes are the routes the routing model sees: those with a
// description or without rules.
func routerRoutes(routes []*Route) []router.Route {
	out := make([]router.Route, 0, len(routes))
	for _, rt := range routes {
		if rt.Description != "" || len(rt.When) == 0 {
			out = append(out, router.Route{Name: rt.Name, Description: rt.Description})
		}
	}
	return out
}

// pick chooses the model that serves a route, by its policy.
func pick(rt *Route) *Model {
	switch rt.Policy {
	case PolicyRandom:
		return rt.models[rand.IntN(len(rt.models))]
	case PolicyWeighted:
		total := 0
		for _, m := range rt.models {
			total += m.weight
		}
		if total > 0 {
			n := rand.IntN(total)
			for _, m := range rt.models {
				if n < m.weight {
					return m
				}
				n -= m.weight
			}
		}
	}
	return rt.models[0]
}

// candidates lists the models to try: chosen, then the route's other models
// in order, then the default, each once.
func (h *Handler) candidates(chosen *Model, rt *Route) []*Model {
	out := make([]*Model, 0, 4)
	out = append(out, chosen)
	if rt != nil {
		for _, m := range rt.models {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	if !slices.Contains(out, h.defaultModel) {
		out = append(out, h.defaultModel)
	}
	return out
}

// preferenceRoutes turns a request's routing_preferences into routes for
// this request. Their models must be configured ones.
func (h *Handler) preferenceRoutes(prefs []router.Preference) ([]*Route, error) {
	if len(prefs) == 0 {
		return nil, nil
	}
	routes := make([]*Route, 0, len(prefs))
	for i, p := range prefs {
		for _, name := range p.Models {
			if h.models[name] == nil {
				return nil, fmt.Errorf("routing_preferences[%d] names a model this gateway does not serve", i)
			}
		}
		routes = append(routes, &Route{Name: p.Name, Description: p.Description, Models: p.Models,
			Policy: PolicyFirst, models: h.lookupModels(p.Models)})
	}
	return routes, nil
}

package llmaffinity

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
	"github.com/llmaffinity/caddy-llm-affinity/routing"
)

// incoming is one chat request on its way through the handler.
type incoming struct {
	r      *http.Request
	api    llmapi.API // the wire format the client speaks
	env    *llmapi.Envelope
	body   *requestBody // valid until ServeHTTP returns
	key    string       // affinity key: the header's, or an implicit one; "" for none
	optOut bool         // route fresh, pin nothing
	scope  string       // hashed tenant scope; "" without one

	// preferences are the request's own routes (routing_preferences),
	// replacing the configured ones; nil when it has none.
	preferences []*Route

	req *llmapi.Summary // decoded on first use

	// neutral is the request in the neutral form, decoded for the first
	// candidate of another API; neutralErr why it could not be
	neutral    *llmapi.Turn
	neutralErr error
	states     *affinity.Store // where translated Responses conversations are kept
	// path and query are the client's request path and query
	path, query string
	// start is when the handler took the request
	start time.Time
	// keyHash is key hashed, for logs and spans (see hashedKey)
	keyHash string
}

// hashedKey is the affinity key hashed, computed once.
func (in *incoming) hashedKey() string {
	if in.keyHash == "" && in.key != "" {
		in.keyHash = hashKey(in.key)
	}
	return in.keyHash
}

// decoded returns the decoded request, decoding it on first use.
func (in *incoming) decoded() (*llmapi.Summary, error) {
	if in.req != nil {
		return in.req, nil
	}
	req, err := llmapi.DecodeFor(in.api, in.body.bytes, in.env)
	if err != nil {
		return nil, err
	}
	in.req = req
	return req, nil
}

// turn returns the request in the neutral form, for a model of another
// API, decoding it on first use; a conversation continued by
// previous_response_id is put before its messages.
func (in *incoming) turn() (*llmapi.Turn, error) {
	if in.neutral == nil && in.neutralErr == nil {
		in.neutral, in.neutralErr = llmapi.DecodeTurn(in.api, in.body.bytes)
		if in.neutralErr == nil && in.neutral.PreviousResponseID != "" {
			in.neutralErr = in.continueConversation(in.r.Context(), in.neutral)
		}
	}
	return in.neutral, in.neutralErr
}

// decodedForRouting returns what routing reads: the full decode when it
// reads message text (a routing model, regex or tokens_over rules) or the
// request was decoded already, else the shallow one rules on roles and
// tools need, which skips the conversation.
func (in *incoming) decodedForRouting(readsMessages bool) (*llmapi.Summary, error) {
	if readsMessages || in.req != nil || in.api == llmapi.Responses {
		return in.decoded()
	}
	return llmapi.DecodeShallow(in.env)
}

// decision is the outcome of routing one request.
type decision struct {
	// candidates are the models to try in order: the chosen model first,
	// then the route's other models, then the default.
	candidates []*Model
	routeName  string // the route that chose them; "" for none
	status     string
	pinKey     string // the pin this decision lives in; "" when not pinned
}

// decide returns the models for a request: the session's pin when there is
// one, else a fresh routing decision, pinned when the request has a key.
func (h *Handler) decide(ctx context.Context, in *incoming) decision {
	if in.key == "" || in.optOut {
		return h.routeAfresh(ctx, in)
	}
	pinKey := affinity.PinKey(in.scope, in.key, in.env.Model)
	if h.RouteOnUserOnly && llmapi.IsUserUtterance(in.env.LastMessage) {
		// a new user turn: route afresh and re-pin
		d := h.routeAfresh(ctx, in)
		h.pinStore.Set(ctx, pinKey, affinity.Pin{Model: d.candidates[0].Name, Route: d.routeName})
		d.pinKey = pinKey
		return d
	}
	if pin, ok := h.pinStore.Cached(pinKey); ok {
		if d, ok := h.pinned(pin, in); ok { // the hot path: no closure built
			d.pinKey = pinKey
			return d
		}
	}
	var fresh decision
	pin, decided := h.pinStore.GetOrDecide(ctx, pinKey, func(ctx context.Context) affinity.Pin {
		fresh = h.routeAfresh(ctx, in)
		return affinity.Pin{Model: fresh.candidates[0].Name, Route: fresh.routeName}
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
	d := h.routeAfresh(ctx, in)
	h.pinStore.Set(ctx, pinKey, affinity.Pin{Model: d.candidates[0].Name, Route: d.routeName})
	d.pinKey = pinKey
	return d
}

// pinned rebuilds a decision from a pin; false when its model is gone.
func (h *Handler) pinned(pin affinity.Pin, in *incoming) (decision, bool) {
	m := h.models[pin.Model]
	if m == nil {
		return decision{}, false
	}
	return decision{candidates: h.candidates(m, h.findRoute(pin.Route, in)), routeName: pin.Route, status: StatusPinned}, true
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

// routeAfresh decides afresh: the first route whose rules all hold, else the
// router's choice, each serving the model its policy picks. With no match or
// a router failure, the requested model serves if it is configured, else the
// default.
func (h *Handler) routeAfresh(ctx context.Context, in *incoming) decision {
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
			if routing.MatchAll(rt.When, req, in.r.Header) {
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
	return decision{candidates: h.candidates(rt.pick(), rt), routeName: rt.Name, status: StatusRouted}
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
func routerRoutes(routes []*Route) []routing.Route {
	out := make([]routing.Route, 0, len(routes))
	for _, rt := range routes {
		if rt.Description != "" || len(rt.When) == 0 {
			out = append(out, routing.Route{Name: rt.Name, Description: rt.Description})
		}
	}
	return out
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
func (h *Handler) preferenceRoutes(prefs []llmapi.Preference) ([]*Route, error) {
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
			Policy: PolicyFirst, models: lookupModels(h.models, p.Models)})
	}
	return routes, nil
}

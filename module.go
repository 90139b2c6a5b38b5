// Package llmaffinity is a Caddy HTTP handler that turns a site into an LLM
// gateway: it routes each chat request to a model, pins that choice per agent
// session (the X-Model-Affinity header) and hands the request to Caddy's own
// reverse_proxy, whose dynamic upstream source (llm_affinity) returns the
// chosen model's replicas.
package llmaffinity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
	"github.com/llmaffinity/caddy-llm-affinity/router"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults for the handler's optional settings.
const (
	DefaultHeader     = "X-Model-Affinity"
	DefaultTTL        = 10 * time.Minute
	DefaultMaxEntries = 10000
	DefaultMaxBody    = 10 << 20
)

// Response headers that tell the client what the gateway decided.
const (
	HeaderModel  = "X-Model-Affinity-Model"
	HeaderRoute  = "X-Model-Affinity-Route"
	HeaderStatus = "X-Model-Affinity-Status"
)

// Decision statuses, in the X-Model-Affinity-Status header and the
// {http.llm_affinity.status} placeholder.
const (
	// StatusPinned: the session's pin decided; the router was not called.
	StatusPinned = "pinned"
	// StatusRouted: the router chose a route.
	StatusRouted = "routed"
	// StatusDefault: no route decided (no router, no match, or a router
	// failure), so the requested model or the default serves.
	StatusDefault = "default"
)

// Providers: how a model's API key is sent upstream.
const (
	ProviderOpenAI    = "openai"    // Authorization: Bearer <key>
	ProviderAnthropic = "anthropic" // x-api-key: <key>
)

// upstreamVar is the request variable through which the handler tells the
// llm_affinity upstream source which replicas serve this request.
const upstreamVar = "llm_affinity.upstream"

// Handler routes chat requests to models and pins the decision per session.
// Requests that are not a POST to a path ending in /chat/completions
// (OpenAI) or /messages (Anthropic) pass through untouched to the default
// model's upstreams.
type Handler struct {
	// The request header that carries the session's affinity key.
	// Default: X-Model-Affinity.
	Header string `json:"header,omitempty"`

	// Idle lifetime of a pin; each request that uses a pin refreshes it.
	// Default: 10m.
	TTL caddy.Duration `json:"ttl,omitempty"`

	// The most pins kept; beyond it the least valuable are evicted.
	// Default: 10000.
	MaxEntries int `json:"max_entries,omitempty"`

	// The largest request body accepted, in bytes; larger ones get 413.
	// Default: 10 MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// The model that serves when no route decides and the requested model is
	// not a configured one. Required.
	Default string `json:"default,omitempty"`

	// The models that may serve traffic. At least one is required.
	Models []*Model `json:"models,omitempty"`

	// Routing preferences, in the order the router sees them.
	Routes []*Route `json:"routes,omitempty"`

	// The router that picks a route for an unpinned request, e.g.
	// {"router": "llm", ...}. Optional: without one the requested model (if
	// configured) or the default serves.
	RouterRaw json.RawMessage `json:"router,omitempty" caddy:"namespace=http.handlers.llm_affinity.routers inline_key=router"`

	router       router.Router
	models       map[string]*Model
	routes       map[string]*Route
	routerRoutes []router.Route
	defaultModel *Model
	pins         *affinity.Store
	logger       *zap.Logger
}

// Model is one model that may serve traffic.
type Model struct {
	// The model's name in this config: what routes, pins, the default and
	// response headers refer to. Required.
	Name string `json:"name"`

	// Dial addresses (host:port) of the model's replicas; reverse_proxy load
	// balances across them. Required.
	To []string `json:"to"`

	// The model id written into the request body's "model" field.
	// Default: the model's name.
	UpstreamModel string `json:"upstream_model,omitempty"`

	// The provider credential, replacing whatever the client sent. Placeholders
	// such as {env.OPENAI_API_KEY} are resolved at provision time. Optional:
	// without it the client's own credential goes upstream.
	APIKey string `json:"api_key,omitempty"`

	// How the key is sent: "openai" (Authorization: Bearer) or "anthropic"
	// (x-api-key). Default: openai.
	Provider string `json:"provider,omitempty"`

	quotedUpstreamModel []byte
	apiKey              string
	upstream            *upstreamTarget
}

// Route is a routing preference: a description the router matches requests
// against, and the models that serve the requests it matches.
type Route struct {
	// The route's name, as the router answers it. Required; "other" is
	// reserved for "no route fits".
	Name string `json:"name"`

	// What requests the route is for, in plain language; sent to the router.
	Description string `json:"description,omitempty"`

	// Candidate models in order; the first serves. At least one is required.
	Models []string `json:"models"`
}

// upstreamTarget is what the handler hands the upstream source: the serving
// model's name and dial addresses, and nothing secret.
type upstreamTarget struct {
	model string
	dials []string
}

// String names the target, should a template ever print the variable.
func (t *upstreamTarget) String() string { return t.model }

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.llm_affinity",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults, resolves placeholders in credentials, loads the
// router and creates the pin store.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Header == "" {
		h.Header = DefaultHeader
	}
	if h.TTL == 0 {
		h.TTL = caddy.Duration(DefaultTTL)
	}
	if h.MaxEntries == 0 {
		h.MaxEntries = DefaultMaxEntries
	}
	if h.MaxBody == 0 {
		h.MaxBody = DefaultMaxBody
	}

	repl := caddy.NewReplacer()
	h.models = make(map[string]*Model, len(h.Models))
	for _, m := range h.Models {
		if m == nil {
			continue // reported by Validate
		}
		if m.Provider == "" {
			m.Provider = ProviderOpenAI
		}
		if m.UpstreamModel == "" {
			m.UpstreamModel = m.Name
		}
		m.quotedUpstreamModel, _ = json.Marshal(m.UpstreamModel) // a string always marshals
		m.apiKey = repl.ReplaceAll(m.APIKey, "")
		m.upstream = &upstreamTarget{model: m.Name, dials: m.To}
		h.models[m.Name] = m
	}
	h.defaultModel = h.models[h.Default]
	h.routes = make(map[string]*Route, len(h.Routes))
	h.routerRoutes = make([]router.Route, 0, len(h.Routes))
	for _, r := range h.Routes {
		if r == nil {
			continue // reported by Validate
		}
		h.routes[r.Name] = r
		h.routerRoutes = append(h.routerRoutes, router.Route{Name: r.Name, Description: r.Description})
	}

	if h.RouterRaw != nil {
		mod, err := ctx.LoadModule(h, "RouterRaw")
		if err != nil {
			return fmt.Errorf("loading router: %v", err)
		}
		r, ok := mod.(router.Router)
		if !ok {
			return fmt.Errorf("router module %T is not a router", mod)
		}
		h.router = r
	}

	pins, err := affinity.New(affinity.Options{TTL: time.Duration(h.TTL), MaxEntries: h.MaxEntries})
	if err != nil {
		return err
	}
	h.pins = pins
	return nil
}

// Validate checks the configuration; see checkConfig. Caddy calls it after
// Provision and cleans up when it fails.
func (h *Handler) Validate() error {
	return h.checkConfig()
}

// Cleanup releases the pin store.
func (h *Handler) Cleanup() error {
	if h.pins != nil {
		h.pins.Close()
	}
	return nil
}

// ServeHTTP routes a chat request, pins the decision and hands off to the next
// handler (reverse_proxy with dynamic llm_affinity upstreams).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	api, ok := chatAPI(r)
	if !ok {
		caddyhttp.SetVar(r.Context(), upstreamVar, h.defaultModel.upstream)
		return next.ServeHTTP(w, r)
	}
	key, err := h.affinityKey(r)
	if err != nil {
		return writeAPIError(w, api, http.StatusBadRequest, err.Error())
	}
	body, err := readBody(r, h.MaxBody)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			return writeAPIError(w, api, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body exceeds the gateway's limit of %d bytes", h.MaxBody))
		}
		return writeAPIError(w, api, http.StatusBadRequest, "could not read request body")
	}
	env, err := router.ParseEnvelope(body)
	if err != nil {
		return writeAPIError(w, api, http.StatusBadRequest, err.Error())
	}

	d := h.decide(r.Context(), key, &env)
	m := d.model
	setBody(r, env.Rewrite(nil, body, m.quotedUpstreamModel))
	if m.apiKey != "" {
		r.Header.Del("Authorization")
		r.Header.Del("X-Api-Key")
		if m.Provider == ProviderAnthropic {
			r.Header.Set("X-Api-Key", m.apiKey)
		} else {
			r.Header.Set("Authorization", "Bearer "+m.apiKey)
		}
	}
	caddyhttp.SetVar(r.Context(), upstreamVar, m.upstream)
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.llm_affinity.model", m.Name)
		repl.Set("http.llm_affinity.route", d.route)
		repl.Set("http.llm_affinity.status", d.status)
	}
	hdr := w.Header()
	hdr.Set(HeaderModel, m.Name)
	hdr.Set(HeaderRoute, d.route)
	hdr.Set(HeaderStatus, d.status)
	if c := h.logger.Check(zapcore.DebugLevel, "routing decision"); c != nil {
		c.Write(zap.String("api", api.String()),
			zap.String("model", m.Name),
			zap.String("route", d.route),
			zap.String("status", d.status),
			zap.String("affinity_key_hash", hashKey(key)))
	}
	return next.ServeHTTP(w, r)
}

// decision is the outcome of routing one request.
type decision struct {
	model  *Model
	route  string
	status string
}

// decide returns the model for a request: the session's pin when there is
// one, else a fresh routing decision, pinned when the request has a key.
func (h *Handler) decide(ctx context.Context, key string, env *router.Envelope) decision {
	if key == "" {
		return h.route(ctx, env)
	}
	pinKey := affinity.PinKey(key, env.Model)
	if pin, ok := h.pins.Get(pinKey); ok {
		if m := h.models[pin.Model]; m != nil {
			return decision{model: m, route: pin.Route, status: StatusPinned}
		}
		h.pins.Delete(pinKey) // pinned to a model this config no longer has
	}
	pin, decided := h.pins.GetOrDecide(ctx, pinKey, func(ctx context.Context) affinity.Pin {
		d := h.route(ctx, env)
		return affinity.Pin{Model: d.model.Name, Route: d.route}
	})
	m := h.models[pin.Model]
	if m == nil { // lost a race with a pin made under another config
		return h.route(ctx, env)
	}
	status := StatusPinned
	if decided {
		status = StatusDefault
		if pin.Route != "" {
			status = StatusRouted
		}
	}
	return decision{model: m, route: pin.Route, status: status}
}

// route asks the router for a route and returns its first model. With no
// router, no match or a router failure, the requested model serves if it is
// configured, else the default.
func (h *Handler) route(ctx context.Context, env *router.Envelope) decision {
	if h.router != nil {
		if name, err := h.askRouter(ctx, env); err != nil {
			h.logger.Warn("router failed; falling back", zap.Error(err))
		} else if rt := h.routes[name]; rt != nil {
			return decision{model: h.models[rt.Models[0]], route: rt.Name, status: StatusRouted}
		} else if name != "" {
			h.logger.Warn("router answered an unknown route; falling back", zap.Int("route_name_len", len(name)))
		}
	}
	if m := h.models[env.Model]; m != nil {
		return decision{model: m, status: StatusDefault}
	}
	return decision{model: h.defaultModel, status: StatusDefault}
}

func (h *Handler) askRouter(ctx context.Context, env *router.Envelope) (string, error) {
	conv, err := router.Conversation(env.Messages)
	if err != nil {
		return "", err
	}
	if len(conv) == 0 {
		return "", nil // nothing to route on
	}
	return h.router.Route(ctx, h.routerRoutes, conv)
}

// affinityKey returns the request's affinity key, "" when it has none.
func (h *Handler) affinityKey(r *http.Request) (string, error) {
	values := r.Header.Values(h.Header)
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		if err := affinity.ValidateKey(values[0]); err != nil {
			return "", fmt.Errorf("invalid %s header: %v", h.Header, err)
		}
		return values[0], nil
	default:
		return "", fmt.Errorf("more than one %s header", h.Header)
	}
}

// hashKey is how an affinity key appears in logs: a short SHA-256 prefix.
func hashKey(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ fmt.Stringer                = (*upstreamTarget)(nil)
)

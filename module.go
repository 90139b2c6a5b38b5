// Package llmaffinity is a Caddy HTTP handler that turns a site into an LLM
// gateway: it routes each chat request to a model, pins that choice per agent
// session (the X-Model-Affinity header) and hands the request to Caddy's own
// reverse_proxy, whose dynamic upstream source (llm_affinity) returns the
// chosen model's replicas.
package llmaffinity

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
	"github.com/llmaffinity/caddy-llm-affinity/internal/placeholder"
	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
	"github.com/llmaffinity/caddy-llm-affinity/routing"
	_ "github.com/llmaffinity/caddy-llm-affinity/routing/llm" // the llm router module
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults for the handler's optional settings.
const (
	DefaultStoreName   = "default"
	DefaultHeader      = "X-Model-Affinity"
	DefaultTTL         = 10 * time.Minute
	DefaultMaxEntries  = 10000
	DefaultMaxBody     = 10 << 20
	DefaultMaxBuffered = 256 << 20
)

// DefaultSessionHeaders are the harnesses' session headers used as
// affinity keys by default (see Handler.SessionHeaders), the first that
// holds a valid key winning. Each harness sends the same id on every model
// request of a session, its side calls included, and a new id for a new
// session:
//
//   - X-Claude-Code-Session-Id: Claude Code 2.1.86 and later (its changelog;
//     the LLM gateway page of its docs). Subagents send the same id.
//   - Session-Id: Codex CLI 0.131.0 and later (openai/codex
//     codex-rs/codex-api/src/requests/headers.rs, build_session_headers, PR
//     #22193), on Responses and compact requests. Since 0.131 a spawned
//     agent sends its root session's id (its own is in thread-id).
//   - Session_id: Codex CLI before 0.131.0 ("session_id", the same file's
//     build_conversation_headers); each thread had its own id. Caddy 2.11.4
//     and later drop header names with an underscore before any handler
//     runs, unless the server's expected_underscore_headers lists
//     session_id, which then drops Session-Id instead.
//   - X-Session-Affinity: OpenCode (anomalyco/opencode, formerly
//     sst/opencode; packages/opencode/src/session/llm/request.ts, PR #20744)
//     for a provider whose id does not start with "opencode": its session
//     id, on title generation and compaction too. Its subagents are child
//     sessions with their own id (and x-parent-session-id).
//   - X-Opencode-Session: OpenCode, the same id, for a provider whose id
//     starts with "opencode".
var DefaultSessionHeaders = []string{
	"X-Claude-Code-Session-Id",
	"Session-Id",
	"Session_id",
	"X-Session-Affinity",
	"X-Opencode-Session",
}

// Response headers that tell the client what the gateway decided.
const (
	HeaderModel  = "X-Model-Affinity-Model"
	HeaderRoute  = "X-Model-Affinity-Route"
	HeaderStatus = "X-Model-Affinity-Status"
)

// HeaderMode is the request header that can opt a request out of affinity:
// "X-Model-Affinity-Mode: off" (as does the affinity header's value "off").
const HeaderMode = "X-Model-Affinity-Mode"

// Decision statuses, in the X-Model-Affinity-Status header and the
// {http.llm_affinity.status} placeholder.
const (
	// StatusPinned: the session's pin decided; the router was not called.
	StatusPinned = "pinned"
	// StatusRouted: a rule or the router chose a route.
	StatusRouted = "routed"
	// StatusDefault: no route decided (no router, no match, or a router
	// failure), so the requested model or the default serves.
	StatusDefault = "default"
)

// upstreamVar is the request variable through which the handler tells the
// llm_affinity upstream source which replicas serve this request.
const upstreamVar = "llm_affinity.upstream"

// PinHashVar is the request variable that holds the hash of the request's
// pin key (its scope, affinity key and requested model, as the pin store
// keys it), a uint64 that is 0 when the request is not pinned: what the
// llm_affinity selection policy hashes to keep a session on one replica.
// The key itself, which may be a client's secret, is not exposed.
const PinHashVar = "llm_affinity.pin_hash"

// pinHash is the FNV-1a hash of a pin key, the same in every gateway
// instance; 0 for none.
func pinHash(pinKey string) uint64 {
	if pinKey == "" {
		return 0
	}
	return fnv1a(pinKey) | 1 // never 0
}

// Handler routes chat requests to models and pins the decision per session.
// Requests that are not a POST to a path ending in /chat/completions
// (OpenAI) or /messages (Anthropic), with or without a trailing slash, go
// to the default model's upstreams with their body as it is; on every path
// the client's credentials and the affinity headers are handled alike (see
// ForwardClientCredentials and StripHeader).
type Handler struct {
	// The name of this handler's pin store. Pins live in a store shared by
	// every config generation, so a config reload keeps them; handlers with
	// the same name share one store, and the admin API addresses it by name.
	// Give each site its own name when several use llm_affinity.
	// Default: "default".
	Name string `json:"name,omitempty"`

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

	// The most bytes this handler holds for request bodies at once, across
	// all requests in flight; a request whose body would go beyond it gets
	// 503. Buffers grow with the bytes that arrive, not with the declared
	// Content-Length, and one body's buffer may be up to twice its size, so
	// it must be at least twice max_body. Default: 256 MiB, or twice
	// max_body when that is more.
	MaxBuffered int64 `json:"max_buffered,omitempty"`

	// Send the client's own credentials (Authorization, x-api-key, api-key
	// and Cookie headers) upstream when the serving model has no api_key.
	// A model's api_key always replaces them. Default: off when any model
	// has an api_key (the gateway's password or a tenant token must not
	// reach a provider), on otherwise (clients bring their own keys).
	ForwardClientCredentials *bool `json:"forward_client_credentials,omitempty"`

	// Let the model the client asks for serve when no route decides, if it
	// is a configured model. Off, the default model serves instead.
	// Default: on.
	ClientModel *bool `json:"client_model,omitempty"`

	// Honour a request's own routing preferences (the body's
	// "routing_preferences"). Off, they are ignored (and still removed
	// before the request goes upstream). Default: on.
	ClientPreferences *bool `json:"client_preferences,omitempty"`

	// The model that serves when no route decides and the requested model is
	// not a configured one, and the last to try when a route's candidates all
	// fail. Required.
	Default string `json:"default,omitempty"`

	// The models that may serve traffic. At least one is required.
	Models []*Model `json:"models,omitempty"`

	// Routing preferences, in the order rules are checked and the router
	// sees them.
	Routes []*Route `json:"routes,omitempty"`

	// Route only on a new user utterance: a request whose last message is a
	// tool result, an assistant step or only a harness envelope reuses the
	// session's decision, and a new user message routes afresh and re-pins.
	// Default: off (a pin holds for the session's whole life).
	RouteOnUserOnly bool `json:"route_on_user_only,omitempty"`

	// Give requests without the affinity header an implicit key: a salted
	// hash of the system prompt, the tool names and the first user message,
	// so agents get affinity without client changes. The explicit header
	// always wins. Default: off.
	Implicit bool `json:"implicit,omitempty"`

	// The salt of implicit keys. Instances that share pins must share it.
	// Placeholders such as {env.LLM_AFFINITY_SALT} are resolved at provision
	// time. Default: a random salt per process.
	ImplicitSalt string `json:"implicit_salt,omitempty"`

	// A placeholder whose value is folded, hashed, into every pin key, e.g.
	// {http.request.header.Authorization} or {http.auth.user.id}, so one
	// tenant can neither read nor overwrite another's pins. Default: none.
	Scope string `json:"scope,omitempty"`

	// Remove the affinity header (and X-Model-Affinity-Mode) before the
	// request goes upstream. reverse_proxy's "lb_policy llm_affinity"
	// keeps a session on one replica without it. Default: true.
	StripHeader *bool `json:"strip_header,omitempty"`

	// Request headers in which agent harnesses send their own session id,
	// used as the affinity key when a request has no affinity header, so
	// these agents get affinity with no client change. An empty list turns
	// this off. Default: X-Claude-Code-Session-Id (Claude Code), Session-Id
	// and Session_id (Codex CLI, new and old), X-Session-Affinity and
	// X-Opencode-Session (OpenCode).
	SessionHeaders *[]string `json:"session_headers,omitempty"`

	// Where pins are shared between gateway instances. Default: this
	// process only.
	Store *StoreConfig `json:"store,omitempty"`

	// The router that picks a route for an unpinned request when no route's
	// rules decide, e.g. {"router": "llm", ...}. Optional: without one,
	// rules decide or the requested model (if configured) or the default
	// serves.
	RouterRaw json.RawMessage `json:"router,omitempty" caddy:"namespace=http.handlers.llm_affinity.routers inline_key=router"`

	router            routing.Router
	stripHeader       bool
	sessionHeaders    []string
	forwardClientAuth bool
	clientModel       bool
	clientPrefs       bool
	buffered          *bodyBudget
	models            map[string]*Model
	routeByName       map[string]*Route
	defaultModel      *Model
	implicitSalt      string
	// rulesReadMessages is set when a configured rule reads message text,
	// so deciding by rules takes a full decode of the body.
	rulesReadMessages bool
	pinStore          *affinity.Store
	pool              *pooledStore   // the pooled store pinStore belongs to
	storeSettings     *storeSettings // applied to the pool's store once this config runs
	origins           handlerOrigins
	// the metrics of responses, by labels, looked up once (see countUsage)
	responseMetrics *responseMetrics
	ctx             caddy.Context
	logger          *zap.Logger
}

// handlerOrigins are where the handler's settings that a config error may
// name were written in a Caddyfile (see origin).
type handlerOrigins struct {
	directive, header, sessionHeaders, defaultModel, router origin
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.llm_affinity",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision checks the numbers of the config (see checkRanges), sets
// defaults, resolves placeholders in credentials, compiles route rules,
// loads the router and the pin store; each config element provisions
// itself. The store is shared with the config that is serving,
// so this config's settings for it are only staged here; they apply when
// this config starts (see configStarted).
func (h *Handler) Provision(ctx caddy.Context) error {
	h.ctx = ctx
	h.logger = ctx.Logger()
	if err := h.checkRanges(); err != nil {
		return err
	}
	h.provisionSettings()
	if err := h.provisionModels(); err != nil {
		return err
	}
	h.routeByName = make(map[string]*Route, len(h.Routes))
	for _, rt := range h.Routes {
		if rt == nil {
			continue // reported by Validate
		}
		if err := rt.provision(h.models); err != nil {
			return err
		}
		h.rulesReadMessages = h.rulesReadMessages || rt.readsMessages()
		h.routeByName[rt.Name] = rt
	}
	salt, err := placeholder.Resolve(h.ImplicitSalt)
	if err != nil {
		return fmt.Errorf("implicit_salt: %v", err)
	}
	h.implicitSalt = cmp.Or(salt, processSalt)
	if h.RouterRaw != nil {
		mod, err := ctx.LoadModule(h, "RouterRaw")
		if err != nil {
			return fmt.Errorf("loading router: %v", err)
		}
		r, ok := mod.(routing.Router)
		if !ok {
			return fmt.Errorf("router module %T is not a router", mod)
		}
		h.router = r
	}

	registerMetrics(ctx, h.logger)
	h.responseMetrics = new(responseMetrics)
	h.storeSettings, err = newStoreSettings(h.Name, time.Duration(h.TTL), h.MaxEntries, h.Store)
	if err != nil {
		return err
	}
	h.pool, err = loadPinStore(h.Name, h.storeSettings)
	if err != nil {
		return err
	}
	h.pinStore = h.pool.Store
	return h.onConfigStarted(ctx)
}

// provisionSettings fills in the defaults of the handler's own settings.
func (h *Handler) provisionSettings() {
	h.Name = cmp.Or(h.Name, DefaultStoreName)
	h.Header = cmp.Or(h.Header, DefaultHeader)
	h.TTL = cmp.Or(h.TTL, caddy.Duration(DefaultTTL))
	h.MaxEntries = cmp.Or(h.MaxEntries, DefaultMaxEntries)
	h.MaxBody = cmp.Or(h.MaxBody, DefaultMaxBody)
	h.MaxBuffered = cmp.Or(h.MaxBuffered, max(DefaultMaxBuffered, 2*h.MaxBody))
	h.buffered = &bodyBudget{limit: h.MaxBuffered}
	h.stripHeader = h.StripHeader == nil || *h.StripHeader
	h.sessionHeaders = DefaultSessionHeaders
	if h.SessionHeaders != nil {
		h.sessionHeaders = *h.SessionHeaders
	}
	h.clientModel = h.ClientModel == nil || *h.ClientModel
	h.clientPrefs = h.ClientPreferences == nil || *h.ClientPreferences
}

// provisionModels provisions each model, indexes them by name and decides
// whether client credentials go upstream: by default only when no model
// has a key of its own.
func (h *Handler) provisionModels() error {
	anyKey := false
	h.models = make(map[string]*Model, len(h.Models))
	for _, m := range h.Models {
		if m == nil {
			continue // reported by Validate
		}
		if err := m.provision(); err != nil {
			return err
		}
		anyKey = anyKey || m.apiKey != ""
		h.models[m.Name] = m
	}
	h.forwardClientAuth = !anyKey
	if h.ForwardClientCredentials != nil {
		h.forwardClientAuth = *h.ForwardClientCredentials
	}
	h.defaultModel = h.models[h.Default]
	return nil
}

// Validate checks the configuration (see validate; Provision checked the
// numbers). Caddy calls it after Provision and cleans up when it fails.
func (h *Handler) Validate() error {
	return h.validate()
}

// Cleanup releases this config's hold on the pin store; the store itself
// lives on while a newer config uses the same name.
func (h *Handler) Cleanup() error {
	if h.pool != nil {
		_, err := pinStores.Delete(h.Name)
		return err
	}
	return nil
}

// ServeHTTP routes a chat request, pins the decision and hands off to the next
// handler (reverse_proxy with dynamic llm_affinity upstreams), failing over to
// the route's other candidates when the serving model fails. On the decision
// API paths it answers the decision instead of proxying. Any other request
// goes to the default model, its body untouched; on every path the client's
// credentials are replaced (see setCredential) and the affinity headers
// stripped.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	start := time.Now()
	api, ok := routedAPI(r)
	switch {
	case isModelList(r):
		return h.writeModelList(w, r)
	case isCountTokens(r):
		return h.countTokens(w, r, next)
	case !ok:
		return h.passThrough(w, r, next)
	}
	key, optOut, err := h.affinityKey(r)
	if err != nil {
		llmapi.WriteError(w, api, http.StatusBadRequest, err.Error())
		return nil
	}
	body, err := h.readBody(r)
	if err != nil {
		writeBodyError(w, r, api, err, h.MaxBody)
		return nil
	}
	defer body.release()
	env, err := llmapi.ParseEnvelopeFor(api, body.bytes)
	if err != nil {
		llmapi.WriteError(w, api, http.StatusBadRequest, err.Error())
		return nil
	}
	in := &incoming{r: r, api: api, env: &env, body: body, key: key, optOut: optOut, scope: h.scopeOf(r),
		path: r.URL.Path, query: r.URL.RawQuery, states: h.pinStore, start: start}
	usePreferences := env.Preferences != nil && h.clientPrefs
	if usePreferences || (h.Implicit && key == "" && !optOut) {
		// decode now: per-request preferences can be a client error, and an
		// implicit key needs the system prompt, tools and first user message
		req, err := in.decoded()
		if err == nil && usePreferences {
			in.preferences, err = h.preferenceRoutes(req.Preferences)
		}
		if err != nil {
			llmapi.WriteError(w, api, http.StatusBadRequest, err.Error())
			return nil
		}
		if in.key == "" && h.Implicit && !optOut {
			in.key = h.implicitKey(req)
		}
	}

	d := h.decide(r.Context(), in)
	decisions.WithLabelValues(d.status, d.candidates[0].Name, h.metricRoute(d.routeName)).Inc()
	if isDecisionAPI(r.URL.Path) {
		return writeDecision(w, d, in.key)
	}
	h.stripAffinityHeaders(r.Header)
	if c := h.logger.Check(zapcore.DebugLevel, "routing decision"); c != nil {
		c.Write(zap.String("api", api.String()),
			zap.String("model", d.candidates[0].Name),
			zap.String("route", d.routeName),
			zap.String("status", d.status),
			zap.String("affinity_key_hash", in.hashedKey()))
	}
	return h.serve(w, in, d, next)
}

// routedAPI reports whether r is a chat request the handler routes (a POST
// to a chat API's path) and in which API.
func routedAPI(r *http.Request) (llmapi.API, bool) {
	if r.Method != http.MethodPost {
		return 0, false
	}
	return llmapi.ForPath(r.URL.Path)
}

// errNoProxy answers a request that nothing after the handler served.
const errNoProxy = "no reverse_proxy handled the request after llm_affinity: " +
	"add 'reverse_proxy { dynamic llm_affinity }' after llm_affinity"

// passThrough hands a request the handler does not route to the default
// model's upstreams, with the default model's credential in place of the
// client's and the affinity headers stripped.
func (h *Handler) passThrough(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.stripAffinityHeaders(r.Header)
	return h.forward(w, r, next, h.defaultModel, errorAPIOfPath(r))
}

// forward hands r to model m's upstreams through next, with m's credential
// in place of the client's; when nothing after the handler answers, the
// client gets a 502 in api's error shape.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, m *Model, api llmapi.API) error {
	client := takeClientCredentials(r.Header)
	h.setCredential(r.Header, m, &client)
	caddyhttp.SetVar(r.Context(), upstreamVar, m.upstream)
	fw := &failoverWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	err := next.ServeHTTP(fw, r)
	if err == nil && !fw.committed {
		llmapi.WriteError(w, api, http.StatusBadGateway, errNoProxy)
		return nil
	}
	return err
}

// errorAPIOfPath is the error shape for a request the handler does not
// route: Anthropic's when the request looks like one of its API's, else
// OpenAI's.
func errorAPIOfPath(r *http.Request) llmapi.API {
	if r.Header.Get("Anthropic-Version") != "" || strings.Contains(r.URL.Path, "/messages") {
		return llmapi.Messages
	}
	return llmapi.Chat
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

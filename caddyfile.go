package llmaffinity

import (
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/llmaffinity/caddy-llm-affinity/internal/subdirective"
	"github.com/llmaffinity/caddy-llm-affinity/routing"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("llm_affinity", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("llm_affinity", httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	llm_affinity [<matcher>] {
//		name        <name>           # default "default"; the pin store, kept across reloads
//		header      <name>           # default X-Model-Affinity
//		strip_header on|off          # default on; remove the affinity header before upstream
//		session_headers <name>...|off  # harness session ids as keys; default X-Claude-Code-Session-Id Session-Id Session_id X-Session-Affinity X-Opencode-Session
//		scope       <placeholder>    # e.g. {http.auth.user.id}; tenants' pins stay apart
//		ttl         <duration>       # default 10m; idle lifetime of a pin, each use refreshes it
//		max_entries <n>              # default 10000
//		max_body    <size>           # default 10MiB; larger bodies get 413
//		max_buffered <size>          # default 256MiB; bytes of bodies held at once, beyond it 503
//		forward_client_credentials on|off  # default off when a model has an api_key
//		client_model on|off          # default on; the requested model may serve when no route decides
//		client_preferences on|off    # default on; honour a body's routing_preferences
//		default     <model>          # required; used when no route decides
//		route_on_user_only [on|off]  # default off; re-route only on a new user message
//		implicit    on|off           # default off; key requests without the header
//		implicit_salt <value>        # default random per process; share it across instances
//
//		store redis {                # share pins between instances
//			address  <host:port> ... # required
//			password <value>         # placeholders allowed
//			db       <n>             # default 0
//			prefix   <prefix>        # default llm_affinity:<name>:
//			timeout  <duration>      # default 100ms
//		}
//
//		model <name> {               # one block per model that may serve traffic
//			to             <host:port> ...   # required; one or more replicas
//			upstream_model <id>              # id written into the body; default <name>
//			api_key        <value>           # placeholders allowed: {env.OPENAI_API_KEY}
//			provider       openai|anthropic  # how the key is sent; default openai
//			api            chat|messages|responses  # the API it speaks; default by provider
//			path           <path>            # upstream path; default the client's, or the API's
//			weight         <n>               # share under a weighted policy; default 1
//			price          input <usd> output <usd> cache_read <usd> cache_write <usd>
//			                                 # US dollars per million tokens, for the cost;
//			                                 # pairs in any order, a kind left out costs 0
//		}
//
//		route <name> {               # a routing preference
//			description <text>       # what requests it is for (sent to the router model)
//			models      <model> ...  # candidates: the policy picks one, the rest are failovers
//			policy      first|random|weighted   # default first
//			when        tools                   # rules, checked before the router;
//			when        last_role <role>        # all of a route's rules must hold
//			when        regex <re>              # (on the newest user message)
//			when        tokens_over <n>
//			when        header <name> <value>
//		}
//
//		router llm {                 # an Arch-Router compatible routing model
//			endpoint <url>           # OpenAI-compatible /v1/chat/completions URL
//			model    <id>            # e.g. katanemo/Arch-Router-1.5B
//			timeout  <duration>      # default 2s
//			api_key  <value>
//		}
//	}
//
// It is ordered before reverse_proxy, which takes the chosen model's
// replicas from `dynamic llm_affinity`.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	h.origins.directive = originOf(d)
	if d.NextArg() {
		return d.ArgErr()
	}
	err := subdirective.Each(d, "", func(sub string) error {
		switch sub {
		case "name":
			return subdirective.One(d, "", sub, h.Name != "", subdirective.String(&h.Name), "")
		case "header":
			h.origins.header = originOf(d)
			return subdirective.One(d, "", sub, h.Header != "", subdirective.String(&h.Header), "")
		case "strip_header":
			return onOffPtr(d, sub, &h.StripHeader)
		case "session_headers":
			h.origins.sessionHeaders = originOf(d)
			return h.unmarshalSessionHeaders(d)
		case "scope":
			return subdirective.One(d, "", sub, h.Scope != "", subdirective.String(&h.Scope), "")
		case "store":
			if h.Store != nil {
				return d.Err("store already specified")
			}
			var err error
			h.Store, err = parseStore(d)
			return err
		case "default":
			h.origins.defaultModel = originOf(d)
			return subdirective.One(d, "", sub, h.Default != "", subdirective.String(&h.Default), "")
		case "ttl":
			return subdirective.One(d, "", sub, h.TTL != 0, subdirective.PositiveDuration(&h.TTL), "must be a positive duration such as 10m")
		case "max_entries":
			return subdirective.One(d, "", sub, h.MaxEntries != 0, subdirective.Int(&h.MaxEntries, 1, maxMaxEntries),
				fmt.Sprintf("must be a whole number from 1 to %d", maxMaxEntries))
		case "max_body":
			return subdirective.One(d, "", sub, h.MaxBody != 0, subdirective.Size(&h.MaxBody, maxSize), "must be a size such as 10MiB")
		case "max_buffered":
			return subdirective.One(d, "", sub, h.MaxBuffered != 0, subdirective.Size(&h.MaxBuffered, maxSize), "must be a size such as 10MiB")
		case "forward_client_credentials":
			return onOffPtr(d, sub, &h.ForwardClientCredentials)
		case "client_model":
			return onOffPtr(d, sub, &h.ClientModel)
		case "client_preferences":
			return onOffPtr(d, sub, &h.ClientPreferences)
		case "route_on_user_only":
			return onOff(d, sub, &h.RouteOnUserOnly, true)
		case "implicit":
			return onOff(d, sub, &h.Implicit, false)
		case "implicit_salt":
			return subdirective.One(d, "", sub, h.ImplicitSalt != "", subdirective.String(&h.ImplicitSalt), "")
		case "model":
			return appendParsed(d, &h.Models, parseModel)
		case "route":
			return appendParsed(d, &h.Routes, parseRoute)
		case "router":
			h.origins.router = originOf(d)
			return h.unmarshalRouter(d)
		}
		return subdirective.ErrUnrecognized
	})
	if err != nil {
		return err
	}
	// values were checked as they were read; what remains is how the
	// elements fit together
	if err := h.validate(); err != nil {
		return positioned(err, h.origins.directive)
	}
	return nil
}

// unmarshalSessionHeaders reads "session_headers <name> ..." or
// "session_headers off".
func (h *Handler) unmarshalSessionHeaders(d *caddyfile.Dispenser) error {
	if h.SessionHeaders != nil {
		return d.Err("session_headers already specified")
	}
	names := d.RemainingArgs()
	switch {
	case len(names) == 0:
		return d.ArgErr()
	case len(names) == 1 && names[0] == "off":
		names = []string{}
	}
	h.SessionHeaders = &names
	return nil
}

// maxSize is the largest size max_body and max_buffered accept: 1 TiB.
const maxSize = 1 << 40

// unmarshalRouter reads "router <type> { ... }" with the router module's
// own Caddyfile syntax, checking that the module is a router.
func (h *Handler) unmarshalRouter(d *caddyfile.Dispenser) error {
	if h.RouterRaw != nil {
		return d.Err("router already specified")
	}
	if !d.NextArg() {
		return d.Errf("router needs a type, e.g. 'router llm { ... }'")
	}
	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, routerNamespace+"."+name)
	if err != nil {
		return err
	}
	if _, ok := unm.(routing.Router); !ok {
		return d.Errf("module '%s.%s' is not a router", routerNamespace, name)
	}
	h.RouterRaw = caddyconfig.JSONModuleObject(unm, "router", name, nil)
	return nil
}

// routerNamespace is the module namespace of routers.
const routerNamespace = "http.handlers.llm_affinity.routers"

// onOff reads an optional on|off argument into *dst; with no argument it
// sets bareValue (true where the bare subdirective reads as "on").
func onOff(d *caddyfile.Dispenser, name string, dst *bool, bareValue bool) error {
	args := d.RemainingArgs()
	switch {
	case len(args) == 0 && bareValue:
		*dst = true
	case len(args) == 1 && args[0] == "on":
		*dst = true
	case len(args) == 1 && args[0] == "off":
		*dst = false
	default:
		return d.Errf("%s takes on or off", name)
	}
	return nil
}

// onOffPtr reads an on|off argument into an optional setting, *dst, which
// must still be unset (nil stands for its default).
func onOffPtr(d *caddyfile.Dispenser, name string, dst **bool) error {
	if *dst != nil {
		return d.Errf("%s already specified", name)
	}
	var value bool
	if err := onOff(d, name, &value, false); err != nil {
		return err
	}
	*dst = &value
	return nil
}

// appendParsed appends to *list what parse reads from d.
func appendParsed[T any](d *caddyfile.Dispenser, list *[]T, parse func(*caddyfile.Dispenser) (T, error)) error {
	v, err := parse(d)
	if err == nil {
		*list = append(*list, v)
	}
	return err
}

// appendArgs appends the line's remaining arguments, at least one, to *dst.
func appendArgs(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	*dst = append(*dst, args...)
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)

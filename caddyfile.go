package llmaffinity

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/llmaffinity/caddy-llm-affinity/router"
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
//			weight         <n>               # share under a weighted policy; default 1
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
	file, line := d.File(), d.Line()
	if d.NextArg() {
		return d.ArgErr()
	}
	// where each element was written, to name the line of a config error
	lines := map[string]int{}
	for d.NextBlock(0) {
		sub := d.Val()
		var err error
		switch sub {
		case "name":
			err = singleArg(d, &h.Name, sub)
		case "header":
			lines["header"] = d.Line()
			err = singleArg(d, &h.Header, sub)
		case "strip_header":
			err = onOffPtr(d, sub, &h.StripHeader)
		case "scope":
			err = singleArg(d, &h.Scope, sub)
		case "store":
			lines["store"] = d.Line()
			err = h.unmarshalStore(d)
		case "default":
			lines["default"] = d.Line()
			err = singleArg(d, &h.Default, sub)
		case "ttl":
			if h.TTL != 0 {
				return d.Errf("%s already specified", sub)
			}
			var arg string
			if err = singleArg(d, &arg, sub); err == nil {
				dur, perr := caddy.ParseDuration(arg)
				if perr != nil || dur <= 0 {
					return d.Errf("invalid ttl '%s': must be a positive duration such as 10m", arg)
				}
				h.TTL = caddy.Duration(dur)
			}
		case "max_entries":
			if h.MaxEntries != 0 {
				return d.Errf("%s already specified", sub)
			}
			var arg string
			if err = singleArg(d, &arg, sub); err == nil {
				n, perr := strconv.Atoi(arg)
				if perr != nil || n <= 0 || n > maxMaxEntries {
					return d.Errf("invalid max_entries '%s': must be a whole number from 1 to %d", arg, maxMaxEntries)
				}
				h.MaxEntries = n
			}
		case "max_body":
			err = sizeArg(d, &h.MaxBody, sub)
		case "max_buffered":
			err = sizeArg(d, &h.MaxBuffered, sub)
		case "forward_client_credentials":
			err = onOffPtr(d, sub, &h.ForwardClientCredentials)
		case "client_model":
			err = onOffPtr(d, sub, &h.ClientModel)
		case "client_preferences":
			err = onOffPtr(d, sub, &h.ClientPreferences)
		case "route_on_user_only":
			err = onOff(d, sub, &h.RouteOnUserOnly, true)
		case "implicit":
			err = onOff(d, sub, &h.Implicit, false)
		case "implicit_salt":
			err = singleArg(d, &h.ImplicitSalt, sub)
		case "model":
			lines[fmt.Sprintf("model[%d]", len(h.Models))] = d.Line()
			err = h.unmarshalModel(d)
		case "route":
			lines[fmt.Sprintf("route[%d]", len(h.Routes))] = d.Line()
			err = h.unmarshalRoute(d)
		case "router":
			lines["router"] = d.Line()
			err = h.unmarshalRouter(d)
		default:
			return d.Errf("unrecognized subdirective '%s'", sub)
		}
		if err != nil {
			return err
		}
	}

	if err := h.checkConfig(); err != nil {
		var ce *configError
		if errors.As(err, &ce) {
			if l, ok := lines[ce.elem]; ok {
				line = l
			}
		}
		return fmt.Errorf("%v, at %s:%d", err, file, line)
	}
	return nil
}

func (h *Handler) unmarshalModel(d *caddyfile.Dispenser) error {
	m := new(Model)
	if !d.AllArgs(&m.Name) {
		return d.Errf("model takes exactly one name: model <name> { ... }")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		var err error
		switch sub {
		case "to":
			err = appendArgs(d, &m.To)
		case "upstream_model":
			err = singleArg(d, &m.UpstreamModel, sub)
		case "api_key":
			err = singleArg(d, &m.APIKey, sub)
		case "provider":
			err = singleArg(d, &m.Provider, sub)
		case "weight":
			if m.Weight != nil {
				return d.Errf("model '%s': weight already specified", m.Name)
			}
			var arg string
			if err = singleArg(d, &arg, sub); err == nil {
				n, perr := strconv.Atoi(arg)
				if perr != nil || n < 0 {
					return d.Errf("model '%s': invalid weight '%s': must be a whole number, 0 or more", m.Name, arg)
				}
				m.Weight = &n
			}
		default:
			return d.Errf("model '%s': unrecognized subdirective '%s'", m.Name, sub)
		}
		if err != nil {
			return err
		}
	}
	h.Models = append(h.Models, m)
	return nil
}

func (h *Handler) unmarshalRoute(d *caddyfile.Dispenser) error {
	r := new(Route)
	if !d.AllArgs(&r.Name) {
		return d.Errf("route takes exactly one name: route <name> { ... }")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch sub := d.Val(); sub {
		case "description":
			if r.Description != "" {
				return d.Errf("route '%s': description already specified", r.Name)
			}
			words := d.RemainingArgs()
			if len(words) == 0 {
				return d.ArgErr()
			}
			r.Description = strings.Join(words, " ")
		case "models":
			if len(r.Models) > 0 {
				return d.Errf("route '%s': models already specified", r.Name)
			}
			r.Models = d.RemainingArgs()
			if len(r.Models) == 0 {
				return d.ArgErr()
			}
		case "policy":
			if err := singleArg(d, &r.Policy, sub); err != nil {
				return err
			}
		case "when":
			cond, err := parseCondition(d)
			if err != nil {
				return err
			}
			r.When = append(r.When, cond)
		default:
			return d.Errf("route '%s': unrecognized subdirective '%s'", r.Name, sub)
		}
	}
	h.Routes = append(h.Routes, r)
	return nil
}

func (h *Handler) unmarshalStore(d *caddyfile.Dispenser) error {
	if h.Store != nil {
		return d.Err("store already specified")
	}
	var kind string
	if !d.AllArgs(&kind) || kind != "redis" {
		return d.Errf("store takes a type: 'store redis { ... }'")
	}
	rc := new(RedisConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		var err error
		switch sub {
		case "address":
			err = appendArgs(d, &rc.Addresses)
		case "password":
			err = singleArg(d, &rc.Password, sub)
		case "prefix":
			err = singleArg(d, &rc.Prefix, sub)
		case "db":
			if rc.DB != 0 {
				return d.Errf("store redis: db already specified")
			}
			var arg string
			if err = singleArg(d, &arg, sub); err == nil {
				n, perr := strconv.Atoi(arg)
				if perr != nil || n < 0 {
					return d.Errf("store redis: invalid db '%s'", arg)
				}
				rc.DB = n
			}
		case "timeout":
			if rc.Timeout != 0 {
				return d.Errf("store redis: timeout already specified")
			}
			var arg string
			if err = singleArg(d, &arg, sub); err == nil {
				dur, perr := caddy.ParseDuration(arg)
				if perr != nil || dur <= 0 {
					return d.Errf("store redis: invalid timeout '%s': must be a positive duration", arg)
				}
				rc.Timeout = caddy.Duration(dur)
			}
		default:
			return d.Errf("store redis: unrecognized subdirective '%s'", sub)
		}
		if err != nil {
			return err
		}
	}
	h.Store = &StoreConfig{Redis: rc}
	return nil
}

func (h *Handler) unmarshalRouter(d *caddyfile.Dispenser) error {
	if h.RouterRaw != nil {
		return d.Err("router already specified")
	}
	if !d.NextArg() {
		return d.Errf("router needs a type, e.g. 'router llm { ... }'")
	}
	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, "http.handlers.llm_affinity.routers."+name)
	if err != nil {
		return err
	}
	h.RouterRaw = caddyconfig.JSONModuleObject(unm, "router", name, nil)
	return nil
}

// parseCondition reads a route rule:
//
//	when tools
//	when last_role <role>
//	when regex <re>
//	when tokens_over <n>
//	when header <name> <value>
func parseCondition(d *caddyfile.Dispenser) (*router.Condition, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.Errf("when needs a condition: tools, last_role, regex, tokens_over or header")
	}
	want := map[string]int{"tools": 0, "last_role": 1, "regex": 1, "tokens_over": 1, "header": 2}
	n, known := want[args[0]]
	if !known {
		return nil, d.Errf("unknown when condition '%s' (want tools, last_role, regex, tokens_over or header)", args[0])
	}
	if len(args)-1 != n {
		return nil, d.Errf("when %s takes %d argument(s), got %d", args[0], n, len(args)-1)
	}
	cond := new(router.Condition)
	switch args[0] {
	case "tools":
		cond.Tools = true
	case "last_role":
		cond.LastRole = args[1]
	case "regex":
		cond.Regex = args[1]
	case "tokens_over":
		tokens, err := strconv.Atoi(args[1])
		if err != nil || tokens <= 0 {
			return nil, d.Errf("when tokens_over: '%s' is not a positive whole number", args[1])
		}
		cond.TokensOver = tokens
	case "header":
		cond.Header = &router.HeaderCondition{Name: args[1], Value: args[2]}
	}
	if err := cond.Compile(); err != nil {
		return nil, d.Errf("when %s: %v", args[0], err)
	}
	return cond, nil
}

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

// sizeArg reads one size argument such as 10MiB into *dst, which must still
// be unset.
func sizeArg(d *caddyfile.Dispenser, dst *int64, name string) error {
	if *dst != 0 {
		return d.Errf("%s already specified", name)
	}
	var arg string
	if err := singleArg(d, &arg, name); err != nil {
		return err
	}
	size, err := humanize.ParseBytes(arg)
	if err != nil || size == 0 || size > 1<<40 {
		return d.Errf("invalid %s '%s': must be a size such as 10MiB", name, arg)
	}
	*dst = int64(size)
	return nil
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

// singleArg reads exactly one argument into *dst, which must still be empty.
func singleArg(d *caddyfile.Dispenser, dst *string, name string) error {
	if *dst != "" {
		return d.Errf("%s already specified", name)
	}
	if !d.AllArgs(dst) {
		return d.ArgErr()
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)

package llmaffinity

import (
	"context"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// onConfigStarted arranges for configStarted to run when the config h was
// provisioned in is running: Caddy emits "started" only after every module
// of a config provisioned, validated and started, so a config that fails to
// load never changes what the serving config shares.
func (h *Handler) onConfigStarted(ctx caddy.Context) error {
	app, err := ctx.App("events")
	if err != nil {
		return fmt.Errorf("loading the events app: %v", err)
	}
	events, ok := app.(*caddyevents.App)
	if !ok {
		return fmt.Errorf("the events app is a %T", app)
	}
	return events.On("started", configStarted{h})
}

// configStarted is the "started" event handler of one handler's config.
type configStarted struct{ h *Handler }

// Handle applies the handler's pin store settings and warns about a site
// layout that cannot work.
func (c configStarted) Handle(context.Context, caddy.Event) error {
	h := c.h
	h.pool.apply(h.storeSettings)
	for _, problem := range h.layoutProblems() {
		h.logger.Warn(problem)
	}
	return nil
}

// Warnings about what follows the handler in its server's routes.
const (
	warnNoDynamicProxy = "no 'reverse_proxy { dynamic llm_affinity }' follows llm_affinity: " +
		"the requests it handles will get 502; put reverse_proxy with 'dynamic llm_affinity' after it"
	warnStaticProxy = "a reverse_proxy with static upstreams follows llm_affinity: " +
		"requests that reach it ignore the model llm_affinity chose (and its response headers say otherwise); " +
		"use 'dynamic llm_affinity' instead of upstream addresses"
)

// layoutProblems checks the handlers that follow h in its server's routes,
// in order and through subroutes: one of them must be a reverse_proxy whose
// upstreams come from llm_affinity, and none should be a reverse_proxy with
// static upstreams. Matchers are not evaluated, so this reads the layout, not
// every request's path through it.
func (h *Handler) layoutProblems() []string {
	app, err := h.ctx.AppIfConfigured("http")
	if err != nil {
		return nil
	}
	httpApp, ok := app.(*caddyhttp.App)
	if !ok {
		return nil
	}
	for _, srv := range httpApp.Servers {
		var after []caddyhttp.MiddlewareHandler
		found := false
		walkHandlers(srv.Routes, func(mh caddyhttp.MiddlewareHandler) {
			switch {
			case mh == h:
				found = true
			case found:
				after = append(after, mh)
			}
		})
		if !found {
			continue
		}
		var problems []string
		dynamic, static := false, false
		for _, mh := range after {
			rp, ok := mh.(*reverseproxy.Handler)
			if !ok {
				continue
			}
			switch rp.DynamicUpstreams.(type) {
			case *Upstreams, Upstreams:
				dynamic = true
			case nil:
				static = static || len(rp.Upstreams) > 0
			}
		}
		if !dynamic {
			problems = append(problems, warnNoDynamicProxy)
		}
		if static {
			problems = append(problems, warnStaticProxy)
		}
		return problems
	}
	return nil
}

// walkHandlers calls visit with every handler of routes in the order a
// request meets them, descending into subroutes.
func walkHandlers(routes caddyhttp.RouteList, visit func(caddyhttp.MiddlewareHandler)) {
	for _, route := range routes {
		for _, mh := range route.Handlers {
			visit(mh)
			if sub, ok := mh.(*caddyhttp.Subroute); ok {
				walkHandlers(sub.Routes, visit)
			}
		}
	}
}

// Interface guard
var _ caddyevents.Handler = configStarted{}

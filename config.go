package llmaffinity

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/llmaffinity/caddy-llm-affinity/router"
)

// maxMaxEntries is the largest max_entries accepted.
const maxMaxEntries = 1 << 30

// configError is a problem with one element of the configuration. The
// Caddyfile adapter turns elem into a line number; JSON users see the message,
// which names the element.
type configError struct {
	elem string // "" (the handler), "header", "default", "model[i]", "route[i]" or "router"
	msg  string
}

func (e *configError) Error() string { return e.msg }

func configErrorf(elem, format string, args ...any) *configError {
	return &configError{elem: elem, msg: fmt.Sprintf(format, args...)}
}

// checkConfig validates the configuration without changing it. It runs at
// Caddyfile adapt time (so errors name a line) and in Validate.
func (h *Handler) checkConfig() error {
	if h.Header != "" && !httpguts.ValidHeaderFieldName(h.Header) {
		return configErrorf("header", "header: %q is not a valid HTTP header name", h.Header)
	}
	if h.TTL < 0 {
		return configErrorf("", "ttl must not be negative")
	}
	if h.MaxEntries < 0 || h.MaxEntries > maxMaxEntries {
		return configErrorf("", "max_entries must be between 1 and %d", maxMaxEntries)
	}
	if h.MaxBody < 0 {
		return configErrorf("", "max_body must not be negative")
	}
	if h.MaxBuffered < 0 {
		return configErrorf("", "max_buffered must not be negative")
	}
	maxBody := h.MaxBody
	if maxBody == 0 {
		maxBody = DefaultMaxBody
	}
	if h.MaxBuffered > 0 && h.MaxBuffered < 2*maxBody {
		return configErrorf("", "max_buffered must be at least twice max_body (%d bytes): a body's buffer may be up to twice its size", maxBody)
	}
	if len(h.Models) == 0 {
		return configErrorf("", "at least one model is required")
	}
	if h.Store != nil {
		rc := h.Store.Redis
		if rc == nil {
			return configErrorf("store", "store needs a backend: redis")
		}
		if len(rc.Addresses) == 0 {
			return configErrorf("store", "store redis: address is required (one or more host:port)")
		}
		for _, addr := range rc.Addresses {
			if err := checkDial(addr); err != nil {
				return configErrorf("store", "store redis: address %s: %v", addr, err)
			}
		}
		if rc.DB < 0 || rc.Timeout < 0 {
			return configErrorf("store", "store redis: db and timeout must not be negative")
		}
	}
	models := make(map[string]bool, len(h.Models))
	for i, m := range h.Models {
		elem := fmt.Sprintf("model[%d]", i)
		if m == nil || m.Name == "" {
			return configErrorf(elem, "model %d: name is required", i)
		}
		if models[m.Name] {
			return configErrorf(elem, "model '%s' is defined more than once", m.Name)
		}
		models[m.Name] = true
		if len(m.To) == 0 {
			return configErrorf(elem, "model '%s': 'to' is required (one or more host:port)", m.Name)
		}
		for _, addr := range m.To {
			if err := checkDial(addr); err != nil {
				hint := ""
				if errors.Is(err, errDialIsURL) {
					hint = "; TLS to an upstream is set with reverse_proxy's 'transport http { tls }'"
				}
				return configErrorf(elem, "model '%s': to %s: %v%s", m.Name, addr, err, hint)
			}
		}
		switch m.Provider {
		case "", ProviderOpenAI, ProviderAnthropic:
		default:
			return configErrorf(elem, "model '%s': unknown provider '%s' (want openai or anthropic)", m.Name, m.Provider)
		}
		if m.Weight != nil && *m.Weight < 0 {
			return configErrorf(elem, "model '%s': weight must not be negative", m.Name)
		}
	}
	if h.Default == "" {
		return configErrorf("", "default is required: name the model that serves when no route decides")
	}
	if !models[h.Default] {
		return configErrorf("default", "default names unknown model '%s'", h.Default)
	}
	routes := make(map[string]bool, len(h.Routes))
	for i, r := range h.Routes {
		elem := fmt.Sprintf("route[%d]", i)
		if r == nil || r.Name == "" {
			return configErrorf(elem, "route %d: name is required", i)
		}
		if r.Name == router.NoRoute {
			return configErrorf(elem, "route name '%s' is reserved: the router answers it when no route fits", r.Name)
		}
		if routes[r.Name] {
			return configErrorf(elem, "route '%s' is defined more than once", r.Name)
		}
		routes[r.Name] = true
		if len(r.Models) == 0 {
			return configErrorf(elem, "route '%s': models is required (one or more model names)", r.Name)
		}
		weights := 0
		for _, name := range r.Models {
			if !models[name] {
				return configErrorf(elem, "route '%s' names unknown model '%s'", r.Name, name)
			}
			weights += h.modelWeight(name)
		}
		switch r.Policy {
		case "", PolicyFirst, PolicyRandom:
		case PolicyWeighted:
			if weights == 0 {
				return configErrorf(elem, "route '%s': the weighted policy needs a model with a positive weight", r.Name)
			}
		default:
			return configErrorf(elem, "route '%s': unknown policy '%s' (want first, random or weighted)", r.Name, r.Policy)
		}
		for _, c := range r.When {
			if c == nil {
				return configErrorf(elem, "route '%s': empty when condition", r.Name)
			}
			if err := c.Compile(); err != nil {
				return configErrorf(elem, "route '%s': when: %v", r.Name, err)
			}
		}
	}
	if h.RouterRaw != nil && len(routerRoutes(h.Routes)) == 0 {
		return configErrorf("router", "a router needs at least one route to choose from (a route with a description or without when rules)")
	}
	return nil
}

// modelWeight is a configured model's weight under a weighted policy.
func (h *Handler) modelWeight(name string) int {
	for _, m := range h.Models {
		if m != nil && m.Name == name {
			if m.Weight == nil {
				return 1
			}
			return *m.Weight
		}
	}
	return 0
}

// errDialIsURL is checkDial's error for a URL where a dial address belongs.
var errDialIsURL = errors.New("want host:port, not a URL")

// checkDial accepts a host:port dial address (or a unix socket address as
// reverse_proxy writes it) and explains what to do with a URL.
func checkDial(addr string) error {
	if strings.Contains(addr, "://") {
		return errDialIsURL
	}
	if strings.HasPrefix(addr, "unix/") {
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("want host:port")
	}
	return nil
}

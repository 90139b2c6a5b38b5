package llmaffinity

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"golang.org/x/net/http/httpguts"
)

// maxMaxEntries is the largest max_entries accepted.
const maxMaxEntries = 1 << 30

// origin is where a config element was written in a Caddyfile, as
// "file:line"; empty for a JSON config.
type origin string

// originOf is the position of the token d is on.
func originOf(d *caddyfile.Dispenser) origin {
	return origin(fmt.Sprintf("%s:%d", d.File(), d.Line()))
}

// configError is a problem with one element of the configuration. JSON users
// see the message, which names the element; the Caddyfile adapter adds the
// element's position.
type configError struct {
	at  origin
	msg string
}

func (e *configError) Error() string { return e.msg }

// errorf is a configError at o.
func (o origin) errorf(format string, args ...any) error {
	return &configError{at: o, msg: fmt.Sprintf(format, args...)}
}

// positioned adds to err the position it names, or else directive's.
func positioned(err error, directive origin) error {
	at := directive
	var ce *configError
	if errors.As(err, &ce) && ce.at != "" {
		at = ce.at
	}
	return fmt.Errorf("%v, at %s", err, at)
}

// checkRanges checks the numbers of the handler and its elements, before
// Provision uses them. The Caddyfile parser checks them as it reads them,
// naming their lines, so adapting does not run this.
func (h *Handler) checkRanges() error {
	if h.TTL < 0 {
		return errors.New("ttl must not be negative")
	}
	if h.MaxEntries < 0 || h.MaxEntries > maxMaxEntries {
		return fmt.Errorf("max_entries must be between 1 and %d", maxMaxEntries)
	}
	if h.MaxBody < 0 {
		return errors.New("max_body must not be negative")
	}
	if h.MaxBuffered < 0 {
		return errors.New("max_buffered must not be negative")
	}
	if h.Store != nil {
		if err := h.Store.checkRanges(); err != nil {
			return err
		}
	}
	for _, m := range h.Models {
		if m != nil {
			if err := m.checkRanges(); err != nil {
				return err
			}
		}
	}
	return nil
}

// validate checks what the Caddyfile parser cannot see as it reads a value:
// required settings, names and references between elements, and addresses.
// It reads the config without changing it.
func (h *Handler) validate() error {
	if h.Header != "" && !httpguts.ValidHeaderFieldName(h.Header) {
		return h.origins.header.errorf("header: %q is not a valid HTTP header name", h.Header)
	}
	if h.SessionHeaders != nil {
		for _, name := range *h.SessionHeaders {
			if !httpguts.ValidHeaderFieldName(name) {
				return h.origins.sessionHeaders.errorf("session_headers: %q is not a valid HTTP header name", name)
			}
		}
	}
	maxBody := h.MaxBody
	if maxBody == 0 {
		maxBody = DefaultMaxBody
	}
	if h.MaxBuffered > 0 && h.MaxBuffered < 2*maxBody {
		return fmt.Errorf("max_buffered must be at least twice max_body (%d bytes): a body's buffer may be up to twice its size", maxBody)
	}
	if len(h.Models) == 0 {
		return errors.New("at least one model is required")
	}
	if h.Store != nil {
		if err := h.Store.validate(); err != nil {
			return err
		}
	}
	models := make(map[string]*Model, len(h.Models))
	for i, m := range h.Models {
		if m == nil {
			return fmt.Errorf("model %d: name is required", i)
		}
		if err := m.validate(i, models); err != nil {
			return err
		}
	}
	if h.Default == "" {
		return errors.New("default is required: name the model that serves when no route decides")
	}
	if models[h.Default] == nil {
		return h.origins.defaultModel.errorf("default names unknown model '%s'", h.Default)
	}
	routes := make(map[string]bool, len(h.Routes))
	for i, rt := range h.Routes {
		if rt == nil {
			return fmt.Errorf("route %d: name is required", i)
		}
		if err := rt.validate(i, routes, models); err != nil {
			return err
		}
	}
	// RouterRaw when adapting; once provisioned, Caddy has cleared it
	hasRouter := h.RouterRaw != nil || h.router != nil
	if hasRouter && len(routerRoutes(h.Routes)) == 0 {
		return h.origins.router.errorf("a router needs at least one route to choose from (a route with a description or without when rules)")
	}
	return nil
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

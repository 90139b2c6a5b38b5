package llmaffinity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
	"github.com/llmaffinity/caddy-llm-affinity/routing"
)

// cfgValidHandler returns a fresh, valid JSON-style handler for a test to
// break.
func cfgValidHandler() *Handler {
	return &Handler{
		Default: "small",
		Models: []*Model{
			{Name: "small", To: []string{"127.0.0.1:8001", "127.0.0.1:8002"}},
			{Name: "big", To: []string{"api.anthropic.com:443"}, Provider: ProviderAnthropic, APIKey: "sk-ant-test-key"},
		},
		Routes: []*Route{
			{Name: "chat", Description: "casual conversation", Models: []string{"small"}},
			{Name: "code", Description: "code generation", Models: []string{"big", "small"}},
		},
		RouterRaw: json.RawMessage(`{"router":"llm","endpoint":"http://127.0.0.1:11434/v1/chat/completions","model":"arch"}`),
	}
}

func TestCheckConfigValid(t *testing.T) {
	t.Setenv("SALT", "test-salt")
	t.Setenv("REDIS_PASSWORD", "test-password")
	tests := []struct {
		name   string
		modify func(h *Handler)
	}{
		{name: "full", modify: func(*Handler) {}},
		{name: "minimal", modify: func(h *Handler) {
			*h = Handler{Default: "a", Models: []*Model{{Name: "a", To: []string{"127.0.0.1:9"}}}}
		}},
		{name: "no router", modify: func(h *Handler) { h.RouterRaw = nil }},
		{name: "no routes and no router", modify: func(h *Handler) { h.Routes, h.RouterRaw = nil, nil }},
		{name: "explicit settings", modify: func(h *Handler) {
			h.Header = "X-Session"
			h.TTL = caddy.Duration(time.Hour)
			h.MaxEntries = maxMaxEntries
			h.MaxBody = 1 << 30
		}},
		{name: "unix socket", modify: func(h *Handler) { h.Models[0].To = []string{"unix//run/vllm.sock"} }},
		{name: "IPv6", modify: func(h *Handler) { h.Models[0].To = []string{"[::1]:8000"} }},
		{name: "host name", modify: func(h *Handler) { h.Models[0].To = []string{"vllm.internal:8000"} }},
		{name: "provider openai", modify: func(h *Handler) { h.Models[0].Provider = ProviderOpenAI }},
		{name: "route without description", modify: func(h *Handler) { h.Routes[0].Description = "" }},
		{name: "route repeats a model", modify: func(h *Handler) { h.Routes[0].Models = []string{"small", "small"} }},
		{name: "weight 0 next to a positive weight", modify: func(h *Handler) {
			h.Models[0].Weight = cfgInt(0)
			h.Models[1].Weight = cfgInt(3)
			h.Routes[1].Policy = PolicyWeighted
		}},
		{name: "weighted with default weights", modify: func(h *Handler) { h.Routes[1].Policy = PolicyWeighted }},
		{name: "weight 0 under another policy", modify: func(h *Handler) {
			h.Models[0].Weight = cfgInt(0)
			h.Models[1].Weight = cfgInt(0)
			h.Routes[1].Policy = PolicyRandom
		}},
		{name: "policy first", modify: func(h *Handler) { h.Routes[0].Policy = PolicyFirst }},
		{name: "when rules of every kind", modify: func(h *Handler) {
			h.Routes[1].When = []*routing.Condition{
				{Tools: true}, {LastRole: "tool"}, {Regex: `(?i)\bfix\b`}, {TokensOver: 1000},
				{Header: &routing.HeaderCondition{Name: "X-Tier", Value: "premium"}},
			}
		}},
		{name: "router with one described route among rule routes", modify: func(h *Handler) {
			h.Routes[0].Description = ""
			h.Routes[0].When = []*routing.Condition{{Tools: true}}
			h.Routes[1].When = []*routing.Condition{{LastRole: "user"}}
		}},
		{name: "router with a rule route and a route without rules", modify: func(h *Handler) {
			h.Routes[0].Description = ""
			h.Routes[0].When = []*routing.Condition{{Tools: true}}
			h.Routes[1].Description = ""
		}},
		{name: "implicit settings", modify: func(h *Handler) {
			h.Implicit, h.ImplicitSalt, h.RouteOnUserOnly = true, "{env.SALT}", true
		}},
		{name: "name, scope and strip_header", modify: func(h *Handler) {
			off := false
			h.Name, h.Scope, h.StripHeader = "site-a", "{http.auth.user.id}", &off
		}},
		{name: "strip_header on", modify: func(h *Handler) {
			on := true
			h.StripHeader = &on
		}},
		{name: "prices", modify: func(h *Handler) {
			h.Models[0].Price = &Price{Input: 0.15, Output: 0.60, CacheRead: 0.075}
			h.Models[1].Price = &Price{Input: 3, Output: 15, CacheRead: 0.30, CacheWrite: 3.75}
		}},
		{name: "price of 0 (free, and priced)", modify: func(h *Handler) { h.Models[0].Price = &Price{} }},
		{name: "store redis with an address", modify: func(h *Handler) {
			h.Store = &StoreConfig{Redis: &RedisConfig{Addresses: []string{"127.0.0.1:6379"}}}
		}},
		{name: "store redis with every setting", modify: func(h *Handler) {
			h.Store = &StoreConfig{Redis: &RedisConfig{
				Addresses: []string{"10.0.0.1:6379", "redis.internal:6380", "[::1]:6379"},
				Password:  "{env.REDIS_PASSWORD}",
				DB:        15,
				Prefix:    "gw:",
				Timeout:   caddy.Duration(time.Second),
			}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := cfgValidHandler()
			tt.modify(h)
			// as the Caddyfile adapter checks it, before any provisioning
			before, _ := json.Marshal(h)
			if err := h.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if after, _ := json.Marshal(h); string(after) != string(before) {
				t.Errorf("validate changed the handler:\nbefore %s\n after %s", before, after)
			}
			// as a config load checks it (not started: a store's settings
			// stay staged, so no Redis client dials the example addresses)
			if err := cfgProvisionUnstarted(t, h); err != nil {
				t.Fatalf("Provision: %v", err)
			}
			before, _ = json.Marshal(h)
			if err := h.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if after, _ := json.Marshal(h); string(after) != string(before) {
				t.Errorf("Validate changed the handler:\nbefore %s\n after %s", before, after)
			}
		})
	}
}

func TestCheckConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		modify   func(h *Handler)
		wantErr  string
		wantElem string // the origin the error names for the Caddyfile line (see cfgMarkOrigins)
	}{
		{name: "invalid header name", modify: func(h *Handler) { h.Header = "X Session" },
			wantErr: `header: "X Session" is not a valid HTTP header name`, wantElem: "header"},
		{name: "header with a colon", modify: func(h *Handler) { h.Header = "X:Y" },
			wantErr: "not a valid HTTP header name", wantElem: "header"},
		{name: "negative ttl", modify: func(h *Handler) { h.TTL = caddy.Duration(-time.Second) },
			wantErr: "ttl must not be negative"},
		{name: "negative max_entries", modify: func(h *Handler) { h.MaxEntries = -5 },
			wantErr: "max_entries must be between 1 and 1073741824"},
		{name: "max_entries over the limit", modify: func(h *Handler) { h.MaxEntries = maxMaxEntries + 1 },
			wantErr: "max_entries must be between 1 and 1073741824"},
		{name: "negative max_body", modify: func(h *Handler) { h.MaxBody = -1 },
			wantErr: "max_body must not be negative"},
		{name: "no models", modify: func(h *Handler) { h.Models = nil },
			wantErr: "at least one model is required"},
		{name: "nil model", modify: func(h *Handler) { h.Models = append(h.Models, nil) },
			wantErr: "model 2: name is required"},
		{name: "model without name", modify: func(h *Handler) { h.Models[1].Name = "" },
			wantErr: "model 1: name is required", wantElem: "model[1]"},
		{name: "duplicate model names", modify: func(h *Handler) { h.Models[1].Name = "small" },
			wantErr: "model 'small' is defined more than once", wantElem: "model[1]"},
		{name: "model without to", modify: func(h *Handler) { h.Models[1].To = nil },
			wantErr: "model 'big': 'to' is required", wantElem: "model[1]"},
		{name: "to is a URL", modify: func(h *Handler) { h.Models[0].To = []string{"https://api.openai.com"} },
			wantErr: "model 'small': to https://api.openai.com: want host:port, not a URL", wantElem: "model[0]"},
		{name: "to is a URL with a port", modify: func(h *Handler) { h.Models[0].To = []string{"127.0.0.1:1", "http://127.0.0.1:8000"} },
			wantErr: "want host:port, not a URL", wantElem: "model[0]"},
		{name: "to without port", modify: func(h *Handler) { h.Models[0].To = []string{"127.0.0.1"} },
			wantErr: "model 'small': to 127.0.0.1: want host:port", wantElem: "model[0]"},
		{name: "to with an empty port", modify: func(h *Handler) { h.Models[0].To = []string{"127.0.0.1:"} },
			wantErr: "want host:port", wantElem: "model[0]"},
		{name: "to is empty", modify: func(h *Handler) { h.Models[0].To = []string{""} },
			wantErr: "want host:port", wantElem: "model[0]"},
		{name: "unknown provider", modify: func(h *Handler) { h.Models[1].Provider = "azure" },
			wantErr: "model 'big': unknown provider 'azure' (want openai or anthropic)", wantElem: "model[1]"},
		{name: "provider in upper case", modify: func(h *Handler) { h.Models[1].Provider = "OpenAI" },
			wantErr: "unknown provider 'OpenAI'", wantElem: "model[1]"},
		{name: "missing default", modify: func(h *Handler) { h.Default = "" },
			wantErr: "default is required"},
		{name: "default names an unknown model", modify: func(h *Handler) { h.Default = "medium" },
			wantErr: "default names unknown model 'medium'", wantElem: "default"},
		{name: "nil route", modify: func(h *Handler) { h.Routes = append(h.Routes, nil) },
			wantErr: "route 2: name is required"},
		{name: "route without name", modify: func(h *Handler) { h.Routes[0].Name = "" },
			wantErr: "route 0: name is required", wantElem: "route[0]"},
		{name: "route named other", modify: func(h *Handler) { h.Routes[1].Name = "other" },
			wantErr: "route name 'other' is reserved", wantElem: "route[1]"},
		{name: "duplicate route", modify: func(h *Handler) { h.Routes[1].Name = "chat" },
			wantErr: "route 'chat' is defined more than once", wantElem: "route[1]"},
		{name: "route without models", modify: func(h *Handler) { h.Routes[1].Models = nil },
			wantErr: "route 'code': models is required", wantElem: "route[1]"},
		{name: "route names an unknown model", modify: func(h *Handler) { h.Routes[1].Models = []string{"big", "gpt-5"} },
			wantErr: "route 'code' names unknown model 'gpt-5'", wantElem: "route[1]"},
		{name: "router with no routes", modify: func(h *Handler) { h.Routes = nil },
			wantErr: "a router needs at least one route", wantElem: "router"},
		{name: "negative weight", modify: func(h *Handler) { h.Models[1].Weight = cfgInt(-1) },
			wantErr: "model 'big': weight must not be negative", wantElem: "model[1]"},
		{name: "negative price", modify: func(h *Handler) { h.Models[1].Price = &Price{Input: 3, Output: -15} },
			wantErr: "model 'big': price output must be a finite number of US dollars per million tokens, 0 or more", wantElem: "model[1]"},
		{name: "negative cache_read price", modify: func(h *Handler) { h.Models[0].Price = &Price{CacheRead: -0.01} },
			wantErr: "model 'small': price cache_read must be a finite number", wantElem: "model[0]"},
		{name: "NaN price", modify: func(h *Handler) { h.Models[1].Price = &Price{CacheWrite: math.NaN()} },
			wantErr: "model 'big': price cache_write must be a finite number", wantElem: "model[1]"},
		{name: "infinite price", modify: func(h *Handler) { h.Models[0].Price = &Price{Input: math.Inf(1)} },
			wantErr: "model 'small': price input must be a finite number", wantElem: "model[0]"},
		{name: "negative infinite price", modify: func(h *Handler) { h.Models[0].Price = &Price{Output: math.Inf(-1)} },
			wantErr: "model 'small': price output must be a finite number", wantElem: "model[0]"},
		{name: "unknown policy", modify: func(h *Handler) { h.Routes[1].Policy = "sticky" },
			wantErr: "route 'code': unknown policy 'sticky' (want first, random or weighted)", wantElem: "route[1]"},
		{name: "policy in upper case", modify: func(h *Handler) { h.Routes[0].Policy = "First" },
			wantErr: "route 'chat': unknown policy 'First'", wantElem: "route[0]"},
		{name: "weighted with all weights 0", modify: func(h *Handler) {
			h.Models[0].Weight = cfgInt(0)
			h.Models[1].Weight = cfgInt(0)
			h.Routes[1].Policy = PolicyWeighted
		}, wantErr: "route 'code': the weighted policy needs a model with a positive weight", wantElem: "route[1]"},
		{name: "weighted with its only model at weight 0", modify: func(h *Handler) {
			h.Models[0].Weight = cfgInt(0)
			h.Routes[0].Policy = PolicyWeighted
		}, wantErr: "route 'chat': the weighted policy needs a model with a positive weight", wantElem: "route[0]"},
		{name: "nil when condition", modify: func(h *Handler) { h.Routes[1].When = []*routing.Condition{{Tools: true}, nil} },
			wantErr: "route 'code': empty when condition", wantElem: "route[1]"},
		{name: "when condition with nothing set", modify: func(h *Handler) { h.Routes[0].When = []*routing.Condition{{}} },
			wantErr: "route 'chat': when: a condition needs exactly one of", wantElem: "route[0]"},
		{name: "when condition with two set", modify: func(h *Handler) {
			h.Routes[0].When = []*routing.Condition{{Tools: true, LastRole: "user"}}
		}, wantErr: "route 'chat': when: a condition needs exactly one of", wantElem: "route[0]"},
		{name: "when bad regex", modify: func(h *Handler) { h.Routes[1].When = []*routing.Condition{{Regex: "fix("}} },
			wantErr: "route 'code': when: regex: error parsing regexp", wantElem: "route[1]"},
		{name: "when bad last_role", modify: func(h *Handler) { h.Routes[1].When = []*routing.Condition{{LastRole: "bot"}} },
			wantErr: "route 'code': when: last_role 'bot' is not one of", wantElem: "route[1]"},
		{name: "when negative tokens_over", modify: func(h *Handler) { h.Routes[1].When = []*routing.Condition{{TokensOver: -1}} },
			wantErr: "route 'code': when: tokens_over must be positive", wantElem: "route[1]"},
		{name: "when header without name", modify: func(h *Handler) {
			h.Routes[1].When = []*routing.Condition{{Header: &routing.HeaderCondition{Value: "x"}}}
		}, wantErr: "route 'code': when: header condition needs a header name", wantElem: "route[1]"},
		{name: "router with only rule routes", modify: func(h *Handler) {
			for _, r := range h.Routes {
				r.Description = ""
				r.When = []*routing.Condition{{Tools: true}}
			}
		}, wantErr: "a router needs at least one route to choose from", wantElem: "router"},
		{name: "store without a backend", modify: func(h *Handler) { h.Store = &StoreConfig{} },
			wantErr: "store needs a backend: redis", wantElem: "store"},
		{name: "store redis without address", modify: func(h *Handler) { h.Store = &StoreConfig{Redis: &RedisConfig{DB: 1}} },
			wantErr: "store redis: address is required (one or more host:port)", wantElem: "store"},
		{name: "store redis with an empty address list", modify: func(h *Handler) {
			h.Store = &StoreConfig{Redis: &RedisConfig{Addresses: []string{}}}
		}, wantErr: "store redis: address is required", wantElem: "store"},
		{name: "store redis address is a URL", modify: func(h *Handler) {
			h.Store = &StoreConfig{Redis: &RedisConfig{Addresses: []string{"redis://127.0.0.1:6379"}}}
		}, wantErr: "store redis: address redis://127.0.0.1:6379: want host:port, not a URL", wantElem: "store"},
		{name: "store redis second address is a URL", modify: func(h *Handler) {
			h.Store = &StoreConfig{Redis: &RedisConfig{Addresses: []string{"127.0.0.1:6379", "rediss://cache:6380"}}}
		}, wantErr: "store redis: address rediss://cache:6380: want host:port", wantElem: "store"},
		{name: "store redis address without port", modify: func(h *Handler) {
			h.Store = &StoreConfig{Redis: &RedisConfig{Addresses: []string{"cache.internal"}}}
		}, wantErr: "store redis: address cache.internal: want host:port", wantElem: "store"},
		{name: "store redis empty address", modify: func(h *Handler) {
			h.Store = &StoreConfig{Redis: &RedisConfig{Addresses: []string{""}}}
		}, wantErr: "want host:port", wantElem: "store"},
		{name: "store redis negative db", modify: func(h *Handler) {
			h.Store = &StoreConfig{Redis: &RedisConfig{Addresses: []string{"127.0.0.1:6379"}, DB: -1}}
		}, wantErr: "store redis: db and timeout must not be negative", wantElem: "store"},
		{name: "store redis negative timeout", modify: func(h *Handler) {
			h.Store = &StoreConfig{Redis: &RedisConfig{Addresses: []string{"127.0.0.1:6379"}, Timeout: caddy.Duration(-time.Second)}}
		}, wantErr: "store redis: db and timeout must not be negative", wantElem: "store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := cfgValidHandler()
			tt.modify(h)
			cfgMarkOrigins(h)
			// as a config load does: Provision, then Validate
			err := cfgProvisionUnstarted(t, h)
			if err == nil {
				err = h.Validate()
			}
			if err == nil {
				t.Fatalf("Provision and Validate succeeded, want an error containing %q", tt.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.wantErr)
			}
			if strings.Contains(msg, ", at ") {
				t.Errorf("error = %q names a Caddyfile position", msg)
			}
			var ce *configError
			at := origin("")
			if errors.As(err, &ce) {
				at = ce.at
			} else if tt.wantElem != "" {
				t.Fatalf("error %T is not a *configError", err)
			}
			if at != origin(tt.wantElem) {
				t.Errorf("the error names origin %q, want %q", at, tt.wantElem)
			}
		})
	}
}

// cfgMarkOrigins gives each element of h an origin named for it ("model[1]",
// "route[0]", "store", "header", "default", "router"), as the Caddyfile
// parser gives each its position. A nil element has none.
func cfgMarkOrigins(h *Handler) {
	for i, m := range h.Models {
		if m != nil {
			m.origin = origin(fmt.Sprintf("model[%d]", i))
		}
	}
	for i, rt := range h.Routes {
		if rt != nil {
			rt.origin = origin(fmt.Sprintf("route[%d]", i))
		}
	}
	if h.Store != nil {
		h.Store.origin = "store"
	}
	h.origins = handlerOrigins{directive: "directive", header: "header", defaultModel: "default", router: "router"}
}

// cfgInt returns a pointer to n, for Model.Weight.
func cfgInt(n int) *int { return &n }

// cfgContext returns a fresh config context, as a config load makes one,
// canceled when the test ends.
func cfgContext(t testing.TB) caddy.Context {
	t.Helper()
	base, err := caddy.ProvisionContext(&caddy.Config{})
	if err != nil {
		t.Fatalf("ProvisionContext: %v", err)
	}
	ctx, cancel := caddy.NewContext(base)
	t.Cleanup(cancel)
	return ctx
}

// cfgStart tells the modules of ctx's config that it is running, as Caddy
// does once every module of a load provisioned and started.
func cfgStart(t testing.TB, ctx caddy.Context) {
	t.Helper()
	app, err := ctx.App("events")
	if err != nil {
		t.Fatalf("events app: %v", err)
	}
	app.(*caddyevents.App).Emit(ctx, "started", nil)
}

// cfgProvisionUnstarted provisions h with a fresh Caddy context and cleans
// h up when the test ends, never starting that config.
func cfgProvisionUnstarted(t testing.TB, h *Handler) error {
	t.Helper()
	t.Cleanup(func() {
		if err := h.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return h.Provision(cfgContext(t))
}

// cfgProvision provisions h with a fresh Caddy context, starts that config
// when Provision succeeds, and cleans h up when the test ends.
func cfgProvision(t testing.TB, h *Handler) error {
	t.Helper()
	ctx := cfgContext(t)
	err := h.Provision(ctx)
	if err == nil {
		cfgStart(t, ctx)
	}
	t.Cleanup(func() {
		if cerr := h.Cleanup(); cerr != nil {
			t.Errorf("Cleanup: %v", cerr)
		}
	})
	return err
}

// An anthropic model speaks Messages unless told otherwise; session
// headers can be turned off.
func TestProvisionAPIAndSessionHeaders(t *testing.T) {
	none := []string{}
	h := &Handler{
		Default:        "a",
		SessionHeaders: &none,
		Models: []*Model{{Name: "a", To: []string{"127.0.0.1:9"}, Provider: ProviderAnthropic},
			{Name: "b", To: []string{"127.0.0.1:9"}, Provider: ProviderAnthropic, API: APIChat},
			{Name: "c", To: []string{"127.0.0.1:9"}, API: APIResponses}},
	}
	if err := cfgProvision(t, h); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	for name, want := range map[string]llmapi.API{"a": llmapi.Messages, "b": llmapi.Chat, "c": llmapi.Responses} {
		if got := h.models[name].api; got != want {
			t.Errorf("model %s speaks %v, want %v", name, got, want)
		}
	}
	if len(h.sessionHeaders) != 0 {
		t.Errorf("session headers %v, want none", h.sessionHeaders)
	}

	// a list replaces the defaults; it does not add to them
	own := []string{"X-Agent-Session"}
	h = &Handler{Default: "a", SessionHeaders: &own, Models: []*Model{{Name: "a", To: []string{"127.0.0.1:9"}}}}
	if err := cfgProvision(t, h); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if !slices.Equal(h.sessionHeaders, own) {
		t.Errorf("session headers %v, want %v", h.sessionHeaders, own)
	}
}

func TestProvisionDefaults(t *testing.T) {
	h := &Handler{
		Default: "a",
		Models:  []*Model{{Name: "a", To: []string{"127.0.0.1:9"}}},
	}
	if err := cfgProvision(t, h); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if h.Header != "X-Model-Affinity" {
		t.Errorf("Header = %q, want X-Model-Affinity", h.Header)
	}
	if h.TTL != caddy.Duration(10*time.Minute) {
		t.Errorf("TTL = %v, want 10m", time.Duration(h.TTL))
	}
	if h.MaxEntries != 10000 {
		t.Errorf("MaxEntries = %d, want 10000", h.MaxEntries)
	}
	if h.MaxBody != 10<<20 {
		t.Errorf("MaxBody = %d, want %d (10MiB)", h.MaxBody, 10<<20)
	}
	m := h.Models[0]
	if m.Provider != "openai" {
		t.Errorf("Provider = %q, want openai", m.Provider)
	}
	if m.UpstreamModel != "a" {
		t.Errorf("UpstreamModel = %q, want the model's name", m.UpstreamModel)
	}
	if m.API != APIChat || m.api != llmapi.Chat {
		t.Errorf("API = %q (%v), want chat for provider openai", m.API, m.api)
	}
	// Claude Code's; Codex CLI's, new and old; OpenCode's, to any provider
	// and to an "opencode..." one
	wantSession := []string{"X-Claude-Code-Session-Id", "Session-Id", "Session_id", "X-Session-Affinity", "X-Opencode-Session"}
	if !slices.Equal(h.sessionHeaders, wantSession) {
		t.Errorf("session headers %v, want %v", h.sessionHeaders, wantSession)
	}
	if m.apiKey != "" || m.APIKey != "" {
		t.Errorf("API key = %q (config %q), want none", m.apiKey, m.APIKey)
	}
	if string(m.quotedUpstreamModel) != `"a"` {
		t.Errorf("quotedUpstreamModel = %s, want \"a\"", m.quotedUpstreamModel)
	}
	if h.defaultModel != m || h.models["a"] != m {
		t.Errorf("the default model is not the configured one")
	}
	if h.pinStore == nil {
		t.Errorf("no pin store")
	}
	if h.router != nil {
		t.Errorf("router = %T, want none", h.router)
	}
	if err := h.Validate(); err != nil {
		t.Errorf("Validate after Provision: %v", err)
	}
}

func TestProvisionKeepsExplicitSettings(t *testing.T) {
	h := &Handler{
		Header:     "X-Session",
		TTL:        caddy.Duration(time.Hour),
		MaxEntries: 5,
		MaxBody:    1 << 10,
		Default:    "a",
		Models: []*Model{{
			Name:          "a",
			To:            []string{"127.0.0.1:9"},
			UpstreamModel: "claude-sonnet-4-5",
			Provider:      ProviderAnthropic,
		}},
	}
	if err := cfgProvision(t, h); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if h.Header != "X-Session" || h.TTL != caddy.Duration(time.Hour) || h.MaxEntries != 5 || h.MaxBody != 1<<10 {
		t.Errorf("Provision changed explicit settings: header %q, ttl %v, max_entries %d, max_body %d",
			h.Header, time.Duration(h.TTL), h.MaxEntries, h.MaxBody)
	}
	m := h.Models[0]
	if m.UpstreamModel != "claude-sonnet-4-5" || m.Provider != ProviderAnthropic {
		t.Errorf("Provision changed the model: upstream_model %q, provider %q", m.UpstreamModel, m.Provider)
	}
	if string(m.quotedUpstreamModel) != `"claude-sonnet-4-5"` {
		t.Errorf("quotedUpstreamModel = %s", m.quotedUpstreamModel)
	}
}

func TestProvisionResolvesAPIKeyPlaceholder(t *testing.T) {
	const secret = "sk-test-0123456789abcdef"
	t.Setenv("LLM_AFFINITY_TEST_OPENAI_KEY", secret)
	t.Setenv("LLM_AFFINITY_TEST_ANTHROPIC_KEY", "sk-ant-"+secret)
	h := &Handler{
		Default: "a",
		Models: []*Model{
			{Name: "a", To: []string{"127.0.0.1:9"}, APIKey: "{env.LLM_AFFINITY_TEST_OPENAI_KEY}"},
			{Name: "b", To: []string{"127.0.0.1:9"}, APIKey: "{env.LLM_AFFINITY_TEST_ANTHROPIC_KEY}", Provider: ProviderAnthropic},
			{Name: "c", To: []string{"127.0.0.1:9"}, APIKey: "literal-key"},
			{Name: "d", To: []string{"127.0.0.1:9"}},
		},
	}
	if err := cfgProvision(t, h); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	tests := []struct {
		model      string
		wantConfig string
		wantKey    string
	}{
		{"a", "{env.LLM_AFFINITY_TEST_OPENAI_KEY}", secret},
		{"b", "{env.LLM_AFFINITY_TEST_ANTHROPIC_KEY}", "sk-ant-" + secret},
		{"c", "literal-key", "literal-key"},
		{"d", "", ""},
	}
	for i, tt := range tests {
		m := h.Models[i]
		if m.Name != tt.model {
			t.Fatalf("model %d is %q, want %q", i, m.Name, tt.model)
		}
		if m.apiKey != tt.wantKey {
			t.Errorf("model %s: resolved key = %q, want %q", m.Name, m.apiKey, tt.wantKey)
		}
		if m.APIKey != tt.wantConfig {
			t.Errorf("model %s: APIKey = %q, want it left as configured, %q", m.Name, m.APIKey, tt.wantConfig)
		}
	}

	// the config as the admin API would show it never holds the secret
	cfg, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), secret) {
		t.Errorf("the handler's JSON holds the resolved secret: %s", cfg)
	}
	if !strings.Contains(string(cfg), `"api_key":"{env.LLM_AFFINITY_TEST_OPENAI_KEY}"`) {
		t.Errorf("the handler's JSON lost the placeholder: %s", cfg)
	}
}

// A placeholder that names an unset variable fails the load, naming the
// model (or setting) and the variable: a key that silently came out empty
// would send the client's own credential upstream, or none.
func TestProvisionFailsOnUnsetPlaceholder(t *testing.T) {
	t.Setenv("LLM_AFFINITY_TEST_EMPTY", "")
	model := func(key string) []*Model {
		return []*Model{{Name: "a", To: []string{"127.0.0.1:9"}}, {Name: "claude", To: []string{"127.0.0.1:9"}, APIKey: key}}
	}
	tests := []struct {
		name    string
		h       *Handler
		wantErr string
	}{
		{name: "api_key of an unset variable",
			h:       &Handler{Default: "a", Models: model("{env.LLM_AFFINITY_TEST_UNSET_KEY}")},
			wantErr: "model 'claude': api_key: environment variable LLM_AFFINITY_TEST_UNSET_KEY is not set"},
		{name: "api_key of an empty variable",
			h:       &Handler{Default: "a", Models: model("{env.LLM_AFFINITY_TEST_EMPTY}")},
			wantErr: "model 'claude': api_key: environment variable LLM_AFFINITY_TEST_EMPTY is not set"},
		{name: "implicit_salt of an unset variable",
			h:       &Handler{Default: "a", ImplicitSalt: "{env.LLM_AFFINITY_TEST_UNSET_SALT}", Models: model("")},
			wantErr: "implicit_salt: environment variable LLM_AFFINITY_TEST_UNSET_SALT is not set"},
		{name: "redis password of an unset variable",
			h: &Handler{Name: "cfg-test-unset-password", Default: "a", Models: model(""),
				Store: &StoreConfig{Redis: &RedisConfig{Addresses: []string{"127.0.0.1:1"}, Password: "{env.LLM_AFFINITY_TEST_UNSET_PASSWORD}"}}},
			wantErr: "store redis: password: environment variable LLM_AFFINITY_TEST_UNSET_PASSWORD is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cfgProvision(t, tt.h)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Provision error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestProvisionLoadsRouter(t *testing.T) {
	h := cfgValidHandler()
	if err := cfgProvision(t, h); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if h.router == nil {
		t.Fatal("no router loaded")
	}
	seen := routerRoutes(h.Routes)
	if len(seen) != 2 || seen[0].Name != "chat" || seen[1].Name != "code" || seen[1].Description != "code generation" {
		t.Errorf("router routes = %+v, want chat and code in config order", seen)
	}
	if h.routeByName["code"] != h.Routes[1] || len(h.Routes[1].models) == 0 || h.Routes[1].Policy != PolicyFirst {
		t.Errorf("route code is not provisioned: %+v", h.Routes[1])
	}
}

// Caddy provisions a module and then validates it (cleaning up when either
// fails), so an invalid config must make one of the two fail, and Provision
// must not panic on it.
func TestProvisionThenValidateErrors(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(h *Handler)
		wantErr string
	}{
		{name: "missing default", modify: func(h *Handler) { h.Default = "" }, wantErr: "default is required"},
		{name: "default names an unknown model", modify: func(h *Handler) { h.Default = "x" },
			wantErr: "default names unknown model 'x'"},
		{name: "no models", modify: func(h *Handler) { h.Models = nil; h.Routes = nil; h.RouterRaw = nil },
			wantErr: "at least one model is required"},
		{name: "nil model", modify: func(h *Handler) { h.Models = append(h.Models, nil) },
			wantErr: "model 2: name is required"},
		{name: "nil route", modify: func(h *Handler) { h.Routes = append([]*Route{nil}, h.Routes...) },
			wantErr: "route 0: name is required"},
		{name: "route with unknown model", modify: func(h *Handler) { h.Routes[0].Models = []string{"x"} },
			wantErr: "route 'chat' names unknown model 'x'"},
		{name: "to is a URL", modify: func(h *Handler) { h.Models[0].To = []string{"https://api.openai.com"} },
			wantErr: "host:port"},
		{name: "router without endpoint", modify: func(h *Handler) {
			h.RouterRaw = json.RawMessage(`{"router":"llm","model":"arch"}`)
		}, wantErr: "endpoint is required"},
		{name: "unknown router", modify: func(h *Handler) {
			h.RouterRaw = json.RawMessage(`{"router":"magic"}`)
		}, wantErr: "loading router"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := cfgValidHandler()
			tt.modify(h)
			err := cfgProvision(t, h)
			if err == nil {
				err = h.Validate()
			}
			if err == nil {
				t.Fatalf("Provision and Validate succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestProvisionRouting(t *testing.T) {
	const salt = "salt-0123456789abcdef"
	t.Setenv("LLM_AFFINITY_TEST_SALT", salt)
	// from JSON, as Caddy loads it: conditions arrive uncompiled
	var h Handler
	err := json.Unmarshal([]byte(`{
		"default": "a",
		"implicit": true,
		"implicit_salt": "{env.LLM_AFFINITY_TEST_SALT}",
		"models": [
			{"name": "a", "to": ["127.0.0.1:1"]},
			{"name": "b", "to": ["127.0.0.1:2"], "weight": 0},
			{"name": "c", "to": ["127.0.0.1:3"], "weight": 5}
		],
		"routes": [
			{"name": "plain", "models": ["a", "b"]},
			{"name": "fix", "models": ["c", "a"], "policy": "weighted", "when": [{"regex": "(?i)\\bfix\\b"}]}
		]
	}`), &h)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfgProvision(t, &h); err != nil {
		t.Fatalf("Provision: %v", err)
	}

	for _, tt := range []struct {
		model string
		want  int
	}{{"a", 1}, {"b", 0}, {"c", 5}} {
		if m := h.models[tt.model]; m == nil || m.weight() != tt.want {
			t.Errorf("model %s: weight = %+v, want %d", tt.model, m, tt.want)
		}
	}
	if h.Models[0].Weight != nil {
		t.Errorf("model a: Weight = %d, want it left unset in the config", *h.Models[0].Weight)
	}

	plain, fix := h.routeByName["plain"], h.routeByName["fix"]
	if plain == nil || fix == nil {
		t.Fatalf("routes by name = %v", h.routeByName)
	}
	if plain.Policy != PolicyFirst {
		t.Errorf("route plain: policy = %q, want %q", plain.Policy, PolicyFirst)
	}
	if fix.Policy != PolicyWeighted {
		t.Errorf("route fix: policy = %q, want %q", fix.Policy, PolicyWeighted)
	}
	if len(fix.models) != 2 || fix.models[0] != h.models["c"] || fix.models[1] != h.models["a"] {
		t.Errorf("route fix: models = %+v, want c then a", fix.models)
	}
	if !fix.When[0].Match(&llmapi.Summary{LastUserText: "please FIX it"}, nil) {
		t.Errorf("route fix: the regex condition does not match after Provision (not compiled?)")
	}
	if fix.When[0].Match(&llmapi.Summary{LastUserText: "prefix"}, nil) {
		t.Errorf("route fix: the regex condition matches text it should not")
	}
	if err := h.Validate(); err != nil {
		t.Errorf("Validate after Provision: %v", err)
	}

	if h.implicitSalt != salt {
		t.Errorf("implicitSalt = %q, want the resolved placeholder %q", h.implicitSalt, salt)
	}
	if h.ImplicitSalt != "{env.LLM_AFFINITY_TEST_SALT}" {
		t.Errorf("ImplicitSalt = %q, want the placeholder left in the config", h.ImplicitSalt)
	}
	if cfg, _ := json.Marshal(&h); strings.Contains(string(cfg), salt) {
		t.Errorf("the handler's JSON holds the resolved salt: %s", cfg)
	}
}

func TestProvisionImplicitSaltDefault(t *testing.T) {
	tests := []struct {
		name string
		salt string
	}{
		{name: "unset", salt: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{Default: "a", ImplicitSalt: tt.salt, Models: []*Model{{Name: "a", To: []string{"127.0.0.1:9"}}}}
			if err := cfgProvision(t, h); err != nil {
				t.Fatalf("Provision: %v", err)
			}
			if h.implicitSalt == "" || h.implicitSalt != processSalt {
				t.Errorf("implicitSalt = %q, want the process salt %q", h.implicitSalt, processSalt)
			}
		})
	}
}

// cfgProvisionHeld provisions h and returns its Cleanup for the test to call
// when it chooses; it runs when the test ends if the test did not call it.
func cfgProvisionHeld(t *testing.T, h *Handler) (cleanup func()) {
	t.Helper()
	ctx := cfgContext(t)
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	cfgStart(t, ctx)
	var once sync.Once
	cleanup = func() {
		once.Do(func() {
			if err := h.Cleanup(); err != nil {
				t.Errorf("Cleanup: %v", err)
			}
		})
	}
	t.Cleanup(cleanup)
	return cleanup
}

// cfgMinimal is a minimal valid handler with the given pin store name.
func cfgMinimal(name string) *Handler {
	return &Handler{Name: name, Default: "a", Models: []*Model{{Name: "a", To: []string{"127.0.0.1:9"}}}}
}

func TestProvisionStoreDefaults(t *testing.T) {
	on, off := true, false
	tests := []struct {
		name      string
		strip     *bool
		wantStrip bool
	}{
		{name: "strip_header unset", strip: nil, wantStrip: true},
		{name: "strip_header on", strip: &on, wantStrip: true},
		{name: "strip_header off", strip: &off, wantStrip: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := cfgMinimal("")
			h.StripHeader = tt.strip
			cfgProvisionHeld(t, h)
			if h.Name != "default" {
				t.Errorf("Name = %q, want default", h.Name)
			}
			if h.stripHeader != tt.wantStrip {
				t.Errorf("stripHeader = %v, want %v", h.stripHeader, tt.wantStrip)
			}
			if h.StripHeader != tt.strip {
				t.Errorf("StripHeader = %v, want the config's %v unchanged", h.StripHeader, tt.strip)
			}
			p := lookupStore("default")
			if p == nil || p.Store != h.pinStore {
				t.Fatalf("the pool's store named default = %v; want the handler's store", p)
			}
			if p.sharedConfig != "" {
				t.Errorf("sharedConfig = %q without a store, want empty", p.sharedConfig)
			}
		})
	}
}

// Handlers with one name share one pin store: a reload keeps the pins.
func TestProvisionSharesStoreByName(t *testing.T) {
	const name = "cfg-test-shared"
	ctx := context.Background()
	key := affinity.PinKey("", "session-1", "m")
	pin := affinity.Pin{Model: "a", Route: "r"}

	h1, h2, other := cfgMinimal(name), cfgMinimal(name), cfgMinimal("cfg-test-other")
	cleanup1 := cfgProvisionHeld(t, h1)
	cleanup2 := cfgProvisionHeld(t, h2)
	cfgProvisionHeld(t, other)

	if h1.pinStore == nil || h1.pinStore != h2.pinStore {
		t.Fatalf("two handlers named %q have different stores", name)
	}
	if other.pinStore == h1.pinStore {
		t.Fatalf("handlers with different names share a store")
	}
	if refs, ok := pinStores.References(name); !ok || refs != 2 {
		t.Errorf("pool references of %q = %d, %v; want 2", name, refs, ok)
	}
	h1.pinStore.Set(ctx, key, pin)
	if got, ok := h2.pinStore.Get(ctx, key); !ok || got != pin {
		t.Errorf("pin set through one handler, seen through the other = %+v, %v; want %+v", got, ok, pin)
	}
	if got, ok := other.pinStore.Get(ctx, key); ok {
		t.Errorf("a store of another name holds the pin %+v", got)
	}

	// the old config goes: the store stays for the new one
	cleanup1()
	p := lookupStore(name)
	if p == nil || p.Store != h2.pinStore {
		t.Fatalf("after one Cleanup the pool's %q = %v; want the store kept", name, p)
	}
	if got, ok := h2.pinStore.Get(ctx, key); !ok || got != pin {
		t.Errorf("after one Cleanup the pin = %+v, %v; want %+v", got, ok, pin)
	}

	// the last one goes: so does the store
	cleanup2()
	if p := lookupStore(name); p != nil {
		t.Fatalf("after both Cleanups the pool still has %q", name)
	}
	if _, ok := pinStores.References(name); ok {
		t.Errorf("after both Cleanups the pool still counts references to %q", name)
	}
	if lookupStore("cfg-test-other") == nil {
		t.Errorf("the other store went with them")
	}

	// a new handler of that name starts empty
	h3 := cfgMinimal(name)
	cfgProvisionHeld(t, h3)
	if h3.pinStore == h1.pinStore {
		t.Errorf("a destroyed store was handed out again")
	}
	if got, ok := h3.pinStore.Get(ctx, key); ok {
		t.Errorf("a new store holds the old pin %+v", got)
	}
}

// A reload with another ttl applies it to the kept store.
func TestProvisionReconfiguresKeptStore(t *testing.T) {
	const name = "cfg-test-reconfigure"
	ctx := context.Background()
	key := affinity.PinKey("", "session-1", "m")

	h1 := cfgMinimal(name)
	h1.TTL = caddy.Duration(time.Hour)
	cfgProvisionHeld(t, h1)
	h1.pinStore.Set(ctx, key, affinity.Pin{Model: "a"})

	h2 := cfgMinimal(name)
	h2.TTL = caddy.Duration(100 * time.Millisecond)
	cfgProvisionHeld(t, h2)
	if h2.pinStore != h1.pinStore {
		t.Fatal("the reload got another store")
	}
	if _, ok := h2.pinStore.Get(ctx, key); !ok { // this read applies the new TTL
		t.Fatal("the pin did not survive the reload")
	}
	// idle: with the new 100ms TTL it expires; with the old 1h it would not
	// (Len does not count as a read)
	const patience = 2 * time.Minute // a loaded machine never reaches it
	deadline := time.Now().Add(patience)
	for {
		if h2.pinStore.Len() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pin is still there %v after its last read; the reload's ttl of 100ms was not applied", patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, ok := h2.pinStore.Get(ctx, key); ok {
		t.Errorf("Get after expiry = %+v, true", got)
	}
}

// The shared store's settings: defaults filled in, placeholders resolved,
// the config left as written.
func TestProvisionSharedStoreConfig(t *testing.T) {
	const name = "cfg-test-redis"
	t.Setenv("LLM_AFFINITY_TEST_REDIS_PASSWORD", "s3cret")
	newHandler := func(rc *RedisConfig) *Handler {
		h := cfgMinimal(name)
		if rc != nil {
			h.Store = &StoreConfig{Redis: rc}
		}
		return h
	}
	fingerprint := func() map[string]any {
		t.Helper()
		p := lookupStore(name)
		if p == nil {
			t.Fatalf("no store named %q", name)
		}
		if p.sharedConfig == "" {
			return nil
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(p.sharedConfig), &v); err != nil {
			t.Fatalf("sharedConfig %q: %v", p.sharedConfig, err)
		}
		return v
	}

	// port 1 on loopback refuses connections: the store must serve anyway
	h1 := newHandler(&RedisConfig{Addresses: []string{"127.0.0.1:1"}, Password: "{env.LLM_AFFINITY_TEST_REDIS_PASSWORD}"})
	cfgProvisionHeld(t, h1)
	want := map[string]any{
		"addresses": []any{"127.0.0.1:1"},
		"password":  "s3cret",
		"prefix":    "llm_affinity:" + name + ":",
		"timeout":   float64(DefaultRedisTimeout),
	}
	if got := fingerprint(); !reflect.DeepEqual(got, want) {
		t.Errorf("shared store settings = %v, want %v", got, want)
	}
	if rc := h1.Store.Redis; rc.Prefix != "" || rc.Timeout != 0 || rc.Password != "{env.LLM_AFFINITY_TEST_REDIS_PASSWORD}" {
		t.Errorf("Provision changed the config: %+v", rc)
	}
	ctx := context.Background()
	key := affinity.PinKey("", "session-1", "m")
	pin, decided := h1.pinStore.GetOrDecide(ctx, key, func(context.Context) affinity.Pin { return affinity.Pin{Model: "a"} })
	if pin.Model != "a" || !decided {
		t.Errorf("GetOrDecide with Redis down = %+v, %v; want a local decision", pin, decided)
	}
	if got, ok := h1.pinStore.Get(ctx, key); !ok || got.Model != "a" {
		t.Errorf("Get with Redis down = %+v, %v; want the local pin", got, ok)
	}

	// a reload with the same settings, then with others, then without
	cfgProvisionHeld(t, newHandler(&RedisConfig{Addresses: []string{"127.0.0.1:1"}, Password: "{env.LLM_AFFINITY_TEST_REDIS_PASSWORD}"}))
	if got := fingerprint(); !reflect.DeepEqual(got, want) {
		t.Errorf("after an unchanged reload, shared store settings = %v, want %v", got, want)
	}
	cfgProvisionHeld(t, newHandler(&RedisConfig{Addresses: []string{"127.0.0.1:1"}, Prefix: "p:", DB: 2, Timeout: caddy.Duration(time.Second)}))
	want = map[string]any{
		"addresses": []any{"127.0.0.1:1"},
		"db":        float64(2),
		"prefix":    "p:",
		"timeout":   float64(time.Second),
	}
	if got := fingerprint(); !reflect.DeepEqual(got, want) {
		t.Errorf("after a changed reload, shared store settings = %v, want %v", got, want)
	}
	cfgProvisionHeld(t, newHandler(nil))
	if got := fingerprint(); got != nil {
		t.Errorf("after a reload without a store, shared store settings = %v, want none", got)
	}
}

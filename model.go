package llmaffinity

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/llmaffinity/caddy-llm-affinity/internal/placeholder"
	"github.com/llmaffinity/caddy-llm-affinity/internal/subdirective"
	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// The APIs a model may speak (Model.API).
const (
	APIChat      = "chat"
	APIMessages  = "messages"
	APIResponses = "responses"
)

// modelAPIs maps Model.API to the wire format.
var modelAPIs = map[string]llmapi.API{APIChat: llmapi.Chat, APIMessages: llmapi.Messages, APIResponses: llmapi.Responses}

// Providers: how a model's API key is sent upstream.
const (
	ProviderOpenAI    = "openai"    // Authorization: Bearer <key>
	ProviderAnthropic = "anthropic" // x-api-key: <key>
)

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
	// such as {env.OPENAI_API_KEY} are resolved at provision time; one that
	// names an unset variable fails the load. Optional: without it the
	// client's own credential goes upstream if the handler forwards client
	// credentials, else none.
	APIKey string `json:"api_key,omitempty"`

	// How the key is sent: "openai" (Authorization: Bearer) or "anthropic"
	// (x-api-key). Default: openai.
	Provider string `json:"provider,omitempty"`

	// The model's share under a route's weighted policy; 0 means it serves
	// only as a failover candidate. Default: 1.
	Weight *int `json:"weight,omitempty"`

	// The API the model speaks: "chat" (OpenAI Chat Completions), "messages"
	// (Anthropic Messages) or "responses" (OpenAI Responses). A request in
	// another API is translated, its response and stream translated back.
	// Default: messages for provider anthropic, else chat.
	API string `json:"api,omitempty"`

	// The path requests to the model go to. Default: the client's path when
	// the client speaks the model's API, else /v1/chat/completions,
	// /v1/messages or /v1/responses.
	Path string `json:"path,omitempty"`

	// What the model's tokens cost, for the cost metric and log field;
	// nil when unpriced.
	Price *Price `json:"price,omitempty"`

	api                 llmapi.API
	quotedUpstreamModel []byte
	apiKey              string
	upstream            *upstreamTarget
	origin              origin
}

// Price is what a model's tokens cost, in US dollars per million tokens.
// Cached input tokens are billed at CacheRead and CacheWrite instead of
// Input. Each is 0 or more; a kind left out costs nothing.
type Price struct {
	// Input tokens that were neither read from nor written to the
	// provider's prompt cache. Default: 0.
	Input float64 `json:"input,omitempty"`
	// Output tokens, reasoning included. Default: 0.
	Output float64 `json:"output,omitempty"`
	// Input tokens read from the prompt cache (a cache hit). Default: 0.
	CacheRead float64 `json:"cache_read,omitempty"`
	// Input tokens written to the prompt cache (Anthropic bills them; OpenAI
	// reports none). Default: 0.
	CacheWrite float64 `json:"cache_write,omitempty"`
}

// priceKinds are the kinds of tokens a price names, as the Caddyfile and
// the JSON config spell them, in the order of Price's fields.
var priceKinds = []string{"input", "output", "cache_read", "cache_write"}

// field is the price of kind (one of priceKinds); nil for another kind.
func (p *Price) field(kind string) *float64 {
	switch kind {
	case "input":
		return &p.Input
	case "output":
		return &p.Output
	case "cache_read":
		return &p.CacheRead
	case "cache_write":
		return &p.CacheWrite
	}
	return nil
}

// cost is what u costs at these prices, in US dollars.
func (p *Price) cost(u llmapi.Usage) float64 {
	uncached := max(u.InputTokens-u.CacheReadTokens-u.CacheWriteTokens, 0)
	return (float64(uncached)*p.Input + float64(u.OutputTokens)*p.Output +
		float64(u.CacheReadTokens)*p.CacheRead + float64(u.CacheWriteTokens)*p.CacheWrite) / 1e6
}

// upstreamTarget is what the handler hands the upstream source: the serving
// model's name and dial addresses, and nothing secret.
type upstreamTarget struct {
	model string
	dials []string
}

// String names the target, should a template ever print the variable.
func (t *upstreamTarget) String() string { return t.model }

// provision sets the model's defaults and resolves its api_key placeholder.
func (m *Model) provision() error {
	if m.Provider == "" {
		m.Provider = ProviderOpenAI
	}
	if m.UpstreamModel == "" {
		m.UpstreamModel = m.Name
	}
	if m.API == "" {
		m.API = APIChat
		if m.Provider == ProviderAnthropic {
			m.API = APIMessages
		}
	}
	m.api = modelAPIs[m.API]
	m.quotedUpstreamModel, _ = json.Marshal(m.UpstreamModel) // a string always marshals
	key, err := placeholder.Resolve(m.APIKey)
	if err != nil {
		return fmt.Errorf("model '%s': api_key: %v", m.Name, err)
	}
	m.apiKey = key
	m.upstream = &upstreamTarget{model: m.Name, dials: m.To}
	return nil
}

// weight is the model's share under a weighted policy (see Weight).
func (m *Model) weight() int {
	if m.Weight == nil {
		return 1
	}
	return *m.Weight
}

// validate checks the model's settings but its weight (see checkRanges),
// and records it in seen, the models before it by name; i is its place in
// the handler's list, for a model without a name.
func (m *Model) validate(i int, seen map[string]*Model) error {
	if m.Name == "" {
		return m.origin.errorf("model %d: name is required", i)
	}
	if seen[m.Name] != nil {
		return m.origin.errorf("model '%s' is defined more than once", m.Name)
	}
	seen[m.Name] = m
	if len(m.To) == 0 {
		return m.origin.errorf("model '%s': 'to' is required (one or more host:port)", m.Name)
	}
	for _, addr := range m.To {
		if err := checkDial(addr); err != nil {
			hint := ""
			if errors.Is(err, errDialIsURL) {
				hint = "; TLS to an upstream is set with reverse_proxy's 'transport http { tls }'"
			}
			return m.origin.errorf("model '%s': to %s: %v%s", m.Name, addr, err, hint)
		}
	}
	switch m.Provider {
	case "", ProviderOpenAI, ProviderAnthropic:
	default:
		return m.origin.errorf("model '%s': unknown provider '%s' (want openai or anthropic)", m.Name, m.Provider)
	}
	if _, known := modelAPIs[m.API]; m.API != "" && !known {
		return m.origin.errorf("model '%s': unknown api '%s' (want chat, messages or responses)", m.Name, m.API)
	}
	if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
		return m.origin.errorf("model '%s': path '%s' must start with /", m.Name, m.Path)
	}
	return nil
}

// checkRanges checks the model's numbers, which the Caddyfile parser checks
// as it reads them.
func (m *Model) checkRanges() error {
	if m.Weight != nil && *m.Weight < 0 {
		return m.origin.errorf("model '%s': weight must not be negative", m.Name)
	}
	if m.Price != nil {
		for _, kind := range priceKinds {
			if v := *m.Price.field(kind); v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return m.origin.errorf("model '%s': price %s must be a finite number of US dollars per million tokens, 0 or more", m.Name, kind)
			}
		}
	}
	return nil
}

// parseModel reads a model block:
//
//	model <name> {
//		to             <host:port> ...
//		upstream_model <id>
//		api_key        <value>
//		provider       openai|anthropic
//		api            chat|messages|responses
//		path           <upstream path>
//		weight         <n>
//		price          input <usd> output <usd> cache_read <usd> cache_write <usd>
//	}
func parseModel(d *caddyfile.Dispenser) (*Model, error) {
	m := &Model{origin: originOf(d)}
	if !d.AllArgs(&m.Name) {
		return nil, d.Errf("model takes exactly one name: model <name> { ... }")
	}
	prefix := fmt.Sprintf("model '%s': ", m.Name)
	err := subdirective.Each(d, prefix, func(sub string) error {
		switch sub {
		case "upstream_model":
			return subdirective.One(d, "", sub, m.UpstreamModel != "", subdirective.String(&m.UpstreamModel), "")
		case "api_key":
			return subdirective.One(d, "", sub, m.APIKey != "", subdirective.String(&m.APIKey), "")
		case "provider":
			return subdirective.One(d, "", sub, m.Provider != "", subdirective.String(&m.Provider), "")
		case "api":
			return subdirective.One(d, "", sub, m.API != "", subdirective.String(&m.API), "")
		case "path":
			return subdirective.One(d, "", sub, m.Path != "", subdirective.String(&m.Path), "")
		case "to":
			return appendArgs(d, &m.To)
		case "price":
			if m.Price != nil {
				return d.Errf("%sprice already specified", prefix)
			}
			var err error
			m.Price, err = parsePrice(d, prefix)
			return err
		case "weight":
			var n int
			err := subdirective.One(d, prefix, sub, m.Weight != nil, subdirective.Int(&n, 0, math.MaxInt), "must be a whole number, 0 or more")
			if err == nil {
				m.Weight = &n
			}
			return err
		}
		return subdirective.ErrUnrecognized
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// priceSyntax is the price line, for its errors.
const priceSyntax = "price input <usd> output <usd> cache_read <usd> cache_write <usd> (US dollars per million tokens, any order, each at most once)"

// parsePrice reads the pairs of kind and price of the price line d is on
//
//	price input <usd> output <usd> cache_read <usd> cache_write <usd>
//
// in any order, each kind at most once, at least one; errors start with
// prefix, the model's.
func parsePrice(d *caddyfile.Dispenser, prefix string) (*Price, error) {
	args := d.RemainingArgs()
	// like the model's other settings, a price is one line, not a block
	if d.Next() {
		if d.Val() == "{" {
			return nil, d.Errf("%sprice takes its pairs on its line, not in a block: %s", prefix, priceSyntax)
		}
		d.Prev()
	}
	if len(args) == 0 {
		return nil, d.Errf("%sprice needs at least one kind and its price: %s", prefix, priceSyntax)
	}
	p := new(Price)
	given := make(map[string]bool, len(priceKinds))
	for i := 0; i < len(args); i += 2 {
		kind := args[i]
		dst := p.field(kind)
		if dst == nil {
			return nil, d.Errf("%sprice: unknown kind '%s' (want input, output, cache_read or cache_write, each followed by its price)", prefix, kind)
		}
		if given[kind] {
			return nil, d.Errf("%sprice %s already specified", prefix, kind)
		}
		given[kind] = true
		if i+1 == len(args) {
			return nil, d.Errf("%sprice %s needs a number after it: US dollars per million tokens, such as 2.50", prefix, kind)
		}
		if !subdirective.Decimal(dst)(args[i+1]) {
			return nil, d.Errf("%sinvalid price %s '%s': must be a decimal number of US dollars per million tokens, 0 or more, such as 2.50", prefix, kind, args[i+1])
		}
	}
	return p, nil
}

// Interface guard
var _ fmt.Stringer = (*upstreamTarget)(nil)

// Package llm is the router module http.handlers.llm_affinity.routers.llm:
// it asks an Arch-Router compatible model, served by any OpenAI-compatible
// server, which route fits a conversation.
package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/llmaffinity/caddy-llm-affinity/internal/subdirective"
	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
	"github.com/llmaffinity/caddy-llm-affinity/routing"
)

func init() {
	caddy.RegisterModule(LLM{})
}

// maxRouterResponse bounds how much of the routing model's reply is read.
const maxRouterResponse = 1 << 20

// LLM routes with an Arch-Router compatible model (e.g.
// katanemo/Arch-Router-1.5B) served by any OpenAI-compatible server such as
// vLLM, Ollama or llama.cpp. It sends the Arch-Router prompt as one user
// message at temperature 0 and reads the route from the answer.
type LLM struct {
	// The OpenAI-compatible chat completions URL of the routing model,
	// e.g. http://127.0.0.1:11434/v1/chat/completions. Required.
	Endpoint string `json:"endpoint,omitempty"`

	// The model id sent to the endpoint, e.g. katanemo/Arch-Router-1.5B. Required.
	Model string `json:"model,omitempty"`

	// How long one routing call may take before the request falls back to
	// the default model. Default: 2s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Sent as "Authorization: Bearer <key>" when set. Placeholders such as
	// {env.ROUTER_API_KEY} are resolved at provision time.
	APIKey string `json:"api_key,omitempty"`

	endpoint string
	apiKey   string
	client   *http.Client
}

// CaddyModule returns the Caddy module information.
func (LLM) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.llm_affinity.routers.llm",
		New: func() caddy.Module { return new(LLM) },
	}
}

// Provision resolves placeholders, sets defaults and builds the HTTP client.
func (l *LLM) Provision(caddy.Context) error {
	repl := caddy.NewReplacer()
	l.endpoint = repl.ReplaceAll(l.Endpoint, "")
	l.apiKey = repl.ReplaceAll(l.APIKey, "")
	if l.Timeout <= 0 {
		l.Timeout = caddy.Duration(2 * time.Second)
	}
	l.client = &http.Client{Timeout: time.Duration(l.Timeout)}
	return nil
}

// Validate checks the endpoint and model.
func (l *LLM) Validate() error {
	if l.Endpoint == "" {
		return errors.New("router llm: endpoint is required")
	}
	u, err := url.Parse(l.endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("router llm: endpoint must be an http:// or https:// URL, got %q", l.Endpoint)
	}
	if l.Model == "" {
		return errors.New("router llm: model is required")
	}
	return nil
}

// chatRequest and chatResponse are the parts of the OpenAI chat completions
// wire format the router uses.
type chatRequest struct {
	Model       string             `json:"model"`
	Messages    []llmapi.Utterance `json:"messages"`
	Temperature float64            `json:"temperature"`
	MaxTokens   int                `json:"max_tokens"`
	Stream      bool               `json:"stream"`
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

// Route asks the routing model which route fits conv. It returns within the
// configured timeout, with an error when the model cannot be reached or its
// reply is not a chat completion.
func (l *LLM) Route(ctx context.Context, routes []routing.Route, conv []llmapi.Utterance) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(l.Timeout))
	defer cancel()
	payload, err := json.Marshal(chatRequest{
		Model:    l.Model,
		Messages: []llmapi.Utterance{{Role: "user", Content: routing.Prompt(routes, conv)}},
		// an answer is {"route": "name"}: a few dozen tokens at most
		MaxTokens: 64,
	})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.endpoint, bytes.NewReader(payload))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if l.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+l.apiKey)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("calling routing model: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRouterResponse))
	if err != nil {
		return "", fmt.Errorf("reading routing model response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("routing model answered HTTP %d", resp.StatusCode)
	}
	var parsed chatResponse
	if err := json.Unmarshal(body, &parsed); err != nil || len(parsed.Choices) == 0 {
		return "", errors.New("routing model response is not a chat completion")
	}
	return routing.ParseRoute(parsed.Choices[0].Message.Content), nil
}

// UnmarshalCaddyfile sets up the router from Caddyfile tokens. Syntax:
//
//	router llm {
//		endpoint <url>
//		model    <id>
//		timeout  <duration>
//		api_key  <value>
//	}
func (l *LLM) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the router type name
	if d.NextArg() {
		return d.ArgErr()
	}
	const prefix = "router llm: "
	return subdirective.Each(d, prefix, func(sub string) error {
		switch sub {
		case "endpoint":
			return subdirective.One(d, prefix, sub, l.Endpoint != "", subdirective.String(&l.Endpoint), "")
		case "model":
			return subdirective.One(d, prefix, sub, l.Model != "", subdirective.String(&l.Model), "")
		case "api_key":
			return subdirective.One(d, prefix, sub, l.APIKey != "", subdirective.String(&l.APIKey), "")
		case "timeout":
			return subdirective.One(d, prefix, sub, l.Timeout != 0, subdirective.PositiveDuration(&l.Timeout), "must be a positive duration")
		}
		return subdirective.ErrUnrecognized
	})
}

// Interface guard: an LLM is a router, a Caddy module with a lifecycle,
// and configurable from a Caddyfile.
var _ interface {
	routing.Router
	caddy.Provisioner
	caddy.Validator
	caddyfile.Unmarshaler
} = (*LLM)(nil)

// Package routing decides which route a chat request belongs to: the Router
// interface that routing models implement, the rules evaluated in-process
// before any model is asked, and the Arch-Router prompt and answer format.
// The LLM router module itself is in routing/llm.
package routing

import (
	"context"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// Router picks the route that best fits a conversation.
type Router interface {
	// Route returns the name of the chosen route, or "" when none fits.
	// An error means the router could not decide; callers fall back.
	Route(ctx context.Context, routes []Route, conv []llmapi.Utterance) (string, error)
}

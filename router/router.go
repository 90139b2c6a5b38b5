// Package router holds what routing needs from a chat request and the routers
// that decide: the request envelope and conversation of the OpenAI and
// Anthropic wire formats, the Router interface, and the LLM router that asks
// an Arch-Router compatible model.
package router

import "context"

// Router picks the route that best fits a conversation.
type Router interface {
	// Route returns the name of the chosen route, or "" when none fits.
	// An error means the router could not decide; callers fall back.
	Route(ctx context.Context, routes []Route, conv []Message) (string, error)
}

// Package llmapi holds the wire formats of the LLM APIs the gateway speaks,
// with no Caddy in it: which paths are which API, the validating envelope
// scan of a request body and the splice that rewrites it, the decoded view
// routing reads, and each API's error body. Code of one API lives in the
// file named for it (chat.go, messages.go, responses.go); turn.go and
// stream.go hold the neutral form every API translates into and out of.
package llmapi

import "strings"

// API names the wire format of a chat request.
type API uint8

// The wire formats the gateway understands.
const (
	// Chat is OpenAI Chat Completions: POST .../chat/completions.
	Chat API = iota
	// Messages is Anthropic Messages: POST .../messages.
	Messages
	// Responses is OpenAI Responses: POST .../responses.
	Responses
)

// String returns the API's short name, as logs show it.
func (a API) String() string {
	switch a {
	case Messages:
		return "anthropic"
	case Responses:
		return "responses"
	}
	return "openai"
}

// ForPath returns the API of a request path, whose trailing slash does not
// change its meaning; false when the path is no chat API's.
func ForPath(path string) (API, bool) {
	path = strings.TrimSuffix(path, "/")
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		return Chat, true
	case strings.HasSuffix(path, "/messages"):
		return Messages, true
	case strings.HasSuffix(path, "/responses"):
		return Responses, true
	}
	return 0, false
}

package llmapi

import "testing"

func TestAPIString(t *testing.T) {
	if got := Chat.String(); got != "openai" {
		t.Errorf("Chat.String() = %q, want %q", got, "openai")
	}
	if got := Messages.String(); got != "anthropic" {
		t.Errorf("Messages.String() = %q, want %q", got, "anthropic")
	}
	if got := Responses.String(); got != "responses" {
		t.Errorf("Responses.String() = %q, want %q", got, "responses")
	}
}

func TestForPath(t *testing.T) {
	tests := []struct {
		path string
		api  API
		ok   bool
	}{
		{"/v1/chat/completions", Chat, true},
		{"/v1/chat/completions/", Chat, true},
		{"/openai/deployments/x/chat/completions", Chat, true},
		{"/v1/messages", Messages, true},
		{"/v1/messages/", Messages, true},
		{"/routing/v1/messages", Messages, true},
		{"/v1/messages/count_tokens", 0, false},
		{"/v1/chat/completions//", 0, false},
		{"/v1/responses", Responses, true},
		{"/v1/responses/", Responses, true},
		{"/routing/v1/responses", Responses, true},
		{"/v1/responses/resp_1", 0, false},
		{"/v1/completions", 0, false},
		{"/v1/embeddings", 0, false},
		{"/", 0, false},
	}
	for _, tt := range tests {
		api, ok := ForPath(tt.path)
		if ok != tt.ok || (ok && api != tt.api) {
			t.Errorf("ForPath(%q) = %v, %v; want %v, %v", tt.path, api, ok, tt.api, tt.ok)
		}
	}
}

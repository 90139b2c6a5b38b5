package routing

import (
	"testing"

	"github.com/llmaffinity/caddy-llm-affinity/internal/agentbody"
	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

var benchRoutes = []Route{
	{Name: "code_generation", Description: "writing new code, functions, tests or scaffolding from a description"},
	{Name: "tool_calling", Description: "reading files, searching code, running commands and tests"},
	{Name: "analysis", Description: "reasoning about results, comparing options, explaining a recommendation"},
	{Name: "summarization", Description: "summarising changes, logs or documents"},
}

// BenchmarkPrompt builds the routing model's prompt for a 32 KB agent body:
// "prompt" from an already decoded conversation, "decode+prompt" including
// the Decode that produces it (the full cost of asking the router).
func BenchmarkPrompt(b *testing.B) {
	body := agentbody.Generate(32 << 10)
	req, err := llmapi.Decode(body)
	if err != nil {
		b.Fatal(err)
	}
	if len(req.Conversation) == 0 {
		b.Fatal("empty conversation")
	}
	b.Run("32KB/prompt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if Prompt(benchRoutes, req.Conversation) == "" {
				b.Fatal("empty prompt")
			}
		}
	})
	b.Run("32KB/decode+prompt", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			req, err := llmapi.Decode(body)
			if err != nil {
				b.Fatal(err)
			}
			if Prompt(benchRoutes, req.Conversation) == "" {
				b.Fatal("empty prompt")
			}
		}
	})
}

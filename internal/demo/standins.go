package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// The agent's script: what the stand-in providers answer at each step. Each
// step's text says what the agent will do next, which is what the stand-in
// router reads to decide the next turn's route.
var script = []struct {
	text  string
	calls []ToolCall
}{
	{
		text: "Fetching benchmarks for both databases; next I will reason about the throughput numbers.",
		calls: []ToolCall{
			{Name: "get_db_benchmarks", Arguments: `{"database":"postgresql","workload":"transactional"}`},
			{Name: "get_db_benchmarks", Arguments: `{"database":"mongodb","workload":"transactional"}`},
		},
	},
	{
		text: "PostgreSQL leads on transactions. Looking up case studies; then I will call a tool to check feature support.",
		calls: []ToolCall{
			{Name: "get_case_studies", Arguments: `{"database":"postgresql"}`},
			{Name: "get_case_studies", Arguments: `{"database":"mongodb"}`},
		},
	},
	{
		text: "Checking multi-document ACID support; next I will weigh everything and recommend one.",
		calls: []ToolCall{
			{Name: "check_feature_support", Arguments: `{"database":"mongodb","feature":"multi-document ACID transactions"}`},
		},
	},
}

// FinalAnswer is the stand-in providers' answer once the script is done.
const FinalAnswer = "Recommendation: PostgreSQL. It leads the transactional benchmarks, runs orders and " +
	"payments at marketplace scale, and JSONB covers flexible product catalogs."

// Provider is an OpenAI-compatible chat completions server that plays the
// agent deterministically: tool calls for three turns, then an answer. It
// answers with the model it was asked for, as a real provider does.
type Provider struct {
	// Requests counts the chat completions requests served.
	Requests atomic.Int64
}

// ServeHTTP answers POST .../chat/completions.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Role string `json:"role"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 10<<20)).Decode(&req); err != nil || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.Error(w, `{"error":{"message":"bad request","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	p.Requests.Add(1)
	// the step is how many assistant turns the conversation already has
	step := 0
	for _, m := range req.Messages {
		if m.Role == "assistant" {
			step++
		}
	}
	message := map[string]any{"role": "assistant", "content": FinalAnswer}
	finish := "stop"
	if step < len(script) {
		calls := make([]map[string]any, len(script[step].calls))
		for i, c := range script[step].calls {
			calls[i] = map[string]any{"id": fmt.Sprintf("call_%d_%d", step, i), "type": "function",
				"function": map[string]any{"name": c.Name, "arguments": c.Arguments}}
		}
		message = map[string]any{"role": "assistant", "content": script[step].text, "tool_calls": calls}
		finish = "tool_calls"
	}
	writeJSON(w, map[string]any{
		"id": fmt.Sprintf("chatcmpl-demo-%d", p.Requests.Load()), "object": "chat.completion", "created": 1,
		"model":   req.Model,
		"choices": []any{map[string]any{"index": 0, "message": message, "finish_reason": finish}},
		"usage":   map[string]any{"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
	})
}

// Router is an Arch-Router compatible routing model: it reads the
// conversation from the Arch-Router prompt and classifies the latest turn.
// A new user question needs data (tool_calling); an assistant turn that says
// it will reason, weigh or recommend needs analysis. Like a real router on
// these differently shaped turns, its answer changes from turn to turn.
type Router struct {
	// Calls counts the routing calls.
	Calls atomic.Int64
}

// Route names the stand-in router answers; the demo Caddyfile defines them.
const (
	RouteToolCalling = "tool_calling"
	RouteAnalysis    = "analysis"
)

// ServeHTTP answers the routing model's chat completions request.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 10<<20)).Decode(&req); err != nil || len(req.Messages) == 0 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	rt.Calls.Add(1)
	route := classify(req.Messages[0].Content)
	writeJSON(w, map[string]any{
		"id": "route", "object": "chat.completion", "created": 1, "model": "katanemo/Arch-Router-1.5B",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": fmt.Sprintf(`{"route": %q}`, route)}}},
	})
}

// classify picks the route for the latest turn of the conversation inside
// the prompt's <conversation> tags.
func classify(prompt string) string {
	_, after, ok := strings.Cut(prompt, "<conversation>")
	conversation, _, ok2 := strings.Cut(after, "</conversation>")
	var turns []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	if !ok || !ok2 || json.Unmarshal([]byte(strings.TrimSpace(conversation)), &turns) != nil || len(turns) == 0 {
		return "other"
	}
	latest := turns[len(turns)-1]
	if latest.Role == "assistant" {
		text := strings.ToLower(latest.Content)
		for _, word := range []string{"reason", "weigh", "recommend", "compare"} {
			if strings.Contains(text, word) {
				return RouteAnalysis
			}
		}
	}
	return RouteToolCalling
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// Package demo is the model-affinity demo: a database-selection agent that
// runs a real tool-calling loop with an official SDK (OpenAI's for Chat
// Completions and Responses, Anthropic's for Messages), and local stand-ins
// (two OpenAI-compatible providers and an Arch-Router compatible routing
// model) so it runs with no API keys.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// MaxTurns bounds the agent loop.
const MaxTurns = 10

// The agent's task.
const (
	SystemPrompt = "You are a database selection analyst. Use the tools to gather benchmarks, " +
		"case studies and feature support before you recommend a database, then give a short, reasoned answer."
	UserQuestion = "Should we use PostgreSQL or MongoDB for our e-commerce platform? We need strong " +
		"consistency for orders and payments, flexible product catalogs, and room to grow to millions of users."
)

// tool is one of the agent's function tools in no API's shape: each client
// writes it the way its API takes it.
type tool struct {
	name, description string
	// properties and required make the JSON Schema object of the arguments.
	properties map[string]any
	required   []string
}

// schema is the tool's parameters as a JSON Schema object.
func (t tool) schema() map[string]any {
	return map[string]any{"type": "object", "properties": t.properties, "required": t.required}
}

// tools are the agent's tools, as every client offers them to the model.
var tools = []tool{
	{"get_db_benchmarks", "Fetch performance benchmarks for a database under a workload type",
		map[string]any{
			"database": map[string]any{"type": "string", "enum": []string{"postgresql", "mongodb"}},
			"workload": map[string]any{"type": "string", "description": "e.g. transactional, catalog_reads"},
		}, []string{"database", "workload"}},
	{"get_case_studies", "Retrieve real-world e-commerce case studies for a database",
		map[string]any{"database": map[string]any{"type": "string"}}, []string{"database"}},
	{"check_feature_support", "Check whether a database supports a specific feature",
		map[string]any{
			"database": map[string]any{"type": "string"},
			"feature":  map[string]any{"type": "string"},
		}, []string{"database", "feature"}},
}

// RunTool returns the simulated result of a tool call.
func RunTool(name, arguments string) string {
	var args struct {
		Database string `json:"database"`
		Workload string `json:"workload"`
		Feature  string `json:"feature"`
	}
	_ = json.Unmarshal([]byte(arguments), &args) // a model may send odd arguments; answer anyway
	var result map[string]any
	switch name {
	case "get_db_benchmarks":
		tps := map[string]int{"postgresql": 48000, "mongodb": 41000}[args.Database]
		result = map[string]any{"database": args.Database, "workload": args.Workload,
			"transactions_per_second": tps, "p99_latency_ms": 12}
	case "get_case_studies":
		result = map[string]any{"database": args.Database, "case_studies": []string{
			"Large marketplace: orders and payments on " + args.Database + " at 20k orders/min",
			"Fashion retailer: product catalog with 2M SKUs on " + args.Database,
		}}
	case "check_feature_support":
		result = map[string]any{"database": args.Database, "feature": args.Feature, "supported": true,
			"notes": "supported in current releases"}
	default:
		result = map[string]any{"error": "unknown tool " + name}
	}
	out, _ := json.Marshal(result) // maps of strings and numbers always marshal
	return string(out)
}

// Conversation is the agent's conversation as a client of one API holds it:
// the system prompt, the question, the tools and every turn so far, all sent
// with each request (no state on the server). Its implementations differ
// only in how a turn is sent and read; RunAgent is the one loop for all.
type Conversation interface {
	// Send sends the conversation as one request, appends the model's reply
	// to it and returns the reply.
	Send(ctx context.Context) (Reply, error)
	// AddToolResults appends the results of the last reply's tool calls.
	AddToolResults(results []ToolResult)
}

// Reply is the model's answer to one request, read from any API's response.
type Reply struct {
	// Model is the response's "model" field: the model that answered.
	Model string
	// Text is the reply's text.
	Text string
	// Calls are the tool calls the model made, in order.
	Calls []ToolCall
	// Usage is the response's input tokens, as its API's usage reports them.
	Usage Usage
}

// Usage counts a response's input tokens, read from any API's usage.
type Usage struct {
	// Input counts every input token, cached ones included (Chat's
	// prompt_tokens, Responses' input_tokens, Messages' input_tokens plus
	// its cache reads and writes).
	Input int64
	// Cached counts the input tokens read from the provider's prompt cache
	// (Chat's prompt_tokens_details.cached_tokens, Responses'
	// input_tokens_details.cached_tokens, Messages' cache_read_input_tokens).
	Cached int64
}

// Add adds o's counts to u's.
func (u Usage) Add(o Usage) Usage {
	return Usage{Input: u.Input + o.Input, Cached: u.Cached + o.Cached}
}

// HitRatio is the share of the input read from the cache: Cached/Input, 0
// without input.
func (u Usage) HitRatio() float64 {
	if u.Input == 0 {
		return 0
	}
	return float64(u.Cached) / float64(u.Input)
}

// FullPrice is the input tokens billed at the full input price: those not
// read from the cache. (Anthropic bills its cache writes at 1.25 times that
// price; this counts them as full.)
func (u Usage) FullPrice() int64 { return u.Input - u.Cached }

// ToolCall is a call of one of the agent's tools: the neutral form's (its
// ID is empty in the stand-ins' script, which numbers the calls as it
// answers).
type ToolCall = llmapi.ToolCall

// ToolResult is what a tool call returned, for the next request.
type ToolResult struct {
	// CallID is the ID of the ToolCall it answers.
	CallID string
	// Content is the tool's output, JSON text.
	Content string
}

// Turn is what one request of the agent loop produced.
type Turn struct {
	// Model is the response's "model" field: the model that answered.
	Model string
	// Tools are the tools the model called, in order; none on the final turn.
	Tools []string
	// Answer is the final answer's text, on the last turn only.
	Answer string
	// Usage is the turn's input tokens, cached and not.
	Usage Usage
}

// RunAgent runs the tool-calling loop on conv until the model answers
// without tool calls, at most MaxTurns requests, each a separate request of
// conv's API with the whole conversation so far.
func RunAgent(ctx context.Context, conv Conversation) ([]Turn, error) {
	var turns []Turn
	for range MaxTurns {
		reply, err := conv.Send(ctx)
		if err != nil {
			return turns, fmt.Errorf("turn %d: %w", len(turns)+1, err)
		}
		turn := Turn{Model: reply.Model, Usage: reply.Usage}
		if len(reply.Calls) == 0 {
			turn.Answer = reply.Text
			return append(turns, turn), nil
		}
		results := make([]ToolResult, len(reply.Calls))
		for i, call := range reply.Calls {
			turn.Tools = append(turn.Tools, call.Name)
			results[i] = ToolResult{CallID: call.ID, Content: RunTool(call.Name, call.Arguments)}
		}
		conv.AddToolResults(results)
		turns = append(turns, turn)
	}
	return turns, errors.New("the agent did not answer within the turn limit")
}

// Switches counts how often the model changed from one turn to the next.
func Switches(turns []Turn) int {
	n := 0
	for i := 1; i < len(turns); i++ {
		if turns[i].Model != turns[i-1].Model {
			n++
		}
	}
	return n
}

// TotalUsage adds up the turns' usage.
func TotalUsage(turns []Turn) Usage {
	var u Usage
	for _, t := range turns {
		u = u.Add(t.Usage)
	}
	return u
}

// Package demo is the model-affinity demo: a database-selection agent that
// runs a real tool-calling loop with the official OpenAI Go SDK, and local
// stand-ins (two OpenAI-compatible providers and an Arch-Router compatible
// routing model) so it runs with no API keys.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
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

// Tools are the agent's tools, as sent to the model.
var Tools = []openai.ChatCompletionToolUnionParam{
	functionTool("get_db_benchmarks", "Fetch performance benchmarks for a database under a workload type",
		map[string]any{
			"database": map[string]any{"type": "string", "enum": []string{"postgresql", "mongodb"}},
			"workload": map[string]any{"type": "string", "description": "e.g. transactional, catalog_reads"},
		}, "database", "workload"),
	functionTool("get_case_studies", "Retrieve real-world e-commerce case studies for a database",
		map[string]any{"database": map[string]any{"type": "string"}}, "database"),
	functionTool("check_feature_support", "Check whether a database supports a specific feature",
		map[string]any{
			"database": map[string]any{"type": "string"},
			"feature":  map[string]any{"type": "string"},
		}, "database", "feature"),
}

// functionTool is a function tool whose parameters are an object of
// properties, the required ones named.
func functionTool(name, description string, properties map[string]any, required ...string) openai.ChatCompletionToolUnionParam {
	return openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:        name,
		Description: openai.String(description),
		Parameters: shared.FunctionParameters{
			"type":       "object",
			"properties": properties,
			"required":   required,
		},
	})
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

// Turn is what one request of the agent loop produced.
type Turn struct {
	// Model is the response's "model" field: the model that answered.
	Model string
	// Tools are the tools the model called, in order; none on the final turn.
	Tools []string
	// Answer is the final answer's text, on the last turn only.
	Answer string
}

// RunAgent runs the tool-calling loop until the model answers without tool
// calls, at most MaxTurns requests. Each turn is a separate chat completions
// request made with client; opts apply to every request (e.g. the affinity
// header).
func RunAgent(ctx context.Context, client openai.Client, model string, opts ...option.RequestOption) ([]Turn, error) {
	params := openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(SystemPrompt), openai.UserMessage(UserQuestion)},
		Tools:    Tools,
	}
	var turns []Turn
	for range MaxTurns {
		completion, err := client.Chat.Completions.New(ctx, params, opts...)
		if err != nil {
			return turns, fmt.Errorf("turn %d: %w", len(turns)+1, err)
		}
		if len(completion.Choices) == 0 {
			return turns, fmt.Errorf("turn %d: the response has no choices", len(turns)+1)
		}
		msg := completion.Choices[0].Message
		turn := Turn{Model: completion.Model}
		params.Messages = append(params.Messages, msg.ToParam())
		for _, call := range msg.ToolCalls {
			turn.Tools = append(turn.Tools, call.Function.Name)
			params.Messages = append(params.Messages, openai.ToolMessage(RunTool(call.Function.Name, call.Function.Arguments), call.ID))
		}
		if len(msg.ToolCalls) == 0 {
			turn.Answer = msg.Content
			return append(turns, turn), nil
		}
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

package router

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Benchmarks of the per-request body work: the validating envelope pass
// every chat request takes, the model rewrite on the way upstream, and the
// decode and prompt building that only unpinned requests pay.
//
//	go test -run '^$' -bench . -benchmem ./router/
//
// Targets (for context; nothing here asserts them): parse+rewrite of a 32 KB
// body <= 30 us.

// benchSizes are the body sizes benchmarked, as sub-benchmark names.
var benchSizes = []struct {
	name string
	size int
}{
	{"1KB", 1 << 10},
	{"32KB", 32 << 10},
	{"256KB", 256 << 10},
}

type benchFunction struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Parameters  map[string]any `json:"parameters"`
}

type benchTool struct {
	Type     string        `json:"type"`
	Function benchFunction `json:"function"`
}

type benchToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type benchMessage struct {
	Role       string          `json:"role"`
	Content    *string         `json:"content"`
	ToolCalls  []benchToolCall `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type benchRequest struct {
	Model       string         `json:"model"`
	Messages    []benchMessage `json:"messages"`
	Tools       []benchTool    `json:"tools,omitempty"`
	Temperature float64        `json:"temperature"`
	MaxTokens   int            `json:"max_tokens"`
	Stream      bool           `json:"stream"`
}

const benchSystemPrompt = "You are a senior software engineering agent working in a Go monorepo. " +
	"Use the tools to read files, search code and run tests before answering. " +
	"Keep edits minimal, explain each change, never invent file contents, and stop " +
	"when the tests pass. Follow the repository's style guide and do not touch vendored code."

var benchWords = strings.Fields("the handler reads the request body once validates the json " +
	"and forwards it upstream while the pin store keeps the session decision for the " +
	"configured ttl so later turns skip the router entirely and reuse the model that " +
	"served the first turn of the agent loop including tool calls and their results " +
	"func main() { if err != nil { return fmt.Errorf(\"wrap: %w\", err) } } \"quoted\" path\\to\\file")

// benchText returns n bytes of deterministic prose (with some characters
// JSON must escape), seeded by seed.
func benchText(seed, n int) string {
	var b strings.Builder
	for i := seed; b.Len() < n; i++ {
		b.WriteString(benchWords[(i*7+seed)%len(benchWords)])
		if i%11 == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()[:n]
}

func benchStr(s string) *string { return &s }

// benchTools returns the request's tool definitions with JSON schemas: one
// short tool for a first-turn-sized body, six for larger ones.
func benchTools(size int) []benchTool {
	names := []string{"read_file", "search_code", "run_tests", "list_dir", "apply_patch", "git_diff"}
	desc := 160
	if size < 4096 {
		names, desc = names[:1], 60
	}
	out := make([]benchTool, 0, len(names))
	for i, n := range names {
		out = append(out, benchTool{Type: "function", Function: benchFunction{
			Name:        n,
			Description: benchText(i, desc),
			Parameters: map[string]any{
				"type": "object",
				"properties": map[string]any{
					"path":  map[string]any{"type": "string", "description": "repository-relative path"},
					"query": map[string]any{"type": "string", "description": "search expression"},
					"limit": map[string]any{"type": "integer", "minimum": 1, "maximum": 500},
				},
				"required":             []string{"path"},
				"additionalProperties": false,
			},
		}})
	}
	return out
}

// agentBody returns a deterministic OpenAI chat request shaped like an agent
// turn of about size bytes (never more than size+~200): a system prompt,
// tools with JSON schemas, a history of assistant tool calls, tool results
// and user nudges, ending with a user message.
func agentBody(size int) []byte {
	req := benchRequest{Model: "gpt-4o-mini", Temperature: 0.2, MaxTokens: 1024, Stream: true, Tools: benchTools(size)}
	req.Messages = []benchMessage{
		{Role: "system", Content: benchStr(benchSystemPrompt)},
		{Role: "user", Content: benchStr("The proxy returns 502 under load when the body is large. Find the cause and fix it.")},
	}
	final := benchMessage{Role: "user", Content: benchStr("Good. Now run the whole test suite again and summarise what changed.")}
	cur := func() int {
		r := req
		r.Messages = append(append([]benchMessage{}, req.Messages...), final)
		b, err := json.Marshal(r)
		if err != nil {
			panic(err)
		}
		return len(b)
	}
	for turn := 0; cur() < size; turn++ {
		id := fmt.Sprintf("call_%04d", turn)
		tc := benchToolCall{ID: id, Type: "function"}
		tc.Function.Name = "read_file"
		tc.Function.Arguments = fmt.Sprintf(`{"path":"internal/proxy/file_%d.go","limit":200}`, turn)
		req.Messages = append(req.Messages,
			benchMessage{Role: "assistant", Content: benchStr(benchText(turn, 120)), ToolCalls: []benchToolCall{tc}})
		res := min(1800, max(16, size-cur()-64))
		req.Messages = append(req.Messages, benchMessage{Role: "tool", ToolCallID: id, Content: benchStr(benchText(turn+3, res))})
		if turn%4 == 3 {
			req.Messages = append(req.Messages, benchMessage{Role: "user", Content: benchStr(benchText(turn+5, 80))})
		}
	}
	req.Messages = append(req.Messages, final)
	b, err := json.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}

// benchBody returns the agent body of a size, checking it parses.
func benchBody(b *testing.B, size int) []byte {
	b.Helper()
	body := agentBody(size)
	if _, err := ParseEnvelope(body); err != nil {
		b.Fatalf("generated %d-byte body does not parse: %v", len(body), err)
	}
	return body
}

func BenchmarkParseEnvelope(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			body := benchBody(b, sz.size)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := ParseEnvelope(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseAndSegments is what the handler does (failover.go): the
// envelope pass plus Segments, which sends the body upstream without a copy.
func BenchmarkParseAndSegments(b *testing.B) {
	quoted := []byte(`"claude-sonnet-4-20250514"`)
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			body := benchBody(b, sz.size)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				env, err := ParseEnvelope(body)
				if err != nil {
					b.Fatal(err)
				}
				if parts := env.Segments(make([][]byte, 0, maxSegments), body, quoted); len(parts) < 2 {
					b.Fatal("model not replaced")
				}
			}
		})
	}
}

// BenchmarkDecode is the full decode an unpinned request pays.
func BenchmarkDecode(b *testing.B) {
	b.Run("32KB", func(b *testing.B) {
		body := benchBody(b, 32<<10)
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := Decode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

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
	body := benchBody(b, 32<<10)
	req, err := Decode(body)
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
			req, err := Decode(body)
			if err != nil {
				b.Fatal(err)
			}
			if Prompt(benchRoutes, req.Conversation) == "" {
				b.Fatal("empty prompt")
			}
		}
	})
}

// TestAgentBodySizes keeps the generated bodies close to their nominal sizes
// and valid, so the benchmark names stay honest.
func TestAgentBodySizes(t *testing.T) {
	for _, sz := range benchSizes {
		body := agentBody(sz.size)
		if len(body) < sz.size || len(body) > sz.size+sz.size/8+256 {
			t.Errorf("%s body is %d bytes", sz.name, len(body))
		}
		if _, err := ParseEnvelope(body); err != nil {
			t.Errorf("%s body: %v", sz.name, err)
		}
		if !json.Valid(body) {
			t.Errorf("%s body is not valid JSON", sz.name)
		}
	}
}

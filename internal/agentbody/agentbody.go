// Package agentbody generates the agent-shaped request bodies that the load
// benchmark (bench/) and the hot-path Go benchmarks send, so both measure
// the same input.
package agentbody

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

type fn struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Parameters  map[string]any `json:"parameters"`
}

type tool struct {
	Type     string `json:"type"`
	Function fn     `json:"function"`
}

type toolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type message struct {
	Role       string     `json:"role"`
	Content    *string    `json:"content"`
	ToolCalls  []toolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

type request struct {
	Model       string    `json:"model"`
	Messages    []message `json:"messages"`
	Tools       []tool    `json:"tools,omitempty"`
	Temperature float64   `json:"temperature"`
	MaxTokens   int       `json:"max_tokens"`
}

const systemPrompt = "You are a senior software engineering agent working in a Go monorepo. " +
	"Use the tools to read files, search code and run tests before answering. " +
	"Keep edits minimal, explain each change, never invent file contents, and stop " +
	"when the tests pass. Follow the repository's style guide and do not touch vendored code."

var lorem = strings.Fields("the handler reads the request body once validates the json " +
	"and forwards it upstream while the pin store keeps the session decision for the " +
	"configured ttl so later turns skip the router entirely and reuse the model that " +
	"served the first turn of the agent loop including tool calls and their results")

// multilingualLorem is prose that is mostly multi-byte UTF-8: CJK (3 bytes a
// character), Cyrillic and accented Latin (2 bytes) and emoji (4 bytes).
var multilingualLorem = strings.Fields("处理程序 只读取 一次请求体 并验证 JSON 然后 转发到上游 " +
	"会话的决定 保存在 缓存中 直到过期 🚀 ✅ 🔧 代理 返回 502 Ошибка при большой нагрузке " +
	"プロキシ は 大きな リクエスト で 失敗 します résumé naïve façade 모델 라우터 세션 📦 🧪")

// text returns at most n bytes of deterministic prose from words, seeded by
// seed, cut at a character boundary.
func text(words []string, seed, n int) string {
	var b strings.Builder
	for i := seed; b.Len() < n; i++ {
		b.WriteString(words[(i*7+seed)%len(words)])
		b.WriteByte(' ')
	}
	s := b.String()
	for n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func strp(s string) *string { return &s }

// toolsList returns the tool definitions; small bodies (a ~1 KB first turn)
// carry one short tool, larger ones six.
func toolsList(words []string, size int) []tool {
	names := []string{"read_file", "search_code", "run_tests", "list_dir", "apply_patch", "git_diff"}
	desc := 160
	if size < 4096 {
		names, desc = names[:1], 60
	}
	out := make([]tool, 0, len(names))
	for i, n := range names {
		out = append(out, tool{Type: "function", Function: fn{
			Name:        n,
			Description: text(words, i, desc),
			Parameters: map[string]any{
				"type": "object",
				"properties": map[string]any{
					"path":  map[string]any{"type": "string", "description": "repository-relative path"},
					"query": map[string]any{"type": "string", "description": "search expression"},
				},
				"required": []string{"path"},
			},
		}})
	}
	return out
}

// Generate returns a deterministic OpenAI chat.completions request body
// shaped like an agent turn (system prompt, tool definitions, a growing
// history of assistant tool calls and tool results, ending with a user
// message) of approximately size bytes. Its text is ASCII.
func Generate(size int) []byte { return generate(lorem, size) }

// GenerateMultilingual is Generate with prose that is mostly multi-byte
// UTF-8 (CJK, Cyrillic, accented Latin, emoji) in the tool descriptions,
// assistant turns and tool results.
func GenerateMultilingual(size int) []byte { return generate(multilingualLorem, size) }

func generate(words []string, size int) []byte {
	req := request{Model: "gpt-4o-mini", Temperature: 0.2, MaxTokens: 1024, Tools: toolsList(words, size)}
	req.Messages = []message{
		{Role: "system", Content: strp(systemPrompt)},
		{Role: "user", Content: strp("The proxy returns 502 under load when the body is large. Find the cause and fix it.")},
	}
	final := message{Role: "user", Content: strp("Good. Now run the whole test suite again and summarise what changed.")}
	cur := func() int {
		r := req
		r.Messages = append(append([]message{}, req.Messages...), final)
		b, _ := json.Marshal(r)
		return len(b)
	}
	// Grow the history turn by turn: assistant tool call, tool result, short user nudge.
	for turn := 0; cur() < size; turn++ {
		id := fmt.Sprintf("call_%04d", turn)
		tc := toolCall{ID: id, Type: "function"}
		tc.Function.Name = "read_file"
		tc.Function.Arguments = fmt.Sprintf(`{"path":"internal/proxy/file_%d.go"}`, turn)
		req.Messages = append(req.Messages,
			message{Role: "assistant", Content: strp(text(words, turn, 120)), ToolCalls: []toolCall{tc}})
		room := size - cur() - 64
		res := 1800
		if room < res {
			res = room
		}
		if res < 16 {
			res = 16
		}
		req.Messages = append(req.Messages, message{Role: "tool", ToolCallID: id, Content: strp(text(words, turn+3, res))})
	}
	req.Messages = append(req.Messages, final)
	b, err := json.Marshal(req)
	if err != nil {
		panic(err) // strings, numbers and maps of them always marshal
	}
	return b
}

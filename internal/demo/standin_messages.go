package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// messagesStandin is the stand-in's Anthropic Messages.
type messagesStandin struct{}

// messagesBlock is a content block of a Messages request: text, tool_use,
// tool_result (others add nothing to the prompt).
type messagesBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	Name         string          `json:"name"`
	Input        json.RawMessage `json:"input"`
	Content      json.RawMessage `json:"content"`
	CacheControl json.RawMessage `json:"cache_control"`
}

// messagesBlocks reads a content value: a string is one text block.
func messagesBlocks(raw json.RawMessage) ([]messagesBlock, error) {
	raw = json.RawMessage(strings.TrimSpace(string(raw)))
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return []messagesBlock{{Type: "text", Text: s}}, err
	}
	var blocks []messagesBlock
	err := json.Unmarshal(raw, &blocks)
	return blocks, err
}

// set is whether a cache_control value was given.
func set(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null"
}

// parse reads a Messages request: tools, the system prompt, then each
// message: a user message's tool results and text, an assistant message's
// text and tool calls. Whether it asks for caching is whether any
// cache_control is set: top-level, on a tool, a system block or a message's
// block.
func (messagesStandin) parse(body []byte) (*standinRequest, error) {
	var in struct {
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
		Metadata struct {
			UserID string `json:"user_id"`
		} `json:"metadata"`
		CacheControl json.RawMessage `json:"cache_control"`
		System       json.RawMessage `json:"system"`
		Tools        []struct {
			Name         string          `json:"name"`
			Description  string          `json:"description"`
			InputSchema  json.RawMessage `json:"input_schema"`
			CacheControl json.RawMessage `json:"cache_control"`
		} `json:"tools"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("the body is not a Messages request: %v", err)
	}
	req := &standinRequest{model: in.Model, stream: in.Stream, cache: set(in.CacheControl)}
	var p promptText
	for _, t := range in.Tools {
		p.tool(t.Name, t.Description, t.InputSchema)
		req.cache = req.cache || set(t.CacheControl)
	}
	system, err := messagesBlocks(in.System)
	if err != nil {
		return nil, fmt.Errorf("system: %v", err)
	}
	if len(system) > 0 {
		var text strings.Builder
		for _, b := range system {
			text.WriteString(b.Text)
			req.cache = req.cache || set(b.CacheControl)
		}
		p.system(text.String())
	}
	firstUser := ""
	for i, m := range in.Messages {
		blocks, err := messagesBlocks(m.Content)
		if err != nil {
			return nil, fmt.Errorf("messages[%d].content: %v", i, err)
		}
		var text strings.Builder
		for _, b := range blocks {
			req.cache = req.cache || set(b.CacheControl)
			if b.Type == "text" {
				text.WriteString(b.Text)
			}
		}
		switch m.Role {
		case "user":
			for _, b := range blocks {
				if b.Type == "tool_result" {
					output, err := textOf(b.Content)
					if err != nil {
						return nil, fmt.Errorf("messages[%d]: tool_result %v", i, err)
					}
					p.result(output)
				}
			}
			if text.Len() > 0 {
				if firstUser == "" {
					firstUser = text.String()
				}
				p.message("user", text.String())
			}
		case "assistant":
			req.step++
			p.message("assistant", text.String())
			for _, b := range blocks {
				if b.Type == "tool_use" {
					p.call(b.Name, string(b.Input))
				}
			}
		default:
			return nil, fmt.Errorf("messages[%d].role: Input should be 'user' or 'assistant'", i)
		}
	}
	req.prompt, req.session = p.String(), sessionOf(in.Metadata.UserID, firstUser)
	return req, nil
}

func (messagesStandin) callID(step, i int) string { return fmt.Sprintf("toolu_demo_%d_%d", step, i) }

// messagesUsage is u as Messages reports it: input_tokens counts only the
// prompt tokens neither read from the cache nor written to it.
func messagesUsage(u CacheUsage) map[string]any {
	return map[string]any{
		"input_tokens":                u.Input - u.Cached - u.Written,
		"cache_read_input_tokens":     u.Cached,
		"cache_creation_input_tokens": u.Written,
		"cache_creation":              map[string]any{"ephemeral_5m_input_tokens": u.Written, "ephemeral_1h_input_tokens": 0},
		"output_tokens":               u.Output,
		"service_tier":                "standard",
	}
}

// write answers a message, or streams it: message_start (its usage counts
// the input, output_tokens 1), each content block (start, deltas, stop),
// message_delta with the stop reason and the whole usage (the API's counts
// there are cumulative), message_stop.
func (messagesStandin) write(w http.ResponseWriter, req *standinRequest, rep *standinReply) {
	stop := "end_turn"
	if len(rep.calls) > 0 {
		stop = "tool_use"
	}
	content := []any{map[string]any{"type": "text", "text": rep.text}}
	for _, c := range rep.calls {
		content = append(content, map[string]any{"type": "tool_use", "id": c.ID, "name": c.Name, "input": json.RawMessage(c.Arguments)})
	}
	message := func(content []any, stop any, usage map[string]any) map[string]any {
		return map[string]any{"id": "msg_demo_" + rep.id, "type": "message", "role": "assistant", "model": rep.model,
			"content": content, "stop_reason": stop, "stop_sequence": nil, "usage": usage}
	}
	if !req.stream {
		writeJSON(w, message(content, stop, messagesUsage(rep.usage)))
		return
	}
	s := newSSEWriter(w)
	start := messagesUsage(rep.usage)
	start["output_tokens"] = 1
	s.send("message_start", map[string]any{"type": "message_start", "message": message([]any{}, nil, start)})
	event := func(typ string, index int, fields map[string]any) {
		fields["type"], fields["index"] = typ, index
		s.send(typ, fields)
	}
	event("content_block_start", 0, map[string]any{"content_block": map[string]any{"type": "text", "text": ""}})
	s.send("ping", map[string]any{"type": "ping"})
	for _, word := range words(rep.text) {
		event("content_block_delta", 0, map[string]any{"delta": map[string]any{"type": "text_delta", "text": word}})
	}
	event("content_block_stop", 0, map[string]any{})
	for i, c := range rep.calls {
		event("content_block_start", i+1, map[string]any{"content_block": map[string]any{"type": "tool_use", "id": c.ID, "name": c.Name, "input": map[string]any{}}})
		for _, frag := range fragments(c.Arguments, 3) {
			event("content_block_delta", i+1, map[string]any{"delta": map[string]any{"type": "input_json_delta", "partial_json": frag}})
		}
		event("content_block_stop", i+1, map[string]any{})
	}
	usage := messagesUsage(rep.usage)
	delete(usage, "cache_creation")
	delete(usage, "service_tier")
	s.send("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": usage})
	s.send("message_stop", map[string]any{"type": "message_stop"})
}

// writeError writes the Anthropic error shape.
func (messagesStandin) writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error", "message": msg}})
	_, _ = w.Write(body)
}

package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// chatStandin is the stand-in's OpenAI Chat Completions.
type chatStandin struct{}

// parse reads a Chat request: tools, then the messages in order (system and
// developer messages included), each assistant message's tool calls, each
// tool message's result.
func (chatStandin) parse(body []byte) (*standinRequest, error) {
	var in struct {
		Model         string `json:"model"`
		User          string `json:"user"`
		Stream        bool   `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
		Tools []struct {
			Function struct {
				Name        string          `json:"name"`
				Description string          `json:"description"`
				Parameters  json.RawMessage `json:"parameters"`
			} `json:"function"`
		} `json:"tools"`
		Messages []struct {
			Role      string          `json:"role"`
			Content   json.RawMessage `json:"content"`
			ToolCalls []struct {
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("the body is not a Chat Completions request: %v", err)
	}
	req := &standinRequest{model: in.Model, stream: in.Stream, includeUsage: in.StreamOptions.IncludeUsage, cache: true}
	var p promptText
	for _, t := range in.Tools {
		p.tool(t.Function.Name, t.Function.Description, t.Function.Parameters)
	}
	firstUser := ""
	for i, m := range in.Messages {
		text, err := textOf(m.Content)
		if err != nil {
			return nil, fmt.Errorf("messages[%d]: %v", i, err)
		}
		switch m.Role {
		case "system", "developer":
			p.system(text)
		case "user":
			if firstUser == "" {
				firstUser = text
			}
			p.message("user", text)
		case "assistant":
			req.step++
			p.message("assistant", text)
			for _, c := range m.ToolCalls {
				p.call(c.Function.Name, c.Function.Arguments)
			}
		case "tool":
			p.result(text)
		default:
			return nil, fmt.Errorf("messages[%d].role %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
	}
	req.prompt, req.session = p.String(), sessionOf(in.User, firstUser)
	return req, nil
}

func (chatStandin) callID(step, i int) string { return fmt.Sprintf("call_%d_%d", step, i) }

// chatUsage is u as Chat Completions reports it: prompt_tokens counts the
// cached tokens too.
func chatUsage(u CacheUsage) map[string]any {
	return map[string]any{
		"prompt_tokens": u.Input, "completion_tokens": u.Output, "total_tokens": u.Input + u.Output,
		"prompt_tokens_details":     map[string]any{"cached_tokens": u.Cached, "audio_tokens": 0},
		"completion_tokens_details": map[string]any{"reasoning_tokens": 0, "audio_tokens": 0},
	}
}

// write answers a chat.completion, or streams chat.completion.chunk
// events: the role, the text word by word, each tool call's start and its
// arguments in pieces, the finish_reason; then, when
// stream_options.include_usage asked for it, a chunk with no choices and
// the usage (every chunk before it has "usage": null); then [DONE].
func (chatStandin) write(w http.ResponseWriter, req *standinRequest, rep *standinReply) {
	finish := "stop"
	if len(rep.calls) > 0 {
		finish = "tool_calls"
	}
	id := "chatcmpl-demo-" + rep.id
	if !req.stream {
		msg := map[string]any{"role": "assistant", "content": rep.text, "refusal": nil}
		if len(rep.calls) > 0 {
			calls := make([]any, len(rep.calls))
			for i, c := range rep.calls {
				calls[i] = map[string]any{"id": c.ID, "type": "function",
					"function": map[string]any{"name": c.Name, "arguments": c.Arguments}}
			}
			msg["tool_calls"] = calls
		}
		writeJSON(w, map[string]any{
			"id": id, "object": "chat.completion", "created": 1, "model": rep.model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "logprobs": nil, "finish_reason": finish}},
			"usage":   chatUsage(rep.usage),
		})
		return
	}
	s := newSSEWriter(w)
	chunk := func(choices []any, usage any) {
		c := map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1, "model": rep.model, "choices": choices}
		if req.includeUsage {
			c["usage"] = usage
		}
		s.send("", c)
	}
	delta := func(d map[string]any, finish any) {
		chunk([]any{map[string]any{"index": 0, "delta": d, "logprobs": nil, "finish_reason": finish}}, nil)
	}
	delta(map[string]any{"role": "assistant", "content": ""}, nil)
	for _, word := range words(rep.text) {
		delta(map[string]any{"content": word}, nil)
	}
	for i, c := range rep.calls {
		delta(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": c.ID, "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": ""}}}}, nil)
		for _, frag := range fragments(c.Arguments, 3) {
			delta(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": frag}}}}, nil)
		}
	}
	delta(map[string]any{}, finish)
	if req.includeUsage {
		chunk([]any{}, chatUsage(rep.usage))
	}
	s.send("", "[DONE]")
}

// writeError writes the OpenAI error shape.
func (chatStandin) writeError(w http.ResponseWriter, status int, msg string) {
	writeOpenAIError(w, status, msg)
}

// writeOpenAIError writes the error shape of both OpenAI APIs.
func writeOpenAIError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": nil}})
	_, _ = w.Write(body)
}

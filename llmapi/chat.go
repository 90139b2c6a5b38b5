package llmapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// chatError is the error body of OpenAI's APIs.
type chatError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// chatErrorBody is the error body for a status and message.
func chatErrorBody(status int, msg string) []byte {
	var e chatError
	e.Error.Type = "invalid_request_error"
	if status >= 500 {
		e.Error.Type = "server_error"
	}
	e.Error.Message = msg
	return marshalError(e)
}

// chatRequest is a Chat Completions request, as far as translation reads
// and writes it.
type chatRequest struct {
	Model               string             `json:"model"`
	Messages            []chatMessage      `json:"messages"`
	Tools               []chatTool         `json:"tools,omitempty"`
	ToolChoice          json.RawMessage    `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool              `json:"parallel_tool_calls,omitempty"`
	MaxTokens           int                `json:"max_tokens,omitempty"`
	MaxCompletionTokens int                `json:"max_completion_tokens,omitempty"`
	Temperature         *float64           `json:"temperature,omitempty"`
	TopP                *float64           `json:"top_p,omitempty"`
	Stop                json.RawMessage    `json:"stop,omitempty"`
	Stream              bool               `json:"stream,omitempty"`
	StreamOptions       *chatStreamOptions `json:"stream_options,omitempty"`
	User                string             `json:"user,omitempty"`
	N                   *int               `json:"n,omitempty"`
	Modalities          []string           `json:"modalities,omitempty"`
	Audio               json.RawMessage    `json:"audio,omitempty"`
}

type chatStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content,omitempty"`
	ToolCalls  []chatToolCall  `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type chatPart struct {
	Type     string        `json:"type"`
	Text     string        `json:"text,omitempty"`
	ImageURL *chatImageURL `json:"image_url,omitempty"`
}

type chatImageURL struct {
	URL string `json:"url"`
}

type chatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
		Strict      *bool           `json:"strict,omitempty"`
	} `json:"function"`
}

// decodeChat reads a Chat Completions request into the neutral form.
func decodeChat(body []byte) (*Turn, error) {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, invalid("request body does not match the chat completions schema")
	}
	switch {
	case req.N != nil && *req.N > 1:
		return nil, unsupported("\"n\" greater than 1")
	case len(req.Audio) > 0 || slices.Contains(req.Modalities, "audio"):
		return nil, unsupported("audio output")
	}
	t := &Turn{Model: req.Model, Temperature: req.Temperature, TopP: req.TopP, Stream: req.Stream, User: req.User,
		MaxTokens: cmp.Or(req.MaxCompletionTokens, req.MaxTokens)}
	t.StreamUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	stop, err := stopSequences(req.Stop)
	if err != nil {
		return nil, err
	}
	t.Stop = stop
	for i, tool := range req.Tools {
		if tool.Type != "function" {
			return nil, unsupported(fmt.Sprintf("tools[%d], a tool that is not a function", i))
		}
		t.Tools = append(t.Tools, Tool{Name: tool.Function.Name, Description: tool.Function.Description,
			Parameters: tool.Function.Parameters, Strict: tool.Function.Strict})
	}
	if t.ToolChoice, err = openAIToolChoice(req.ToolChoice, req.ParallelToolCalls); err != nil {
		return nil, err
	}
	var system []string
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "developer":
			text, err := chatText(m.Content, i)
			if err != nil {
				return nil, err
			}
			system = append(system, text)
		case "user":
			parts, err := chatParts(m.Content, i)
			if err != nil {
				return nil, err
			}
			t.appendMessage(RoleUser, parts...)
		case "assistant":
			parts, err := chatParts(m.Content, i)
			if err != nil {
				return nil, err
			}
			for _, call := range m.ToolCalls {
				parts = append(parts, Part{Kind: PartToolCall, ToolCall: &ToolCall{
					ID: call.ID, Name: call.Function.Name, Arguments: call.Function.Arguments}})
			}
			t.appendMessage(RoleAssistant, parts...)
		case "tool":
			content, err := chatParts(m.Content, i)
			if err != nil {
				return nil, err
			}
			t.appendMessage(RoleUser, Part{Kind: PartToolResult, ToolResult: &ToolResult{CallID: m.ToolCallID, Content: content}})
		default:
			return nil, invalid("messages[%d].role %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
	}
	t.System = strings.Join(system, "\n\n")
	return t, nil
}

// stopSequences reads Chat's "stop": a string or an array of strings.
func stopSequences(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if isJSONString(raw) && json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return nil, invalid("\"stop\" must be a string or an array of strings")
	}
	return many, nil
}

// chatText is the text of a system message's content.
func chatText(content json.RawMessage, i int) (string, error) {
	parts, err := chatParts(content, i)
	if err != nil {
		return "", err
	}
	var texts []string
	for _, p := range parts {
		if p.Kind != PartText {
			return "", unsupported(fmt.Sprintf("messages[%d]: a system message with an image", i))
		}
		texts = append(texts, p.Text)
	}
	return strings.Join(texts, "\n"), nil
}

// chatParts reads a Chat content value: a string, null, or text and
// image_url parts.
func chatParts(content json.RawMessage, i int) ([]Part, error) {
	if len(content) == 0 || string(content) == "null" {
		return nil, nil
	}
	var text string
	if isJSONString(content) && json.Unmarshal(content, &text) == nil {
		return []Part{{Kind: PartText, Text: text}}, nil
	}
	var parts []chatPart
	if json.Unmarshal(content, &parts) != nil {
		return nil, invalid("messages[%d].content must be a string or an array of content parts", i)
	}
	out := make([]Part, 0, len(parts))
	for j, p := range parts {
		switch p.Type {
		case "text", "refusal":
			out = append(out, Part{Kind: PartText, Text: p.Text})
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, invalid("messages[%d].content[%d].image_url.url is required", i, j)
			}
			out = append(out, Part{Kind: PartImage, Image: imageOfURL(p.ImageURL.URL)})
		default:
			return nil, unsupported(fmt.Sprintf("messages[%d].content[%d], a content part that is neither text nor an image", i, j))
		}
	}
	return out, nil
}

// encodeChat writes the neutral request as a Chat Completions request for
// model. A streamed request always asks for the usage chunk, so usage is
// never lost; the stream encoder drops it when the client did not ask.
func encodeChat(t *Turn, model string) ([]byte, error) {
	req := chatRequest{Model: model, Temperature: t.Temperature, TopP: t.TopP, Stream: t.Stream, User: t.User,
		MaxCompletionTokens: t.MaxTokens}
	if t.Stream {
		req.StreamOptions = &chatStreamOptions{IncludeUsage: true}
	}
	if len(t.Stop) > 0 {
		req.Stop, _ = json.Marshal(t.Stop) // strings always marshal
	}
	for _, tool := range t.Tools {
		var ct chatTool
		ct.Type = "function"
		ct.Function.Name, ct.Function.Description, ct.Function.Strict = tool.Name, tool.Description, tool.Strict
		ct.Function.Parameters = tool.Parameters
		req.Tools = append(req.Tools, ct)
	}
	if c := t.ToolChoice; c != nil {
		switch c.Mode {
		case ToolNamed:
			req.ToolChoice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": c.Name}})
		default:
			req.ToolChoice, _ = json.Marshal(c.Mode)
		}
		if c.NoParallel && len(t.Tools) > 0 {
			no := false
			req.ParallelToolCalls = &no
		}
	}
	if t.System != "" {
		req.Messages = append(req.Messages, chatMessage{Role: "system", Content: quoteJSON(t.System)})
	}
	for _, m := range t.Messages {
		var content []chatPart
		var calls []chatToolCall
		for _, p := range m.Parts {
			switch p.Kind {
			case PartText:
				content = append(content, chatPart{Type: "text", Text: p.Text})
			case PartImage:
				content = append(content, chatPart{Type: "image_url", ImageURL: &chatImageURL{URL: p.Image.url()}})
			case PartToolCall:
				var call chatToolCall
				call.ID, call.Type = p.ToolCall.ID, "function"
				call.Function.Name, call.Function.Arguments = p.ToolCall.Name, cmp.Or(p.ToolCall.Arguments, "{}")
				calls = append(calls, call)
			case PartToolResult:
				// a tool result is a message of its own, before the user's text
				req.Messages = append(req.Messages, chatMessage{Role: "tool", ToolCallID: p.ToolResult.CallID,
					Content: chatContent(textOnly(p.ToolResult.Content))})
			}
		}
		if len(content) == 0 && len(calls) == 0 {
			continue
		}
		msg := chatMessage{Role: string(m.Role), ToolCalls: calls, Content: chatContent(content)}
		req.Messages = append(req.Messages, msg)
	}
	return json.Marshal(req)
}

// chatContent is content as a string when it is one text part, else the
// parts; null when there are none.
func chatContent(parts []chatPart) json.RawMessage {
	switch {
	case len(parts) == 0:
		return json.RawMessage("null")
	case len(parts) == 1 && parts[0].Type == "text":
		return quoteJSON(parts[0].Text)
	}
	raw, _ := json.Marshal(parts) // strings always marshal
	return raw
}

// textOnly turns a tool result's parts into Chat text parts: Chat tool
// messages carry text only, so an image becomes its URL.
func textOnly(parts []Part) []chatPart {
	out := make([]chatPart, 0, len(parts))
	for _, p := range parts {
		switch p.Kind {
		case PartText:
			out = append(out, chatPart{Type: "text", Text: p.Text})
		case PartImage:
			out = append(out, chatPart{Type: "text", Text: p.Image.url()})
		}
	}
	return out
}

// chatResponse is a Chat Completions response.
type chatResponse struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []chatChoice    `json:"choices"`
	Usage   json.RawMessage `json:"usage,omitempty"`
}

type chatChoice struct {
	Index   int `json:"index"`
	Message struct {
		Role      string         `json:"role"`
		Content   *string        `json:"content"`
		Refusal   *string        `json:"refusal,omitempty"`
		ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
	} `json:"message"`
	FinishReason string `json:"finish_reason"`
}

// decodeChatReply reads a Chat Completions response.
func decodeChatReply(body []byte) (*Reply, error) {
	var resp chatResponse
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.Choices) == 0 {
		return nil, errUpstreamReply
	}
	c := resp.Choices[0]
	usage, err := replyUsage(resp.Usage, chatUsageKeys)
	if err != nil {
		return nil, errUpstreamReply
	}
	r := &Reply{ID: resp.ID, Model: resp.Model, Created: resp.Created, Usage: usage,
		StopReason: chatStopReason(c.FinishReason)}
	if c.Message.Content != nil && *c.Message.Content != "" {
		r.Parts = append(r.Parts, Part{Kind: PartText, Text: *c.Message.Content})
	}
	if c.Message.Refusal != nil && *c.Message.Refusal != "" {
		r.Parts = append(r.Parts, Part{Kind: PartText, Text: *c.Message.Refusal})
		r.StopReason = StopContentFilter
	}
	for _, call := range c.Message.ToolCalls {
		r.Parts = append(r.Parts, Part{Kind: PartToolCall, ToolCall: &ToolCall{ID: call.ID, Name: call.Function.Name, Arguments: call.Function.Arguments}})
	}
	return r, nil
}

// encodeChatReply writes a reply as a Chat Completions response for a
// client that asked for model.
func encodeChatReply(r *Reply, model string) []byte {
	resp := chatResponse{ID: clientID("chatcmpl-", r.ID), Object: "chat.completion", Created: r.Created, Model: model,
		Usage: openAIUsageJSON(r.Usage, chatUsageKeys)}
	var c chatChoice
	c.Message.Role = "assistant"
	var text []string
	for _, p := range r.Parts {
		switch p.Kind {
		case PartText:
			text = append(text, p.Text)
		case PartToolCall:
			var call chatToolCall
			call.ID, call.Type = p.ToolCall.ID, "function"
			call.Function.Name, call.Function.Arguments = p.ToolCall.Name, p.ToolCall.Arguments
			c.Message.ToolCalls = append(c.Message.ToolCalls, call)
		}
	}
	if len(text) > 0 {
		joined := strings.Join(text, "")
		c.Message.Content = &joined
	}
	c.FinishReason = string(cmp.Or(r.StopReason, StopEnd))
	resp.Choices = []chatChoice{c}
	body, _ := json.Marshal(resp) // strings and numbers always marshal
	return body
}

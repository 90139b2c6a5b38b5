package llmapi

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// messagesError is the error body of Anthropic's Messages API.
type messagesError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// messagesErrorBody is the error body for a status and message.
func messagesErrorBody(status int, msg string) []byte {
	var e messagesError
	e.Type = "error"
	e.Error.Type = messagesErrorType(status)
	e.Error.Message = msg
	return marshalError(e)
}

// messagesErrorType is the Messages API's error type for a status.
func messagesErrorType(status int) string {
	switch {
	case status == http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case status == http.StatusServiceUnavailable:
		return "overloaded_error"
	case status >= 500:
		return "api_error"
	}
	return "invalid_request_error"
}

// DefaultMaxTokens is the max_tokens a request towards a Messages model
// gets when the client set none (Messages requires one).
const DefaultMaxTokens = 4096

// messagesRequest is a Messages request, as far as translation reads and
// writes it.
type messagesRequest struct {
	Model         string              `json:"model"`
	MaxTokens     int                 `json:"max_tokens"`
	System        json.RawMessage     `json:"system,omitempty"`
	Messages      []messagesMessage   `json:"messages"`
	Tools         []json.RawMessage   `json:"tools,omitempty"`
	ToolChoice    *messagesToolChoice `json:"tool_choice,omitempty"`
	Temperature   *float64            `json:"temperature,omitempty"`
	TopP          *float64            `json:"top_p,omitempty"`
	StopSequences []string            `json:"stop_sequences,omitempty"`
	Stream        bool                `json:"stream,omitempty"`
	Metadata      *messagesMetadata   `json:"metadata,omitempty"`
}

type messagesMetadata struct {
	UserID string `json:"user_id,omitempty"`
}

type messagesToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type messagesMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// messagesBlock is a content block of a Messages message or response.
type messagesBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *messagesSource `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
	Thinking  string          `json:"thinking,omitempty"`
	Signature string          `json:"signature,omitempty"`
	Data      string          `json:"data,omitempty"`
}

type messagesSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type messagesTool struct {
	Type        string          `json:"type,omitempty"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// decodeMessages reads a Messages request into the neutral form.
func decodeMessages(body []byte) (*Turn, error) {
	var req messagesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, invalid("request body does not match the messages schema")
	}
	t := &Turn{Model: req.Model, MaxTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP,
		Stop: req.StopSequences, Stream: req.Stream}
	if req.Metadata != nil {
		t.User = req.Metadata.UserID
	}
	system, err := messagesBlocks(req.System, "system")
	if err != nil {
		return nil, err
	}
	var texts []string
	for _, p := range system {
		if p.Kind == PartText {
			texts = append(texts, p.Text)
		}
	}
	t.System = strings.Join(texts, "\n\n")
	for i, raw := range req.Tools {
		var tool messagesTool
		if json.Unmarshal(raw, &tool) != nil {
			return nil, invalid("tools[%d] is not a tool", i)
		}
		if tool.Type != "" && tool.Type != "custom" {
			return nil, unsupported(fmt.Sprintf("tools[%d], a server tool", i))
		}
		t.Tools = append(t.Tools, Tool{Name: tool.Name, Description: tool.Description, Parameters: tool.InputSchema})
	}
	if c := req.ToolChoice; c != nil {
		tc := &ToolChoice{NoParallel: c.DisableParallelToolUse}
		switch c.Type {
		case "auto":
			tc.Mode = ToolAuto
		case "none":
			tc.Mode = ToolNone
		case "any":
			tc.Mode = ToolRequired
		case "tool":
			tc.Mode, tc.Name = ToolNamed, c.Name
		default:
			return nil, invalid("\"tool_choice\".type is not auto, any, tool or none")
		}
		t.ToolChoice = tc
	}
	for i, m := range req.Messages {
		var role Role
		switch m.Role {
		case "user":
			role = RoleUser
		case "assistant":
			role = RoleAssistant
		default:
			return nil, invalid("messages[%d].role must be user or assistant", i)
		}
		parts, err := messagesBlocks(m.Content, fmt.Sprintf("messages[%d]", i))
		if err != nil {
			return nil, err
		}
		t.appendMessage(role, parts...)
	}
	return t, nil
}

// messagesBlocks reads Messages content: a string or an array of blocks.
func messagesBlocks(content json.RawMessage, where string) ([]Part, error) {
	if len(content) == 0 || string(content) == "null" {
		return nil, nil
	}
	var text string
	if isJSONString(content) && json.Unmarshal(content, &text) == nil {
		return []Part{{Kind: PartText, Text: text}}, nil
	}
	var blocks []messagesBlock
	if json.Unmarshal(content, &blocks) != nil {
		return nil, invalid("%s content must be a string or an array of content blocks", where)
	}
	parts := make([]Part, 0, len(blocks))
	for j, b := range blocks {
		part, err := b.neutral(fmt.Sprintf("%s.content[%d]", where, j))
		if err != nil {
			return nil, err
		}
		parts = append(parts, part)
	}
	return parts, nil
}

// neutral is the block as a neutral part.
func (b *messagesBlock) neutral(where string) (Part, error) {
	switch b.Type {
	case "text":
		return Part{Kind: PartText, Text: b.Text}, nil
	case "image":
		if b.Source == nil {
			return Part{}, invalid("%s.source is required", where)
		}
		if b.Source.Type == "url" {
			return Part{Kind: PartImage, Image: &Image{URL: b.Source.URL}}, nil
		}
		return Part{Kind: PartImage, Image: &Image{MediaType: b.Source.MediaType, Data: b.Source.Data}}, nil
	case "tool_use":
		args := string(b.Input)
		if args == "" || args == "null" {
			args = "{}"
		}
		return Part{Kind: PartToolCall, ToolCall: &ToolCall{ID: b.ID, Name: b.Name, Arguments: args}}, nil
	case "tool_result":
		content, err := messagesBlocks(b.Content, where)
		if err != nil {
			return Part{}, err
		}
		return Part{Kind: PartToolResult, ToolResult: &ToolResult{CallID: b.ToolUseID, Content: content, IsError: b.IsError}}, nil
	case "thinking":
		return Part{Kind: PartThinking, Text: b.Thinking, Signature: b.Signature}, nil
	case "redacted_thinking":
		return Part{Kind: PartThinking, Signature: b.Data, Redacted: true}, nil
	}
	return Part{}, unsupported(where + ", a content block other than text, image, tool_use, tool_result or thinking")
}

// encodeMessages writes the neutral request as a Messages request for
// model, with max_tokens DefaultMaxTokens when the client set none.
func encodeMessages(t *Turn, model string) ([]byte, error) {
	req := messagesRequest{Model: model, MaxTokens: cmp.Or(t.MaxTokens, DefaultMaxTokens), Temperature: t.Temperature,
		TopP: t.TopP, StopSequences: t.Stop, Stream: t.Stream}
	if t.System != "" {
		req.System = quoteJSON(t.System)
	}
	if t.User != "" {
		req.Metadata = &messagesMetadata{UserID: t.User}
	}
	for _, tool := range t.Tools {
		schema := tool.Parameters
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		raw, _ := json.Marshal(messagesTool{Name: tool.Name, Description: tool.Description, InputSchema: schema})
		req.Tools = append(req.Tools, raw)
	}
	if c := t.ToolChoice; c != nil {
		tc := &messagesToolChoice{Type: c.Mode, DisableParallelToolUse: c.NoParallel && c.Mode != ToolNone}
		switch c.Mode {
		case ToolRequired:
			tc.Type = "any"
		case ToolNamed:
			tc.Type, tc.Name = "tool", c.Name
		}
		req.ToolChoice = tc
	}
	for _, m := range t.Messages {
		blocks := make([]messagesBlock, 0, len(m.Parts))
		for _, p := range m.Parts {
			blocks = append(blocks, messagesBlockOf(p))
		}
		if len(blocks) == 0 {
			continue
		}
		content, err := json.Marshal(blocks)
		if err != nil {
			return nil, err
		}
		// consecutive messages of one role become one: roles must alternate
		if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == string(m.Role) {
			var prev []messagesBlock
			_ = json.Unmarshal(req.Messages[n-1].Content, &prev) // written above
			content, _ = json.Marshal(append(prev, blocks...))
			req.Messages[n-1].Content = content
			continue
		}
		req.Messages = append(req.Messages, messagesMessage{Role: string(m.Role), Content: content})
	}
	return json.Marshal(req)
}

// messagesBlockOf is a neutral part as a Messages content block.
func messagesBlockOf(p Part) messagesBlock {
	switch p.Kind {
	case PartImage:
		if p.Image.URL != "" {
			return messagesBlock{Type: "image", Source: &messagesSource{Type: "url", URL: p.Image.URL}}
		}
		return messagesBlock{Type: "image", Source: &messagesSource{Type: "base64", MediaType: p.Image.MediaType, Data: p.Image.Data}}
	case PartToolCall:
		input := json.RawMessage(cmp.Or(p.ToolCall.Arguments, "{}"))
		if !json.Valid(input) {
			input = json.RawMessage("{}")
		}
		return messagesBlock{Type: "tool_use", ID: messagesToolID(p.ToolCall.ID), Name: p.ToolCall.Name, Input: input}
	case PartToolResult:
		inner := make([]messagesBlock, 0, len(p.ToolResult.Content))
		for _, c := range p.ToolResult.Content {
			inner = append(inner, messagesBlockOf(c))
		}
		content, _ := json.Marshal(inner)
		if len(inner) == 0 {
			content = quoteJSON("")
		}
		return messagesBlock{Type: "tool_result", ToolUseID: messagesToolID(p.ToolResult.CallID), Content: content, IsError: p.ToolResult.IsError}
	case PartThinking:
		if p.Redacted {
			return messagesBlock{Type: "redacted_thinking", Data: p.Signature}
		}
		return messagesBlock{Type: "thinking", Thinking: p.Text, Signature: p.Signature}
	}
	return messagesBlock{Type: "text", Text: p.Text}
}

// messagesToolID is a tool call id as Messages takes it: letters, digits,
// _ and - only. Another id (some Chat providers use . or :) gets those
// replaced and a short hash of itself appended, the same for the call and
// its result, so they still pair up and two ids stay apart.
func messagesToolID(id string) string {
	valid := func(r rune) bool {
		return r == '_' || r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
	}
	if id != "" && !strings.ContainsFunc(id, func(r rune) bool { return !valid(r) }) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return strings.Map(func(r rune) rune {
		if valid(r) {
			return r
		}
		return '_'
	}, id) + "_" + hex.EncodeToString(sum[:4])
}

// messagesResponse is a Messages response.
type messagesResponse struct {
	ID           string             `json:"id"`
	Type         string             `json:"type"`
	Role         string             `json:"role"`
	Model        string             `json:"model"`
	Content      []messagesBlock    `json:"content"`
	StopReason   string             `json:"stop_reason"`
	StopSequence *string            `json:"stop_sequence"`
	Usage        *messagesUsageJSON `json:"usage"`
}

type messagesUsageJSON struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
}

// neutral is the usage in the neutral form: input counts the cache too.
func (u *messagesUsageJSON) neutral() *Usage {
	if u == nil {
		return nil
	}
	return &Usage{InputTokens: u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens,
		OutputTokens: u.OutputTokens, CacheReadTokens: u.CacheReadInputTokens, CacheWriteTokens: u.CacheCreationInputTokens}
}

// messagesUsageOf is neutral usage in Messages' terms.
func messagesUsageOf(u *Usage) *messagesUsageJSON {
	if u == nil {
		return &messagesUsageJSON{}
	}
	return &messagesUsageJSON{InputTokens: max(u.InputTokens-u.CacheReadTokens-u.CacheWriteTokens, 0), OutputTokens: u.OutputTokens,
		CacheReadInputTokens: u.CacheReadTokens, CacheCreationInputTokens: u.CacheWriteTokens}
}

// decodeMessagesReply reads a Messages response.
func decodeMessagesReply(body []byte) (*Reply, error) {
	var resp messagesResponse
	if err := json.Unmarshal(body, &resp); err != nil || resp.Type != "message" {
		return nil, errUpstreamReply
	}
	r := &Reply{ID: resp.ID, Model: resp.Model, StopReason: messagesStopReason(resp.StopReason), Usage: resp.Usage.neutral()}
	for _, b := range resp.Content {
		if part, err := b.neutral("content"); err == nil {
			r.Parts = append(r.Parts, part)
		}
	}
	return r, nil
}

// encodeMessagesReply writes a reply as a Messages response for a client
// that asked for model.
func encodeMessagesReply(r *Reply, model string) []byte {
	resp := messagesResponse{ID: clientID("msg_", r.ID), Type: "message", Role: "assistant", Model: model,
		StopReason: cmp.Or(messagesStopReasons[r.StopReason], "end_turn"), Usage: messagesUsageOf(r.Usage), Content: []messagesBlock{}}
	for _, p := range r.Parts {
		resp.Content = append(resp.Content, messagesBlockOf(p))
	}
	body, _ := json.Marshal(resp) // strings, numbers and valid JSON always marshal
	return body
}

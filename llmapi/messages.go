package llmapi

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
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

// decodeMessages reads a Messages request into the neutral form.
func decodeMessages(body []byte) (*Turn, error) {
	r := newTurnReader(body)
	err := r.members(0, "the request", func(name []byte) (err error) {
		t := &r.t
		switch string(name) {
		case "model":
			t.Model, err = r.string(`"model"`)
		case "max_tokens":
			t.MaxTokens, err = r.integer(`"max_tokens"`)
		case "system":
			t.System, err = r.messagesSystem()
		case "messages":
			return r.each(1, `"messages"`, r.messagesMessage)
		case "tools":
			return r.each(1, `"tools"`, r.messagesTool)
		case "tool_choice":
			t.ToolChoice, err = r.messagesToolChoice()
		case "temperature":
			t.Temperature, err = r.number(`"temperature"`)
		case "top_p":
			t.TopP, err = r.number(`"top_p"`)
		case "stop_sequences":
			return r.elements(1, `"stop_sequences"`, func(int) error {
				stop, err := r.string(`"stop_sequences"`)
				t.Stop = append(t.Stop, stop)
				return err
			})
		case "stream":
			var stream *bool
			stream, err = r.boolean(`"stream"`)
			t.Stream = stream != nil && *stream
		case "mcp_servers", "container":
			var raw []byte
			if raw, err = r.raw(1); raw != nil {
				return unsupported(`"` + string(name) + `", a server-side feature`)
			}
		case "metadata":
			return r.only(1, `"metadata"`, "user_id", func() (err error) {
				t.User, err = r.string(`"metadata".user_id`)
				return err
			})
		default:
			return r.value(1)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return r.finish()
}

// messagesSystem reads "system": a string, or text blocks joined by blank
// lines.
func (r *turnReader) messagesSystem() (string, error) {
	r.scratch = r.scratch[:0]
	if err := r.messagesContent(1, `"system"`, &r.scratch, false); err != nil {
		return "", within(err, "system")
	}
	return systemText(r.scratch, "\n\n", "\"system\" with an image")
}

// messagesMessage reads one of "messages".
func (r *turnReader) messagesMessage() error {
	var role []byte
	r.scratch = r.scratch[:0]
	err := r.members(2, "", func(name []byte) (err error) {
		switch string(name) {
		case "role":
			role, err = r.word(".role")
		case "content":
			err = r.messagesContent(3, ".content", &r.scratch, false)
		default:
			return r.value(3)
		}
		return err
	})
	if err != nil {
		return err
	}
	switch string(role) {
	case "user":
		r.beginMessage(RoleUser)
	case "assistant":
		r.beginMessage(RoleAssistant)
	default:
		return invalid(".role must be user or assistant")
	}
	r.parts = append(r.parts, r.scratch...)
	return nil
}

// messagesContent reads content at depth into parts: a string (one text
// part), null, or content blocks (inResult: of a tool_result).
func (r *turnReader) messagesContent(depth int, what string, parts *[]Part, inResult bool) error {
	switch r.peek() {
	case '"':
		s, err := r.string(what)
		*parts = append(*parts, Part{Kind: PartText, Text: s})
		return err
	case 'n', '[':
	default:
		return r.wrongType(what, "a string or an array of content blocks")
	}
	return r.elements(depth, what, func(j int) error {
		p, err := r.messagesBlock(depth+1, inResult)
		if err != nil {
			return within(err, ".content[%d]", j)
		}
		*parts = append(*parts, p)
		return nil
	})
}

// messagesBlock reads one content block at depth; inResult when it is in
// a tool_result's content, which holds only text and images. A
// tool_result's own content is read into r.results, after the blocks
// before it there.
func (r *turnReader) messagesBlock(depth int, inResult bool) (Part, error) {
	var kind []byte
	var b struct {
		text, id, name, toolUseID, input, thinking, signature, data string
		source                                                      Image
		sourceType                                                  []byte
		hasSource                                                   bool
		isError                                                     *bool
	}
	resultStart := len(r.results) // where a tool_result's content goes
	err := r.members(depth, "", func(name []byte) (err error) {
		switch string(name) {
		case "type":
			kind, err = r.word(".type")
		case "text":
			b.text, err = r.string(".text")
		case "id":
			b.id, err = r.string(".id")
		case "name":
			b.name, err = r.string(".name")
		case "tool_use_id":
			b.toolUseID, err = r.string(".tool_use_id")
		case "input":
			var raw []byte
			if raw, err = r.raw(depth + 1); raw != nil {
				b.input = r.keep(raw, false)
			}
		case "content":
			if inResult {
				return r.value(depth + 1)
			}
			err = r.messagesContent(depth+1, ".content", &r.results, true)
		case "is_error":
			b.isError, err = r.boolean(".is_error")
		case "thinking":
			b.thinking, err = r.string(".thinking")
		case "signature":
			b.signature, err = r.string(".signature")
		case "data":
			b.data, err = r.string(".data")
		case "source":
			if r.peek() != '{' { // a search result's source is its URL
				return r.value(depth + 1)
			}
			b.hasSource = true
			return r.members(depth+1, ".source", func(name []byte) (err error) {
				switch string(name) {
				case "type":
					b.sourceType, err = r.word(".source.type")
				case "media_type":
					b.source.MediaType, err = r.string(".source.media_type")
				case "data":
					b.source.Data, err = r.string(".source.data")
				case "url":
					b.source.URL, err = r.string(".source.url")
				default:
					return r.value(depth + 2)
				}
				return err
			})
		default:
			return r.value(depth + 1)
		}
		return err
	})
	if err != nil {
		return Part{}, err
	}
	switch string(kind) {
	case "text":
		return Part{Kind: PartText, Text: b.text}, nil
	case "image":
		switch string(b.sourceType) {
		case "url":
			return Part{Kind: PartImage, Image: r.image(Image{URL: b.source.URL})}, nil
		case "base64":
			return Part{Kind: PartImage, Image: r.image(Image{MediaType: b.source.MediaType, Data: b.source.Data})}, nil
		}
		if !b.hasSource {
			return Part{}, invalid(".source is required")
		}
		return Part{}, unsupported(", an image by file id")
	}
	if inResult {
		return Part{}, unsupported(", a block other than text or an image in a tool result")
	}
	switch string(kind) {
	case "tool_use":
		return r.toolCallPart(ToolCall{ID: b.id, Name: b.name, Arguments: cmp.Or(b.input, "{}")}), nil
	case "tool_result":
		return r.toolResultPart(b.toolUseID, resultStart, b.isError != nil && *b.isError), nil
	case "thinking":
		return Part{Kind: PartThinking, Text: b.thinking, Signature: b.signature}, nil
	case "redacted_thinking":
		return Part{Kind: PartThinking, Signature: b.data, Redacted: true}, nil
	}
	return Part{}, unsupported(", a content block other than text, image, tool_use, tool_result or thinking")
}

// messagesTool reads one of "tools": a custom tool; a server tool cannot
// go to another API.
func (r *turnReader) messagesTool() error {
	tool, kind, err := r.flatTool("input_schema")
	switch {
	case err != nil:
		return err
	case len(kind) > 0 && string(kind) != "custom":
		return unsupported(", a server tool")
	}
	r.t.Tools = append(r.t.Tools, tool)
	return nil
}

// messagesToolChoice reads "tool_choice"; null is none given.
func (r *turnReader) messagesToolChoice() (*ToolChoice, error) {
	if r.peek() == 'n' {
		return nil, r.literal("null")
	}
	var kind []byte
	var c ToolChoice
	err := r.members(1, `"tool_choice"`, func(name []byte) (err error) {
		switch string(name) {
		case "type":
			kind, err = r.word(`"tool_choice".type`)
		case "name":
			c.Name, err = r.string(`"tool_choice".name`)
		case "disable_parallel_tool_use":
			var no *bool
			no, err = r.boolean(`"tool_choice".disable_parallel_tool_use`)
			c.NoParallel = no != nil && *no
		default:
			return r.value(2)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch string(kind) {
	case "auto":
		c.Mode, c.Name = ToolAuto, ""
	case "none":
		c.Mode, c.Name = ToolNone, ""
	case "any":
		c.Mode, c.Name = ToolRequired, ""
	case "tool":
		if c.Name == "" {
			return nil, invalid("\"tool_choice\" names no tool")
		}
		c.Mode = ToolNamed
	default:
		return nil, invalid("\"tool_choice\".type is not auto, any, tool or none")
	}
	return &c, nil
}

// appendMessagesTurn appends the neutral request as a Messages request for
// model, with max_tokens DefaultMaxTokens when the client set none.
// Consecutive messages of one role become one: roles must alternate.
func appendMessagesTurn(w []byte, t *Turn, model string) ([]byte, error) {
	if t.Format != nil {
		return nil, unsupported("structured output (response_format or text.format)")
	}
	w = appendJSONMember(append(w, '{'), "model", model)
	w = appendJSONInt(w, "max_tokens", cmp.Or(t.MaxTokens, DefaultMaxTokens))
	if t.System != "" {
		w = appendJSONMember(w, "system", t.System)
	}
	w = append(appendJSONKey(w, "messages"), '[')
	var open Role // the role of the message whose content is open
	for _, m := range t.Messages {
		for _, p := range m.Parts {
			if open != m.Role {
				if open != "" {
					w = append(w, "]}"...)
				}
				w = appendJSONMember(append(appendElem(w), '{'), "role", string(m.Role))
				w = append(appendJSONKey(w, "content"), '[')
				open = m.Role
			}
			w = appendMessagesBlock(appendElem(w), p)
		}
	}
	if open != "" {
		w = append(w, "]}"...)
	}
	w = append(w, ']')
	if len(t.Tools) > 0 {
		w = append(appendJSONKey(w, "tools"), '[')
		for _, tool := range t.Tools {
			w = appendJSONMember(append(appendElem(w), '{'), "name", tool.Name)
			if tool.Description != "" {
				w = appendJSONMember(w, "description", tool.Description)
			}
			schema := tool.Parameters
			if len(schema) == 0 {
				schema = []byte(`{"type":"object"}`)
			}
			w = append(appendJSONRaw(w, "input_schema", schema), '}')
		}
		w = append(w, ']')
		if c := t.ToolChoice; c != nil {
			kind := map[string]string{ToolAuto: "auto", ToolNone: "none", ToolRequired: "any", ToolNamed: "tool"}[c.Mode]
			w = appendJSONMember(append(appendJSONKey(w, "tool_choice"), '{'), "type", kind)
			if c.Mode == ToolNamed {
				w = appendJSONMember(w, "name", c.Name)
			}
			if c.NoParallel && c.Mode != ToolNone {
				w = appendJSONBool(w, "disable_parallel_tool_use", true)
			}
			w = append(w, '}')
		}
	}
	w = appendSampling(w, t)
	if len(t.Stop) > 0 {
		w = appendStrings(w, "stop_sequences", t.Stop)
	}
	if t.Stream {
		w = appendJSONBool(w, "stream", true)
	}
	if t.User != "" {
		w = append(appendJSONMember(append(appendJSONKey(w, "metadata"), '{'), "user_id", t.User), '}')
	}
	return append(w, '}'), nil
}

// appendMessagesBlock appends a neutral part as a Messages content block.
// A tool call's arguments become its input object, "{}" when they are not
// one (a model's malformed call in the history).
func appendMessagesBlock(w []byte, p Part) []byte {
	switch p.Kind {
	case PartImage:
		if p.Image.URL != "" {
			return append(appendJSONMember(append(w, `{"type":"image","source":{"type":"url"`...), "url", p.Image.URL), "}}"...)
		}
		w = append(w, `{"type":"image","source":{"type":"base64"`...)
		w = appendJSONMember(appendJSONMember(w, "media_type", p.Image.MediaType), "data", p.Image.Data)
		return append(w, "}}"...)
	case PartToolCall:
		w = appendJSONMember(append(w, `{"type":"tool_use"`...), "id", messagesToolID(p.ToolCall.ID))
		w = appendJSONMember(w, "name", p.ToolCall.Name)
		input := readOnlyBytes(p.ToolCall.Arguments)
		if !isJSONObject(input) {
			input = []byte("{}")
		}
		return append(appendJSONRaw(w, "input", input), '}')
	case PartToolResult:
		w = appendJSONMember(append(w, `{"type":"tool_result"`...), "tool_use_id", messagesToolID(p.ToolResult.CallID))
		w = appendJSONKey(w, "content")
		if len(p.ToolResult.Content) == 0 {
			w = append(w, `""`...)
		} else {
			w = append(w, '[')
			for _, c := range p.ToolResult.Content {
				w = appendMessagesBlock(appendElem(w), c)
			}
			w = append(w, ']')
		}
		if p.ToolResult.IsError {
			w = appendJSONBool(w, "is_error", true)
		}
		return append(w, '}')
	case PartThinking:
		if p.Redacted {
			return append(appendJSONMember(append(w, `{"type":"redacted_thinking"`...), "data", p.Signature), '}')
		}
		w = appendJSONMember(append(w, `{"type":"thinking"`...), "thinking", p.Text)
		return append(appendJSONMember(w, "signature", p.Signature), '}')
	}
	return append(appendJSONMember(append(w, `{"type":"text"`...), "text", p.Text), '}')
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

// decodeMessagesReply reads a Messages response. Blocks that no other API
// has (a server tool's) are left out.
func decodeMessagesReply(body []byte) (*Reply, error) {
	r := newTurnReader(body)
	reply := &Reply{}
	var kind []byte
	err := r.members(0, "", func(name []byte) (err error) {
		switch string(name) {
		case "id":
			reply.ID, err = r.string("")
		case "type":
			kind, err = r.word("")
		case "model":
			reply.Model, err = r.string("")
		case "stop_reason":
			var reason []byte
			reason, err = r.word("")
			reply.StopReason = messagesStopReason(string(reason))
		case "usage":
			var raw []byte
			if raw, err = r.raw(1); raw != nil {
				var u messagesUsage
				err = u.read(raw)
				reply.Usage = ptr(u.neutral())
			}
		case "content":
			return r.elements(1, "", func(int) error {
				p, err := r.messagesBlock(2, false)
				if _, ok := err.(*UnsupportedError); ok {
					return nil
				}
				reply.Parts = append(reply.Parts, p)
				return err
			})
		default:
			return r.value(1)
		}
		return err
	})
	if err != nil || string(kind) != "message" || r.peek() != 0 {
		return nil, errUpstreamReply
	}
	return reply, nil
}

// encodeMessagesReply writes a reply as a Messages response for a client
// that asked for model.
func encodeMessagesReply(r *Reply, model string) []byte {
	w := appendJSONMember([]byte{'{'}, "id", clientID("msg_", r.ID))
	w = appendJSONMember(append(w, `,"type":"message","role":"assistant"`...), "model", model)
	w = append(appendJSONKey(w, "content"), '[')
	for _, p := range r.Parts {
		w = appendMessagesBlock(appendElem(w), p)
	}
	w = appendJSONMember(append(w, ']'), "stop_reason", cmp.Or(messagesStopReasons[r.StopReason], "end_turn"))
	var u Usage
	if r.Usage != nil {
		u = *r.Usage
	}
	w = appendMessagesUsage(appendJSONKey(append(w, `,"stop_sequence":null`...), "usage"), u)
	return append(w, '}')
}

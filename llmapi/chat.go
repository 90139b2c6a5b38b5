package llmapi

import (
	"cmp"
	"encoding/json"
	"fmt"
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

// decodeChat reads a Chat Completions request into the neutral form.
func decodeChat(body []byte) (*Turn, error) {
	r := newTurnReader(body)
	var toolChoice []byte
	var parallel *bool
	var system []string
	err := r.members(0, "the request", func(name []byte) (err error) {
		t := &r.t
		switch string(name) {
		case "model":
			t.Model, err = r.string(`"model"`)
		case "messages":
			return r.each(1, `"messages"`, func() error { return r.chatMessage(&system) })
		case "tools":
			return r.each(1, `"tools"`, r.chatTool)
		case "tool_choice":
			toolChoice, err = r.raw(1)
		case "parallel_tool_calls":
			parallel, err = r.boolean(`"parallel_tool_calls"`)
		case "max_tokens":
			if t.MaxTokens == 0 {
				t.MaxTokens, err = r.integer(`"max_tokens"`)
				break
			}
			_, err = r.integer(`"max_tokens"`)
		case "max_completion_tokens":
			var n int
			if n, err = r.integer(`"max_completion_tokens"`); n != 0 {
				t.MaxTokens = n
			}
		case "temperature":
			t.Temperature, err = r.number(`"temperature"`)
		case "top_p":
			t.TopP, err = r.number(`"top_p"`)
		case "stop":
			var raw []byte
			if raw, err = r.raw(1); err == nil {
				t.Stop, err = stopSequences(raw)
			}
		case "stream":
			var stream *bool
			stream, err = r.boolean(`"stream"`)
			t.Stream = stream != nil && *stream
		case "stream_options":
			return r.only(1, `"stream_options"`, "include_usage", func() error {
				include, err := r.boolean(`"stream_options".include_usage`)
				t.StreamUsage = include != nil && *include
				return err
			})
		case "user":
			t.User, err = r.string(`"user"`)
		case "n":
			var n int
			if n, err = r.integer(`"n"`); n > 1 {
				return unsupported("\"n\" greater than 1")
			}
		case "modalities":
			return r.elements(1, `"modalities"`, func(int) error {
				word, err := r.word(`"modalities"`)
				if string(word) == "audio" {
					return unsupported("audio output")
				}
				return err
			})
		case "audio":
			var raw []byte
			if raw, err = r.raw(1); raw != nil {
				return unsupported("audio output")
			}
		case "response_format":
			t.Format, err = r.outputFormat(1, `"response_format"`, "json_schema")
		case "reasoning_effort":
			t.ReasoningEffort, err = r.string(`"reasoning_effort"`)
		default:
			return r.value(1)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if r.t.ToolChoice, err = openAIToolChoice(toolChoice, parallel); err != nil {
		return nil, err
	}
	r.t.System = strings.Join(system, "\n\n")
	return r.finish()
}

// stopSequences reads Chat's "stop": a string or an array of strings.
func stopSequences(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
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

// chatMessage reads one message of "messages": its content, tool calls and
// tool_call_id are read before its role says where they go.
func (r *turnReader) chatMessage(system *[]string) error {
	var role []byte
	var callID string
	callsFrom := len(r.calls)
	r.scratch = r.scratch[:0]
	err := r.members(2, "", func(name []byte) (err error) {
		switch string(name) {
		case "role":
			role, err = r.word(".role")
		case "content":
			err = r.chatContent()
		case "tool_calls":
			return r.elements(3, ".tool_calls", func(i int) error {
				if err := r.chatToolCall(4); err != nil {
					return within(err, ".tool_calls[%d]", i)
				}
				return nil
			})
		case "tool_call_id":
			callID, err = r.string(".tool_call_id")
		default:
			return r.value(3)
		}
		return err
	})
	if err != nil {
		return err
	}
	// the content was read into r.scratch; it goes where the role says
	content := r.scratch
	calls := r.calls[callsFrom:]
	switch string(role) {
	case "system", "developer":
		text, err := systemText(content, "\n", ": a system message with an image")
		if err != nil {
			return err
		}
		*system = append(*system, text)
	case "user":
		r.beginMessage(RoleUser)
		r.parts = append(r.parts, content...)
	case "assistant":
		r.beginMessage(RoleAssistant)
		r.parts = append(r.parts, content...)
		for i := range calls {
			r.part(Part{Kind: PartToolCall, ToolCall: &calls[i]})
		}
		return nil
	case "tool":
		r.beginMessage(RoleUser)
		first := len(r.results)
		r.results = append(r.results, content...)
		r.part(r.toolResultPart(callID, first, false))
	default:
		return invalid(".role is not one of system, developer, user, assistant, tool")
	}
	r.calls = r.calls[:callsFrom]
	return nil
}

// chatContent reads a message's content into r.scratch: a string (one
// text part), null, or text and image_url parts.
func (r *turnReader) chatContent() error {
	switch r.peek() {
	case '"':
		s, err := r.string(".content")
		r.scratch = append(r.scratch, Part{Kind: PartText, Text: s})
		return err
	case 'n', '[':
	default:
		return r.wrongType(".content", "a string or an array of content parts")
	}
	return r.elements(3, ".content", func(j int) error {
		var kind []byte
		var text, url string
		var hasURL bool
		err := r.members(4, "", func(name []byte) (err error) {
			switch string(name) {
			case "type":
				kind, err = r.word(".type")
			case "text", "refusal":
				text, err = r.string(".text")
			case "image_url":
				return r.only(5, ".image_url", "url", func() (err error) {
					url, err = r.string(".image_url.url")
					hasURL = url != ""
					return err
				})
			default:
				return r.value(5)
			}
			return err
		})
		switch {
		case err != nil:
			return within(err, ".content[%d]", j)
		case string(kind) == "text" || string(kind) == "refusal":
			r.scratch = append(r.scratch, Part{Kind: PartText, Text: text})
		case string(kind) == "image_url" && !hasURL:
			return invalid(".content[%d].image_url.url is required", j)
		case string(kind) == "image_url":
			r.scratch = append(r.scratch, Part{Kind: PartImage, Image: r.image(imageOfURL(url))})
		default:
			return unsupported(fmt.Sprintf(".content[%d], a content part that is neither text nor an image", j))
		}
		return nil
	})
}

// chatToolCall reads a tool call, at depth, of a message's tool_calls into
// r.calls.
func (r *turnReader) chatToolCall(depth int) error {
	var call ToolCall
	err := r.members(depth, "", func(name []byte) (err error) {
		switch string(name) {
		case "id":
			call.ID, err = r.string(".id")
		case "function":
			return r.members(depth+1, ".function", func(name []byte) (err error) {
				switch string(name) {
				case "name":
					call.Name, err = r.string(".function.name")
				case "arguments":
					call.Arguments, err = r.string(".function.arguments")
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
	r.calls = append(r.calls, call)
	return err
}

// chatTool reads one of "tools".
func (r *turnReader) chatTool() error {
	var tool Tool
	var kind []byte
	err := r.members(2, "", func(name []byte) (err error) {
		switch string(name) {
		case "type":
			kind, err = r.word(".type")
		case "function":
			return r.members(3, ".function", func(name []byte) error {
				if ok, err := r.functionMember(4, name, "parameters", &tool); !ok {
					return r.value(4)
				} else if err != nil {
					return within(err, ".function")
				}
				return nil
			})
		default:
			return r.value(3)
		}
		return err
	})
	switch {
	case err != nil:
		return err
	case string(kind) != "function":
		return unsupported(", a tool that is not a function")
	}
	r.t.Tools = append(r.t.Tools, tool)
	return nil
}

// appendChatTurn appends the neutral request as a Chat Completions request
// for model. A streamed request always asks for the usage chunk, so usage
// is never lost; the stream encoder drops it when the client did not ask.
func appendChatTurn(w []byte, t *Turn, model string) []byte {
	w = appendJSONMember(append(w, '{'), "model", model)
	w = append(appendJSONKey(w, "messages"), '[')
	if t.System != "" {
		w = appendJSONMember(appendJSONMember(append(appendElem(w), '{'), "role", "system"), "content", t.System)
		w = append(w, '}')
	}
	for _, m := range t.Messages {
		w = appendChatMessages(w, m)
	}
	w = append(w, ']')
	if len(t.Tools) > 0 {
		w = append(appendJSONKey(w, "tools"), '[')
		for _, tool := range t.Tools {
			w = append(appendJSONKey(append(appendElem(w), `{"type":"function"`...), "function"), '{')
			w = appendFunction(w, tool.Name, tool.Description, "parameters", tool.Parameters, tool.Strict)
			w = append(w, "}}"...)
		}
		w = append(w, ']')
		w = appendOpenAIToolChoice(w, t.ToolChoice, true)
	}
	if f := t.Format; f != nil {
		w = appendJSONMember(append(appendJSONKey(w, "response_format"), '{'), "type", f.Type)
		if f.Type == "json_schema" {
			w = append(appendOutputSchema(append(appendJSONKey(w, "json_schema"), '{'), f), '}')
		}
		w = append(w, '}')
	}
	if t.ReasoningEffort != "" {
		w = appendJSONMember(w, "reasoning_effort", t.ReasoningEffort)
	}
	return appendOpenAIOptions(w, t, "max_completion_tokens")
}

// appendChatMessages appends a neutral message as Chat messages: its tool
// results first, each a tool message of its own, then the rest.
func appendChatMessages(w []byte, m Message) []byte {
	texts, others, calls := 0, 0, 0
	for _, p := range m.Parts {
		switch p.Kind {
		case PartText:
			texts++
		case PartImage:
			others++
		case PartToolCall:
			calls++
		case PartToolResult:
			w = appendJSONMember(append(appendElem(w), '{'), "role", "tool")
			w = appendChatToolContent(appendJSONKey(w, "content"), p.ToolResult.Content)
			w = append(appendJSONMember(w, "tool_call_id", p.ToolResult.CallID), '}')
		}
	}
	if texts+others+calls == 0 {
		return w
	}
	w = appendJSONMember(append(appendElem(w), '{'), "role", string(m.Role))
	w = appendJSONKey(w, "content")
	switch {
	case texts+others == 0:
		w = append(w, "null"...)
	case texts == 1 && others == 0:
		for _, p := range m.Parts {
			if p.Kind == PartText {
				w = appendJSONString(w, p.Text)
			}
		}
	default:
		w = append(w, '[')
		for _, p := range m.Parts {
			switch p.Kind {
			case PartText:
				w = appendJSONMember(append(appendElem(w), `{"type":"text"`...), "text", p.Text)
				w = append(w, '}')
			case PartImage:
				w = append(appendElem(w), `{"type":"image_url","image_url":{"url":`...)
				w = append(appendImageURL(w, p.Image), "}}"...)
			}
		}
		w = append(w, ']')
	}
	if calls > 0 {
		w = appendChatToolCalls(w, m.Parts)
	}
	return append(w, '}')
}

// appendChatToolCalls appends the "tool_calls" of a Chat message: the tool
// calls among parts.
func appendChatToolCalls(w []byte, parts []Part) []byte {
	w = append(appendJSONKey(w, "tool_calls"), '[')
	for _, p := range parts {
		if p.Kind != PartToolCall {
			continue
		}
		w = appendJSONMember(append(appendElem(w), '{'), "id", p.ToolCall.ID)
		w = append(w, `,"type":"function","function":{`...)
		w = appendJSONMember(w, "name", p.ToolCall.Name)
		w = append(appendJSONMember(w, "arguments", cmp.Or(p.ToolCall.Arguments, "{}")), "}}"...)
	}
	return append(w, ']')
}

// appendOpenAIToolChoice appends the "tool_choice" of Chat (chat set) or
// Responses, with parallel_tool_calls false for no parallel calls; nothing
// for none given.
func appendOpenAIToolChoice(w []byte, c *ToolChoice, chat bool) []byte {
	if c == nil {
		return w
	}
	w = appendJSONKey(w, "tool_choice")
	switch {
	case c.Mode != ToolNamed:
		w = appendJSONString(w, c.Mode)
	case chat:
		w = append(appendJSONString(append(w, `{"type":"function","function":{"name":`...), c.Name), "}}"...)
	default:
		w = append(appendJSONString(append(w, `{"type":"function","name":`...), c.Name), '}')
	}
	if c.NoParallel {
		w = appendJSONBool(w, "parallel_tool_calls", false)
	}
	return w
}

// appendOpenAIOptions appends the members that end a Chat or Responses
// request, maxKey naming its output bound, and closes it.
func appendOpenAIOptions(w []byte, t *Turn, maxKey string) []byte {
	if t.MaxTokens != 0 {
		w = appendJSONInt(w, maxKey, t.MaxTokens)
	}
	w = appendSampling(w, t)
	if len(t.Stop) > 0 {
		w = appendStrings(w, "stop", t.Stop)
	}
	if t.Stream {
		w = appendJSONBool(w, "stream", true)
		if maxKey == "max_completion_tokens" {
			w = append(w, `,"stream_options":{"include_usage":true}`...)
		}
	}
	if maxKey == "max_output_tokens" {
		w = appendJSONBool(w, "store", false)
	}
	if t.User != "" {
		w = appendJSONMember(w, "user", t.User)
	}
	return append(w, '}')
}

// appendSampling appends temperature and top_p, where set.
func appendSampling(w []byte, t *Turn) []byte {
	if t.Temperature != nil {
		w = appendJSONFloat(w, "temperature", *t.Temperature)
	}
	if t.TopP != nil {
		w = appendJSONFloat(w, "top_p", *t.TopP)
	}
	return w
}

// appendChatToolContent appends a tool result's content as a tool
// message's: text only, so an image is given as its URL; one text is a
// string.
func appendChatToolContent(w []byte, content []Part) []byte {
	switch {
	case len(content) == 0:
		return append(w, `""`...)
	case len(content) == 1 && content[0].Kind == PartText:
		return appendJSONString(w, content[0].Text)
	}
	w = append(w, '[')
	for _, p := range content {
		w = append(appendElem(w), `{"type":"text","text":`...)
		if p.Kind == PartImage {
			w = appendImageURL(w, p.Image)
		} else {
			w = appendJSONString(w, p.Text)
		}
		w = append(w, '}')
	}
	return append(w, ']')
}

// decodeChatReply reads a Chat Completions response: its first choice.
func decodeChatReply(body []byte) (*Reply, error) {
	r := newTurnReader(body)
	reply := &Reply{}
	var finish []byte
	var content, refusal string
	choices := 0
	message := func(name []byte) (err error) {
		switch string(name) {
		case "content":
			content, err = r.string("")
		case "refusal":
			refusal, err = r.string("")
		case "tool_calls":
			return r.elements(4, "", func(int) error { return r.chatToolCall(5) })
		default:
			return r.value(4)
		}
		return err
	}
	err := r.members(0, "", func(name []byte) (err error) {
		switch string(name) {
		case "id":
			reply.ID, err = r.string("")
		case "created":
			var at int
			at, err = r.integer("")
			reply.Created = int64(at)
		case "model":
			reply.Model, err = r.string("")
		case "usage":
			reply.Usage, err = r.usage(chatUsageKeys)
		case "choices":
			return r.elements(1, "", func(int) error {
				if choices++; choices > 1 {
					return r.value(2)
				}
				return r.members(2, "", func(name []byte) (err error) {
					switch string(name) {
					case "finish_reason":
						finish, err = r.word("")
					case "message":
						return r.members(3, "", message)
					default:
						return r.value(3)
					}
					return err
				})
			})
		default:
			return r.value(1)
		}
		return err
	})
	if err != nil || choices == 0 || r.peek() != 0 {
		return nil, errUpstreamReply
	}
	reply.StopReason = chatStopReason(string(finish))
	if content != "" {
		reply.Parts = append(reply.Parts, Part{Kind: PartText, Text: content})
	}
	if refusal != "" {
		reply.Parts = append(reply.Parts, Part{Kind: PartText, Text: refusal})
		reply.StopReason = StopContentFilter
	}
	for i := range r.calls {
		reply.Parts = append(reply.Parts, Part{Kind: PartToolCall, ToolCall: &r.calls[i]})
	}
	return reply, nil
}

// encodeChatReply writes a reply as a Chat Completions response for a
// client that asked for model.
func encodeChatReply(r *Reply, model string) []byte {
	w := appendJSONMember([]byte{'{'}, "id", clientID("chatcmpl-", r.ID))
	w = appendJSONInt(append(w, `,"object":"chat.completion"`...), "created", int(r.Created))
	w = appendJSONMember(w, "model", model)
	w = append(w, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	texts, calls := 0, 0
	for _, p := range r.Parts {
		switch p.Kind {
		case PartText:
			if texts == 0 {
				w = append(w, '"')
			}
			w = appendJSONStringBody(w, p.Text)
			texts++
		case PartToolCall:
			calls++
		}
	}
	if texts > 0 {
		w = append(w, '"')
	} else {
		w = append(w, "null"...)
	}
	if calls > 0 {
		w = appendChatToolCalls(w, r.Parts)
	}
	w = appendJSONMember(append(w, '}'), "finish_reason", string(cmp.Or(r.StopReason, StopEnd)))
	w = append(w, "}]"...)
	if r.Usage != nil {
		w = appendOpenAIUsage(appendJSONKey(w, "usage"), r.Usage, chatUsageKeys)
	}
	return append(w, '}')
}

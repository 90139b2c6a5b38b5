package llmapi

import (
	"cmp"
	"fmt"
	"strings"
)

// decodeResponses reads a Responses request into the neutral form for
// another API, refusing what it cannot express.
func decodeResponses(body []byte) (*Turn, error) { return decodeResponsesTurn(body, true) }

// decodeResponsesTurn reads a Responses request into the neutral form.
// Strict, it refuses what no other API can express (built-in tools and
// their items); lenient, it leaves them out. A previous_response_id is kept
// in the turn: the gateway holds the conversations of the responses it
// translated.
func decodeResponsesTurn(body []byte, strict bool) (*Turn, error) {
	r := newTurnReader(body)
	var toolChoice []byte
	var parallel *bool
	var system []string
	var instructions string
	hasInput := false
	err := r.members(0, "the request", func(name []byte) (err error) {
		t := &r.t
		switch string(name) {
		case "model":
			t.Model, err = r.string(`"model"`)
		case "instructions":
			instructions, err = r.string(`"instructions"`)
		case "input":
			hasInput = r.peek() != 'n'
			if r.peek() == '"' {
				var text string
				text, err = r.string(`"input"`)
				r.beginMessage(RoleUser)
				r.text(text)
				return err
			}
			if r.peek() != '[' {
				return r.wrongType(`"input"`, "a string or an array of items")
			}
			return r.each(1, `"input"`, func() error { return r.responsesItem(2, strict, &system) })
		case "tools":
			return r.each(1, `"tools"`, func() error { return r.responsesTool(strict) })
		case "tool_choice":
			toolChoice, err = r.raw(1)
		case "parallel_tool_calls":
			parallel, err = r.boolean(`"parallel_tool_calls"`)
		case "max_output_tokens":
			t.MaxTokens, err = r.integer(`"max_output_tokens"`)
		case "temperature":
			t.Temperature, err = r.number(`"temperature"`)
		case "top_p":
			t.TopP, err = r.number(`"top_p"`)
		case "stream":
			var stream *bool
			stream, err = r.boolean(`"stream"`)
			t.Stream = stream != nil && *stream
		case "store":
			var store *bool
			store, err = r.boolean(`"store"`)
			t.NoStore = store != nil && !*store
		case "previous_response_id":
			t.PreviousResponseID, err = r.string(`"previous_response_id"`)
		case "user":
			t.User, err = r.string(`"user"`)
		case "text":
			return r.only(1, `"text"`, "format", func() (err error) {
				t.Format, err = r.outputFormat(2, `"text".format`, "")
				if _, ok := err.(*UnsupportedError); ok && !strict {
					err = nil
				}
				return err
			})
		case "reasoning":
			return r.only(1, `"reasoning"`, "effort", func() (err error) {
				t.ReasoningEffort, err = r.string(`"reasoning".effort`)
				return err
			})
		default:
			return r.value(1)
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !hasInput:
		return nil, invalid("\"input\" must be a string or an array of items")
	}
	if r.t.ToolChoice, err = openAIToolChoice(toolChoice, parallel); err != nil {
		return nil, err
	}
	if instructions != "" {
		system = append([]string{instructions}, system...)
	}
	r.t.System = strings.Join(system, "\n\n")
	return r.finish()
}

// responsesItem reads an item of "input" (or of a response's "output") at
// depth: a message, a function call or its output. Reasoning items are
// OpenAI's own and left out; a built-in tool's items are refused when
// strict, else left out too. The texts of system and developer messages
// are added to system.
func (r *turnReader) responsesItem(depth int, strict bool, system *[]string) error {
	var kind, role []byte
	var callID, name, args string
	hasContent := false
	r.scratch = r.scratch[:0]
	err := r.members(depth, "", func(key []byte) (err error) {
		switch string(key) {
		case "type":
			kind, err = r.word(".type")
		case "role":
			role, err = r.word(".role")
		case "content", "output":
			if r.peek() == 'n' {
				return r.literal("null")
			}
			hasContent = true
			return r.responsesContent(depth+1, "."+string(key))
		case "call_id":
			callID, err = r.string(".call_id")
		case "name":
			name, err = r.string(".name")
		case "arguments":
			args, err = r.string(".arguments")
		default:
			return r.value(depth + 1)
		}
		return err
	})
	if err != nil {
		return err
	}
	switch string(kind) {
	case "", "message":
		if !hasContent {
			return invalid(".content must be a string or an array of content parts")
		}
		switch string(role) {
		case "user":
			r.beginMessage(RoleUser)
		case "assistant":
			r.beginMessage(RoleAssistant)
		case "system", "developer":
			text, err := systemText(r.scratch, "\n", ": a system message with an image")
			if err != nil {
				return err
			}
			*system = append(*system, text)
			return nil
		default:
			return invalid(".role must be user, assistant, system or developer")
		}
		r.parts = append(r.parts, r.scratch...)
	case "function_call":
		r.beginMessage(RoleAssistant)
		r.part(r.toolCallPart(ToolCall{ID: callID, Name: name, Arguments: args}))
	case "function_call_output":
		if !hasContent {
			return invalid(".output must be a string or an array of content parts")
		}
		r.beginMessage(RoleUser)
		first := len(r.results)
		r.results = append(r.results, r.scratch...)
		r.part(r.toolResultPart(callID, first, false))
	case "reasoning":
	default:
		if strict {
			return unsupported(", an item of a built-in tool")
		}
	}
	return nil
}

// responsesContent reads a message's content or a function call's output
// at depth into r.scratch: a string (one text part) or parts.
func (r *turnReader) responsesContent(depth int, what string) error {
	switch r.peek() {
	case '"':
		s, err := r.string(what)
		r.scratch = append(r.scratch, Part{Kind: PartText, Text: s})
		return err
	case '[':
	default:
		return r.wrongType(what, "a string or an array of content parts")
	}
	return r.elements(depth, what, func(j int) error {
		var kind []byte
		var text, url string
		err := r.members(depth+1, "", func(name []byte) (err error) {
			switch string(name) {
			case "type":
				kind, err = r.word(".type")
			case "text", "refusal":
				text, err = r.string(".text")
			case "image_url":
				url, err = r.string(".image_url")
			default:
				return r.value(depth + 2)
			}
			return err
		})
		switch kind := string(kind); {
		case err != nil:
			return within(err, "%s[%d]", what, j)
		case kind == "input_text" || kind == "output_text" || kind == "text" || kind == "refusal":
			r.scratch = append(r.scratch, Part{Kind: PartText, Text: text})
		case kind == "input_image" && url == "":
			return unsupported(fmt.Sprintf("%s[%d], an image by file id", what, j))
		case kind == "input_image":
			r.scratch = append(r.scratch, Part{Kind: PartImage, Image: r.image(imageOfURL(url))})
		default:
			return unsupported(fmt.Sprintf("%s[%d], a content part that is neither text nor an image", what, j))
		}
		return nil
	})
}

// responsesTool reads one of "tools": a function tool; a built-in tool is
// refused when strict, else left out.
func (r *turnReader) responsesTool(strict bool) error {
	tool, kind, err := r.flatTool("parameters")
	switch {
	case err != nil:
		return err
	case string(kind) != "function" && strict:
		return unsupported(", a built-in tool")
	case string(kind) == "function":
		r.t.Tools = append(r.t.Tools, tool)
	}
	return nil
}

// appendResponsesTurn appends the neutral request as a stateless Responses
// request for model (store false: the gateway sends the whole input).
func appendResponsesTurn(w []byte, t *Turn, model string) ([]byte, error) {
	if len(t.Stop) > 0 {
		return nil, unsupported("stop sequences")
	}
	w = appendJSONMember(append(w, '{'), "model", model)
	if t.System != "" {
		w = appendJSONMember(w, "instructions", t.System)
	}
	w = append(appendJSONKey(w, "input"), '[')
	for _, m := range t.Messages {
		w = appendResponsesItems(w, m)
	}
	w = append(w, ']')
	if len(t.Tools) > 0 {
		w = append(appendJSONKey(w, "tools"), '[')
		for _, tool := range t.Tools {
			w = append(appendElem(w), `{"type":"function"`...)
			w = append(appendFunction(w, tool.Name, tool.Description, "parameters", tool.Parameters, tool.Strict), '}')
		}
		w = append(w, ']')
		w = appendOpenAIToolChoice(w, t.ToolChoice, false)
	}
	if f := t.Format; f != nil {
		w = append(appendJSONKey(w, "text"), `{"format":{`...)
		w = appendJSONMember(w, "type", f.Type)
		if f.Type == "json_schema" {
			w = appendOutputSchema(w, f)
		}
		w = append(w, "}}"...)
	}
	if t.ReasoningEffort != "" {
		w = append(appendJSONMember(append(appendJSONKey(w, "reasoning"), '{'), "effort", t.ReasoningEffort), '}')
	}
	return appendOpenAIOptions(w, t, "max_output_tokens"), nil
}

// appendResponsesItems appends a neutral message as Responses input items:
// its runs of text and images as messages, each tool call and tool result
// an item of its own, in the message's order.
func appendResponsesItems(w []byte, m Message) []byte {
	textType := "input_text"
	if m.Role == RoleAssistant {
		textType = "output_text"
	}
	inMessage := false
	for _, p := range m.Parts {
		isContent := p.Kind == PartText || p.Kind == PartImage
		if inMessage && !isContent {
			w = append(w, "]}"...)
			inMessage = false
		}
		switch p.Kind {
		case PartText, PartImage:
			if !inMessage {
				w = appendJSONMember(append(appendElem(w), `{"type":"message"`...), "role", string(m.Role))
				w = append(appendJSONKey(w, "content"), '[')
				inMessage = true
			}
			if p.Kind == PartText {
				w = appendJSONMember(appendJSONMember(append(appendElem(w), '{'), "type", textType), "text", p.Text)
			} else {
				w = append(appendImageURL(append(appendElem(w), `{"type":"input_image","image_url":`...), p.Image), '}')
				continue
			}
			w = append(w, '}')
		case PartToolCall:
			w = appendJSONMember(append(appendElem(w), `{"type":"function_call"`...), "call_id", p.ToolCall.ID)
			w = appendJSONMember(w, "name", p.ToolCall.Name)
			w = append(appendJSONMember(w, "arguments", cmp.Or(p.ToolCall.Arguments, "{}")), '}')
		case PartToolResult:
			w = appendJSONMember(append(appendElem(w), `{"type":"function_call_output"`...), "call_id", p.ToolResult.CallID)
			w = append(appendToolResultText(appendJSONKey(w, "output"), p.ToolResult), '}')
		}
	}
	if inMessage {
		w = append(w, "]}"...)
	}
	return w
}

// appendToolResultText appends a tool result's content as one JSON string:
// its texts joined by newlines, an image as its URL.
func appendToolResultText(w []byte, r *ToolResult) []byte {
	w = append(w, '"')
	for i, p := range r.Content {
		if i > 0 {
			w = append(w, `\n`...)
		}
		if p.Kind == PartImage {
			w = appendImageURLBody(w, p.Image)
		} else {
			w = appendJSONStringBody(w, p.Text)
		}
	}
	return append(w, '"')
}

// decodeResponsesReply reads a Responses response object: the parts of
// its output messages and its function calls; its other items (reasoning,
// built-in tools') are left out.
func decodeResponsesReply(body []byte) (*Reply, error) {
	r := newTurnReader(body)
	reply := &Reply{StopReason: StopEnd}
	var object, status, incomplete []byte
	var system []string
	err := r.members(0, "", func(name []byte) (err error) {
		switch string(name) {
		case "id":
			reply.ID, err = r.string("")
		case "object":
			object, err = r.word("")
		case "created_at":
			var at int
			at, err = r.integer("")
			reply.Created = int64(at)
		case "status":
			status, err = r.word("")
		case "model":
			reply.Model, err = r.string("")
		case "usage":
			reply.Usage, err = r.usage(responsesUsageKeys)
		case "incomplete_details":
			return r.only(1, "", "reason", func() (err error) {
				incomplete, err = r.word("")
				return err
			})
		case "output":
			return r.elements(1, "", func(int) error { return r.responsesItem(2, false, &system) })
		default:
			return r.value(1)
		}
		return err
	})
	if err != nil || string(object) != "response" || r.peek() != 0 {
		return nil, errUpstreamReply
	}
	r.closeMessage()
	for _, m := range r.t.Messages {
		for _, p := range m.Parts {
			reply.Parts = append(reply.Parts, p)
			if p.Kind == PartToolCall {
				reply.StopReason = StopToolCalls
			}
		}
	}
	if string(status) == "incomplete" {
		reply.StopReason = StopLength
		if string(incomplete) == "content_filter" {
			reply.StopReason = StopContentFilter
		}
	}
	return reply, nil
}

// encodeResponsesReply writes a reply as a Responses response object for a
// client that asked for model.
func encodeResponsesReply(r *Reply, model string) []byte {
	id := clientID("resp_", r.ID)
	status, incomplete := "completed", ""
	switch r.StopReason {
	case StopLength:
		status, incomplete = "incomplete", "max_output_tokens"
	case StopContentFilter:
		status, incomplete = "incomplete", "content_filter"
	}
	w := appendJSONMember([]byte{'{'}, "id", id)
	w = appendJSONInt(append(w, `,"object":"response"`...), "created_at", int(r.Created))
	w = appendJSONMember(appendJSONMember(w, "status", status), "model", model)
	w = append(appendJSONKey(w, "output"), '[')
	texts := 0
	for _, p := range r.Parts {
		if p.Kind != PartText {
			continue
		}
		if texts == 0 {
			w = appendJSONMember(append(w, `{"type":"message"`...), "id", "msg_"+strings.TrimPrefix(id, "resp_"))
			w = appendJSONMember(append(w, `,"role":"assistant"`...), "status", status)
			w = append(w, `,"content":[{"type":"output_text","text":"`...)
		}
		w = appendJSONStringBody(w, p.Text)
		texts++
	}
	if texts > 0 {
		w = append(w, `","annotations":[]}]}`...)
	}
	for _, p := range r.Parts {
		if p.Kind == PartToolCall {
			w = appendJSONMember(append(appendElem(w), `{"type":"function_call"`...), "id", "fc_"+p.ToolCall.ID)
			w = appendJSONMember(append(w, `,"status":"completed"`...), "call_id", p.ToolCall.ID)
			w = appendJSONMember(appendJSONMember(w, "name", p.ToolCall.Name), "arguments", p.ToolCall.Arguments)
			w = append(w, '}')
		}
	}
	w = append(w, ']')
	if r.Usage != nil {
		w = appendOpenAIUsage(appendJSONKey(w, "usage"), r.Usage, responsesUsageKeys)
	}
	w = appendJSONKey(w, "incomplete_details")
	if incomplete != "" {
		w = append(appendJSONMember(append(w, '{'), "reason", incomplete), '}')
	} else {
		w = append(w, "null"...)
	}
	return append(w, `,"error":null}`...)
}

// ptr is a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

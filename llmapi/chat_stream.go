package llmapi

import (
	"bytes"
	"cmp"
	"io"
	"slices"
	"strconv"
)

// The Chat Completions stream: "data:" lines of chat.completion.chunk
// objects, then "data: [DONE]". Only choice 0 is read and written (the
// other APIs have no n > 1).

// chatStreamDecoder reads a Chat Completions stream.
type chatStreamDecoder struct {
	calls   []int64 // the Chat indexes of the tool calls begun, in order
	pending bool    // the newest call waits for its name to begin
	call    ToolCall
	block   int // the block of the newest call, once begun
}

// chatChunkFields are the members of a chunk the decoder reads.
var chatChunkFields = []string{`"id"`, `"model"`, `"choices"`, `"usage"`, `"error"`}

// event reads one chunk.
func (c *chatStreamDecoder) event(d *decodeState, _, data []byte, emit func(Event)) error {
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		if err := c.begin(d, emit); err != nil {
			return err
		}
		d.end(emit)
		return nil
	}
	var f [5][]byte
	if err := jsonFields(data, chatChunkFields, f[:]); err != nil {
		return err
	}
	rawID, rawModel, choices, usage, fail := f[0], f[1], f[2], f[3], f[4]
	if fail != nil && string(fail) != "null" {
		return chatStreamError(d, fail, emit)
	}
	if !d.started {
		id, err := jsonString(rawID)
		if err != nil {
			return err
		}
		model, err := jsonString(rawModel)
		if err != nil {
			return err
		}
		d.begin(id, model, nil, emit)
	}
	if err := jsonArray(choices, func(v []byte) error { return c.choice(d, v, emit) }); err != nil {
		return err
	}
	if usage == nil || string(usage) == "null" {
		return nil
	}
	u, err := openAIUsage(usage, chatUsageKeys)
	if err == nil {
		d.usage(u, emit)
	}
	return err
}

// choice reads a choice of a chunk: its delta, then its finish_reason.
func (c *chatStreamDecoder) choice(d *decodeState, v []byte, emit func(Event)) error {
	var index int64
	var delta, finish []byte
	err := jsonObject(v, func(key, v []byte) (err error) {
		switch string(key) {
		case `"index"`:
			index, err = strconv.ParseInt(string(v), 10, 64)
		case `"delta"`:
			delta = v
		case `"finish_reason"`:
			finish = v
		}
		return err
	})
	if err != nil || index != 0 {
		return err
	}
	if err := jsonObject(delta, func(key, v []byte) error { return c.delta(d, key, v, emit) }); err != nil {
		return err
	}
	reason, err := jsonString(finish)
	if err != nil || reason == "" {
		return err
	}
	if err := c.begin(d, emit); err != nil {
		return err
	}
	d.finish(chatStopReason(reason), emit)
	return nil
}

// delta reads a member of a choice's delta.
func (c *chatStreamDecoder) delta(d *decodeState, key, v []byte, emit func(Event)) error {
	switch string(key) {
	case `"content"`, `"refusal"`:
		text, err := jsonString(v)
		if err != nil || text == "" {
			return err
		}
		if err := c.begin(d, emit); err != nil {
			return err
		}
		d.text(text, emit)
	case `"tool_calls"`:
		return jsonArray(v, func(v []byte) error { return c.toolCall(d, v, emit) })
	}
	return nil
}

// toolCall reads one tool call delta. Its first delta gives the call's id
// and name, and may already carry arguments; the call's block begins once
// its name is known.
func (c *chatStreamDecoder) toolCall(d *decodeState, v []byte, emit func(Event)) error {
	var index int64
	var id, name, args string
	err := jsonObject(v, func(key, v []byte) (err error) {
		switch string(key) {
		case `"index"`:
			index, err = strconv.ParseInt(string(v), 10, 64)
		case `"id"`:
			id, err = jsonString(v)
		case `"function"`:
			err = jsonObject(v, func(key, v []byte) (err error) {
				switch string(key) {
				case `"name"`:
					name, err = jsonString(v)
				case `"arguments"`:
					args, err = jsonString(v)
				}
				return err
			})
		}
		return err
	})
	if err != nil {
		return err
	}
	newest := len(c.calls) > 0 && c.calls[len(c.calls)-1] == index
	// Some providers number every call 0 (or leave index out): another id
	// at the newest index is another call.
	another := newest && id != "" && c.call.ID != "" && id != c.call.ID
	switch {
	case newest && !another && c.pending:
		c.call.ID = cmp.Or(c.call.ID, id)
		c.call.Name += name
		c.call.Arguments += args
	case newest && !another && d.kind == toolBlock && d.open == c.block:
		d.toolArgs(args, emit)
		return nil
	case !another && slices.Contains(c.calls, index):
		return outOfOrder("a tool call's delta after its block stopped")
	default:
		if err := c.begin(d, emit); err != nil {
			return err
		}
		c.calls = append(c.calls, index)
		c.pending, c.call = true, ToolCall{ID: id, Name: name, Arguments: args}
	}
	if c.call.Name != "" {
		return c.begin(d, emit)
	}
	return nil
}

// begin begins the block of a call that waits for its name, before
// anything else is emitted: a call whose name has not come by then fails
// the stream.
func (c *chatStreamDecoder) begin(d *decodeState, emit func(Event)) error {
	if !c.pending {
		return nil
	}
	c.pending = false
	c.block = d.blocks
	return d.toolCall(c.call, emit)
}

// chatStreamError reads the error object of an OpenAI stream (a chunk's
// "error", or a string in its place) and fails the stream with it.
func chatStreamError(d *decodeState, v []byte, emit func(Event)) error {
	var msg, typ, code string
	if v[0] == '"' {
		msg, _ = jsonString(v)
	} else if err := jsonObject(v, func(key, v []byte) error {
		switch string(key) {
		case `"message"`:
			msg, _ = jsonString(v)
		case `"type"`:
			typ, _ = jsonString(v)
		case `"code"`:
			code, _ = jsonString(v) // a code may be a number: not a type
		}
		return nil
	}); err != nil {
		return err
	}
	d.fail(&StreamError{Type: neutralErrorType(code, typ), Message: streamErrorMessage(msg)}, emit)
	return nil
}

// chatStopReason is the neutral stop reason of a Chat finish_reason.
func chatStopReason(reason string) StopReason {
	switch reason {
	case "length":
		return StopLength
	case "tool_calls", "function_call":
		return StopToolCalls
	case "content_filter":
		return StopContentFilter
	}
	return StopEnd
}

// chatStreamEncoder writes a Chat Completions stream.
type chatStreamEncoder struct {
	encodeState
	head     []byte // every chunk's start: {"id":...,"model":...
	chunkJS  []byte // the JSON of the chunk being written
	calls    []int  // the block of each tool call written, by Chat index
	finished bool   // the finish_reason chunk was written
}

// Encode writes the chunks ev means.
func (e *chatStreamEncoder) Encode(w io.Writer, ev Event) error {
	return e.encode(w, ev, e.start, e.write)
}

// write writes what ev means.
func (e *chatStreamEncoder) write(ev Event) {
	switch ev.Kind {
	case EventTextDelta:
		if ev.Text != "" {
			e.js = appendJSONMember(e.delta(), "content", ev.Text)
			e.chunk("")
		}
	case EventToolCallStart:
		e.calls = append(e.calls, ev.Index)
		e.js = e.toolDelta(len(e.calls) - 1)
		e.js = appendJSONMember(e.js, "id", ev.ToolCall.ID)
		e.js = appendJSONMember(e.js, "type", "function")
		e.js = appendJSONMember(append(appendJSONKey(e.js, "function"), '{'), "name", ev.ToolCall.Name)
		e.js = append(appendJSONMember(e.js, "arguments", ""), "}}]"...)
		e.chunk("")
		e.arguments(len(e.calls)-1, ev.ToolCall.Arguments)
	case EventToolCallDelta:
		if k := slices.Index(e.calls, ev.Index); k >= 0 {
			e.arguments(k, ev.Text)
		}
	case EventFinish:
		e.note(&ev)
		e.finish()
	case EventUsage:
		e.note(&ev)
	case EventEnd:
		e.finish()
		if e.opts.IncludeUsage && e.usage != nil {
			e.usageChunk()
		}
		e.out = append(e.out, "data: [DONE]\n\n"...)
		e.over = true
	case EventError:
		e.js = chatErrorJSON(e.js[:0], ev.Error)
		e.event("")
		e.over = true
	}
}

// start settles the response's names and writes the first chunk, which
// gives the role.
func (e *chatStreamEncoder) start(ev Event) {
	e.begin(Chat, &ev)
	e.head = appendJSONMember(append(e.head[:0], '{'), "id", e.id)
	e.head = appendJSONMember(e.head, "object", "chat.completion.chunk")
	e.head = appendJSONInt(e.head, "created", int(e.created))
	e.head = appendJSONMember(e.head, "model", e.model)
	e.js = appendJSONMember(appendJSONMember(e.delta(), "role", "assistant"), "content", "")
	e.chunk("")
}

// delta starts the JSON of a choice's delta object in e.js.
func (e *chatStreamEncoder) delta() []byte { return append(e.js[:0], '{') }

// toolDelta starts a delta of tool call k in e.js.
func (e *chatStreamEncoder) toolDelta(k int) []byte {
	js := append(appendJSONKey(e.delta(), "tool_calls"), "[{"...)
	return appendJSONInt(js, "index", k)
}

// arguments writes the next fragment of tool call k's arguments.
func (e *chatStreamEncoder) arguments(k int, fragment string) {
	if fragment == "" {
		return
	}
	e.js = append(appendJSONKey(e.toolDelta(k), "function"), '{')
	e.js = append(appendJSONMember(e.js, "arguments", fragment), "}}]"...)
	e.chunk("")
}

// chunk writes a chunk of choice 0 whose delta is e.js (its closing brace
// still to come), with finish as its finish_reason (null when empty).
func (e *chatStreamEncoder) chunk(finish StopReason) {
	c := append(e.chunkJS[:0], e.head...)
	c = append(c, `,"choices":[{"index":0,"delta":`...)
	c = append(append(c, e.js...), `},"logprobs":null,"finish_reason":`...)
	if finish == "" {
		c = append(c, "null"...)
	} else {
		c = appendJSONString(c, string(finish))
	}
	e.chunkJS = append(c, "}]}"...)
	e.out = appendSSE(e.out, "", e.chunkJS)
}

// finish writes the chunk with the finish_reason, once.
func (e *chatStreamEncoder) finish() {
	if e.finished {
		return
	}
	e.finished = true
	e.js = e.delta()
	e.chunk(e.stopReason())
}

// usageChunk writes the chunk with no choices and the usage.
func (e *chatStreamEncoder) usageChunk() {
	u := e.usage
	e.js = append(append(e.js[:0], e.head...), `,"choices":[],"usage":{`...)
	e.js = appendJSONInt(e.js, "prompt_tokens", u.InputTokens)
	e.js = appendJSONInt(e.js, "completion_tokens", u.OutputTokens)
	e.js = appendJSONInt(e.js, "total_tokens", u.InputTokens+u.OutputTokens)
	e.js = append(appendJSONKey(e.js, "prompt_tokens_details"), '{')
	e.js = appendJSONInt(e.js, "cached_tokens", u.CacheReadTokens)
	if u.CacheWriteTokens > 0 {
		e.js = appendJSONInt(e.js, "cache_write_tokens", u.CacheWriteTokens)
	}
	e.js = append(e.js, "}}}"...)
	e.event("")
}

// chatErrorJSON appends the "data: {"error":...}" payload of a stream
// error, as OpenAI's APIs send one mid-stream.
func chatErrorJSON(js []byte, err *StreamError) []byte {
	oe, msg := openAIError(err)
	js = append(js, `{"error":{`...)
	js = appendJSONMember(js, "message", msg)
	js = appendJSONMember(js, "type", oe.typ)
	js = append(js, `,"param":null,"code":`...)
	if oe.code == "" {
		js = append(js, "null"...)
	} else {
		js = appendJSONString(js, oe.code)
	}
	return append(js, "}}"...)
}

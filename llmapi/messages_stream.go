package llmapi

import (
	"bytes"
	"cmp"
	"io"
)

// The Anthropic Messages stream: "event: <type>" and "data: {...}" pairs,
// message_start, per content block content_block_start, its deltas and
// content_block_stop, then message_delta and message_stop; ping anywhere,
// error mid-stream.

// messagesStreamDecoder reads a Messages stream.
type messagesStreamDecoder struct {
	blocks []blockKind // the kind of each block started; noBlock for a kind not read
	cur    int         // the index of the block started and not stopped; -1 when none
	usage  messagesUsage
}

// messagesUsage is a Messages usage object: input_tokens counts neither
// the cache reads nor the cache writes.
type messagesUsage struct {
	input, output, cacheRead, cacheWrite int
}

// neutral is u with the cached tokens counted in the input.
func (u *messagesUsage) neutral() Usage {
	return Usage{
		InputTokens:      u.input + u.cacheRead + u.cacheWrite,
		OutputTokens:     u.output,
		CacheReadTokens:  u.cacheRead,
		CacheWriteTokens: u.cacheWrite,
	}
}

// messagesUsageFields are the counts of a Messages usage object.
var messagesUsageFields = []string{`"input_tokens"`, `"output_tokens"`, `"cache_read_input_tokens"`, `"cache_creation_input_tokens"`}

// read takes the counts a usage object gives; the others keep their
// values (message_delta may give only output_tokens). As openAIUsage does,
// it skims v's members and checks each count.
func (u *messagesUsage) read(v []byte) error {
	if u.readPrefix(v) < 0 {
		return errJSONType
	}
	return nil
}

// readPrefix is read of the object that starts v, and returns how many
// bytes of v it takes, or -1 when it is not a usage object (u is then
// unchanged).
func (u *messagesUsage) readPrefix(v []byte) (size int) {
	var f [4][]byte
	if size = skimFields(v, messagesUsageFields, f[:]); size < 0 {
		return -1
	}
	read := *u
	for i, count := range [...]*int{&read.input, &read.output, &read.cacheRead, &read.cacheWrite} {
		if f[i] == nil {
			continue
		}
		n, err := jsonCount(f[i])
		if err != nil {
			return -1
		}
		*count = n
	}
	*u = read
	return size
}

// messagesEventFields are the members of a Messages event the decoder
// reads.
var messagesEventFields = []string{`"type"`, `"index"`, `"message"`, `"content_block"`, `"delta"`, `"usage"`, `"error"`}

// event reads one event; its data's type (else its name) says what it is.
func (m *messagesStreamDecoder) event(d *decodeState, name, data []byte, emit func(Event)) error {
	var f [7][]byte
	if err := jsonFields(data, messagesEventFields, f[:]); err != nil {
		return err
	}
	typ, err := jsonWord(f[0])
	if err != nil {
		return err
	}
	if len(typ) == 0 {
		typ = name
	}
	index, err := jsonCount(f[1])
	if err != nil {
		return err
	}
	message, block, delta, usage, fail := f[2], f[3], f[4], f[5], f[6]
	switch string(typ) {
	case "message_start":
		return m.start(d, message, emit)
	case "content_block_start":
		return m.blockStart(d, index, block, emit)
	case "content_block_delta":
		return m.blockDelta(d, index, delta, emit)
	case "content_block_stop":
		if known, err := m.current(index); !known || err != nil {
			return err
		}
		d.stop(emit)
		m.cur = -1
	case "message_delta":
		return m.messageDelta(d, delta, usage, emit)
	case "message_stop":
		d.end(emit)
	case "error":
		return messagesStreamError(d, fail, emit)
	}
	return nil // ping, and types added after this was written
}

// start reads message_start's message: its id, model and input usage.
func (m *messagesStreamDecoder) start(d *decodeState, v []byte, emit func(Event)) error {
	var id, model string
	var usage *Usage
	err := jsonObject(v, func(key, v []byte) (err error) {
		switch string(key) {
		case `"id"`:
			id, err = jsonString(v)
		case `"model"`:
			model, err = jsonString(v)
		case `"usage"`:
			if err = m.usage.read(v); err == nil {
				u := m.usage.neutral()
				usage = &u
			}
		}
		return err
	})
	if err == nil {
		d.begin(id, model, usage, emit)
	}
	return err
}

// blockStart reads content_block_start: blocks start in index order, each
// after the one before stopped (an unstopped one is stopped here).
func (m *messagesStreamDecoder) blockStart(d *decodeState, index int, v []byte, emit func(Event)) error {
	if index != len(m.blocks) {
		return outOfOrder("content block started out of index order")
	}
	d.stop(emit)
	var typ, text, signature, id, name string
	var input []byte
	err := jsonObject(v, func(key, v []byte) (err error) {
		switch string(key) {
		case `"type"`:
			typ, err = jsonString(v)
		case `"text"`, `"thinking"`:
			text, err = jsonString(v)
		case `"signature"`, `"data"`:
			signature, err = jsonString(v)
		case `"id"`:
			id, err = jsonString(v)
		case `"name"`:
			name, err = jsonString(v)
		case `"input"`:
			input = v
		}
		return err
	})
	if err != nil {
		return err
	}
	kind := noBlock
	switch typ {
	case "text":
		kind = textBlock
		d.text(text, emit)
	case "thinking", "redacted_thinking":
		kind = thinkingBlock
		d.thinking(text, signature, typ == "redacted_thinking", emit)
	case "tool_use":
		kind = toolBlock
		call := ToolCall{ID: id, Name: name}
		if input = bytes.TrimSpace(input); len(input) > 0 && string(input) != "{}" && string(input) != "null" {
			call.Arguments = string(input) // a tool_use given whole, not streamed
		}
		if err := d.toolCall(call, emit); err != nil {
			return err
		}
	}
	m.blocks = append(m.blocks, kind)
	m.cur = index
	return nil
}

// current reports whether index is the block started and not stopped, of
// a kind the decoder reads; an event for a block of a kind not read is
// passed over, one for a block not open fails the stream.
func (m *messagesStreamDecoder) current(index int) (bool, error) {
	switch {
	case index < len(m.blocks) && m.blocks[index] == noBlock:
		return false, nil
	case index != m.cur:
		return false, outOfOrder("content block event for a block that is not open")
	}
	return true, nil
}

// blockDelta reads content_block_delta.
func (m *messagesStreamDecoder) blockDelta(d *decodeState, index int, v []byte, emit func(Event)) error {
	if known, err := m.current(index); !known || err != nil {
		return err
	}
	var typ []byte
	var text, signature string
	err := jsonObject(v, func(key, v []byte) (err error) {
		switch string(key) {
		case `"type"`:
			typ, err = jsonWord(v)
		case `"text"`, `"partial_json"`, `"thinking"`:
			text, err = jsonString(v)
		case `"signature"`:
			signature, err = jsonString(v)
		}
		return err
	})
	if err != nil {
		return err
	}
	kind := m.blocks[index]
	switch string(typ) {
	case "text_delta":
		if kind == textBlock {
			d.text(text, emit)
			return nil
		}
	case "input_json_delta":
		if kind == toolBlock {
			d.toolArgs(text, emit)
			return nil
		}
	case "thinking_delta", "signature_delta":
		if kind == thinkingBlock {
			d.thinking(text, signature, false, emit)
			return nil
		}
	default:
		return nil // citations_delta and later kinds
	}
	return outOfOrder("a delta of another kind than its block")
}

// messageDelta reads message_delta: the stop reason and the usage so far.
func (m *messagesStreamDecoder) messageDelta(d *decodeState, delta, usage []byte, emit func(Event)) error {
	var reason string
	err := jsonObject(delta, func(key, v []byte) (err error) {
		if string(key) == `"stop_reason"` {
			reason, err = jsonString(v)
		}
		return err
	})
	if err != nil {
		return err
	}
	if reason != "" {
		d.finish(messagesStopReason(reason), emit)
	}
	if usage == nil {
		return nil
	}
	if err := m.usage.read(usage); err != nil {
		return err
	}
	d.usage(m.usage.neutral(), emit)
	return nil
}

// messagesStreamError reads an error event's error and fails the stream.
func messagesStreamError(d *decodeState, v []byte, emit func(Event)) error {
	var typ, msg string
	err := jsonObject(v, func(key, v []byte) error {
		switch string(key) {
		case `"type"`:
			typ, _ = jsonString(v)
		case `"message"`:
			msg, _ = jsonString(v)
		}
		return nil
	})
	if err == nil {
		d.fail(&StreamError{Type: neutralErrorType(typ), Message: streamErrorMessage(msg)}, emit)
	}
	return err
}

// messagesStopReason is the neutral stop reason of a Messages stop_reason.
func messagesStopReason(reason string) StopReason {
	switch reason {
	case "max_tokens", "model_context_window_exceeded":
		return StopLength
	case "tool_use":
		return StopToolCalls
	case "refusal":
		return StopContentFilter
	}
	return StopEnd // end_turn, stop_sequence, pause_turn
}

// messagesStopReasons are the Messages stop reasons of the neutral ones.
var messagesStopReasons = map[StopReason]string{
	StopEnd:           "end_turn",
	StopLength:        "max_tokens",
	StopToolCalls:     "tool_use",
	StopContentFilter: "refusal",
}

// messagesStreamEncoder writes a Messages stream.
type messagesStreamEncoder struct {
	encodeState
	next int // the index of the next block written
}

// Encode writes the events ev means. Block indexes count from 0 in the
// order blocks are written; a block starts at its first delta and stops
// before the next starts. message_delta waits for the end of the stream,
// as a Chat upstream gives its usage after its finish_reason.
func (e *messagesStreamEncoder) Encode(w io.Writer, ev Event) error {
	return e.encode(w, ev, e.start, e.write)
}

// write writes what ev means.
func (e *messagesStreamEncoder) write(ev Event) {
	switch ev.Kind {
	case EventTextDelta:
		if ev.Text != "" {
			e.block(ev.Index, textBlock, "")
			e.delta("text_delta", "text", ev.Text)
		}
	case EventThinkingDelta:
		if ev.Redacted {
			e.block(ev.Index, thinkingBlock, ev.Signature)
			break
		}
		e.block(ev.Index, thinkingBlock, "")
		if ev.Text != "" {
			e.delta("thinking_delta", "thinking", ev.Text)
		}
		if ev.Signature != "" {
			e.delta("signature_delta", "signature", ev.Signature)
		}
	case EventToolCallStart:
		e.stop()
		e.js = e.blockStart(ev.Index, toolBlock, "tool_use")
		e.js = appendJSONMember(e.js, "id", ev.ToolCall.ID)
		e.js = appendJSONMember(e.js, "name", ev.ToolCall.Name)
		e.js = append(appendJSONKey(e.js, "input"), "{}}}"...)
		e.event("content_block_start")
		if ev.ToolCall.Arguments != "" {
			e.delta("input_json_delta", "partial_json", ev.ToolCall.Arguments)
		}
	case EventToolCallDelta:
		if ev.Index == e.open && e.kind == toolBlock && ev.Text != "" {
			e.delta("input_json_delta", "partial_json", ev.Text)
		}
	case EventBlockStop:
		if ev.Index == e.open {
			e.stop()
		}
	case EventFinish, EventUsage:
		e.note(&ev)
	case EventEnd:
		e.stop()
		e.messageDelta()
		e.js = append(e.js[:0], `{"type":"message_stop"}`...)
		e.event("message_stop")
		e.over = true
	case EventError:
		e.js = append(e.js[:0], `{"type":"error","error":{`...)
		e.js = appendJSONMember(e.js, "type", neutralErrorType(ev.Error.Type))
		e.js = append(appendJSONMember(e.js, "message", streamErrorMessage(ev.Error.Message)), "}}"...)
		e.event("error")
		e.over = true
	}
}

// start writes message_start, with the input usage when the upstream
// already counted it (else zeros, and message_delta gives the counts).
func (e *messagesStreamEncoder) start(ev Event) {
	e.begin(Messages, &ev)
	e.js = append(e.js[:0], `{"type":"message_start","message":{`...)
	e.js = appendJSONMember(e.js, "id", e.id)
	e.js = appendJSONMember(e.js, "type", "message")
	e.js = appendJSONMember(e.js, "role", "assistant")
	e.js = appendJSONMember(e.js, "model", e.model)
	e.js = append(e.js, `,"content":[],"stop_reason":null,"stop_sequence":null`...)
	var u Usage
	if e.usage != nil {
		u = *e.usage
	}
	e.js = append(appendMessagesUsage(appendJSONKey(e.js, "usage"), u), "}}"...)
	e.event("message_start")
}

// appendMessagesUsage appends u as a Messages usage object, its
// input_tokens without the cached tokens.
func appendMessagesUsage(js []byte, u Usage) []byte {
	js = appendJSONInt(append(js, '{'), "input_tokens", max(0, u.InputTokens-u.CacheReadTokens-u.CacheWriteTokens))
	js = appendJSONInt(js, "cache_creation_input_tokens", u.CacheWriteTokens)
	js = appendJSONInt(js, "cache_read_input_tokens", u.CacheReadTokens)
	return append(appendJSONInt(js, "output_tokens", u.OutputTokens), '}')
}

// block makes block index (of kind) the open one, starting it unless it
// is open: a redacted thinking block starts with its data.
func (e *messagesStreamEncoder) block(index int, kind blockKind, redacted string) {
	if index == e.open && kind == e.kind {
		return
	}
	e.stop()
	switch {
	case kind == textBlock:
		e.js = appendJSONMember(e.blockStart(index, kind, "text"), "text", "")
	case redacted != "":
		e.js = appendJSONMember(e.blockStart(index, kind, "redacted_thinking"), "data", redacted)
	default:
		e.js = e.blockStart(index, kind, "thinking")
		e.js = appendJSONMember(appendJSONMember(e.js, "thinking", ""), "signature", "")
	}
	e.js = append(e.js, "}}"...)
	e.event("content_block_start")
}

// blockStart opens the next block, for neutral block index, and starts the
// JSON of its content_block_start up to the block's type.
func (e *messagesStreamEncoder) blockStart(index int, kind blockKind, typ string) []byte {
	e.open, e.kind = index, kind
	js := append(e.js[:0], `{"type":"content_block_start"`...)
	js = append(appendJSONInt(js, "index", e.next), `,"content_block":{`...)
	e.next++
	return appendJSONMember(js, "type", typ)
}

// delta writes a content_block_delta of the open block.
func (e *messagesStreamEncoder) delta(typ, field, text string) {
	e.js = append(e.js[:0], `{"type":"content_block_delta"`...)
	e.js = append(appendJSONInt(e.js, "index", e.next-1), `,"delta":{`...)
	e.js = appendJSONMember(appendJSONMember(e.js, "type", typ), field, text)
	e.js = append(e.js, "}}"...)
	e.event("content_block_delta")
}

// stop writes content_block_stop for the open block, if any.
func (e *messagesStreamEncoder) stop() {
	if e.kind == noBlock {
		return
	}
	e.js = append(e.js[:0], `{"type":"content_block_stop"`...)
	e.js = append(appendJSONInt(e.js, "index", e.next-1), '}')
	e.event("content_block_stop")
	e.open, e.kind = -1, noBlock
}

// messageDelta writes message_delta: the stop reason and the usage, with
// the input counts too when they are known only now.
func (e *messagesStreamEncoder) messageDelta() {
	e.js = append(e.js[:0], `{"type":"message_delta","delta":{`...)
	e.js = appendJSONMember(e.js, "stop_reason", cmp.Or(messagesStopReasons[e.stopReason()], "end_turn"))
	e.js = append(e.js, `,"stop_sequence":null},"usage":`...)
	if e.usage != nil {
		e.js = appendMessagesUsage(e.js, *e.usage)
	} else {
		e.js = append(e.js, `{"output_tokens":0}`...)
	}
	e.js = append(e.js, '}')
	e.event("message_delta")
}

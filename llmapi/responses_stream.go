package llmapi

import (
	"io"
	"strconv"
)

// The OpenAI Responses stream: "event: <type>" and "data: {...}" pairs,
// each with a sequence_number. response.created and response.in_progress;
// per output item response.output_item.added, its content (a message's
// parts: content_part.added, output_text.delta*, output_text.done,
// content_part.done; a function call's function_call_arguments.delta* and
// .done) and response.output_item.done; then response.completed,
// response.incomplete or response.failed. Reasoning items are not read:
// their content goes to no other API.

// responsesStreamDecoder reads a Responses stream.
type responsesStreamDecoder struct {
	item     int64 // the output_index of the newest item; -1 before the first
	itemType string
	part     int64 // the content_index of the newest part of the message item
	partText bool  // that part's text was emitted
	itemText bool  // text of the item was emitted
}

// responsesEvent is what a Responses event holds that the decoder reads.
type responsesEvent struct {
	typ, response, item, part  []byte
	outputIndex, contentIndex  int64
	delta, text, code, message string
}

// event reads one event; its data's type says what it is.
func (r *responsesStreamDecoder) event(d *decodeState, _, data []byte, emit func(Event)) error {
	var ev responsesEvent
	err := jsonObject(data, func(key, v []byte) (err error) {
		switch string(key) {
		case `"type"`:
			ev.typ, err = jsonWord(v)
		case `"output_index"`:
			ev.outputIndex, err = strconv.ParseInt(string(v), 10, 64)
		case `"content_index"`:
			ev.contentIndex, err = strconv.ParseInt(string(v), 10, 64)
		case `"delta"`:
			ev.delta, err = jsonString(v)
		case `"text"`, `"arguments"`, `"refusal"`:
			ev.text, err = jsonString(v)
		case `"code"`:
			ev.code, _ = jsonString(v)
		case `"message"`:
			ev.message, _ = jsonString(v)
		case `"response"`:
			ev.response = v
		case `"item"`:
			ev.item = v
		case `"part"`:
			ev.part = v
		}
		return err
	})
	if err != nil {
		return err
	}
	switch string(ev.typ) {
	case "response.created":
		var head responsesHead
		if err := head.read(ev.response); err != nil {
			return err
		}
		d.begin(head.id, head.model, nil, emit)
	case "response.output_item.added":
		return r.itemAdded(d, ev.outputIndex, ev.item, emit)
	case "response.content_part.added":
		if err := r.toPart(d, ev.outputIndex, ev.contentIndex, emit); err != nil {
			return err
		}
		text, err := partText(ev.part)
		r.text(d, text, emit)
		return err
	case "response.output_text.delta", "response.refusal.delta":
		if err := r.toPart(d, ev.outputIndex, ev.contentIndex, emit); err != nil {
			return err
		}
		r.text(d, ev.delta, emit)
	case "response.output_text.done", "response.refusal.done":
		if err := r.toPart(d, ev.outputIndex, ev.contentIndex, emit); err != nil {
			return err
		}
		r.partDone(d, ev.text, emit)
	case "response.content_part.done":
		if err := r.toPart(d, ev.outputIndex, ev.contentIndex, emit); err != nil {
			return err
		}
		text, err := partText(ev.part)
		r.partDone(d, text, emit)
		return err
	case "response.function_call_arguments.delta":
		if err := r.inCall(d, ev.outputIndex); err != nil {
			return err
		}
		d.toolArgs(ev.delta, emit)
	case "response.function_call_arguments.done":
		if err := r.inCall(d, ev.outputIndex); err != nil {
			return err
		}
		r.callDone(d, ev.text, emit)
	case "response.output_item.done":
		return r.itemDone(d, ev.outputIndex, ev.item, emit)
	case "response.completed", "response.incomplete":
		var head responsesHead
		if err := head.read(ev.response); err != nil {
			return err
		}
		d.finish(head.stopReason(string(ev.typ), d.tools > 0), emit)
		if head.usage != nil {
			d.usage(*head.usage, emit)
		}
		d.end(emit)
	case "response.failed":
		var head responsesHead
		if err := head.read(ev.response); err != nil {
			return err
		}
		d.fail(&StreamError{Type: neutralErrorType(head.errCode), Message: streamErrorMessage(head.errMessage)}, emit)
	case "error":
		d.fail(&StreamError{Type: neutralErrorType(ev.code), Message: streamErrorMessage(ev.message)}, emit)
	}
	return nil // response.in_progress, reasoning and later kinds
}

// responsesItem is what an output item holds that the decoder reads.
type responsesItem struct {
	typ, id, callID, name, arguments string
	content                          []byte
}

func (it *responsesItem) read(v []byte) error {
	return jsonObject(v, func(key, v []byte) (err error) {
		switch string(key) {
		case `"type"`:
			it.typ, err = jsonString(v)
		case `"id"`:
			it.id, err = jsonString(v)
		case `"call_id"`:
			it.callID, err = jsonString(v)
		case `"name"`:
			it.name, err = jsonString(v)
		case `"arguments"`:
			it.arguments, err = jsonString(v)
		case `"content"`:
			it.content = v
		}
		return err
	})
}

// call is the tool call of a function_call item.
func (it *responsesItem) call() ToolCall {
	id := it.callID
	if id == "" {
		id = it.id
	}
	return ToolCall{ID: id, Name: it.name, Arguments: it.arguments}
}

// toItem makes output item index the newest, stopping the block of the one
// before; an event for an item before the newest breaks the order.
func (r *responsesStreamDecoder) toItem(d *decodeState, index int64, typ string, emit func(Event)) (isNew bool, err error) {
	switch {
	case index < r.item:
		return false, outOfOrder("event for an output item after a later one")
	case index == r.item:
		return false, nil
	}
	d.stop(emit)
	r.item, r.itemType, r.part, r.partText, r.itemText = index, typ, -1, false, false
	return true, nil
}

// itemAdded reads response.output_item.added: a function call's block
// begins with it, a message's blocks with their text.
func (r *responsesStreamDecoder) itemAdded(d *decodeState, index int64, v []byte, emit func(Event)) error {
	var it responsesItem
	if err := it.read(v); err != nil {
		return err
	}
	isNew, err := r.toItem(d, index, it.typ, emit)
	if err != nil || !isNew {
		return err
	}
	if it.typ == "function_call" {
		return d.toolCall(it.call(), emit)
	}
	return nil
}

// toPart makes content part index of message item item the newest.
func (r *responsesStreamDecoder) toPart(d *decodeState, item, index int64, emit func(Event)) error {
	if _, err := r.toItem(d, item, "message", emit); err != nil {
		return err
	}
	switch {
	case r.itemType != "message":
		return outOfOrder("text event for an output item that is no message")
	case index < r.part:
		return outOfOrder("text event for a content part after a later one")
	case index > r.part:
		d.stop(emit)
		r.part, r.partText = index, false
	}
	return nil
}

// text emits text of the newest part.
func (r *responsesStreamDecoder) text(d *decodeState, text string, emit func(Event)) {
	if text == "" {
		return
	}
	r.partText, r.itemText = true, true
	d.text(text, emit)
}

// partDone ends the newest part, whose whole text is text: emitted here
// if no delta gave it.
func (r *responsesStreamDecoder) partDone(d *decodeState, text string, emit func(Event)) {
	if !r.partText {
		r.text(d, text, emit)
	}
	d.stop(emit)
}

// inCall checks that item is the newest, a function call whose block is
// open.
func (r *responsesStreamDecoder) inCall(d *decodeState, item int64) error {
	if item != r.item || r.itemType != "function_call" || d.kind != toolBlock {
		return outOfOrder("function call arguments for an item that is not the open call")
	}
	return nil
}

// callDone ends the open function call, whose whole arguments are args:
// emitted here if no delta gave them.
func (r *responsesStreamDecoder) callDone(d *decodeState, args string, emit func(Event)) {
	if d.kind == toolBlock && !d.args {
		d.toolArgs(args, emit)
	}
	d.stop(emit)
}

// itemDone reads response.output_item.done: an item whose content came in
// no delta (a server may send items whole) is emitted from it.
func (r *responsesStreamDecoder) itemDone(d *decodeState, index int64, v []byte, emit func(Event)) error {
	var it responsesItem
	if err := it.read(v); err != nil {
		return err
	}
	isNew, err := r.toItem(d, index, it.typ, emit)
	if err != nil {
		return err
	}
	switch it.typ {
	case "function_call":
		if isNew {
			if err := d.toolCall(it.call(), emit); err != nil {
				return err
			}
		}
		r.callDone(d, it.arguments, emit)
	case "message":
		if r.itemText {
			break
		}
		err = jsonArray(it.content, func(v []byte) error {
			text, err := partText(v)
			r.text(d, text, emit)
			d.stop(emit)
			return err
		})
	}
	d.stop(emit)
	return err
}

// partText is the text of an output_text or refusal content part.
func partText(v []byte) (text string, err error) {
	err = jsonObject(v, func(key, v []byte) (err error) {
		switch string(key) {
		case `"text"`, `"refusal"`:
			text, err = jsonString(v)
		}
		return err
	})
	return text, err
}

// responsesHead is what a response object holds that the decoder reads.
type responsesHead struct {
	id, model, incomplete, errCode, errMessage string
	usage                                      *Usage
}

func (h *responsesHead) read(v []byte) error {
	return jsonObject(v, func(key, v []byte) (err error) {
		switch string(key) {
		case `"id"`:
			h.id, err = jsonString(v)
		case `"model"`:
			h.model, err = jsonString(v)
		case `"incomplete_details"`:
			err = jsonObject(v, func(key, v []byte) (err error) {
				if string(key) == `"reason"` {
					h.incomplete, err = jsonString(v)
				}
				return err
			})
		case `"error"`:
			err = jsonObject(v, func(key, v []byte) error {
				switch string(key) {
				case `"code"`:
					h.errCode, _ = jsonString(v)
				case `"message"`:
					h.errMessage, _ = jsonString(v)
				}
				return nil
			})
		case `"usage"`:
			if string(v) != "null" {
				var u Usage
				u, err = openAIUsage(v, responsesUsageKeys)
				h.usage = &u
			}
		}
		return err
	})
}

// stopReason is the neutral stop reason of a response that ended with the
// event typ.
func (h *responsesHead) stopReason(typ string, calls bool) StopReason {
	switch {
	case typ == "response.incomplete" && h.incomplete == "content_filter":
		return StopContentFilter
	case typ == "response.incomplete":
		return StopLength
	case calls:
		return StopToolCalls
	}
	return StopEnd
}

// responsesStreamEncoder writes a Responses stream.
type responsesStreamEncoder struct {
	encodeState
	seq    int    // the sequence_number of the next event
	base   string // the response id without "resp_", to name items after
	next   int    // the output_index of the next item
	itemID string // the open item's id
	callID string // the open function call's call_id and name
	name   string
	full   []byte // the open item's text or arguments so far, JSON-escaped
	item   []byte // the JSON of the item being written
	output []byte // the JSON of the items done, comma-separated
}

// Encode writes the events ev means. A text block is a message item with
// one output_text part, a tool call a function_call item; thinking has no
// Responses form and is dropped.
func (e *responsesStreamEncoder) Encode(w io.Writer, ev Event) error {
	return e.encode(w, ev, e.start, e.write)
}

// write writes what ev means.
func (e *responsesStreamEncoder) write(ev Event) {
	switch ev.Kind {
	case EventTextDelta:
		if ev.Text == "" {
			break
		}
		if ev.Index != e.open || e.kind != textBlock {
			e.openMessage(ev.Index)
		}
		e.js = e.textEvent("response.output_text.delta")
		e.js = e.escaped(appendJSONKey(e.js, "delta"), ev.Text)
		e.send("response.output_text.delta", `,"logprobs":[]`)
	case EventToolCallStart:
		e.openCall(ev.Index, ev.ToolCall)
		e.arguments(ev.ToolCall.Arguments)
	case EventToolCallDelta:
		if ev.Index == e.open && e.kind == toolBlock {
			e.arguments(ev.Text)
		}
	case EventBlockStop:
		if ev.Index == e.open {
			e.stop()
		}
	case EventFinish, EventUsage:
		e.note(&ev)
	case EventEnd:
		e.stop()
		switch e.stopReason() {
		case StopLength:
			e.terminal("response.incomplete", "incomplete", "max_output_tokens", nil)
		case StopContentFilter:
			e.terminal("response.incomplete", "incomplete", "content_filter", nil)
		default:
			e.terminal("response.completed", "completed", "", nil)
		}
		e.over = true
	case EventError:
		e.terminal("response.failed", "failed", "", ev.Error)
		e.over = true
	}
}

// start writes response.created and response.in_progress.
func (e *responsesStreamEncoder) start(ev Event) {
	e.begin(Responses, &ev)
	e.base = idSuffix(e.id)
	for _, typ := range [...]string{"response.created", "response.in_progress"} {
		e.js = e.response(e.head(typ), "in_progress", "", nil)
		e.send(typ, "")
	}
}

// head starts the JSON of an event of type typ with its sequence_number.
func (e *responsesStreamEncoder) head(typ string) []byte {
	js := appendJSONMember(append(e.js[:0], '{'), "type", typ)
	js = appendJSONInt(js, "sequence_number", e.seq)
	e.seq++
	return js
}

// send writes the event in e.js, ending it with tail and its closing brace.
func (e *responsesStreamEncoder) send(typ, tail string) {
	e.js = append(append(e.js, tail...), '}')
	e.event(typ)
}

// response appends `"response":{...}`, the response object with status,
// the items done, an incomplete reason or an error.
func (e *responsesStreamEncoder) response(js []byte, status, incomplete string, fail *StreamError) []byte {
	js = append(appendJSONKey(js, "response"), '{')
	js = appendJSONMember(js, "id", e.id)
	js = appendJSONMember(js, "object", "response")
	js = appendJSONInt(js, "created_at", int(e.created))
	js = appendJSONMember(js, "status", status)
	js = append(js, `,"background":false,"error":`...)
	if fail != nil {
		oe, msg := openAIError(fail)
		js = appendJSONMember(append(js, '{'), "code", oe.responses)
		js = append(appendJSONMember(js, "message", msg), '}')
	} else {
		js = append(js, "null"...)
	}
	js = append(js, `,"incomplete_details":`...)
	if incomplete != "" {
		js = append(appendJSONMember(append(js, '{'), "reason", incomplete), '}')
	} else {
		js = append(js, "null"...)
	}
	js = append(js, `,"instructions":null,"max_output_tokens":null`...)
	js = appendJSONMember(js, "model", e.model)
	js = append(js, `,"output":[`...)
	if status != "in_progress" {
		js = append(js, e.output...)
	}
	js = append(js, `],"parallel_tool_calls":true,"previous_response_id":null,"temperature":null,"tool_choice":"auto","tools":[],"top_p":null,"metadata":{},"usage":`...)
	if u := e.usage; u != nil && status != "in_progress" {
		js = appendJSONInt(append(js, '{'), "input_tokens", u.InputTokens)
		js = append(appendJSONKey(js, "input_tokens_details"), '{')
		js = appendJSONInt(js, "cached_tokens", u.CacheReadTokens)
		js = append(appendJSONInt(js, "cache_write_tokens", u.CacheWriteTokens), '}')
		js = appendJSONInt(js, "output_tokens", u.OutputTokens)
		js = append(js, `,"output_tokens_details":{"reasoning_tokens":0}`...)
		js = append(appendJSONInt(js, "total_tokens", u.InputTokens+u.OutputTokens), '}')
	} else {
		js = append(js, "null"...)
	}
	return append(js, '}')
}

// terminal writes the event that ends the response.
func (e *responsesStreamEncoder) terminal(typ, status, incomplete string, fail *StreamError) {
	e.js = e.response(e.head(typ), status, incomplete, fail)
	e.send(typ, "")
}

// openMessage stops the open item and opens a message item for block
// index, with its output_text part.
func (e *responsesStreamEncoder) openMessage(index int) {
	e.openItem(index, textBlock, "msg_")
	e.item = e.messageItem("in_progress")
	e.itemEvent("response.output_item.added")
	e.js = e.textEvent("response.content_part.added")
	e.send("response.content_part.added", `,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}`)
}

// openCall stops the open item and opens a function_call item for block
// index.
func (e *responsesStreamEncoder) openCall(index int, call *ToolCall) {
	e.openItem(index, toolBlock, "fc_")
	e.callID, e.name = call.ID, call.Name
	e.item = e.callItem("in_progress")
	e.itemEvent("response.output_item.added")
}

// openItem stops the open item and opens the next, of kind, its id named
// with prefix.
func (e *responsesStreamEncoder) openItem(index int, kind blockKind, prefix string) {
	e.stop()
	e.open, e.kind = index, kind
	e.itemID = prefix + e.base + "_" + strconv.Itoa(e.next)
	e.full = e.full[:0]
}

// messageItem is the JSON of the open message item with status.
func (e *responsesStreamEncoder) messageItem(status string) []byte {
	js := appendJSONMember(append(e.item[:0], '{'), "id", e.itemID)
	js = appendJSONMember(js, "type", "message")
	js = appendJSONMember(js, "status", status)
	js = append(js, `,"content":[`...)
	if status != "in_progress" {
		js = append(js, `{"type":"output_text","annotations":[],"logprobs":[],"text":"`...)
		js = append(append(js, e.full...), `"}`...)
	}
	return append(js, `],"role":"assistant"}`...)
}

// callItem is the JSON of the open function_call item with status.
func (e *responsesStreamEncoder) callItem(status string) []byte {
	js := appendJSONMember(append(e.item[:0], '{'), "id", e.itemID)
	js = appendJSONMember(js, "type", "function_call")
	js = appendJSONMember(js, "status", status)
	js = append(appendJSONKey(js, "arguments"), '"')
	if status != "in_progress" {
		js = append(js, e.full...)
	}
	js = appendJSONMember(append(js, '"'), "call_id", e.callID)
	return append(appendJSONMember(js, "name", e.name), '}')
}

// itemEvent writes an output_item event of the open item, whose JSON is
// e.item.
func (e *responsesStreamEncoder) itemEvent(typ string) {
	e.js = appendJSONInt(e.head(typ), "output_index", e.next)
	e.js = append(appendJSONKey(e.js, "item"), e.item...)
	e.send(typ, "")
}

// textEvent starts an event of the open message's output_text part.
func (e *responsesStreamEncoder) textEvent(typ string) []byte {
	return appendJSONInt(e.itemRef(typ), "content_index", 0)
}

// itemRef starts an event of the open item: its item_id and output_index.
func (e *responsesStreamEncoder) itemRef(typ string) []byte {
	js := appendJSONMember(e.head(typ), "item_id", e.itemID)
	return appendJSONInt(js, "output_index", e.next)
}

// escaped appends text as a JSON string to js and its escaped form to the
// open item's content.
func (e *responsesStreamEncoder) escaped(js []byte, text string) []byte {
	start := len(js)
	js = appendJSONString(js, text)
	e.full = append(e.full, js[start+1:len(js)-1]...)
	return js
}

// arguments writes the next fragment of the open call's arguments.
func (e *responsesStreamEncoder) arguments(fragment string) {
	if fragment == "" {
		return
	}
	e.js = e.itemRef("response.function_call_arguments.delta")
	e.js = e.escaped(appendJSONKey(e.js, "delta"), fragment)
	e.send("response.function_call_arguments.delta", "")
}

// stop writes the done events of the open item, if any, and adds it to
// the output.
func (e *responsesStreamEncoder) stop() {
	switch e.kind {
	case noBlock:
		return
	case textBlock:
		e.js = appendJSONKey(e.textEvent("response.output_text.done"), "text")
		e.js = append(append(append(e.js, '"'), e.full...), '"')
		e.send("response.output_text.done", `,"logprobs":[]`)
		e.js = e.textEvent("response.content_part.done")
		e.js = append(e.js, `,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":"`...)
		e.js = append(append(e.js, e.full...), `"}`...)
		e.send("response.content_part.done", "")
		e.item = e.messageItem("completed")
	case toolBlock:
		e.js = appendJSONKey(e.itemRef("response.function_call_arguments.done"), "arguments")
		e.js = append(append(append(e.js, '"'), e.full...), '"')
		e.send("response.function_call_arguments.done", "")
		e.item = e.callItem("completed")
	}
	e.itemEvent("response.output_item.done")
	if len(e.output) > 0 {
		e.output = append(e.output, ',')
	}
	e.output = append(e.output, e.item...)
	e.open, e.kind = -1, noBlock
	e.next++
}

package llmapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"time"
)

// What the stream decoders and encoders of the three APIs share: the
// constructors, the state of the neutral stream a decoder emits and an
// encoder reads, response ids and error types.
//
// Every decoder emits its blocks one after another: the deltas of a block
// come between its opening and its EventBlockStop, and the next block opens
// after that. An upstream that interleaves blocks (a delta for a block
// already stopped) fails the stream rather than lose the delta.

// StreamOptions is what a StreamEncoder must know beyond the events: what
// the client asked for and how its response is to be named.
type StreamOptions struct {
	// Model is the model name the client sees; empty shows the upstream's.
	Model string
	// IncludeUsage is set when a Chat client asked for the usage chunk
	// (stream_options.include_usage); it comes when the upstream reported
	// usage. Messages and Responses always report usage.
	IncludeUsage bool
	// ID is the response id the client sees. When empty, the upstream's id
	// is shown if it has the client API's shape (chatcmpl-..., msg_...,
	// resp_...), else with its prefix swapped for the client API's
	// (msg_X becomes chatcmpl-X), else a random id of that shape.
	ID string
	// Created is the Unix time shown as the response's creation (Chat's
	// created, Responses' created_at); 0 takes the clock at the first
	// event.
	Created int64
}

// NewStreamDecoder returns a decoder of an upstream's event stream in api.
func NewStreamDecoder(api API) StreamDecoder {
	d := &streamDecoder{}
	d.open = -1
	switch api {
	case Messages:
		d.api = &messagesStreamDecoder{cur: -1}
	case Responses:
		d.api = &responsesStreamDecoder{item: -1}
	default:
		d.api = &chatStreamDecoder{}
	}
	return d
}

// NewStreamEncoder returns an encoder of neutral events as api's event
// stream, for a client whose request opts describes.
func NewStreamEncoder(api API, opts StreamOptions) StreamEncoder {
	e := encodeState{opts: opts, open: -1}
	switch api {
	case Messages:
		return &messagesStreamEncoder{encodeState: e}
	case Responses:
		return &responsesStreamEncoder{encodeState: e}
	}
	return &chatStreamEncoder{encodeState: e}
}

// blockKind is what a content block holds.
type blockKind uint8

// The kinds of blocks; noBlock when none is open.
const (
	noBlock blockKind = iota
	textBlock
	thinkingBlock
	toolBlock
)

// apiDecoder reads the events of one API's stream into neutral events.
type apiDecoder interface {
	// event reads one server-sent event; an error fails the stream.
	event(d *decodeState, name, data []byte, emit func(Event)) error
}

// streamDecoder is the StreamDecoder of every API: the SSE reading and the
// ending of the stream are the same, each API reads its own events.
type streamDecoder struct {
	decodeState
	api apiDecoder
}

// errOver stops the SSE reading of a stream that has ended.
var errOver = errors.New("llmapi: stream over")

// errTruncated is Close's error for a stream that stopped before its end.
var errTruncated = errors.New("llmapi: upstream stream ended before its end")

// Decode reads the next bytes of the stream. A malformed stream emits an
// EventError and returns the reason; input after the end is ignored.
func (d *streamDecoder) Decode(p []byte, emit func(Event)) error {
	if d.over {
		return nil
	}
	return d.result(d.sse.feed(p, d.reader(emit)), emit)
}

// Close ends the input; a stream that stopped before its end emits an
// EventError and returns errTruncated.
func (d *streamDecoder) Close(emit func(Event)) error {
	if d.over {
		return nil
	}
	if err := d.result(d.sse.flush(d.reader(emit)), emit); err != nil || d.over {
		return err
	}
	d.fail(&StreamError{Type: "api_error", Message: errTruncated.Error()}, emit)
	return errTruncated
}

// reader is the SSE dispatch function that hands events to the API's
// decoder until the stream is over.
func (d *streamDecoder) reader(emit func(Event)) func(name, data []byte) error {
	return func(name, data []byte) error {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil // nothing to read; no API sends such an event
		}
		if err := d.api.event(&d.decodeState, name, data, emit); err != nil {
			return err
		}
		if d.over {
			return errOver
		}
		return nil
	}
}

// result turns the SSE reading's error into Decode's: the end of the
// stream is none, anything else fails the stream.
func (d *streamDecoder) result(err error, emit func(Event)) error {
	if err == nil || errors.Is(err, errOver) {
		return nil
	}
	if !d.over {
		d.fail(&StreamError{Type: "api_error", Message: err.Error()}, emit)
	}
	return err
}

// decodeState is the neutral stream a decoder has emitted so far.
type decodeState struct {
	sse      sseReader
	started  bool
	finished bool
	over     bool      // EventEnd or EventError was emitted
	open     int       // the index of the open block; -1 when none
	kind     blockKind // the open block's kind
	args     bool      // the open tool call has had argument text
	blocks   int       // the blocks opened so far
	tools    int       // the tool calls among them
}

// begin emits EventStart, once.
func (d *decodeState) begin(id, model string, usage *Usage, emit func(Event)) {
	if d.started {
		return
	}
	d.started = true
	emit(Event{Kind: EventStart, ID: id, Model: model, Usage: usage})
}

// openBlock stops the open block and opens one of kind.
func (d *decodeState) openBlock(kind blockKind, emit func(Event)) {
	d.begin("", "", nil, emit)
	d.stop(emit)
	d.open, d.kind = d.blocks, kind
	d.blocks++
}

// text emits text, in the open text block or a new one.
func (d *decodeState) text(text string, emit func(Event)) {
	if text == "" {
		return
	}
	if d.kind != textBlock {
		d.openBlock(textBlock, emit)
	}
	emit(Event{Kind: EventTextDelta, Index: d.open, Text: text})
}

// thinking emits thinking text and signature, in the open thinking block
// or a new one; a redacted block has only its data, as signature.
func (d *decodeState) thinking(text, signature string, redacted bool, emit func(Event)) {
	if text == "" && signature == "" {
		return
	}
	if d.kind != thinkingBlock {
		d.openBlock(thinkingBlock, emit)
	}
	emit(Event{Kind: EventThinkingDelta, Index: d.open, Text: text, Signature: signature, Redacted: redacted})
}

// toolCall opens a tool call block; its arguments may begin in call. An
// upstream that gave the call no id gets a random one, so that its result
// can be paired with it; one that gave it no name breaks the stream.
func (d *decodeState) toolCall(call ToolCall, emit func(Event)) error {
	if call.Name == "" {
		return errors.New("llmapi: upstream tool call without a name")
	}
	d.openBlock(toolBlock, emit)
	d.tools++
	d.args = call.Arguments != ""
	if call.ID == "" {
		call.ID = "call_" + randomID()
	}
	emit(Event{Kind: EventToolCallStart, Index: d.open, ToolCall: &call})
	return nil
}

// toolArgs emits the next fragment of the arguments of the open block, a
// tool call.
func (d *decodeState) toolArgs(fragment string, emit func(Event)) {
	if fragment == "" {
		return
	}
	d.args = true
	emit(Event{Kind: EventToolCallDelta, Index: d.open, Text: fragment})
}

// stop emits EventBlockStop for the open block, if any. A tool call that
// had no argument text gets "{}", so that its arguments are always a JSON
// object.
func (d *decodeState) stop(emit func(Event)) {
	if d.kind == noBlock {
		return
	}
	if d.kind == toolBlock && !d.args {
		emit(Event{Kind: EventToolCallDelta, Index: d.open, Text: "{}"})
	}
	emit(Event{Kind: EventBlockStop, Index: d.open})
	d.kind = noBlock
}

// finish stops the open block and emits EventFinish, once.
func (d *decodeState) finish(reason StopReason, emit func(Event)) {
	d.begin("", "", nil, emit)
	d.stop(emit)
	if d.finished {
		return
	}
	d.finished = true
	emit(Event{Kind: EventFinish, StopReason: reason})
}

// usage emits EventUsage with a copy of u.
func (d *decodeState) usage(u Usage, emit func(Event)) {
	d.begin("", "", nil, emit)
	emit(Event{Kind: EventUsage, Usage: &u})
}

// end finishes the stream (as it stopped, if the upstream gave no reason:
// for its tool calls when it made some) and emits EventEnd.
func (d *decodeState) end(emit func(Event)) {
	reason := StopEnd
	if d.tools > 0 {
		reason = StopToolCalls
	}
	d.finish(reason, emit)
	d.over = true
	emit(Event{Kind: EventEnd})
}

// fail emits EventError; the stream is over.
func (d *decodeState) fail(err *StreamError, emit func(Event)) {
	d.over = true
	emit(Event{Kind: EventError, Error: err})
}

// outOfOrder is the error for an event that breaks its API's order, such
// as a delta for a block that is not open.
func outOfOrder(what string) error {
	return errors.New("llmapi: upstream stream out of order: " + what)
}

// randomID returns 24 random hex digits.
func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
}

// idPrefixes are the shapes of the APIs' response ids.
var idPrefixes = [...]string{Chat: "chatcmpl-", Messages: "msg_", Responses: "resp_"}

// encodeState is what every encoder tracks of the neutral stream it reads.
type encodeState struct {
	opts    StreamOptions
	id      string // the response id the client sees
	model   string
	created int64
	started bool
	over    bool      // the stream's end or error was written
	open    int       // the index of the open block; -1 when none
	kind    blockKind // its kind
	reason  StopReason
	usage   *Usage
	out     []byte // the bytes of the events being written
	js      []byte // the JSON of the event being written
}

// begin settles the response's id, model and creation time from the
// options and the upstream's EventStart, if the stream starts with one
// (ev is its first event).
func (e *encodeState) begin(api API, ev *Event) {
	if ev.Kind != EventStart {
		ev = &Event{}
	}
	e.started = true
	e.id = responseID(api, e.opts.ID, ev.ID)
	e.model = e.opts.Model
	if e.model == "" {
		e.model = ev.Model
	}
	e.created = e.opts.Created
	if e.created == 0 {
		e.created = time.Now().Unix()
	}
	if ev.Usage != nil {
		u := *ev.Usage
		e.usage = &u
	}
}

// encode is every encoder's Encode: unless the stream is over, start
// writes its opening (before whatever comes first, an error too) and write
// what ev means, into e.out, which is then written to w.
func (e *encodeState) encode(w io.Writer, ev Event, start, write func(Event)) error {
	if e.over {
		return nil
	}
	if !e.started {
		start(ev)
	}
	write(ev)
	return e.flush(w)
}

// note keeps what EventFinish and EventUsage say for the stream's end.
func (e *encodeState) note(ev *Event) {
	switch ev.Kind {
	case EventFinish:
		e.reason = ev.StopReason
	case EventUsage:
		if ev.Usage != nil {
			u := *ev.Usage
			e.usage = &u
		}
	}
}

// stopReason is the reason the stream stopped: StopEnd when none was told.
func (e *encodeState) stopReason() StopReason {
	if e.reason == "" {
		return StopEnd
	}
	return e.reason
}

// event appends e.js to e.out as a server-sent event.
func (e *encodeState) event(name string) {
	e.out = appendSSE(e.out, name, e.js)
}

// flush writes the events appended.
func (e *encodeState) flush(w io.Writer) error {
	if len(e.out) == 0 {
		return nil
	}
	_, err := w.Write(e.out)
	e.out = e.out[:0]
	return err
}

// responseID is the response id a client of api sees (see StreamOptions.ID).
func responseID(api API, given, upstream string) string {
	if given != "" {
		return given
	}
	prefix := idPrefixes[api]
	if upstream == "" {
		return prefix + randomID()
	}
	if strings.HasPrefix(upstream, prefix) {
		return upstream
	}
	for _, other := range idPrefixes {
		if rest, ok := strings.CutPrefix(upstream, other); ok && rest != "" {
			return prefix + rest
		}
	}
	return prefix + upstream
}

// idSuffix is a response id without its API's prefix, to name the items
// of a response after it.
func idSuffix(id string) string {
	for _, prefix := range idPrefixes {
		if rest, ok := strings.CutPrefix(id, prefix); ok && rest != "" {
			return rest
		}
	}
	return id
}

// The error types of a StreamError are the Messages API's, the finest of
// the three: decoders of the other APIs map their errors' types and codes
// to them, and their encoders map them back.

// errorTypes maps the OpenAI APIs' error types and codes to Messages'.
var errorTypes = map[string]string{
	"invalid_request_error":   "invalid_request_error",
	"invalid_prompt":          "invalid_request_error",
	"context_length_exceeded": "invalid_request_error",
	"request_too_large":       "request_too_large",
	"authentication_error":    "authentication_error",
	"invalid_api_key":         "authentication_error",
	"permission_error":        "permission_error",
	"not_found_error":         "not_found_error",
	"rate_limit_error":        "rate_limit_error",
	"rate_limit_exceeded":     "rate_limit_error",
	"insufficient_quota":      "rate_limit_error",
	"billing_error":           "billing_error",
	"timeout_error":           "timeout_error",
	"overloaded_error":        "overloaded_error",
	"server_is_overloaded":    "overloaded_error",
	"slow_down":               "overloaded_error",
	"api_error":               "api_error",
	"server_error":            "api_error",
}

// neutralErrorType is the Messages error type for an upstream's error type
// or code (the first of them it knows); api_error when it knows none.
func neutralErrorType(types ...string) string {
	for _, t := range types {
		if n, ok := errorTypes[t]; ok {
			return n
		}
	}
	return "api_error"
}

// streamErrorMessage is the message of an upstream's error, or a stand-in
// when it gave none.
func streamErrorMessage(msg string) string {
	if msg == "" {
		return "the upstream failed"
	}
	return msg
}

// openAIUsageKeys name the counts of an OpenAI API's usage object (as
// string literals, quotes included).
type openAIUsageKeys struct{ input, output, details string }

var (
	chatUsageKeys      = openAIUsageKeys{`"prompt_tokens"`, `"completion_tokens"`, `"prompt_tokens_details"`}
	responsesUsageKeys = openAIUsageKeys{`"input_tokens"`, `"output_tokens"`, `"input_tokens_details"`}
	usageDetailsKeys   = []string{`"cached_tokens"`, `"cache_write_tokens"`}
)

// openAIUsage reads a Chat or Responses usage object, whose input counts
// the cached tokens as the neutral form does; null and nil (absent) are
// no usage. Its members are skimmed, not validated: a caller has either
// validated v or only meters it, and each count is checked.
func openAIUsage(v []byte, keys openAIUsageKeys) (Usage, error) {
	u, size := openAIUsagePrefix(v, keys)
	if size < 0 {
		return Usage{}, errJSONType
	}
	return u, nil
}

// openAIUsagePrefix is openAIUsage of the object that starts v, and
// returns how many bytes of v it takes, or -1 when it is not a usage
// object.
func openAIUsagePrefix(v []byte, keys openAIUsageKeys) (u Usage, size int) {
	names := [...]string{keys.input, keys.output, keys.details}
	var f [3][]byte
	var details [2][]byte
	if size = skimFields(v, names[:], f[:]); size < 0 || skimFields(f[2], usageDetailsKeys, details[:]) < 0 {
		return Usage{}, -1
	}
	raw := [...][]byte{f[0], f[1], details[0], details[1]}
	for i, count := range [...]*int{&u.InputTokens, &u.OutputTokens, &u.CacheReadTokens, &u.CacheWriteTokens} {
		var err error
		if *count, err = jsonCount(raw[i]); err != nil {
			return Usage{}, -1
		}
	}
	return u, size
}

// openAIErrorOf is how the OpenAI APIs report an error of a Messages type.
type openAIErrorOf struct {
	typ  string // Chat's error type
	code string // Chat's error code; "" for null
	// responses is the code of a Responses response.failed.
	responses string
}

// openAIErrors maps the Messages error types to the OpenAI APIs' terms;
// a type it lacks is a server_error.
var openAIErrors = map[string]openAIErrorOf{
	"invalid_request_error": {"invalid_request_error", "", "invalid_prompt"},
	"request_too_large":     {"invalid_request_error", "", "invalid_prompt"},
	"authentication_error":  {"authentication_error", "invalid_api_key", "invalid_api_key"},
	"permission_error":      {"permission_error", "", "server_error"},
	"not_found_error":       {"not_found_error", "", "server_error"},
	"rate_limit_error":      {"rate_limit_error", "rate_limit_exceeded", "rate_limit_exceeded"},
	"billing_error":         {"insufficient_quota", "insufficient_quota", "insufficient_quota"},
	"overloaded_error":      {"server_error", "server_is_overloaded", "server_is_overloaded"},
}

// openAIError is how the OpenAI APIs report err, with its message.
func openAIError(err *StreamError) (oe openAIErrorOf, msg string) {
	oe, ok := openAIErrors[err.Type]
	if !ok {
		oe = openAIErrorOf{"server_error", "", "server_error"}
	}
	return oe, streamErrorMessage(err.Message)
}

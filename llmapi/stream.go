package llmapi

import "io"

// EventKind says what a stream Event reports.
type EventKind uint8

// The kinds of neutral stream events. A decoder emits them in this order:
// one EventStart; per content block its deltas (the first delta of a block
// opens it) and one EventBlockStop; one EventFinish; EventUsage whenever
// the upstream reports usage (each a running total: the latest wins); and
// one EventEnd, or an EventError where the stream failed.
const (
	// EventStart: the response began. ID, Model, and Usage when the
	// upstream already counts the input (Messages' message_start).
	EventStart EventKind = iota
	// EventTextDelta: Text continues text block Index.
	EventTextDelta
	// EventThinkingDelta: Text (or Signature) continues thinking block Index.
	EventThinkingDelta
	// EventToolCallStart: block Index is ToolCall (ID and Name; its
	// Arguments, if the upstream sent some at once, are the first fragment).
	EventToolCallStart
	// EventToolCallDelta: Text is the next fragment of block Index's
	// arguments JSON.
	EventToolCallDelta
	// EventBlockStop: block Index is complete.
	EventBlockStop
	// EventFinish: the model stopped, for StopReason.
	EventFinish
	// EventUsage: Usage so far.
	EventUsage
	// EventError: the upstream failed mid-stream (Error).
	EventError
	// EventEnd: the stream ended normally.
	EventEnd
)

// Event is one neutral stream event. Blocks are numbered from 0 in the
// order they open, across text, thinking and tool calls.
type Event struct {
	Kind      EventKind
	Index     int
	Text      string
	Signature string
	// Redacted marks the EventThinkingDelta of a redacted thinking block,
	// whose data is Signature.
	Redacted   bool
	ToolCall   *ToolCall
	StopReason StopReason
	Usage      *Usage
	ID, Model  string
	Error      *StreamError
}

// StreamError is an error an upstream reported inside a stream.
type StreamError struct {
	// Type is the error's type in the client's terms, e.g. overloaded_error.
	Type string
	// Message says what went wrong; it quotes no request content.
	Message string
}

// StreamDecoder reads an upstream's server-sent event stream of one API as
// neutral events.
type StreamDecoder interface {
	// Decode takes the next bytes of the stream, cut anywhere, and calls
	// emit with each event they complete, in order.
	Decode(p []byte, emit func(Event)) error
	// Close ends the input: a stream that stops before its end emits an
	// EventError.
	Close(emit func(Event)) error
}

// StreamEncoder writes neutral events as a client API's server-sent events.
type StreamEncoder interface {
	// Encode writes what ev means to the client, if anything yet.
	Encode(w io.Writer, ev Event) error
}

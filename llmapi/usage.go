package llmapi

import (
	"bytes"
	"errors"
	"sync"
)

// maxMeteredBody bounds the complete (not streamed) response a UsageMeter
// keeps to read its usage; a larger one is passed on unread.
const maxMeteredBody = 4 << 20

// UsageMeter reads the usage (and the model that answered) of a response
// of one API from its bytes as they pass: a complete JSON response once it
// has all of it, a stream event by event. Only the events that can carry
// usage are parsed (their data has a "usage" member name), so a text delta
// costs a search of its bytes.
type UsageMeter struct {
	api    API
	stream bool
	sse    sseReader
	body   []byte // a complete response's bytes so far
	tooBig bool

	usage    Usage
	messages messagesUsage // a Messages stream's, given in two events
	found    bool
	model    string

	// dropUsageChunk, for a Chat stream, drops the usage-only chunk from
	// the events Filter passes on; broken is set when the stream could not
	// be read as events, and Filter passes its bytes on as they are
	dropUsageChunk bool
	broken         bool
	out            []byte                         // an event as Filter passes it on
	dispatch       func(event, data []byte) error // Filter's, made once
}

// NewUsageMeter meters a response of api, a stream (text/event-stream)
// when stream is set.
func NewUsageMeter(api API, stream bool) *UsageMeter {
	m := new(UsageMeter)
	m.Reset(api, stream)
	return m
}

// Reset makes m a new meter of a response of api, a stream when stream is
// set, for a caller that keeps the meter in a struct of its own.
func (m *UsageMeter) Reset(api API, stream bool) { *m = UsageMeter{api: api, stream: stream} }

// Write reads p, the response's next bytes.
func (m *UsageMeter) Write(p []byte) {
	if m.stream {
		_ = m.sse.feed(p, m.event)
		return
	}
	if m.tooBig || len(m.body)+len(p) > maxMeteredBody {
		m.tooBig = true
		m.release()
		return
	}
	if m.body == nil {
		if pooled, ok := meteredBodies.Get().(*[]byte); ok {
			m.body = (*pooled)[:0]
		}
	}
	m.body = append(m.body, p...)
}

// meteredBodies recycles the buffers that hold complete responses until
// their usage is read: a few KB on every plain request otherwise.
var meteredBodies sync.Pool

// maxPooledMeterBuffer is the largest buffer meteredBodies keeps.
const maxPooledMeterBuffer = 64 << 10

// release gives the body's buffer back.
func (m *UsageMeter) release() {
	if m.body != nil && cap(m.body) <= maxPooledMeterBuffer {
		buf := m.body[:0]
		meteredBodies.Put(&buf)
	}
	m.body = nil
}

// Filter is Write for a Chat stream from which the usage-only chunk (the
// one with "choices": [] that include_usage asks for) is dropped: it calls
// pass with the stream's bytes to pass on, event by event, each valid only
// during the call; pass is the same function on every call. A stream it
// cannot read as events (one larger than the
// reader's bound) is passed on as it comes from there on.
func (m *UsageMeter) Filter(p []byte, pass func([]byte)) {
	if m.broken {
		pass(p)
		return
	}
	if m.dispatch == nil {
		m.dropUsageChunk, m.dispatch = true, m.passing(pass)
	}
	if err := m.sse.feed(p, m.dispatch); err != nil {
		m.broken = true
	}
}

// EndFilter passes on the stream's last event when the stream ended
// without the blank line that ends an event.
func (m *UsageMeter) EndFilter(pass func([]byte)) {
	if !m.broken && m.dispatch != nil {
		_ = m.sse.flush(m.dispatch)
	}
}

// passing is the dispatch of Filter: each event is read, and passed on
// unless it is the usage-only chunk.
func (m *UsageMeter) passing(pass func([]byte)) func(event, data []byte) error {
	return func(event, data []byte) error {
		if m.event(event, data) != errDropEvent {
			m.out = appendSSE(m.out[:0], string(event), data)
			pass(m.out)
		}
		return nil
	}
}

// errDropEvent marks the event Filter leaves out.
var errDropEvent = errors.New("llmapi: usage chunk dropped")

// Result returns the usage the response reported and the model it named;
// ok is false when it reported none.
func (m *UsageMeter) Result() (u Usage, model string, ok bool) {
	if m.stream && !m.dropUsageChunk {
		_ = m.sse.flush(m.event)
	} else if m.body != nil {
		m.complete(m.body)
		m.release()
	}
	if m.stream && m.api == Messages && m.found {
		m.usage = m.messages.neutral()
	}
	return m.usage, m.model, m.found
}

var (
	usageName = []byte(`"usage"`)
	modelName = []byte(`"model"`)
)

// event reads one stream event: its model, while none is known, and its
// usage.
func (m *UsageMeter) event(name, data []byte) error {
	hasUsage := bytes.Contains(data, usageName)
	if !hasUsage && (m.model != "" || !bytes.Contains(data, modelName)) {
		return nil
	}
	switch m.api {
	case Messages:
		// message_start has the message's model and input usage, a
		// message_delta the output usage (and cumulative counts)
		var f [2][]byte
		if jsonFields(data, []string{`"message"`, `"usage"`}, f[:]) != nil {
			return nil
		}
		usage := f[1]
		if f[0] != nil {
			var g [2][]byte
			if jsonFields(f[0], []string{`"model"`, `"usage"`}, g[:]) != nil {
				return nil
			}
			m.setModel(g[0])
			usage = g[1]
		}
		if usage != nil && m.messages.read(usage) == nil {
			m.found = true
		}
	case Responses:
		var f [1][]byte
		if jsonFields(data, []string{`"response"`}, f[:]) == nil && f[0] != nil {
			m.complete(f[0])
		}
	default:
		var f [3][]byte
		if jsonFields(data, []string{`"usage"`, `"model"`, `"choices"`}, f[:]) != nil {
			return nil
		}
		m.setModel(f[1])
		if u, size := m.usageObject(f[0]); size > 0 {
			m.usage, m.found = u, true
			if m.dropUsageChunk && isEmptyArray(f[2]) {
				return errDropEvent
			}
		}
	}
	return nil
}

// complete reads a complete response: its model from its start and its
// usage from its end, where the APIs put them, so that the text between is
// not read.
func (m *UsageMeter) complete(body []byte) {
	m.setModel(skimFirstField(body, `"model"`))
	if u, ok := skimLastField(body, `"usage"`, m.usageObject); ok {
		m.usage, m.found = u, true
	}
}

// usageObject reads the usage object of the meter's API that starts v,
// and returns how many bytes it takes: -1 for none (null, or not an object
// of counts).
func (m *UsageMeter) usageObject(v []byte) (Usage, int) {
	if len(v) == 0 || v[0] != '{' {
		return Usage{}, -1
	}
	switch m.api {
	case Messages:
		var u messagesUsage
		size := u.readPrefix(v)
		return u.neutral(), size
	case Responses:
		return openAIUsagePrefix(v, responsesUsageKeys)
	}
	return openAIUsagePrefix(v, chatUsageKeys)
}

// setModel keeps the model a response names, the first time it names one
// (a string literal, which it validates: the skim does not).
func (m *UsageMeter) setModel(v []byte) {
	if m.model != "" || v == nil {
		return
	}
	if s := (scanner{b: v}); s.peek() == '"' && s.str() == nil && s.i == len(v) {
		m.model, _ = jsonString(v)
	}
}

// isEmptyArray reports whether v, a JSON value, is an empty array.
func isEmptyArray(v []byte) bool {
	return len(v) >= 2 && v[0] == '[' && len(bytes.TrimSpace(v[1:len(v)-1])) == 0
}

package llmapi

import (
	"bytes"
	"errors"
)

// maxEventSize bounds one server-sent event: its data lines and the line
// being read. An upstream that sends a larger one fails the stream instead
// of growing the gateway's memory without end.
const maxEventSize = 16 << 20

// keptEventCap is the buffer capacity an SSE reader keeps between events;
// a buffer grown past it by one large event is given back.
const keptEventCap = 64 << 10

// errEventTooLarge fails a stream whose event exceeds maxEventSize.
var errEventTooLarge = errors.New("llmapi: server-sent event larger than 16 MiB")

// utf8BOM may start an event stream; it is not part of the first line.
var utf8BOM = []byte("\xEF\xBB\xBF")

// sseReader assembles server-sent events (the text/event-stream format)
// from a stream's bytes cut at any offset: mid-line, between the "\r" and
// "\n" of a line end, inside a UTF-8 sequence. Lines end with "\r\n", "\n"
// or "\r"; comment lines (":...") and fields other than event and data are
// ignored; data lines are joined with "\n".
type sseReader struct {
	line    []byte // the start of a line whose end has not come yet
	event   []byte // the event field of the event being read
	data    []byte // its data lines, each followed by '\n'
	hasData bool   // a data field has come (its value may be empty)
	skipLF  bool   // the last line ended with '\r': a '\n' next belongs to it
	begun   bool   // the first line has been read
	max     int    // the size bound; maxEventSize when 0
}

// feed reads p and calls dispatch with each event it completes, its event
// name and data valid only during the call. An error from dispatch stops
// the reading and is returned.
func (r *sseReader) feed(p []byte, dispatch func(event, data []byte) error) error {
	limit := r.limit()
	for len(p) > 0 {
		if r.skipLF {
			r.skipLF = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		end := lineEnd(p)
		if end < 0 {
			if len(r.line)+len(r.data)+len(p) > limit {
				return r.fail()
			}
			r.line = append(r.line, p...)
			return nil
		}
		line := p[:end]
		if len(r.line)+len(r.data)+end > limit {
			return r.fail()
		}
		if len(r.line) > 0 {
			r.line = append(r.line, line...)
			line = r.line
		}
		if p[end] == '\r' {
			if end+1 == len(p) {
				r.skipLF = true
			} else if p[end+1] == '\n' {
				end++
			}
		}
		p = p[end+1:]
		err := r.lineDone(line, dispatch)
		r.line = r.line[:0]
		if err != nil {
			return err
		}
	}
	return nil
}

// flush ends the input: a last line without its line end is read, and an
// event without its closing blank line is dispatched, as the APIs' own
// clients do.
func (r *sseReader) flush(dispatch func(event, data []byte) error) error {
	if len(r.line) > 0 {
		err := r.lineDone(r.line, dispatch)
		r.line = r.line[:0]
		if err != nil {
			return err
		}
	}
	return r.dispatch(dispatch)
}

// limit is the size bound of one event.
func (r *sseReader) limit() int {
	if r.max == 0 {
		return maxEventSize
	}
	return r.max
}

// lineEnd returns the offset of the first '\n' or '\r' in p, or -1.
func lineEnd(p []byte) int {
	lf := bytes.IndexByte(p, '\n')
	if lf < 0 {
		return bytes.IndexByte(p, '\r')
	}
	if cr := bytes.IndexByte(p[:lf], '\r'); cr >= 0 {
		return cr
	}
	return lf
}

// lineDone reads one complete line. Its length and the data's are within
// the bound, so the data stays within it too.
func (r *sseReader) lineDone(line []byte, dispatch func(event, data []byte) error) error {
	if !r.begun {
		r.begun = true
		line = bytes.TrimPrefix(line, utf8BOM)
	}
	if len(line) == 0 {
		return r.dispatch(dispatch)
	}
	if line[0] == ':' {
		return nil
	}
	name, value, _ := bytes.Cut(line, []byte{':'})
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	switch string(name) {
	case "event":
		r.event = append(r.event[:0], value...)
	case "data":
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
		r.hasData = true
	}
	return nil
}

// dispatch hands on the event read so far, if it has data, and starts the
// next one.
func (r *sseReader) dispatch(dispatch func(event, data []byte) error) error {
	if !r.hasData {
		r.event = r.event[:0]
		return nil
	}
	err := dispatch(r.event, r.data[:len(r.data)-1])
	r.event, r.data, r.hasData = r.event[:0], r.data[:0], false
	if cap(r.data) > keptEventCap {
		r.data = nil
	}
	if cap(r.line) > keptEventCap {
		r.line = nil
	}
	return err
}

// fail gives back the buffers of an event that grew too large.
func (r *sseReader) fail() error {
	r.line, r.event, r.data, r.hasData = nil, nil, nil, false
	return errEventTooLarge
}

// appendSSE appends one server-sent event to dst: "event: name" when name
// is set, then data as one "data:" line per line of it, and the blank line
// that ends the event.
func appendSSE(dst []byte, name string, data []byte) []byte {
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	for {
		end := lineEnd(data)
		dst = append(dst, "data: "...)
		if end < 0 {
			dst = append(dst, data...)
			break
		}
		dst = append(dst, data[:end]...)
		dst = append(dst, '\n')
		if data[end] == '\r' && end+1 < len(data) && data[end+1] == '\n' {
			end++
		}
		data = data[end+1:]
	}
	return append(dst, '\n', '\n')
}

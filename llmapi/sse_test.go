package llmapi

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// sseEvent is an event as the reader dispatches it.
type sseEvent struct{ name, data string }

// readSSE reads chunks with a reader bounded by limit (0 for the default)
// and ends the input.
func readSSE(limit int, chunks ...[]byte) ([]sseEvent, error) {
	r := sseReader{max: limit}
	var evs []sseEvent
	dispatch := func(name, data []byte) error {
		evs = append(evs, sseEvent{string(name), string(data)})
		return nil
	}
	for _, c := range chunks {
		if err := r.feed(c, dispatch); err != nil {
			return evs, err
		}
	}
	return evs, r.flush(dispatch)
}

// TestSSEReader reads the event-stream format as the WHATWG spec has it,
// whole, cut at every offset and byte by byte.
func TestSSEReader(t *testing.T) {
	tests := []struct {
		name, in string
		want     []sseEvent
	}{
		{"event and data", "event: a\ndata: x\n\n", []sseEvent{{"a", "x"}}},
		{"data lines joined", "data: a\ndata:\ndata: b\n\n", []sseEvent{{"", "a\n\nb"}}},
		{"comments and other fields", ": keep-alive\nid: 7\nretry: 100\nfoo: bar\ndata: x\n\n:\n\n", []sseEvent{{"", "x"}}},
		{"the space after the colon", "data:x\n\ndata:  y\n\n", []sseEvent{{"", "x"}, {"", " y"}}},
		{"a field without a colon", "data\n\n", []sseEvent{{"", ""}}},
		{"\\r\\n line ends", "event: a\r\ndata: x\r\n\r\ndata: y\r\n\r\n", []sseEvent{{"a", "x"}, {"", "y"}}},
		{"\\r line ends", "event: a\rdata: x\r\rdata: y\r\r", []sseEvent{{"a", "x"}, {"", "y"}}},
		{"mixed line ends", "data: a\r\ndata: b\rdata: c\n\r\n", []sseEvent{{"", "a\nb\nc"}}},
		{"no event without data", "event: a\n\ndata: x\n\nevent: b\n\n", []sseEvent{{"", "x"}}},
		{"the event name is the last given", "event: a\nevent: b\ndata: x\n\n", []sseEvent{{"b", "x"}}},
		{"a byte-order mark", "\xEF\xBB\xBFdata: x\n\ndata: \xEF\xBB\xBFy\n\n", []sseEvent{{"", "x"}, {"", "\xEF\xBB\xBFy"}}},
		{"the last event unterminated", "data: x\n\ndata: [DONE]", []sseEvent{{"", "x"}, {"", "[DONE]"}}},
		{"UTF-8 kept whole", "data: 世界 😀\n\n", []sseEvent{{"", "世界 😀"}}},
		{"blank lines only", "\n\n\r\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			got, err := readSSE(0, in)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			for i := range len(in) + 1 {
				if got, err := readSSE(0, in[:i], in[i:]); err != nil || !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("cut at %d: got %q, %v", i, got, err)
				}
			}
			if got, err := readSSE(0, bytesOneByOne(in)...); err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("byte by byte: got %q, %v", got, err)
			}
		})
	}
}

// TestSSEReaderLimit fails an event larger than the bound, whether it is
// one long line or many data lines, fed whole or in pieces, and gives its
// buffers back; smaller events pass.
func TestSSEReaderLimit(t *testing.T) {
	const limit = 100
	for name, in := range map[string]string{
		"one line":         "data: " + strings.Repeat("x", limit) + "\n\n",
		"one unended line": "data: " + strings.Repeat("x", limit),
		"many lines":       strings.Repeat("data: 0123456789\n", 10) + "\n",
		"a comment":        ":" + strings.Repeat("x", limit) + "\n",
	} {
		for _, chunks := range [][][]byte{{[]byte(in)}, bytesOneByOne([]byte(in))} {
			r := sseReader{max: limit}
			var err error
			for _, c := range chunks {
				if err = r.feed(c, func(_, _ []byte) error { return nil }); err != nil {
					break
				}
			}
			if !errors.Is(err, errEventTooLarge) {
				t.Errorf("%s in %d chunks: %v", name, len(chunks), err)
			}
			if r.line != nil || r.data != nil {
				t.Errorf("%s: buffers kept after the failure", name)
			}
		}
	}
	if got, err := readSSE(limit, []byte(strings.Repeat("data: 012345678\n", 5)+"\n")); err != nil || len(got) != 1 {
		t.Errorf("an event within the bound: %q, %v", got, err)
	}
	// The default bound is 16 MiB: an upstream that sends more without a
	// line end fails, holding no more than that.
	var r sseReader
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	var err error
	for i := 0; i < 17 && err == nil; i++ {
		err = r.feed(chunk, func(_, _ []byte) error { return nil })
		if len(r.line) > maxEventSize {
			t.Fatalf("holds %d bytes", len(r.line))
		}
	}
	if !errors.Is(err, errEventTooLarge) {
		t.Errorf("17 MiB without a line end: %v", err)
	}
}

// TestSSEReaderDispatchError stops the reading at the dispatch's error.
func TestSSEReaderDispatchError(t *testing.T) {
	stop := errors.New("stop")
	var r sseReader
	n := 0
	err := r.feed([]byte("data: 1\n\ndata: 2\n\n"), func(_, _ []byte) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("error %v after %d events", err, n)
	}
}

// TestAppendSSE writes events the reader reads back, data of several
// lines (any line ends) as several data lines.
func TestAppendSSE(t *testing.T) {
	got := appendSSE(nil, "message_start", []byte(`{"a":1}`))
	got = appendSSE(got, "", []byte("one\ntwo\r\nthree\rfour"))
	got = appendSSE(got, "", nil)
	const want = "event: message_start\ndata: {\"a\":1}\n\n" +
		"data: one\ndata: two\ndata: three\ndata: four\n\n" +
		"data: \n\n"
	if string(got) != want {
		t.Fatalf("got %q", got)
	}
	evs, err := readSSE(0, got)
	if w := []sseEvent{{"message_start", `{"a":1}`}, {"", "one\ntwo\nthree\nfour"}, {"", ""}}; err != nil || !reflect.DeepEqual(evs, w) {
		t.Errorf("read back %q, %v", evs, err)
	}
}

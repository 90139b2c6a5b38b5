package llmaffinity

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSegmentReader(t *testing.T) {
	segs := [][]byte{[]byte(`{"model":`), {}, []byte(`"gpt-4o"`), []byte(`,"messages":[]}`)}
	want := `{"model":"gpt-4o","messages":[]}`
	// io.Reader contract, with small reads
	if err := iotest.TestReader(&segmentReader{segs: segs}, []byte(want)); err != nil {
		t.Errorf("Read: %v", err)
	}
	// one Read fills the buffer across segments: the transport then writes
	// the body in as few syscalls as the original body
	whole := make([]byte, 64)
	if n, err := (&segmentReader{segs: segs}).Read(whole); err != nil || string(whole[:n]) != want {
		t.Errorf("Read into a large buffer = %q, %v; want all of %q at once", whole[:n], err, want)
	}
	var out bytes.Buffer
	n, err := io.Copy(&out, &segmentReader{segs: segs})
	if err != nil || n != int64(len(want)) || out.String() != want {
		t.Errorf("io.Copy = %d %v %q, want %q", n, err, out.String(), want)
	}
	// readers share the segment list and must not disturb each other
	first := &segmentReader{segs: segs}
	buf := make([]byte, 5)
	if _, err := first.Read(buf); err != nil {
		t.Fatal(err)
	}
	second, _ := io.ReadAll(&segmentReader{segs: segs})
	if string(second) != want {
		t.Errorf("a second reader read %q after a partial first read; want %q", second, want)
	}
}

func TestSetBodyReplays(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader("old"))
	r.TransferEncoding = []string{"chunked"}
	body := &requestBody{bytes: []byte("hello, world"), class: -1, refs: 1}
	setBody(r, body, [][]byte{body.bytes[:7], body.bytes[7:]})
	if r.ContentLength != 12 || r.Header.Get("Content-Length") != "12" || r.TransferEncoding != nil {
		t.Errorf("lengths: ContentLength %d header %q TransferEncoding %v", r.ContentLength, r.Header.Get("Content-Length"), r.TransferEncoding)
	}
	for i := range 2 {
		body := r.Body
		if i > 0 {
			var err error
			if body, err = r.GetBody(); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := io.ReadAll(body); string(got) != "hello, world" {
			t.Errorf("read %d: %q", i, got)
		}
	}
}

// testBodyReader is a handler that reads bodies of at most maxBody bytes
// with a budget no test reaches.
func testBodyReader(maxBody int64) *Handler {
	return &Handler{MaxBody: maxBody, buffered: &bodyBudget{limit: 1 << 40}}
}

func TestReadBody(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		length  int64 // -1: unknown (chunked)
		limit   int64
		want    string
		wantErr error
	}{
		{"known length", "hello", 5, 10, "hello", nil},
		{"unknown length", "hello", -1, 10, "hello", nil},
		{"known length over the limit", "hello world", 11, 10, "", errBodyTooLarge},
		{"unknown length over the limit", "hello world", -1, 10, "", errBodyTooLarge},
		{"exactly the limit", "0123456789", -1, 10, "0123456789", nil},
		{"empty", "", 0, 10, "", nil},
		{"unknown length past the first buffer", strings.Repeat("a", 300<<10), -1, 1 << 20, strings.Repeat("a", 300<<10), nil},
		{"known length past the first buffer", strings.Repeat("b", 300<<10), 300 << 10, 1 << 20, strings.Repeat("b", 300<<10), nil},
		{"unknown length past the pools", strings.Repeat("c", 3<<20), -1, 4 << 20, strings.Repeat("c", 3<<20), nil},
		{"unknown length over a limit past the first buffer", strings.Repeat("d", 300<<10), -1, 200 << 10, "", errBodyTooLarge},
		{"client sent less than it declared", "short", 10, 100, "", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			r.ContentLength = tt.length
			got, err := testBodyReader(tt.limit).readBody(r)
			var gotBytes []byte
			if got != nil {
				gotBytes = got.bytes
			}
			if !errors.Is(err, tt.wantErr) || string(gotBytes) != tt.want {
				t.Errorf("readBody = %q, %v; want %q, %v", gotBytes, err, tt.want, tt.wantErr)
			}
		})
	}
	// a request_body limit in front of the handler is a 413 too
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("hello world"))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 4)
	if _, err := testBodyReader(100).readBody(r); !errors.Is(err, errBodyTooLarge) {
		t.Errorf("readBody behind MaxBytesReader: %v, want errBodyTooLarge", err)
	}
}

// pooledBody reads body through readBody, as the handler does, so its buffer
// comes from (and goes back to) the pools.
func pooledBody(t *testing.T, body string) *requestBody {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	b, err := testBodyReader(1 << 20).readBody(r)
	if err != nil {
		t.Fatal(err)
	}
	if b.class < 0 {
		t.Fatalf("a %d-byte body is not pooled", len(body))
	}
	return b
}

// TestRequestBodyRecycledOnlyWhenEveryReaderIsClosed: the buffer may be
// reused only when the handler is done and every reader handed to the
// transport is closed; before, it must stay intact, and after, no reader
// (nor a GetBody replay) may read it.
func TestRequestBodyRecycledOnlyWhenEveryReaderIsClosed(t *testing.T) {
	const content = "the first request's private prompt"
	body := pooledBody(t, content)
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	setBody(r, body, [][]byte{body.bytes})
	first := r.Body
	replay, err := r.GetBody()
	if err != nil {
		t.Fatal(err)
	}

	body.release() // the handler is done; the transport still holds two readers
	if _, err := first.Read(make([]byte, 4)); err != nil {
		t.Fatalf("an open reader failed after the handler let go: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Read(make([]byte, 4)); !errors.Is(err, errBodyReleased) {
		t.Errorf("Read after Close = %v, want errBodyReleased", err)
	}
	if got, _ := io.ReadAll(replay); string(got) != content {
		t.Fatalf("the replay read %q while it was still open, want %q", got, content)
	}
	replay.Close()
	if body.bytes != nil {
		t.Fatal("the buffer was not released after the last reader closed")
	}
	if _, err := r.GetBody(); !errors.Is(err, errBodyReleased) {
		t.Errorf("GetBody after release = %v, want errBodyReleased", err)
	}
	if err := first.Close(); err != nil { // closing twice releases once
		t.Fatal(err)
	}
}

// TestRequestBodyConcurrentReadClose: a transport may Close a body while
// another goroutine reads it; under the race detector this checks that the
// buffer is never handed back while a Read copies from it.
func TestRequestBodyConcurrentReadClose(t *testing.T) {
	for range 200 {
		body := pooledBody(t, strings.Repeat("x", 5000))
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		setBody(r, body, [][]byte{body.bytes})
		reader := r.Body
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 64)
			for {
				if _, err := reader.Read(buf); err != nil {
					return
				}
			}
		}()
		class := body.class
		reader.Close()
		body.release()
		// the next request gets the buffer and overwrites it
		if reused, ok := bodyPools[class].Get().(*[]byte); ok {
			next := (*reused)[:cap(*reused)]
			for i := range next {
				next[i] = 'y'
			}
		}
		<-done
		if body.bytes != nil {
			t.Fatal("buffer not released")
		}
	}
}

// A buffer borrowed for a translation is the body's: it counts in the
// budget, stays out of the pool while a reader of it is open, and goes
// back with the body's own buffer.
func TestBorrowedBufferReturnsWithTheBody(t *testing.T) {
	body := pooledBody(t, "a request to translate")
	used := body.budget.used.Load()
	translated := append(body.borrow(10_000), "the translated request"...)
	if got := body.budget.used.Load() - used; got != 16<<10 {
		t.Fatalf("borrowing 10,000 bytes reserved %d, want the 16 KiB class", got)
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/messages", nil)
	setBody(r, body, [][]byte{translated})
	body.release() // the handler is done; the transport still reads
	if got, _ := io.ReadAll(r.Body); string(got) != "the translated request" {
		t.Fatalf("the reader read %q", got)
	}
	if body.budget.used.Load() == 0 {
		t.Fatal("the budget was freed while a reader was open")
	}
	r.Body.Close()
	if got := body.budget.used.Load(); got != 0 {
		t.Errorf("after the last reader closed the budget holds %d bytes, want 0", got)
	}
	if body.borrowed != nil {
		t.Error("the borrowed buffer was not given back")
	}
	if big := (&requestBody{budget: body.budget}).borrow(2 << 20); big != nil {
		t.Errorf("a buffer above the largest class was borrowed from a pool (cap %d)", cap(big))
	}
}

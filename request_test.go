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
	setBody(r, [][]byte{[]byte("hello, "), []byte("world")})
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			r.ContentLength = tt.length
			got, err := readBody(r, tt.limit)
			if !errors.Is(err, tt.wantErr) || string(got) != tt.want {
				t.Errorf("readBody = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	// a request_body limit in front of the handler is a 413 too
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("hello world"))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 4)
	if _, err := readBody(r, 100); !errors.Is(err, errBodyTooLarge) {
		t.Errorf("readBody behind MaxBytesReader: %v, want errBodyTooLarge", err)
	}
}

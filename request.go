package llmaffinity

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/llmaffinity/caddy-llm-affinity/router"
)

// errBodyTooLarge is returned by readBody for bodies over the limit.
var errBodyTooLarge = errors.New("request body too large")

// routingAPIPath is the path segment of the decision API: POST
// .../routing/v1/chat/completions or .../routing/v1/messages.
const routingAPIPath = "/routing/v1/"

// chatAPI reports whether r is a chat request the handler routes, in which
// wire format, and whether it asks the decision API (decide, don't proxy).
func chatAPI(r *http.Request) (api router.API, decisionOnly, ok bool) {
	if r.Method != http.MethodPost {
		return 0, false, false
	}
	path := r.URL.Path
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		api = router.OpenAI
	case strings.HasSuffix(path, "/messages"):
		api = router.Anthropic
	default:
		return 0, false, false
	}
	return api, strings.Contains(path, routingAPIPath), true
}

// Request bodies are read into buffers recycled by size class, powers of
// two from 4 KiB to 1 MiB; bigger bodies get a buffer of their own. A 32 KB
// agent turn would otherwise cost a 32 KB allocation and its share of GC on
// every request, pinned ones included.
const (
	minPooledBodyShift = 12 // 4 KiB
	maxPooledBodyShift = 20 // 1 MiB
)

var bodyPools [maxPooledBodyShift - minPooledBodyShift + 1]sync.Pool

// bodyClass returns the index of the smallest pool whose buffers hold n
// bytes, or -1 when n is too big to pool.
func bodyClass(n int64) int {
	for class := range bodyPools {
		if n <= 1<<(minPooledBodyShift+class) {
			return class
		}
	}
	return -1
}

// errBodyReleased is what a body reader gives once its buffer may be reused.
var errBodyReleased = errors.New("llm_affinity: request body already released")

// requestBody is a request's body as read from the client, shared by the
// handler and the readers that send it upstream (one per attempt, and the
// transport's GetBody replays). Its buffer returns to its pool only when the
// handler is done with it and every reader is closed: a transport may read a
// body after RoundTrip returns, and must never see another request's bytes.
// A reader that is never closed keeps the buffer out of the pool, for the
// garbage collector.
type requestBody struct {
	mu    sync.Mutex
	bytes []byte // nil once released
	class int    // bodyPools index, -1 when not pooled
	refs  int    // the handler's reference plus one per open reader
}

// acquire takes a reference for a new reader; false once released.
func (b *requestBody) acquire() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bytes == nil {
		return false
	}
	b.refs++
	return true
}

// release drops a reference, recycling the buffer with the last one.
func (b *requestBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refs--
	if b.refs > 0 || b.bytes == nil {
		return
	}
	if b.class >= 0 {
		buf := b.bytes[:0]
		bodyPools[b.class].Put(&buf)
	}
	b.bytes = nil
}

// readBody reads the whole request body, at most limit bytes. The caller
// holds the returned body's first reference and releases it when done.
func readBody(r *http.Request, limit int64) (*requestBody, error) {
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	if r.ContentLength >= 0 {
		// the server stops the body at its Content-Length
		body := &requestBody{class: bodyClass(r.ContentLength), refs: 1}
		if body.class < 0 {
			body.bytes = make([]byte, r.ContentLength)
		} else if pooled, ok := bodyPools[body.class].Get().(*[]byte); ok {
			body.bytes = (*pooled)[:r.ContentLength]
		} else {
			body.bytes = make([]byte, r.ContentLength, 1<<(minPooledBodyShift+body.class))
		}
		_, err := io.ReadFull(r.Body, body.bytes)
		var tooLarge *http.MaxBytesError // from a request_body limit in front of us
		if errors.As(err, &tooLarge) {
			return nil, errBodyTooLarge
		}
		return body, err
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	var tooLarge *http.MaxBytesError // from a request_body limit in front of us
	if errors.As(err, &tooLarge) {
		return nil, errBodyTooLarge
	}
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, errBodyTooLarge
	}
	return &requestBody{bytes: buf.Bytes(), class: -1, refs: 1}, nil
}

// setBody replaces r's body with the concatenation of segs (slices of body
// and of constants), keeping every length field consistent and letting the
// transport replay it. The segments are sent as they are: nothing is copied.
// The handler must hold its reference to body while calling it.
func setBody(r *http.Request, body *requestBody, segs [][]byte) {
	n := 0
	for _, s := range segs {
		n += len(s)
	}
	body.acquire() // cannot fail: the handler's reference keeps it
	r.Body = &segmentReader{owner: body, segs: segs}
	r.GetBody = func() (io.ReadCloser, error) {
		if !body.acquire() {
			return nil, errBodyReleased
		}
		return &segmentReader{owner: body, segs: segs}, nil
	}
	r.ContentLength = int64(n)
	r.Header.Set("Content-Length", strconv.Itoa(n))
	r.TransferEncoding = nil
}

// segmentReader reads a list of byte slices as one stream. It never writes
// to the list, which the request's GetBody replays share. Read and Close may
// run concurrently (a transport may close a body it is writing); after
// Close, Read fails and the reader's hold on its owner's buffer is gone.
type segmentReader struct {
	owner *requestBody // released on Close; nil when there is none

	mu     sync.Mutex
	segs   [][]byte
	i      int // current segment
	off    int // offset in it
	closed bool
}

// Read implements io.Reader. It fills p across segments, so the transport
// writes the body in as few syscalls as it would the original; a segment per
// write would cost one syscall for each small spliced piece.
func (sr *segmentReader) Read(p []byte) (int, error) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.closed {
		return 0, errBodyReleased
	}
	n := 0
	for n < len(p) && sr.i < len(sr.segs) {
		copied := copy(p[n:], sr.segs[sr.i][sr.off:])
		n += copied
		sr.off += copied
		if sr.off == len(sr.segs[sr.i]) {
			sr.i, sr.off = sr.i+1, 0
		}
	}
	if n == 0 && sr.i == len(sr.segs) {
		return 0, io.EOF
	}
	return n, nil
}

// Close implements io.Closer: it releases the reader's hold on the body.
func (sr *segmentReader) Close() error {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if !sr.closed {
		sr.closed = true
		if sr.owner != nil {
			sr.owner.release()
		}
	}
	return nil
}

// openAIError and anthropicError are the error bodies of the two APIs.
type openAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

type anthropicError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeAPIError answers a client error in the error shape of the request's
// API. msg must not quote request content. It returns nil: the response is
// complete and needs no error handling by Caddy.
func writeAPIError(w http.ResponseWriter, api router.API, status int, msg string) error {
	var payload any
	if api == router.Anthropic {
		var e anthropicError
		e.Type = "error"
		e.Error.Type = "invalid_request_error"
		if status == http.StatusRequestEntityTooLarge {
			e.Error.Type = "request_too_large"
		}
		e.Error.Message = msg
		payload = e
	} else {
		var e openAIError
		e.Error.Type = "invalid_request_error"
		e.Error.Message = msg
		payload = e
	}
	body, _ := json.Marshal(payload) // plain strings always marshal
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

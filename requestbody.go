package llmaffinity

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// Body reading errors that get an answer of their own.
var (
	errBodyTooLarge = errors.New("request body too large")
	errBudgetFull   = errors.New("too many request bodies buffered")
)

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
	mu     sync.Mutex
	bytes  []byte // nil once released
	class  int    // bodyPools index, -1 when not pooled
	refs   int    // the handler's reference plus one per open reader
	budget *bodyBudget
	// borrowed are pooled buffers that hold the request translated for
	// other APIs; they go back with the body's own, as readers send them.
	borrowed []pooledBuffer
}

// pooledBuffer is a buffer of a bodyPools class.
type pooledBuffer struct {
	buf   []byte
	class int
}

// borrow returns an empty pooled buffer of at least size bytes that stays
// the body's until it is recycled, for a translation of the request; nil
// (allocate one) when size is too big to pool or the budget is full. It is
// called by the handler only, before the readers of the buffer exist.
func (b *requestBody) borrow(size int64) []byte {
	class := bodyClass(size)
	if class < 0 || !b.budget.reserve(1<<(minPooledBodyShift+class)) {
		return nil
	}
	buf, ok := bodyPools[class].Get().(*[]byte)
	if !ok {
		fresh := make([]byte, 0, 1<<(minPooledBodyShift+class))
		buf = &fresh
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.borrowed = append(b.borrowed, pooledBuffer{buf: (*buf)[:0], class: class})
	return (*buf)[:0]
}

// grow gives the body a buffer of at least size bytes, keeping what it read:
// a pooled one up to the largest size class, else one of its own. The
// budget counts the capacity the body holds, so growing reserves the
// difference first.
func (b *requestBody) grow(size int64) error {
	class := bodyClass(size)
	capacity := size
	if class >= 0 {
		capacity = 1 << (minPooledBodyShift + class)
	}
	if !b.budget.reserve(capacity - int64(cap(b.bytes))) {
		return errBudgetFull
	}
	var buf []byte
	if class >= 0 {
		if pooled, ok := bodyPools[class].Get().(*[]byte); ok {
			buf = (*pooled)[:0]
		}
	}
	if buf == nil {
		buf = make([]byte, 0, capacity)
	}
	buf = append(buf, b.bytes...)
	b.putBack()
	b.bytes, b.class = buf, class
	return nil
}

// putBack returns the body's buffer to its pool, if it came from one.
func (b *requestBody) putBack() {
	if b.class >= 0 && b.bytes != nil {
		buf := b.bytes[:0]
		bodyPools[b.class].Put(&buf)
	}
}

// recycle gives the body's buffer back to its pool and its bytes back to
// the budget.
func (b *requestBody) recycle() {
	if b.bytes == nil {
		return
	}
	b.putBack()
	b.budget.free(int64(cap(b.bytes)))
	b.bytes = nil
	for _, p := range b.borrowed {
		bodyPools[p.class].Put(&p.buf)
		b.budget.free(int64(cap(p.buf)))
	}
	b.borrowed = nil
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
	if b.refs > 0 {
		return
	}
	b.recycle()
}

// initialBodyBuffer is the most a body buffer starts with, whatever the
// declared Content-Length; beyond it the buffer grows with the bytes that
// arrive, bodyGrowth times at a step. A client that declares a large body
// and sends little costs little.
const (
	initialBodyBuffer = 64 << 10
	bodyGrowth        = 4
)

// bodyBudget bounds the bytes a handler holds in body buffers at once.
type bodyBudget struct {
	limit int64
	used  atomic.Int64
}

// reserve takes n bytes of the budget; false when that would exceed it.
func (b *bodyBudget) reserve(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	bufferedBytes.Add(float64(n))
	return true
}

// free gives n reserved bytes back.
func (b *bodyBudget) free(n int64) {
	b.used.Add(-n)
	bufferedBytes.Sub(float64(n))
}

// readBody reads the whole request body, at most MaxBody bytes, into a
// buffer that grows with the bytes that arrive, within the handler's
// MaxBuffered budget. The caller holds the returned body's first reference
// and releases it when done.
func (h *Handler) readBody(r *http.Request) (*requestBody, error) {
	limit, declared := h.MaxBody, r.ContentLength
	if declared > limit {
		return nil, errBodyTooLarge
	}
	body := &requestBody{class: -1, refs: 1, budget: h.buffered}
	// the most bytes worth reading: the declared length, or, when it is
	// unknown, one past the limit, which tells a body over it
	want := declared
	if want < 0 {
		want = limit + 1
	}
	if err := body.grow(min(want, initialBodyBuffer)); err != nil {
		return nil, err
	}
	for int64(len(body.bytes)) < want {
		if len(body.bytes) == cap(body.bytes) {
			if err := body.grow(min(int64(cap(body.bytes))*bodyGrowth, want)); err != nil {
				body.release()
				return nil, err
			}
		}
		n, err := r.Body.Read(body.bytes[len(body.bytes):cap(body.bytes)])
		body.bytes = body.bytes[:len(body.bytes)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			body.release()
			var tooLarge *http.MaxBytesError // from a request_body limit in front of us
			if errors.As(err, &tooLarge) {
				return nil, errBodyTooLarge
			}
			return nil, err
		}
	}
	switch n := int64(len(body.bytes)); {
	case n > limit:
		body.release()
		return nil, errBodyTooLarge
	case declared >= 0 && n < declared:
		body.release()
		return nil, io.ErrUnexpectedEOF
	}
	return body, nil
}

// writeBodyError answers a body that could not be read. The rest of the
// body is not read: over HTTP/1 the connection closes after the answer, or
// the server would wait for the rest of the body before answering (HTTP/2
// resets just the stream, and "Connection: close" would end every stream of
// the connection).
func writeBodyError(w http.ResponseWriter, r *http.Request, api llmapi.API, err error, maxBody int64) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	switch {
	case errors.Is(err, errBodyTooLarge):
		llmapi.WriteError(w, api, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body exceeds the gateway's limit of %d bytes", maxBody))
	case errors.Is(err, errBudgetFull):
		w.Header().Set("Retry-After", "1")
		llmapi.WriteError(w, api, http.StatusServiceUnavailable,
			"the gateway is holding too many request bodies at once; retry shortly")
	default:
		llmapi.WriteError(w, api, http.StatusBadRequest, "could not read request body")
	}
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

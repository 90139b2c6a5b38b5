package llmaffinity

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

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

// readBody reads the whole request body, at most limit bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	if r.ContentLength >= 0 {
		// the server stops the body at its Content-Length
		body := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, body)
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
	return buf.Bytes(), nil
}

// setBody replaces r's body with the concatenation of segs, keeping every
// length field consistent and letting reverse_proxy replay it on retries.
// The segments are sent as they are: the body is not copied.
func setBody(r *http.Request, segs [][]byte) {
	n := 0
	for _, s := range segs {
		n += len(s)
	}
	r.Body = &segmentReader{segs: segs}
	r.GetBody = func() (io.ReadCloser, error) { return &segmentReader{segs: segs}, nil }
	r.ContentLength = int64(n)
	r.Header.Set("Content-Length", strconv.Itoa(n))
	r.TransferEncoding = nil
}

// segmentReader reads a list of byte slices as one stream. It never writes
// to the list, which the request's GetBody replays share.
type segmentReader struct {
	segs [][]byte
	i    int // current segment
	off  int // offset in it
}

// Read implements io.Reader. It fills p across segments, so the transport
// writes the body in as few syscalls as it would the original; a segment per
// write would cost one syscall for each small spliced piece.
func (sr *segmentReader) Read(p []byte) (int, error) {
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

// Close implements io.Closer; there is nothing to release.
func (sr *segmentReader) Close() error { return nil }

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

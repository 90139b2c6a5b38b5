package llmaffinity

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// anthropicVersion is the Messages API version sent to a Messages model
// when the client, speaking another API, sent none.
const anthropicVersion = "2023-06-01"

// standardPaths are where each API's requests go by default when the
// client speaks another API.
var standardPaths = map[llmapi.API]string{
	llmapi.Chat:      "/v1/chat/completions",
	llmapi.Messages:  "/v1/messages",
	llmapi.Responses: "/v1/responses",
}

// requestHeaders are the client's request headers that an attempt may
// change, kept so that each attempt starts from them.
type requestHeaders struct {
	anthropic      map[string][]string // every Anthropic-* header
	acceptEncoding []string
}

// saveRequestHeaders takes note of the headers translated attempts change
// (attempts in the client's API change none).
func saveRequestHeaders(h http.Header) *requestHeaders {
	saved := &requestHeaders{anthropic: map[string][]string{}, acceptEncoding: h["Accept-Encoding"]}
	for name, values := range h {
		if strings.HasPrefix(name, "Anthropic-") {
			saved.anthropic[name] = values
		}
	}
	return saved
}

// attempt is one candidate model with the request body it takes, when it
// speaks another API than the client (nil when it speaks the client's).
type attempt struct {
	model *Model
	body  []byte
}

// attempt is the attempt of candidate m: the request as it is, or
// translated for m's API; an error (an *llmapi.UnsupportedError, or a
// client error in the request) when m cannot take it.
func (in *incoming) attempt(m *Model) (attempt, error) {
	if m.api == in.api {
		return attempt{model: m}, nil
	}
	body, err := in.translatedBody(m)
	return attempt{model: m, body: body}, err
}

// translatedBody is the request in m's API, in a buffer borrowed from the
// body's pool (a translation is about the size of the request).
func (in *incoming) translatedBody(m *Model) ([]byte, error) {
	turn, err := in.turn()
	if err != nil {
		return nil, err
	}
	size := int64(len(in.body.bytes))
	return llmapi.AppendTurn(in.body.borrow(size+size/4+1024), m.api, turn, m.UpstreamModel)
}

// prepareAttempt points r at a's model: the body in its API (spliced when
// the client speaks it, else translated), its path and the headers its API
// takes. It returns a translator for the response when the APIs differ.
func prepareAttempt(in *incoming, a attempt, saved *requestHeaders) *translator {
	m := a.model
	r := in.r
	header := r.Header
	if saved != nil {
		for name := range header {
			if strings.HasPrefix(name, "Anthropic-") {
				delete(header, name)
			}
		}
		for name, values := range saved.anthropic {
			header[name] = values
		}
		if saved.acceptEncoding != nil {
			header["Accept-Encoding"] = saved.acceptEncoding
		}
	}
	if m.api == in.api {
		// fresh segments each attempt: a failed attempt's transport may
		// still be reading the previous ones
		setBody(r, in.body, in.env.Segments(make([][]byte, 0, 8), in.body.bytes, m.quotedUpstreamModel, in.asksUsage(m)))
		r.URL.Path, r.URL.RawQuery = cmp.Or(m.Path, in.path), in.query
		return nil
	}
	setBody(r, in.body, [][]byte{a.body})
	r.URL.Path, r.URL.RawQuery = cmp.Or(m.Path, standardPaths[m.api]), ""
	// the translator reads the upstream's bytes: no compression it cannot read
	delete(header, "Accept-Encoding")
	if m.api == llmapi.Messages {
		delete(header, "Anthropic-Beta") // its features are the client's API's
		if header.Get("Anthropic-Version") == "" {
			header.Set("Anthropic-Version", anthropicVersion)
		}
	} else {
		for name := range header {
			if strings.HasPrefix(name, "Anthropic-") {
				delete(header, name)
			}
		}
	}
	tr := &translator{from: m.api, to: in.api, model: cmp.Or(in.env.Model, m.Name), streamUsage: in.neutral.StreamUsage}
	tr.record, tr.responseID = newRecorder(in, in.neutral)
	return tr
}

// unsupportedMessage is the client's answer when the request cannot go to
// model m.
func unsupportedMessage(err error, m *Model) string {
	var u *llmapi.UnsupportedError
	if errors.As(err, &u) {
		return fmt.Sprintf("the request has %s, which model '%s' (the %s API) cannot take", u.Feature, m.Name, m.API)
	}
	return err.Error()
}

// maxTranslatedBody bounds a complete upstream response read for
// translation.
const maxTranslatedBody = 64 << 20

// translator turns a model's response in its API into the client's: a
// stream event by event as the upstream's events arrive, a complete JSON
// response (or error) once it has all of it. It sits between reverse_proxy
// and the client, inside the failover writer.
type translator struct {
	*caddyhttp.ResponseWriterWrapper
	from, to    llmapi.API
	model       string // the model the client is told answered, if the upstream does not say
	streamUsage bool   // a Chat client asked for the usage chunk

	status int
	body   []byte
	tooBig bool

	// a stream: decoded from the upstream's API, encoded in the client's
	stream    bool
	dec       llmapi.StreamDecoder
	enc       llmapi.StreamEncoder
	broken    bool  // the upstream's stream could not be read; the rest is ignored
	clientErr error // writing to the client failed

	// a Responses client's response: the id it is given, and what keeps
	// its conversation (nil when none is kept)
	responseID string
	record     *recorder
}

// wrap makes t write to w.
func (t *translator) wrap(w http.ResponseWriter) http.ResponseWriter {
	t.ResponseWriterWrapper = &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}
	return t
}

// WriteHeader starts a translated stream at once; any other status waits
// until the body is translated.
func (t *translator) WriteHeader(status int) {
	switch {
	case status < 200:
		t.ResponseWriterWrapper.WriteHeader(status)
		return
	case t.status != 0:
		return
	}
	t.status = status
	header := t.Header()
	if status != http.StatusOK || !strings.HasPrefix(header.Get("Content-Type"), "text/event-stream") {
		return
	}
	t.stream = true
	header.Del("Content-Length")
	header.Del("Content-Encoding")
	t.dec = llmapi.NewStreamDecoder(t.from)
	t.enc = llmapi.NewStreamEncoder(t.to, llmapi.StreamOptions{IncludeUsage: t.streamUsage, ID: t.responseID})
	t.ResponseWriterWrapper.WriteHeader(status)
}

// Write translates a stream's bytes as they come, or collects a body.
func (t *translator) Write(p []byte) (int, error) {
	if t.status == 0 {
		t.WriteHeader(http.StatusOK)
	}
	if t.stream {
		if !t.broken {
			// a stream it cannot read ends there, the decoder having told
			// the client with an error event
			t.broken = t.dec.Decode(p, t.emit) != nil
			_ = t.FlushError()
		}
		return len(p), t.clientErr
	}
	if len(t.body)+len(p) > maxTranslatedBody {
		t.tooBig = true
		return len(p), nil
	}
	t.body = append(t.body, p...)
	return len(p), nil
}

// ReadFrom is Write for io.Copy.
func (t *translator) ReadFrom(src io.Reader) (int64, error) {
	return io.Copy(writerOnly{t}, src)
}

// emit writes one neutral event to the client in its API.
func (t *translator) emit(ev llmapi.Event) {
	if t.clientErr == nil {
		t.clientErr = t.enc.Encode(t.ResponseWriterWrapper, ev)
	}
	if t.record != nil {
		t.record.event(ev)
	}
}

// FlushError flushes a stream to the client; a complete response goes out
// whole, so it holds what it has.
func (t *translator) FlushError() error {
	if !t.stream {
		return nil
	}
	return http.NewResponseController(t.ResponseWriterWrapper.ResponseWriter).Flush()
}

// Flush is FlushError for http.Flusher.
func (t *translator) Flush() { _ = t.FlushError() }

// writerOnly hides everything of a writer but Write.
type writerOnly struct{ io.Writer }

// finish translates the response and writes it to the client: a success
// as the client API's response, an error in its error shape with the
// upstream's status kept, and what it cannot read as a 502.
func (t *translator) finish() {
	if t.stream {
		if !t.broken {
			_ = t.dec.Close(t.emit)
		}
		_ = t.FlushError()
		return
	}
	w := t.ResponseWriterWrapper.ResponseWriter
	header := w.Header()
	header.Del("Content-Length")
	header.Del("Content-Encoding")
	switch {
	case t.status == 0:
		return // nothing was written: the failover writer answers
	case t.tooBig:
		llmapi.WriteError(w, t.to, http.StatusBadGateway, "the model's response is too large to translate")
		return
	case t.status >= 400:
		msg, ok := llmapi.UpstreamErrorMessage(t.body)
		if !ok {
			msg = fmt.Sprintf("the model answered HTTP %d", t.status)
		}
		llmapi.WriteError(w, t.to, t.status, msg)
		return
	}
	reply, err := llmapi.DecodeReply(t.from, t.body)
	if err != nil {
		llmapi.WriteError(w, t.to, http.StatusBadGateway, err.Error())
		return
	}
	if t.record != nil {
		reply.ID = t.responseID
		t.record.keep(reply.Parts)
	}
	// the model as the upstream names it, as an untranslated response has it
	out := llmapi.EncodeReply(t.to, reply, cmp.Or(reply.Model, t.model))
	header.Set("Content-Type", "application/json")
	header.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(t.status)
	_, _ = w.Write(out)
}

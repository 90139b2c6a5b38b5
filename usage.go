package llmaffinity

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap/zapcore"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// turnReport is what one request cost and how it was served, as the
// metrics, the access log and the trace span report it. It holds
// configured names and counts only, never prompt text or keys.
type turnReport struct {
	// requestedModel is the model the client asked for.
	requestedModel string
	// model is the configured model that served; upstreamModel the name the
	// provider answered with ("" when it named none).
	model, upstreamModel string
	// provider is the serving model's provider (Model.Provider: openai or
	// anthropic), the span's gen_ai.provider.name.
	provider string
	// route and status are the decision's (see setDecisionOutputs);
	// keyHash the affinity key hashed, "" without one.
	route, status, keyHash string
	// usage is the response's token counts; hasUsage false when the
	// response reported none.
	usage    llmapi.Usage
	hasUsage bool
	// ttft is the time from the request to the first byte of a streamed
	// response; 0 when not streamed.
	ttft time.Duration
	// cost is what usage cost at the model's price; priced false when the
	// model has none.
	cost   float64
	priced bool
}

// meteredWriter reads the usage of a model's response as reverse_proxy
// writes it, in the model's API (before any translation), and when its
// first byte came. For a Chat stream whose usage chunk the gateway asked
// for on the client's behalf, it drops that chunk. It sits inside the
// failover writer, so it sees only the response that reaches the client.
type meteredWriter struct {
	caddyhttp.ResponseWriterWrapper
	api       llmapi.API
	dropUsage bool // the gateway asked a Chat stream for its usage chunk
	started   bool // the status came, and the meter is set up
	meter     llmapi.UsageMeter
	firstByte time.Time
	stream    bool
	writeErr  error
}

// newMeteredWriter meters a response of api written to w.
func newMeteredWriter(w http.ResponseWriter, api llmapi.API, dropUsage bool) *meteredWriter {
	return &meteredWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, api: api, dropUsage: dropUsage}
}

// WriteHeader starts metering: a stream's events, or a complete body.
func (mw *meteredWriter) WriteHeader(status int) {
	if status >= 200 && !mw.started {
		mw.started = true
		mw.stream = status < 300 && strings.HasPrefix(mw.Header().Get("Content-Type"), "text/event-stream")
		mw.meter.Reset(mw.api, mw.stream)
		if mw.dropUsage && mw.stream {
			mw.Header().Del("Content-Length") // a chunk is dropped
		}
	}
	mw.ResponseWriterWrapper.WriteHeader(status)
}

// Write meters p and passes it on (a filtered stream: event by event).
func (mw *meteredWriter) Write(p []byte) (int, error) {
	if !mw.started {
		mw.WriteHeader(http.StatusOK)
	}
	if mw.firstByte.IsZero() && len(p) > 0 {
		mw.firstByte = time.Now()
	}
	if mw.dropUsage && mw.stream {
		mw.meter.Filter(p, mw.pass)
		return len(p), mw.writeErr
	}
	mw.meter.Write(p)
	return mw.ResponseWriterWrapper.Write(p)
}

// pass writes a filtered stream's bytes on.
func (mw *meteredWriter) pass(b []byte) {
	if mw.writeErr == nil {
		_, mw.writeErr = mw.ResponseWriterWrapper.Write(b)
	}
}

// ReadFrom is Write for io.Copy: it must not bypass the meter.
func (mw *meteredWriter) ReadFrom(src io.Reader) (int64, error) {
	return io.Copy(writerOnly{mw}, src)
}

// FlushError flushes what has been passed on.
func (mw *meteredWriter) FlushError() error {
	return http.NewResponseController(mw.ResponseWriterWrapper.ResponseWriter).Flush()
}

// Flush is FlushError for http.Flusher.
func (mw *meteredWriter) Flush() { _ = mw.FlushError() }

// finish passes on what a filtered stream still holds and returns the
// response's usage and the model it named.
func (mw *meteredWriter) finish() (u llmapi.Usage, model string, ok bool) {
	if !mw.started {
		return u, "", false
	}
	if mw.dropUsage && mw.stream {
		mw.meter.EndFilter(mw.pass)
	}
	return mw.meter.Result()
}

// Interface guards
var (
	_ http.Flusher  = (*meteredWriter)(nil)
	_ io.ReaderFrom = (*meteredWriter)(nil)
)

// asksUsage reports whether the request, going to m in the client's API,
// asks for a Chat stream's usage chunk on the client's behalf: usage is
// never lost, and the chunk is dropped again on the way back.
func (in *incoming) asksUsage(m *Model) bool {
	return in.api == llmapi.Chat && m.api == llmapi.Chat && in.env.Stream && !in.env.StreamUsage
}

// turnReport is the report of the response m gave, as mw metered it.
func (in *incoming) turnReport(d decision, m *Model, mw *meteredWriter) *turnReport {
	rep := &turnReport{requestedModel: in.env.Model, model: m.Name, provider: m.Provider, route: d.routeName,
		status: d.status, keyHash: in.hashedKey()}
	rep.usage, rep.upstreamModel, rep.hasUsage = mw.finish()
	if mw.stream && !mw.firstByte.IsZero() {
		rep.ttft = mw.firstByte.Sub(in.start)
	}
	if m.Price != nil && rep.hasUsage {
		rep.cost, rep.priced = m.Price.cost(rep.usage), true
	}
	return rep
}

// report records what a served request cost: the metrics, the access
// log's fields and the placeholders, and the trace span's attributes.
func (h *Handler) report(r *http.Request, rep *turnReport) {
	annotateSpan(r.Context(), rep)
	if rep.ttft > 0 {
		timeToFirstToken.WithLabelValues(rep.model).Observe(rep.ttft.Seconds())
	}
	if !rep.hasUsage {
		return
	}
	h.countUsage(rep)
	fields := usageFields{usage: rep.usage, ttft: rep.ttft, cost: rep.cost, priced: rep.priced}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(fields.placeholder)
	}
	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		// one field for all: each Add clears the extra fields' caches
		extra.Add(inlineField("llm_usage", fields))
	}
}

// usageFields are a response's usage as the access log's fields and the
// placeholders give it.
type usageFields struct {
	usage  llmapi.Usage
	ttft   time.Duration
	cost   float64
	priced bool
}

// MarshalLogObject adds the fields llm_input_tokens, llm_output_tokens,
// llm_cache_read_tokens, llm_cache_write_tokens, and llm_ttft_ms and
// llm_cost_usd where known.
func (f usageFields) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddInt("llm_input_tokens", f.usage.InputTokens)
	enc.AddInt("llm_output_tokens", f.usage.OutputTokens)
	enc.AddInt("llm_cache_read_tokens", f.usage.CacheReadTokens)
	enc.AddInt("llm_cache_write_tokens", f.usage.CacheWriteTokens)
	if f.ttft > 0 {
		enc.AddInt64("llm_ttft_ms", f.ttft.Milliseconds())
	}
	if f.priced {
		enc.AddFloat64("llm_cost_usd", f.cost)
	}
	return nil
}

// placeholder is the value of a {http.llm_affinity.*} usage placeholder.
func (f usageFields) placeholder(key string) (any, bool) {
	name, ok := strings.CutPrefix(key, "http.llm_affinity.")
	if !ok {
		return nil, false
	}
	switch name {
	case "input_tokens":
		return f.usage.InputTokens, true
	case "output_tokens":
		return f.usage.OutputTokens, true
	case "cache_read_tokens":
		return f.usage.CacheReadTokens, true
	case "cache_write_tokens":
		return f.usage.CacheWriteTokens, true
	case "ttft_ms":
		return f.ttft.Milliseconds(), f.ttft > 0
	case "cost_usd":
		return f.cost, f.priced
	}
	return nil, false
}

package llmaffinity

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

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
	// duration is the time the upstream took, code its status.
	duration time.Duration
	code     int
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
	*caddyhttp.ResponseWriterWrapper
	api       llmapi.API
	dropUsage bool // the gateway asked a Chat stream for its usage chunk
	meter     *llmapi.UsageMeter
	firstByte time.Time
	stream    bool
	writeErr  error
}

// newMeteredWriter meters a response of api written to w.
func newMeteredWriter(w http.ResponseWriter, api llmapi.API, dropUsage bool) *meteredWriter {
	return &meteredWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, api: api, dropUsage: dropUsage}
}

// WriteHeader starts metering: a stream's events, or a complete body.
func (mw *meteredWriter) WriteHeader(status int) {
	if status >= 200 && mw.meter == nil {
		mw.stream = status < 300 && strings.HasPrefix(mw.Header().Get("Content-Type"), "text/event-stream")
		mw.meter = llmapi.NewUsageMeter(mw.api, mw.stream)
	}
	mw.ResponseWriterWrapper.WriteHeader(status)
}

// Write meters p and passes it on (a filtered stream: event by event).
func (mw *meteredWriter) Write(p []byte) (int, error) {
	if mw.meter == nil {
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
	if mw.meter == nil {
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
		status: d.status, keyHash: hashKey(in.key)}
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
	u := rep.usage
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.llm_affinity.input_tokens", u.InputTokens)
		repl.Set("http.llm_affinity.output_tokens", u.OutputTokens)
		repl.Set("http.llm_affinity.cache_read_tokens", u.CacheReadTokens)
		repl.Set("http.llm_affinity.cache_write_tokens", u.CacheWriteTokens)
		if rep.ttft > 0 {
			repl.Set("http.llm_affinity.ttft_ms", rep.ttft.Milliseconds())
		}
		if rep.priced {
			repl.Set("http.llm_affinity.cost_usd", rep.cost)
		}
	}
	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Set(zap.Int("llm_input_tokens", u.InputTokens))
		extra.Set(zap.Int("llm_output_tokens", u.OutputTokens))
		extra.Set(zap.Int("llm_cache_read_tokens", u.CacheReadTokens))
		extra.Set(zap.Int("llm_cache_write_tokens", u.CacheWriteTokens))
		if rep.ttft > 0 {
			extra.Set(zap.Int64("llm_ttft_ms", rep.ttft.Milliseconds()))
		}
		if rep.priced {
			extra.Set(zap.Float64("llm_cost_usd", rep.cost))
		}
	}
}

package llmaffinity

import (
	"cmp"
	"context"
	"io"
	"maps"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// serve hands the request to next (reverse_proxy) for each candidate model in
// turn until one gives a response that reaches the client. A candidate fails
// over when it fails before any response byte reaches the client: no
// connection, a timeout, a 429 or a 5xx. The last candidate's response,
// whatever it is, reaches the client unchanged. The session's pin follows the
// model that served, and is dropped when none could.
func (h *Handler) serve(w http.ResponseWriter, in *incoming, d decision, next caddyhttp.Handler) error {
	r := in.r
	client := takeClientCredentials(r.Header)
	respHeader := w.Header()
	initialHeader := respHeader.Clone()
	var saved *requestHeaders // the headers translated attempts change, once one does
	failed := 0               // the status of the failed attempt before, if any
	var cur attemptState
	defer func() {
		// reverse_proxy aborts a response it cannot finish writing (a client
		// gone after the last event, too) by panicking with
		// http.ErrAbortHandler: what was served is accounted for all the same
		if p := recover(); p != nil {
			if cur.fw != nil && !cur.finished {
				h.recordTurn(d, h.finishAttempt(in, d, &cur))
			}
			panic(p)
		}
	}()
	for i, m := range d.candidates {
		// a candidate of another API is translated when its turn comes, so
		// a request the first candidate serves pays nothing for the others
		a, err := in.attempt(m)
		switch {
		case err != nil && i == 0:
			// nothing went upstream: the client learns what the model cannot take
			llmapi.WriteError(w, in.api, http.StatusBadRequest, unsupportedMessage(err, m))
			return nil
		case err != nil:
			h.logger.Debug("failover candidate cannot take the request; skipping it", zap.String("model", m.Name))
			continue
		case a.body != nil && saved == nil:
			saved = saveRequestHeaders(r.Header)
		}
		last := i == len(d.candidates)-1
		if i > 0 {
			// drop what the failed attempt's upstream set
			clear(respHeader)
			maps.Copy(respHeader, initialHeader.Clone())
		}
		tr := prepareAttempt(in, a, saved)
		h.setCredential(r.Header, m, &client)
		caddyhttp.SetVar(r.Context(), upstreamVar, m.upstream)
		caddyhttp.SetVar(r.Context(), PinHashVar, pinHash(d.pinKey))
		setDecisionOutputs(w, r, m.Name, d.routeName, d.status, in.hashedKey())

		out := w
		if tr != nil {
			out = tr.wrap(w)
		}
		mw := newMeteredWriter(out, m.api, tr == nil && in.asksUsage(m))
		fw := &failoverWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: mw}, mayFail: !last}
		cur = attemptState{model: m, fw: fw, mw: mw, start: time.Now()}
		err = next.ServeHTTP(fw, r)
		rep := h.finishAttempt(in, d, &cur) // before tr.finish: a filtered stream's end reaches tr
		if tr != nil && fw.committed {
			tr.finish()
		}
		switch {
		case err == nil && !fw.committed && !fw.failed:
			// nothing after this handler answered: no model was asked
			h.settlePin(r.Context(), d, m, false)
			llmapi.WriteError(w, in.api, http.StatusBadGateway, errNoProxy)
			return nil
		case fw.committed:
			h.settlePin(r.Context(), d, m, err == nil && !retryable(fw.status))
			h.recordTurn(d, rep) // after settlePin: a failover model's fresh pin counts the turn
			return err
		case last || r.Context().Err() != nil:
			// nothing reached the client; Caddy's error handling answers
			h.settlePin(r.Context(), d, m, false)
			return err
		}
		h.logger.Warn("model failed before responding; failing over",
			zap.String("model", m.Name), zap.String("next_model", d.candidates[i+1].Name),
			zap.Int("status", fw.status), zap.Error(err))
		failed = cmp.Or(fw.status, http.StatusBadGateway)
	}
	// the candidates after a failed one could not take the request
	h.settlePin(r.Context(), d, d.candidates[0], false)
	llmapi.WriteError(w, in.api, failed, "the model failed, and no other candidate can take this request")
	return nil
}

// attemptState is the attempt in progress: its model, writers and start.
type attemptState struct {
	model    *Model
	fw       *failoverWriter
	mw       *meteredWriter
	start    time.Time
	finished bool
}

// finishAttempt observes the attempt's upstream time and status and, for
// a response that reached the client, reports what it cost (nil otherwise).
func (h *Handler) finishAttempt(in *incoming, d decision, a *attemptState) *turnReport {
	a.finished = true
	h.observeUpstream(a.model.Name, cmp.Or(a.fw.status, http.StatusBadGateway), time.Since(a.start))
	if !a.fw.committed {
		return nil
	}
	rep := in.turnReport(d, a.model, a.mw)
	h.report(in.r, rep)
	return rep
}

// recordTurn adds a served turn's usage to its session's stats.
func (h *Handler) recordTurn(d decision, rep *turnReport) {
	if rep != nil && rep.hasUsage && d.pinKey != "" {
		h.pinStore.RecordTurn(d.pinKey, rep.usage.InputTokens, rep.usage.CacheReadTokens, rep.usage.OutputTokens)
	}
}

// settlePin makes the session's pin follow the model that served, or drops
// it when the request could not be served.
func (h *Handler) settlePin(ctx context.Context, d decision, served *Model, ok bool) {
	switch {
	case d.pinKey == "":
	case !ok:
		h.pinStore.Delete(ctx, d.pinKey)
	case served != d.candidates[0]:
		h.pinStore.Set(ctx, d.pinKey, affinity.Pin{Model: served.Name, Route: d.routeName})
	}
}

// setDecisionOutputs reports the decision in response headers, placeholders
// and the access log's extra fields (with the affinity key hashed).
func setDecisionOutputs(w http.ResponseWriter, r *http.Request, model, route, status, keyHash string) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.llm_affinity.model", model)
		repl.Set("http.llm_affinity.route", route)
		repl.Set("http.llm_affinity.status", status)
	}
	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		// one field, replaced by a failover's next attempt: each Set
		// clears the extra fields' caches, an allocation
		extra.Set(inlineField("llm_decision", decisionFields{model, route, status, keyHash}))
	}
	hdr := w.Header()
	hdr.Set(HeaderModel, model)
	hdr.Set(HeaderRoute, route)
	hdr.Set(HeaderStatus, status)
}

// decisionFields are a decision as the access log's fields give it.
type decisionFields struct{ model, route, status, keyHash string }

// MarshalLogObject adds the fields llm_model, llm_route, llm_status and
// llm_affinity_key_hash.
func (f decisionFields) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("llm_model", f.model)
	enc.AddString("llm_route", f.route)
	enc.AddString("llm_status", f.status)
	enc.AddString("llm_affinity_key_hash", f.keyHash)
	return nil
}

// inlineField is zap.Inline(m) under a key of its own: the encoders write
// m's fields in place and ignore the key, which ExtraLogFields.Set matches
// to replace the field.
func inlineField(key string, m zapcore.ObjectMarshaler) zap.Field {
	return zap.Field{Key: key, Type: zapcore.InlineMarshalerType, Interface: m}
}

// retryable reports whether a status means the model could not serve.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// failoverWriter passes a response through to the client unless it may fail
// over and the status says the model could not serve (429, 5xx): then the
// response is swallowed, so the next candidate can answer instead. Once any
// byte reaches the client the response is committed and never retried.
type failoverWriter struct {
	*caddyhttp.ResponseWriterWrapper
	mayFail   bool
	failed    bool // a retryable response was swallowed
	committed bool // the response reached the client
	status    int
}

// WriteHeader commits the status, or swallows a retryable one.
func (fw *failoverWriter) WriteHeader(status int) {
	switch {
	case fw.failed || fw.committed:
		return
	case status < 200: // informational: not the response
		fw.ResponseWriterWrapper.WriteHeader(status)
		return
	case fw.mayFail && retryable(status):
		fw.failed, fw.status = true, status
		return
	}
	fw.committed, fw.status = true, status
	fw.ResponseWriterWrapper.WriteHeader(status)
}

// Write passes body bytes through, or discards a swallowed response's.
func (fw *failoverWriter) Write(b []byte) (int, error) {
	if fw.failed {
		return len(b), nil
	}
	fw.commitImplicitly()
	return fw.ResponseWriterWrapper.Write(b)
}

// ReadFrom is Write for io.Copy: it must not bypass the swallowing.
func (fw *failoverWriter) ReadFrom(src io.Reader) (int64, error) {
	if fw.failed {
		return io.Copy(io.Discard, src)
	}
	fw.commitImplicitly()
	return fw.ResponseWriterWrapper.ReadFrom(src)
}

// FlushError flushes a committed response; it must not flush a swallowed one
// (http.ResponseController would otherwise reach the client's writer).
func (fw *failoverWriter) FlushError() error {
	if fw.failed {
		return nil
	}
	fw.commitImplicitly()
	return http.NewResponseController(fw.ResponseWriterWrapper.ResponseWriter).Flush()
}

// Flush is FlushError for callers that use http.Flusher.
func (fw *failoverWriter) Flush() { _ = fw.FlushError() }

// commitImplicitly marks a response written without WriteHeader as a 200.
func (fw *failoverWriter) commitImplicitly() {
	if !fw.committed {
		fw.committed, fw.status = true, http.StatusOK
	}
}

// Interface guards
var (
	_ http.Flusher  = (*failoverWriter)(nil)
	_ io.ReaderFrom = (*failoverWriter)(nil)
)

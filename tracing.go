package llmaffinity

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
)

// The span attributes of the gateway's own decision, beside the GenAI ones.
const (
	spanModelKey   = attribute.Key("llm_affinity.model")    // the configured model that served
	spanRouteKey   = attribute.Key("llm_affinity.route")    // the route decided; unset when none did
	spanStatusKey  = attribute.Key("llm_affinity.status")   // pinned, routed or default
	spanKeyHashKey = attribute.Key("llm_affinity.key_hash") // the affinity key hashed (hashKey); unset without one
	spanCostKey    = attribute.Key("llm_affinity.cost_usd") // what the turn cost; unset when the model has no price
)

// maxSpanAttributes is how many attributes annotateSpan sets at most.
const maxSpanAttributes = 15

// annotateSpan puts the turn's report on the request's span, the one Caddy's
// tracing directive starts (HTTP server, kind server), when that span is
// recording: the OpenTelemetry GenAI semantic conventions' inference
// attributes, as of semconv v1.41.0, the last release of the GenAI
// conventions in the main semantic-conventions repository (they have since
// moved to open-telemetry/semantic-conventions-genai, unreleased, whose
// registry keeps each of these names), and the gateway's decision under
// llm_affinity.*. Names and counts
// only: no prompt or response text, no key but its hash. Without tracing, or
// with the span not sampled, it returns at once and allocates nothing.
//
// gen_ai.provider.name is the serving model's provider (openai, anthropic:
// both well-known values); it replaced gen_ai.system in semconv v1.37.0.
// gen_ai.request.model is the model the client asked for, the one it made
// its request to; gen_ai.response.model the model the provider said
// answered; llm_affinity.model the configured model that served. Input
// tokens count cached ones, as the conventions ask, and the cache read and
// creation counts are set whenever the response reported usage (0 when it
// reported none of them). The time to first chunk, in seconds, and
// gen_ai.request.stream are set for a streamed response that began.
func annotateSpan(ctx context.Context, rep *turnReport) {
	span := trace.SpanFromContext(ctx)
	if rep == nil || !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, maxSpanAttributes)
	attrs = append(attrs, semconv.GenAIOperationNameChat)
	if rep.provider != "" {
		attrs = append(attrs, semconv.GenAIProviderNameKey.String(rep.provider))
	}
	if rep.requestedModel != "" {
		attrs = append(attrs, semconv.GenAIRequestModel(rep.requestedModel))
	}
	if rep.upstreamModel != "" {
		attrs = append(attrs, semconv.GenAIResponseModel(rep.upstreamModel))
	}
	if rep.hasUsage {
		u := rep.usage
		attrs = append(attrs,
			semconv.GenAIUsageInputTokens(u.InputTokens),
			semconv.GenAIUsageOutputTokens(u.OutputTokens),
			semconv.GenAIUsageCacheReadInputTokens(u.CacheReadTokens),
			semconv.GenAIUsageCacheCreationInputTokens(u.CacheWriteTokens))
	}
	if rep.ttft > 0 {
		attrs = append(attrs,
			semconv.GenAIRequestStream(true),
			semconv.GenAIResponseTimeToFirstChunk(rep.ttft.Seconds()))
	}
	if rep.model != "" {
		attrs = append(attrs, spanModelKey.String(rep.model))
	}
	if rep.route != "" {
		attrs = append(attrs, spanRouteKey.String(rep.route))
	}
	if rep.status != "" {
		attrs = append(attrs, spanStatusKey.String(rep.status))
	}
	if rep.keyHash != "" {
		attrs = append(attrs, spanKeyHashKey.String(rep.keyHash))
	}
	if rep.priced {
		attrs = append(attrs, spanCostKey.Float64(rep.cost))
	}
	span.SetAttributes(attrs...)
}

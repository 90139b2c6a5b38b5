package llmaffinity

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// recordedAttributes runs annotateSpan on a recording span and returns the
// attributes the ended span carries.
func recordedAttributes(t *testing.T, rep *turnReport) map[attribute.Key]attribute.Value {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "handler", trace.WithSpanKind(trace.SpanKindServer))
	annotateSpan(ctx, rep)
	span.End()
	ended := sr.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range ended[0].Attributes() {
		if _, dup := attrs[kv.Key]; dup {
			t.Errorf("attribute %s set twice", kv.Key)
		}
		attrs[kv.Key] = kv.Value
	}
	return attrs
}

func TestAnnotateSpan(t *testing.T) {
	const rawKey = "sess-7f3a-client-secret-value"
	full := &turnReport{
		requestedModel: "gpt-4o",
		model:          "fast",
		upstreamModel:  "gpt-4o-2024-08-06",
		provider:       ProviderOpenAI,
		route:          "code",
		status:         StatusRouted,
		keyHash:        hashKey(rawKey),
		usage:          llmapi.Usage{InputTokens: 1200, OutputTokens: 85, CacheReadTokens: 1024, CacheWriteTokens: 64},
		hasUsage:       true,
		ttft:           250 * time.Millisecond,
		cost:           0.0042,
		priced:         true,
	}
	for _, tc := range []struct {
		name string
		rep  *turnReport
		want map[attribute.Key]attribute.Value
	}{{
		name: "streamed, priced, keyed",
		rep:  full,
		want: map[attribute.Key]attribute.Value{
			"gen_ai.operation.name":                    attribute.StringValue("chat"),
			"gen_ai.provider.name":                     attribute.StringValue("openai"),
			"gen_ai.request.model":                     attribute.StringValue("gpt-4o"),
			"gen_ai.response.model":                    attribute.StringValue("gpt-4o-2024-08-06"),
			"gen_ai.usage.input_tokens":                attribute.Int64Value(1200),
			"gen_ai.usage.output_tokens":               attribute.Int64Value(85),
			"gen_ai.usage.cache_read.input_tokens":     attribute.Int64Value(1024),
			"gen_ai.usage.cache_creation.input_tokens": attribute.Int64Value(64),
			"gen_ai.request.stream":                    attribute.BoolValue(true),
			"gen_ai.response.time_to_first_chunk":      attribute.Float64Value(0.25),
			"llm_affinity.model":                       attribute.StringValue("fast"),
			"llm_affinity.route":                       attribute.StringValue("code"),
			"llm_affinity.status":                      attribute.StringValue("routed"),
			"llm_affinity.key_hash":                    attribute.StringValue(hashKey(rawKey)),
			"llm_affinity.cost_usd":                    attribute.Float64Value(0.0042),
		},
	}, {
		// no usage, no key, no route, no price, not streamed, and an
		// upstream that named no model: only what is known is set
		name: "plain, unpriced, unkeyed, default",
		rep: &turnReport{requestedModel: "claude-x", model: "small", provider: ProviderAnthropic,
			status: StatusDefault},
		want: map[attribute.Key]attribute.Value{
			"gen_ai.operation.name": attribute.StringValue("chat"),
			"gen_ai.provider.name":  attribute.StringValue("anthropic"),
			"gen_ai.request.model":  attribute.StringValue("claude-x"),
			"llm_affinity.model":    attribute.StringValue("small"),
			"llm_affinity.status":   attribute.StringValue("default"),
		},
	}, {
		// reported usage of zero cache tokens is a cache miss, worth a 0;
		// a price that makes it cost nothing is a cost of 0
		name: "usage without cache tokens, free model",
		rep: &turnReport{model: "local", provider: ProviderOpenAI, upstreamModel: "qwen3",
			status: StatusPinned, keyHash: hashKey(rawKey), route: "code",
			usage: llmapi.Usage{InputTokens: 10, OutputTokens: 2}, hasUsage: true, priced: true},
		want: map[attribute.Key]attribute.Value{
			"gen_ai.operation.name":                    attribute.StringValue("chat"),
			"gen_ai.provider.name":                     attribute.StringValue("openai"),
			"gen_ai.response.model":                    attribute.StringValue("qwen3"),
			"gen_ai.usage.input_tokens":                attribute.Int64Value(10),
			"gen_ai.usage.output_tokens":               attribute.Int64Value(2),
			"gen_ai.usage.cache_read.input_tokens":     attribute.Int64Value(0),
			"gen_ai.usage.cache_creation.input_tokens": attribute.Int64Value(0),
			"llm_affinity.model":                       attribute.StringValue("local"),
			"llm_affinity.route":                       attribute.StringValue("code"),
			"llm_affinity.status":                      attribute.StringValue("pinned"),
			"llm_affinity.key_hash":                    attribute.StringValue(hashKey(rawKey)),
			"llm_affinity.cost_usd":                    attribute.Float64Value(0),
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := recordedAttributes(t, tc.rep)
			for k, want := range tc.want {
				if g, ok := got[k]; !ok {
					t.Errorf("%s missing, want %s %v", k, want.Type(), want.Emit())
				} else if g != want {
					t.Errorf("%s = %s %v, want %s %v", k, g.Type(), g.Emit(), want.Type(), want.Emit())
				}
			}
			for k, g := range got {
				if _, ok := tc.want[k]; !ok {
					t.Errorf("unexpected attribute %s = %v", k, g.Emit())
				}
			}
		})
	}
	if n := len(recordedAttributes(t, full)); n != maxSpanAttributes {
		t.Errorf("a full report sets %d attributes, maxSpanAttributes is %d", n, maxSpanAttributes)
	}
}

// TestAnnotateSpanNoPromptNoKey: whatever a request held, the span carries
// its configured names, counts and the key's hash, never its text or key.
// The attributes are a closed set: one that a later change adds must be
// added here, and looked at, first.
func TestAnnotateSpanNoPromptNoKey(t *testing.T) {
	const (
		rawKey = "S-9d2c-my-session-secret"
		prompt = "Summarise the quarterly report for ACME Corp"
	)
	allowed := []attribute.Key{
		"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
		"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
		"gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens",
		"gen_ai.request.stream", "gen_ai.response.time_to_first_chunk",
		"llm_affinity.model", "llm_affinity.route", "llm_affinity.status", "llm_affinity.key_hash", "llm_affinity.cost_usd",
	}
	rep := &turnReport{requestedModel: "gpt-4o", model: "gpt-4o", upstreamModel: "gpt-4o", provider: ProviderOpenAI,
		route: "code", status: StatusRouted, keyHash: hashKey(rawKey),
		usage: llmapi.Usage{InputTokens: 40, OutputTokens: 9}, hasUsage: true, ttft: time.Millisecond, priced: true, cost: 1}
	got := recordedAttributes(t, rep)
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if !slices.Contains(allowed, k) {
			t.Errorf("attribute %s is not one the span may carry", k)
		}
		v := got[k].Emit()
		for _, secret := range []string{rawKey, prompt, "ACME", "my-session-secret"} {
			if strings.Contains(v, secret) {
				t.Errorf("attribute %s = %q carries %q", k, v, secret)
			}
		}
	}
	if got["llm_affinity.key_hash"].AsString() != hashKey(rawKey) {
		t.Errorf("llm_affinity.key_hash = %q, want hashKey of the key", got["llm_affinity.key_hash"].Emit())
	}
}

// TestAnnotateSpanNotRecording: without tracing, with a span that is not
// sampled, or with no report, nothing happens and nothing is allocated.
func TestAnnotateSpanNotRecording(t *testing.T) {
	rep := &turnReport{requestedModel: "gpt-4o", model: "gpt-4o", provider: ProviderOpenAI, status: StatusRouted,
		usage: llmapi.Usage{InputTokens: 1, OutputTokens: 1}, hasUsage: true, priced: true}

	// a span the sampler dropped: valid, sampled off, so not recording
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	dropped, span := tp.Tracer("test").Start(context.Background(), "handler")
	if span.IsRecording() {
		t.Fatal("a span NeverSample dropped is recording")
	}
	remote := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))

	for name, ctx := range map[string]context.Context{
		"no span":          context.Background(),
		"not sampled":      dropped,
		"remote span only": remote,
	} {
		if allocs := testing.AllocsPerRun(100, func() { annotateSpan(ctx, rep) }); allocs != 0 {
			t.Errorf("%s: annotateSpan allocated %v times", name, allocs)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { annotateSpan(dropped, nil) }); allocs != 0 {
		t.Errorf("nil report: annotateSpan allocated %v times", allocs)
	}
	span.End()
	if n := len(sr.Ended()); n != 0 {
		t.Errorf("%d spans recorded, want none", n)
	}
}

func BenchmarkAnnotateSpan(b *testing.B) {
	rep := &turnReport{requestedModel: "gpt-4o", model: "gpt-4o", upstreamModel: "gpt-4o-2024-08-06",
		provider: ProviderOpenAI, route: "code", status: StatusPinned, keyHash: hashKey("k"),
		usage: llmapi.Usage{InputTokens: 1200, OutputTokens: 85, CacheReadTokens: 1024}, hasUsage: true,
		ttft: time.Millisecond, priced: true, cost: 0.01}
	b.Run("not recording", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			annotateSpan(ctx, rep)
		}
	})
	b.Run("recording", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
		defer tp.Shutdown(context.Background())
		ctx, span := tp.Tracer("bench").Start(context.Background(), "handler")
		defer span.End()
		b.ReportAllocs()
		for b.Loop() {
			annotateSpan(ctx, rep)
		}
	})
}

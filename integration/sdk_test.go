package integration

// End-to-end tests with the official OpenAI and Anthropic Go SDKs as the
// clients: what a real agent sends, through the gateway, to fake upstreams.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/google/uuid"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmaffinity/caddy-llm-affinity/internal/demo"
)

func TestOpenAISDKAgentLoop(t *testing.T) {
	gpt, claude, router := new(demo.Provider), new(demo.Provider), new(demo.Router)
	gptSrv, claudeSrv, routerSrv := httptest.NewServer(gpt), httptest.NewServer(claude), httptest.NewServer(router)
	for _, s := range []*httptest.Server{gptSrv, claudeSrv, routerSrv} {
		t.Cleanup(s.Close)
	}
	startCaddyConfig(t, globalOptions+demo.Site(gateway, strings.TrimPrefix(gptSrv.URL, "http://"),
		strings.TrimPrefix(claudeSrv.URL, "http://"), routerSrv.URL+"/v1/chat/completions"))
	client := openaiClient()

	// run runs the agent and returns its turns, the router calls, the
	// requests each provider served, and the last turn's response.
	type run struct {
		turns                      []demo.Turn
		routerCalls, gptN, claudeN int64
		last                       *http.Response
	}
	runAgent := func(t *testing.T, opts ...option.RequestOption) run {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), patience)
		defer cancel()
		r0, g0, c0 := router.Calls.Load(), gpt.Requests.Load(), claude.Requests.Load()
		var r run
		turns, err := demo.RunAgent(ctx, demo.NewChatConversation(client, "gpt-4o-mini", "", append(opts, option.WithResponseInto(&r.last))...))
		if err != nil {
			t.Fatalf("agent: %v (turns so far %+v)", err, turns)
		}
		r.turns = turns
		r.routerCalls = router.Calls.Load() - r0
		r.gptN, r.claudeN = gpt.Requests.Load()-g0, claude.Requests.Load()-c0
		if len(turns) != 4 {
			t.Fatalf("agent took %d turns (%+v), want 4: three tool-calling turns and an answer", len(turns), turns)
		}
		if turns[3].Answer == "" || len(turns[3].Tools) != 0 {
			t.Errorf("last turn %+v, want an answer without tool calls", turns[3])
		}
		for i, turn := range turns[:3] {
			if len(turn.Tools) == 0 {
				t.Errorf("turn %d called no tools", i+1)
			}
		}
		return r
	}
	models := func(turns []demo.Turn) string {
		var m []string
		for _, turn := range turns {
			m = append(m, turn.Model)
		}
		return strings.Join(m, ",")
	}

	t.Run("unpinned", func(t *testing.T) {
		r := runAgent(t)
		if r.routerCalls != 4 {
			t.Errorf("router calls = %d, want 4 (one per unpinned turn)", r.routerCalls)
		}
		want := strings.Join([]string{demo.ModelClaude, demo.ModelGPT, demo.ModelClaude, demo.ModelGPT}, ",")
		if got := models(r.turns); got != want {
			t.Errorf("models per turn %s, want %s", got, want)
		}
		if n := demo.Switches(r.turns); n != 3 {
			t.Errorf("switches = %d, want 3", n)
		}
		if r.gptN != 2 || r.claudeN != 2 {
			t.Errorf("providers served gpt %d claude %d, want 2 and 2", r.gptN, r.claudeN)
		}
		if r.last == nil || r.last.Header.Get("X-Model-Affinity-Status") != "routed" {
			t.Errorf("last turn's response %v; want X-Model-Affinity-Status routed", r.last)
		}
	})

	t.Run("pinned", func(t *testing.T) {
		r := runAgent(t, option.WithHeader("X-Model-Affinity", uuid.NewString()))
		if r.routerCalls != 1 {
			t.Errorf("router calls = %d for the pinned loop, want 1", r.routerCalls)
		}
		want := strings.Repeat(demo.ModelClaude+",", 3) + demo.ModelClaude
		if got := models(r.turns); got != want {
			t.Errorf("models per turn %s, want %s (the first decision, kept)", got, want)
		}
		if n := demo.Switches(r.turns); n != 0 {
			t.Errorf("switches = %d, want 0", n)
		}
		if r.gptN != 0 || r.claudeN != 4 {
			t.Errorf("providers served gpt %d claude %d, want 0 and 4", r.gptN, r.claudeN)
		}
		if r.last == nil || r.last.Header.Get("X-Model-Affinity-Status") != "pinned" {
			t.Errorf("last turn's response %v; want X-Model-Affinity-Status pinned", r.last)
		}
	})
}

func TestOpenAISDKStreaming(t *testing.T) {
	setKeys(t)
	f := newFleet(t, func(int64, string) string { return `{"route": "analysis"}` })
	gate := make(chan struct{})
	f.gpt.streamGate = gate
	var openGate sync.Once
	release := func() { openGate.Do(func() { close(gate) }) }
	t.Cleanup(release) // never leave the upstream waiting on a failed test
	startCaddy(t, f.keyedSite())

	// a regression that buffers the stream fails at this deadline instead of
	// hanging: the upstream holds the rest until the gate opens
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	client := openaiClient()
	var resp *http.Response
	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("compare these, streaming")},
	}, option.WithHeader("X-Model-Affinity", "s-sdk-stream"), option.WithResponseInto(&resp))
	defer stream.Close()

	var text strings.Builder
	var chunkModels []string
	read := func() {
		chunk := stream.Current()
		chunkModels = append(chunkModels, chunk.Model)
		for _, c := range chunk.Choices {
			text.WriteString(c.Delta.Content)
		}
	}
	// the first chunk, with the gate still closed
	if !stream.Next() {
		t.Fatalf("no first chunk before the upstream finished the stream: %v", stream.Err())
	}
	read()
	if text.String() != "one" {
		t.Fatalf("first chunk's content %q, want \"one\"", text.String())
	}
	release()
	for stream.Next() {
		read()
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream error: %v", err)
	}
	if text.String() != "onetwothree" {
		t.Errorf("streamed content %q, want \"onetwothree\"", text.String())
	}
	for i, m := range chunkModels {
		if m != "gpt-4o" {
			t.Errorf("chunk %d model %q, want gpt-4o (all chunks: %v)", i+1, m, chunkModels)
		}
	}
	if resp == nil || resp.Header.Get("X-Model-Affinity-Model") != "gpt-4o" || resp.Header.Get("X-Model-Affinity-Status") != "routed" {
		t.Errorf("response %v; want X-Model-Affinity-Model gpt-4o and status routed", resp)
	}
	seen := f.gpt.requests()
	if len(seen) != 1 {
		t.Fatalf("gpt upstream got %d requests, want 1", len(seen))
	}
	if seen[0].Model != "gpt-4o" || !strings.Contains(string(seen[0].Body), `"stream":true`) {
		t.Errorf("gpt upstream saw model %q body %s; want gpt-4o and \"stream\":true", seen[0].Model, seen[0].Body)
	}
	if seen[0].Authorization != "Bearer sk-openai-test-secret" {
		t.Errorf("gpt upstream saw Authorization %q, want the configured key", seen[0].Authorization)
	}
}

func TestAnthropicSDKMessages(t *testing.T) {
	setKeys(t)
	f := newFleet(t, func(int64, string) string { return `{"route": "code"}` })
	startCaddy(t, f.keyedSite().speaking("claude", "messages"))
	client := anthropicClient(t)

	params := anthropic.MessageNewParams{
		Model:     "claude-3-5-haiku-latest",
		MaxTokens: 256,
		System:    []anthropic.TextBlockParam{{Text: "You are a careful programmer."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Write a Go function that reverses a slice."))},
	}
	send := func(t *testing.T, turn int, opts ...anthropicoption.RequestOption) *http.Response {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), patience)
		defer cancel()
		var resp *http.Response
		msg, err := client.Messages.New(ctx, params, append(opts, anthropicoption.WithResponseInto(&resp))...)
		if err != nil {
			t.Fatalf("call %d: %v", turn, err)
		}
		if msg.Model != "claude-sonnet-4-20250514" {
			t.Errorf("call %d: response model %q, want claude-sonnet-4-20250514", turn, msg.Model)
		}
		if len(msg.Content) != 1 || msg.Content[0].Text != "hello from claude" {
			t.Errorf("call %d: content %+v, want one text block \"hello from claude\"", turn, msg.Content)
		}
		if m, route, _ := decisionOf(resp); m != "claude" || route != "code" {
			t.Errorf("call %d: decision model %q route %q, want claude code", turn, m, route)
		}
		return resp
	}

	t.Run("pinned", func(t *testing.T) {
		calls0, seen0 := f.router.calls.Load(), len(f.claude.requests())
		for turn := 1; turn <= 3; turn++ {
			resp := send(t, turn, anthropicoption.WithHeader("X-Model-Affinity", "s-anthropic-sdk"))
			want := "pinned"
			if turn == 1 {
				want = "routed"
			}
			if got := resp.Header.Get("X-Model-Affinity-Status"); got != want {
				t.Errorf("call %d: status %q, want %q", turn, got, want)
			}
		}
		if got := f.router.calls.Load() - calls0; got != 1 {
			t.Errorf("router calls = %d for one session, want 1", got)
		}
		seen := f.claude.requests()[seen0:]
		if len(seen) != 3 {
			t.Fatalf("claude upstream got %d requests, want 3", len(seen))
		}
		for i, s := range seen {
			if s.Path != "/v1/messages" || s.Model != "claude-sonnet-4-20250514" {
				t.Errorf("request %d: path %q model %q, want /v1/messages and claude-sonnet-4-20250514", i+1, s.Path, s.Model)
			}
			if s.APIKey != "sk-ant-test-secret" || s.Authorization != "" {
				t.Errorf("request %d: x-api-key %q authorization %q; want the configured key only", i+1, s.APIKey, s.Authorization)
			}
			if !strings.Contains(string(s.Body), `"You are a careful programmer."`) || !strings.Contains(string(s.Body), `"max_tokens":256`) {
				t.Errorf("request %d: body %s lost the SDK's system or max_tokens", i+1, s.Body)
			}
		}
	})

	t.Run("unpinned", func(t *testing.T) {
		calls0 := f.router.calls.Load()
		for turn := 1; turn <= 2; turn++ {
			if got := send(t, turn).Header.Get("X-Model-Affinity-Status"); got != "routed" {
				t.Errorf("call %d: status %q, want routed", turn, got)
			}
		}
		if got := f.router.calls.Load() - calls0; got != 2 {
			t.Errorf("router calls = %d for two calls without the header, want 2", got)
		}
	})
}

// TestSDKBadAffinityKey sends an over-long affinity key through both SDKs:
// each must surface the gateway's 400 as its own API error type.
func TestSDKBadAffinityKey(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	startCaddy(t, f.keyedSite())
	key := strings.Repeat("k", 300)
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()

	t.Run("anthropic", func(t *testing.T) {
		client := anthropicClient(t)
		_, err := client.Messages.New(ctx, anthropic.MessageNewParams{
			Model:     "claude-3-5-haiku-latest",
			MaxTokens: 16,
			Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
		}, anthropicoption.WithHeader("X-Model-Affinity", key))
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("error %v (%T), want an *anthropic.Error", err, err)
		}
		if apiErr.StatusCode != http.StatusBadRequest || apiErr.Type() != anthropic.ErrorTypeInvalidRequestError {
			t.Errorf("status %d type %q, want 400 invalid_request_error; body %s", apiErr.StatusCode, apiErr.Type(), apiErr.RawJSON())
		}
	})

	t.Run("openai", func(t *testing.T) {
		client := openaiClient()
		_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		}, option.WithHeader("X-Model-Affinity", key))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("error %v (%T), want an *openai.Error", err, err)
		}
		if apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(apiErr.Message, "X-Model-Affinity") ||
			apiErr.Type != "invalid_request_error" {
			t.Errorf("status %d type %q message %q, want 400 invalid_request_error naming X-Model-Affinity",
				apiErr.StatusCode, apiErr.Type, apiErr.Message)
		}
	})

	for _, u := range []*fakeUpstream{f.gpt, f.claude, f.small} {
		if n := len(u.requests()); n != 0 {
			t.Errorf("upstream %s got %d requests; a bad key must not reach an upstream", u.name, n)
		}
	}
	if got := f.router.calls.Load(); got != 0 {
		t.Errorf("router calls = %d for a bad key, want 0", got)
	}
}

package demo

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// startProvider serves a stand-in provider on loopback and returns it and
// its OpenAI base URL (…/v1).
func startProvider(t *testing.T) (*Provider, string) {
	t.Helper()
	p := new(Provider)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL + "/v1"
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestStandinAgentLoop runs the agent of each client API straight against
// a stand-in (no gateway): every turn's cached tokens are the previous
// turn's prompt, all of it, read through the official SDK's usage; the
// three APIs count the same conversation the same; another session or
// another model starts cold.
func TestStandinAgentLoop(t *testing.T) {
	var chatInputs []int64
	for _, api := range ClientAPIs {
		t.Run(string(api), func(t *testing.T) {
			_, base := startProvider(t)
			run := func(model, session string) []Turn {
				t.Helper()
				conv, err := NewConversation(api, base, "unused", model, session, nil)
				if err != nil {
					t.Fatal(err)
				}
				turns, err := RunAgent(testContext(t), conv)
				if err != nil {
					t.Fatalf("agent: %v (turns so far %+v)", err, turns)
				}
				if len(turns) != 4 || turns[3].Answer != FinalAnswer {
					t.Fatalf("turns %+v, want three tool-calling turns and the final answer", turns)
				}
				return turns
			}
			turns := run(ModelClaude, "session-1")
			var inputs []int64
			for i, turn := range turns {
				u := turn.Usage
				inputs = append(inputs, u.Input)
				if i == 0 {
					if u.Cached != 0 || u.Input == 0 {
						t.Errorf("turn 1: %+v, want input and nothing cached", u)
					}
					continue
				}
				// the previous prompt is a prefix of this one: all of it is cached
				prev := turns[i-1].Usage.Input
				if u.Input <= prev || u.Cached != prev {
					t.Errorf("turn %d: %+v, want more input than turn %d's %d and that much cached", i+1, u, i, prev)
				}
			}
			if api == ClientChat {
				chatInputs = inputs
			} else if chatInputs != nil && !slices.Equal(inputs, chatInputs) {
				t.Errorf("input tokens per turn %v, the Chat client's %v: one conversation, counted the same in every API", inputs, chatInputs)
			}
			for _, other := range []struct{ model, session string }{{ModelClaude, "session-2"}, {ModelGPT, "session-1"}} {
				if u := run(other.model, other.session)[0].Usage; u.Cached != 0 {
					t.Errorf("%s in %s: first turn %+v, want a cold cache", other.model, other.session, u)
				}
			}
		})
	}
}

// usageSeen is the usage the SDK read off one response, in the API's own
// terms: input is Messages' input_tokens (neither read nor written) and
// the OpenAI APIs' input (all of it); written is Messages' only.
type usageSeen struct {
	input, cached, written int64
}

// The first turn's request of each API, as the SDKs build it.
func chatParams(session string, stream, includeUsage bool) openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{Model: ModelGPT,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(SystemPrompt), openai.UserMessage(UserQuestion)}}
	if session != "" {
		p.User = openai.String(session)
	}
	if stream && includeUsage {
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	}
	return p
}

func messagesParams(session string, cache bool) anthropic.MessageNewParams {
	p := anthropic.MessageNewParams{Model: ModelClaude, MaxTokens: 100, Metadata: anthropic.MetadataParam{UserID: anthropic.String(session)},
		System:   []anthropic.TextBlockParam{{Text: SystemPrompt}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(UserQuestion))}}
	if cache {
		p.CacheControl = anthropic.NewCacheControlEphemeralParam()
	}
	return p
}

func responsesParams(session string) responses.ResponseNewParams {
	return responses.ResponseNewParams{Model: ModelGPT, User: openai.String(session), Instructions: openai.String(SystemPrompt), Store: openai.Bool(false),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(UserQuestion)}}
}

// TestStandinUsageShapes sends one request twice in one session (each
// subtest's own), plain and
// streamed, in each API, and reads the usage with the official SDK the way
// its API reports it: the first time nothing is cached, the second time the
// whole prompt. Chat: prompt_tokens counts the cached
// tokens, prompt_tokens_details.cached_tokens says how many, streamed in a
// last chunk with no choices when stream_options.include_usage asks for it
// and only then. Messages: input_tokens counts neither the cache reads
// (cache_read_input_tokens) nor the writes (cache_creation_input_tokens):
// with a cache_control the whole prompt is read or written, so it is 0;
// streamed, message_start and message_delta both carry the counts.
// Responses: input_tokens counts the cached tokens,
// input_tokens_details.cached_tokens says how many, streamed in
// response.completed.
func TestStandinUsageShapes(t *testing.T) {
	_, base := startProvider(t)
	root := strings.TrimSuffix(base, "/v1")
	oai := openai.NewClient(option.WithBaseURL(base), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	ant := anthropic.NewClient(anthropicoption.WithBaseURL(root), anthropicoption.WithAPIKey("unused"), anthropicoption.WithMaxRetries(0))

	chat := func(t *testing.T, stream, includeUsage bool) usageSeen {
		session := t.Name()
		ctx := testContext(t)
		if !stream {
			c, err := oai.Chat.Completions.New(ctx, chatParams(session, false, false))
			if err != nil {
				t.Fatal(err)
			}
			if c.Choices[0].FinishReason != "tool_calls" || len(c.Choices[0].Message.ToolCalls) != 2 {
				t.Errorf("completion %+v, want the first step's two tool calls", c.Choices[0])
			}
			return usageSeen{input: c.Usage.PromptTokens, cached: c.Usage.PromptTokensDetails.CachedTokens}
		}
		s := oai.Chat.Completions.NewStreaming(ctx, chatParams(session, true, includeUsage))
		var acc openai.ChatCompletionAccumulator
		var u usageSeen
		usageChunks := 0
		for s.Next() {
			chunk := s.Current()
			acc.AddChunk(chunk)
			if chunk.JSON.Usage.Valid() {
				usageChunks++
				if len(chunk.Choices) != 0 {
					t.Errorf("the usage chunk has choices: %s", chunk.RawJSON())
				}
				u = usageSeen{input: chunk.Usage.PromptTokens, cached: chunk.Usage.PromptTokensDetails.CachedTokens}
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 1, false: 0}[includeUsage]; usageChunks != want {
			t.Errorf("%d chunks with usage, want %d (include_usage %v)", usageChunks, want, includeUsage)
		}
		if len(acc.Choices) != 1 || len(acc.Choices[0].Message.ToolCalls) != 2 || acc.Choices[0].FinishReason != "tool_calls" {
			t.Errorf("accumulated %+v, want the first step's two tool calls", acc.Choices)
		}
		return u
	}
	messages := func(t *testing.T, stream, cache bool) usageSeen {
		session := t.Name()
		ctx := testContext(t)
		if !stream {
			m, err := ant.Messages.New(ctx, messagesParams(session, cache))
			if err != nil {
				t.Fatal(err)
			}
			if m.StopReason != anthropic.StopReasonToolUse || len(m.Content) != 3 {
				t.Errorf("message %+v, want text and the first step's two tool calls", m.Content)
			}
			return usageSeen{input: m.Usage.InputTokens, cached: m.Usage.CacheReadInputTokens, written: m.Usage.CacheCreationInputTokens}
		}
		s := ant.Messages.NewStreaming(ctx, messagesParams(session, cache))
		var acc anthropic.Message
		var start, delta *usageSeen
		for s.Next() {
			event := s.Current()
			if err := acc.Accumulate(event); err != nil {
				t.Fatal(err)
			}
			switch e := event.AsAny().(type) {
			case anthropic.MessageStartEvent:
				u := e.Message.Usage
				start = &usageSeen{input: u.InputTokens, cached: u.CacheReadInputTokens, written: u.CacheCreationInputTokens}
			case anthropic.MessageDeltaEvent:
				u := e.Usage
				delta = &usageSeen{input: u.InputTokens, cached: u.CacheReadInputTokens, written: u.CacheCreationInputTokens}
				if u.OutputTokens <= 1 {
					t.Errorf("message_delta output_tokens %d, want the reply's", u.OutputTokens)
				}
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if start == nil || delta == nil || *start != *delta {
			t.Fatalf("message_start usage %+v, message_delta usage %+v: want both, the same", start, delta)
		}
		if acc.StopReason != anthropic.StopReasonToolUse || len(acc.Content) != 3 {
			t.Errorf("accumulated %+v, want text and the first step's two tool calls", acc.Content)
		}
		return *start
	}
	responsesAPI := func(t *testing.T, stream bool) usageSeen {
		session := t.Name()
		ctx := testContext(t)
		if !stream {
			r, err := oai.Responses.New(ctx, responsesParams(session))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Output) != 3 || r.Status != "completed" {
				t.Errorf("response %+v, want a message and the first step's two function calls", r.Output)
			}
			return usageSeen{input: r.Usage.InputTokens, cached: r.Usage.InputTokensDetails.CachedTokens}
		}
		s := oai.Responses.NewStreaming(ctx, responsesParams(session))
		var u *usageSeen
		seq := int64(0)
		for s.Next() {
			event := s.Current()
			if event.SequenceNumber != seq {
				t.Errorf("%s: sequence_number %d, want %d", event.Type, event.SequenceNumber, seq)
			}
			seq++
			if event.Type == "response.completed" {
				r := event.AsResponseCompleted().Response
				u = &usageSeen{input: r.Usage.InputTokens, cached: r.Usage.InputTokensDetails.CachedTokens}
				if len(r.Output) != 3 {
					t.Errorf("completed output %+v, want a message and two function calls", r.Output)
				}
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if u == nil {
			t.Fatal("no response.completed")
		}
		return *u
	}

	// openAIShape: input counts every token, cached ones included
	openAIShape := func(t *testing.T, first, second usageSeen) {
		t.Helper()
		if first.input == 0 || first.cached != 0 || first.written != 0 {
			t.Errorf("first request %+v, want input and nothing cached", first)
		}
		if second.input != first.input || second.cached != first.input {
			t.Errorf("second request %+v, want the first's input %d, all of it cached", second, first.input)
		}
	}
	for _, tc := range []struct {
		name string
		send func(t *testing.T) usageSeen
	}{
		{"chat", func(t *testing.T) usageSeen { return chat(t, false, false) }},
		{"chat stream include_usage", func(t *testing.T) usageSeen { return chat(t, true, true) }},
		{"responses", func(t *testing.T) usageSeen { return responsesAPI(t, false) }},
		{"responses stream", func(t *testing.T) usageSeen { return responsesAPI(t, true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := tc.send(t)
			openAIShape(t, first, tc.send(t))
			if t.Failed() {
				return
			}
			// the stand-in keeps one prompt per model and session: the third
			// time is as cached as the second
			if third := tc.send(t); third.cached == 0 {
				t.Errorf("third request %+v, want it cached", third)
			}
		})
	}
	t.Run("chat stream without include_usage", func(t *testing.T) { chat(t, true, false) })

	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "messages", true: "messages stream"}[stream]
		t.Run(name, func(t *testing.T) {
			first, second := messages(t, stream, true), messages(t, stream, true)
			total := first.input + first.cached + first.written
			if first.input != 0 || first.cached != 0 || first.written == 0 {
				t.Errorf("first request %+v, want input_tokens 0, nothing read, the whole prompt written", first)
			}
			if second.input != 0 || second.cached != total || second.written != 0 {
				t.Errorf("second request %+v, want input_tokens 0, the whole prompt of %d read, nothing written", second, total)
			}
		})
	}
	t.Run("messages without cache_control", func(t *testing.T) {
		for i := range 2 {
			u := messages(t, false, false)
			if u.input == 0 || u.cached != 0 || u.written != 0 {
				t.Errorf("request %d: %+v, want all of it input_tokens: Anthropic caches only what a cache_control asks for", i+1, u)
			}
		}
	})
}

// TestStandinParse reads one conversation as each API carries it (tools,
// system prompt, question, an assistant turn of text and two calls, their
// results, a follow-up) into the same prompt, step and session.
func TestStandinParse(t *testing.T) {
	bodies := map[string]string{
		"chat": `{"model":"m","user":"u1","tools":[{"type":"function","function":{"name":"f","description":"does f","parameters":{"type":"object","properties":{"x":{"type":"string"}}}}}],
			"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hello "},{"type":"text","text":"there"}]},
			{"role":"assistant","content":"calling f","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"x\": \"1\"}"}},{"id":"c2","type":"function","function":{"name":"f","arguments":"{\"x\":\"2\"}"}}]},
			{"role":"tool","tool_call_id":"c1","content":"one"},{"role":"tool","tool_call_id":"c2","content":[{"type":"text","text":"two"}]},
			{"role":"user","content":"thanks"}]}`,
		"messages": `{"model":"m","max_tokens":10,"metadata":{"user_id":"u1"},"tools":[{"name":"f","description":"does f","input_schema":{"properties":{"x":{"type":"string"}},"type":"object"}}],
			"system":[{"type":"text","text":"be brief"}],
			"messages":[{"role":"user","content":[{"type":"text","text":"hello "},{"type":"text","text":"there"}]},
			{"role":"assistant","content":[{"type":"text","text":"calling f"},{"type":"tool_use","id":"t1","name":"f","input":{"x":"1"}},{"type":"tool_use","id":"t2","name":"f","input":{"x":"2"}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"one"},{"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"two"}]},{"type":"text","text":"thanks"}]}]}`,
		"responses": `{"model":"m","user":"u1","instructions":"be brief","tools":[{"type":"function","name":"f","description":"does f","parameters":{"type":"object","properties":{"x":{"type":"string"}}},"strict":false}],
			"input":[{"role":"user","content":[{"type":"input_text","text":"hello "},{"type":"input_text","text":"there"}]},
			{"type":"message","role":"assistant","content":[{"type":"output_text","text":"calling f","annotations":[]}]},
			{"type":"function_call","call_id":"r1","name":"f","arguments":"{\"x\":\"1\"}"},{"type":"function_call","call_id":"r2","name":"f","arguments":"{\"x\":\"2\"}"},
			{"type":"function_call_output","call_id":"r1","output":"one"},{"type":"function_call_output","call_id":"r2","output":[{"type":"input_text","text":"two"}]},
			{"type":"message","role":"user","content":"thanks"}]}`,
	}
	want := "<tool>\nf: does f\n{\"properties\":{\"x\":{\"type\":\"string\"}},\"type\":\"object\"}\n" +
		"<system>\nbe brief\n<user>\nhello there\n<assistant>\ncalling f\n<call>\nf {\"x\":\"1\"}\n<call>\nf {\"x\":\"2\"}\n" +
		"<result>\none\n<result>\ntwo\n<user>\nthanks\n"
	paths := map[string]string{"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses"}
	for api, body := range bodies {
		req, err := standinAPIFor(paths[api]).parse([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", api, err)
		}
		if req.prompt != want {
			t.Errorf("%s: prompt\n%q\nwant\n%q", api, req.prompt, want)
		}
		if req.step != 1 || req.session != "id:u1" || req.model != "m" {
			t.Errorf("%s: step %d, session %q, model %q; want 1, id:u1, m", api, req.step, req.session, req.model)
		}
		// without the client's id, the session is the first user message
		noID := strings.NewReplacer(`"user":"u1",`, "", `"metadata":{"user_id":"u1"},`, "").Replace(body)
		if req, err := standinAPIFor(paths[api]).parse([]byte(noID)); err != nil || req.session != "first user message:hello there" {
			t.Errorf("%s without an id: session %q (%v), want the first user message", api, req.session, err)
		}
	}
}

// TestStandinSessions: a session is the body's user id, not the affinity
// header (the run without affinity sends none; the gateway may strip it).
func TestStandinSessions(t *testing.T) {
	_, base := startProvider(t)
	send := func(user, header string) int64 {
		t.Helper()
		opts := []option.RequestOption{option.WithBaseURL(base), option.WithAPIKey("unused"), option.WithMaxRetries(0)}
		if header != "" {
			opts = append(opts, option.WithHeader("X-Model-Affinity", header))
		}
		client := openai.NewClient(opts...)
		c, err := client.Chat.Completions.New(testContext(t), chatParams(user, false, false))
		if err != nil {
			t.Fatal(err)
		}
		return c.Usage.PromptTokensDetails.CachedTokens
	}
	for i, step := range []struct {
		user, header string
		cached       bool
	}{
		{"a", "", false},
		{"a", "h1", true}, // the same session, now with a header
		{"b", "h1", false},
		{"c", "h1", false}, // the same header, another session
		{"b", "", true},
		{"", "", false},
		{"", "h2", true}, // no id: the first user message is the session
	} {
		if got := send(step.user, step.header); (got > 0) != step.cached {
			t.Errorf("request %d (user %q, header %q): %d cached, want cached %v", i+1, step.user, step.header, got, step.cached)
		}
	}
}

package integration

// Any client API to any model API: the official SDK of each client API runs
// a tool-calling agent through the gateway against a model of each API,
// served by a strict fake (fakeapis_test.go) that rejects whatever its real
// provider would.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/google/uuid"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
)

// pairModel is a model of the pairs' site: its name, the API it speaks, its
// upstream model id and key, and the model name a client asks for to get
// it (one not configured gets the default).
type pairModel struct {
	name, upstream, key, clientModel string
	api                              wireAPI
}

// pairModels are the site's models, one per API; gpt is the default.
var pairModels = []pairModel{
	{name: "gpt", api: wireChat, upstream: "gpt-4.1", key: "sk-chat-upstream", clientModel: "gpt-4o-mini"},
	{name: "claude", api: wireMessages, upstream: "claude-sonnet-4-5", key: "sk-ant-upstream", clientModel: "claude"},
	{name: "codex", api: wireResponses, upstream: "gpt-5-codex", key: "sk-responses-upstream", clientModel: "codex"},
}

// agentTurn is one request of the agent loop: a new user message first (""
// for none) and whether it streams. Turn i is answered by agentScript[i].
type agentTurn struct {
	user   string
	stream bool
}

// agentPlan is the agent loop: a question answered after two tool calls,
// then a follow-up answered after two parallel ones; plain and streamed.
var agentPlan = []agentTurn{
	{user: "What is the weather in Paris, and what time is it there?"},
	{stream: true},
	{},
	{user: "And in Berlin and Rome?", stream: true},
	{stream: true},
}

// agentToolOutputs are the fixed results of the agent's tools, by the call's
// name and canonical arguments.
var agentToolOutputs = map[string]string{
	`get_weather {"city":"Paris"}`:   `{"city":"Paris","sky":"sunny","temp_c":21}`,
	`get_time {"tz":"Europe/Paris"}`: `{"tz":"Europe/Paris","time":"14:00"}`,
	`get_weather {"city":"Berlin"}`:  `{"city":"Berlin","sky":"cloudy","temp_c":12}`,
	`get_weather {"city":"Rome"}`:    `{"city":"Rome","sky":"sunny","temp_c":24}`,
}

// agentTool is a tool of the agent: its parameters' JSON Schema is an
// object of properties, some required.
type agentTool struct {
	name, description string
	properties        map[string]any
	required          []string
}

// schema is the tool's parameters' JSON Schema.
func (tool agentTool) schema() map[string]any {
	return map[string]any{"type": "object", "properties": tool.properties, "required": tool.required}
}

// agentTools are the agent's tools.
var agentTools = []agentTool{
	{"get_weather", "The current weather in a city.", map[string]any{"city": map[string]any{"type": "string"}}, []string{"city"}},
	{"get_time", "The local time in a time zone.", map[string]any{"tz": map[string]any{"type": "string"}}, []string{"tz"}},
}

// agentToolSchemas are agentTools' schemas as the fakes record them.
func agentToolSchemas() map[string]string {
	out := map[string]string{}
	for _, tool := range agentTools {
		b, _ := json.Marshal(tool.schema())
		out[tool.name] = canonicalJSON(string(b))
	}
	return out
}

// agentMaxTokens is the output cap the clients set, unless told not to.
const agentMaxTokens = 1000

// messagesDefaultMaxTokens is what the gateway sets towards a Messages model
// when the client sets no cap.
const messagesDefaultMaxTokens = 4096

// TestAPIPairs runs, for each of the 9 (client API, model API) pairs, the
// scripted agent through the gateway with the client API's official SDK:
// five pinned requests, plain and streamed, with tool calls, parallel tool
// calls, tool results and a new user message; plus a Chat client without
// max_tokens towards a Messages model. The same-API pairs pass through;
// the others need the gateway's translation.
func TestAPIPairs(t *testing.T) {
	site, fakes := pairSite(t)
	startCaddy(t, site)

	for _, client := range []wireAPI{wireChat, wireMessages, wireResponses} {
		for _, model := range pairModels {
			t.Run(string(client)+"->"+string(model.api), func(t *testing.T) {
				runAgentPair(t, agentRun{client: newAgentClient(t, client, model.clientModel, agentMaxTokens, nil),
					model: model, fakes: fakes, maxTokens: agentMaxTokens})
			})
		}
	}
	t.Run("chat->messages without max_tokens", func(t *testing.T) {
		runAgentPair(t, agentRun{client: newAgentClient(t, wireChat, pairModels[1].clientModel, 0, nil),
			model: pairModels[1], fakes: fakes})
	})
}

// pairSite is the site of the pairs: one model of each API, each served by
// its strict fake.
func pairSite(t *testing.T) (testSite, map[wireAPI]*strictFake) {
	fakes := map[wireAPI]*strictFake{}
	site := testSite{defaultModel: pairModels[0].name}
	for _, m := range pairModels {
		fakes[m.api] = newStrictFake(t, m.api, m.key)
		provider := ""
		if m.api == wireMessages {
			provider = "anthropic" // api messages by default
		}
		api := ""
		if m.api == wireResponses {
			api = string(wireResponses)
		}
		site.models = append(site.models, siteModel{name: m.name, to: fakes[m.api].addr(), upstreamModel: m.upstream,
			apiKey: m.key, provider: provider, api: api})
	}
	return site, fakes
}

// TestStrictFakesWithSDKs runs the agent of each API's SDK straight against
// the strict fake of the same API, without the gateway: the fakes accept
// what the SDKs send and the SDKs read what the fakes answer, so a pair of
// TestAPIPairs that fails, fails in the gateway.
func TestStrictFakesWithSDKs(t *testing.T) {
	fakes := map[wireAPI]*strictFake{}
	for _, m := range pairModels {
		fakes[m.api] = newStrictFake(t, m.api, m.key)
	}
	for _, m := range pairModels {
		t.Run(string(m.api), func(t *testing.T) {
			runAgentPair(t, agentRun{client: newAgentClient(t, m.api, m.upstream, agentMaxTokens, fakes[m.api]),
				model: m, fakes: fakes, maxTokens: agentMaxTokens, direct: true})
		})
	}
}

// agentRun is one run of the agent loop: its client, the model that should
// serve it, all the fakes, the client's output cap (0 for none), whether
// the client talks to the model's fake directly instead of through the
// gateway, and the session's affinity key ("" for a new one).
type agentRun struct {
	client    agentClient
	model     pairModel
	fakes     map[wireAPI]*strictFake
	maxTokens int64
	direct    bool
	key       string
}

// runAgentPair runs agentPlan and checks every turn on both ends: what the
// model's fake read (the conversation, tools, ids, cap), that no fake
// rejected anything and only the model's was asked, and what the client
// got (the decision headers, model, text, tool calls with the fake's ids,
// stop reason and usage in the client's terms).
func runAgentPair(t *testing.T, run agentRun) {
	client, model := run.client, run.model
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	key := cmp.Or(run.key, "pairs-"+uuid.NewString())
	wantCap := run.maxTokens
	if wantCap == 0 && model.api == wireMessages {
		wantCap = messagesDefaultMaxTokens
	}
	// the conversation so far, as the fake should read it
	var users, assistantTexts []string
	var calls []agentCall
	var results []agentResult
	for i, turn := range agentPlan {
		step := agentScript[i]
		what := fmt.Sprintf("turn %d (%s)", i+1, map[bool]string{false: "plain", true: "streamed"}[turn.stream])
		if turn.user != "" {
			client.say(turn.user)
			users = append(users, turn.user)
		}
		reply, got := sendTurn(ctx, t, run, what, turn.stream, key)

		// what the model's fake read
		req := got.req
		if got.step != i {
			t.Errorf("%s: the fake answered with step %d of its script, want %d", what, got.step+1, i+1)
		}
		checkEqual(t, what, "upstream model", req.model, model.upstream)
		checkEqual(t, what, "streaming upstream", req.stream, turn.stream)
		checkEqual(t, what, "upstream output cap", req.maxTokens, wantCap)
		checkEqual(t, what, "upstream system prompt", req.system, agentSystem)
		checkEqual(t, what, "upstream user messages", req.users, users)
		checkEqual(t, what, "upstream assistant texts", req.assistantTexts, assistantTexts)
		checkEqual(t, what, "upstream tool calls in the history (ids the fake made)", req.calls, calls)
		checkEqual(t, what, "upstream tool results", req.results, results)
		checkEqual(t, what, "upstream tools", req.tools, agentToolSchemas())

		// what the client got
		status := "pinned"
		if i == 0 {
			status = "default"
		}
		if m, _, s := decisionOf(reply.resp); !run.direct && (m != model.name || s != status) {
			t.Errorf("%s: X-Model-Affinity-Model %q status %q, want %q %q", what, m, s, model.name, status)
		}
		checkEqual(t, what, "response model", reply.model, model.upstream)
		checkEqual(t, what, "text", reply.text, step.text)
		checkEqual(t, what, "tool calls (ids as the fake made them)", reply.calls, got.calls)
		checkEqual(t, what, "stop reason", reply.stop, client.stop(len(step.calls) > 0))
		checkEqual(t, what, "usage", reply.usage, client.usage(step.usage.servedBy(model.api)))
		for _, p := range reply.streamProblems {
			t.Errorf("%s: stream: %s", what, p)
		}

		// run the tools
		var outputs []agentResult
		for _, c := range reply.calls {
			outputs = append(outputs, agentResult{ID: c.ID, Content: agentToolOutputs[c.Name+" "+canonicalJSON(c.Args)]})
		}
		client.answer(outputs)
		if step.text != "" {
			assistantTexts = append(assistantTexts, step.text)
		}
		calls = append(calls, got.calls...)
		results = append(results, outputs...)
	}
}

// sendTurn sends the client's conversation and returns its reply and the
// turn the model's fake answered; it fails the test unless the fake, and no
// other, answered it, and no fake rejected anything.
func sendTurn(ctx context.Context, t *testing.T, run agentRun, what string, stream bool, key string) (clientReply, fakeTurn) {
	t.Helper()
	client, model := run.client, run.model
	translated := ""
	if client.api() != model.api {
		translated = fmt.Sprintf(" (a %s client served by a %s model: the gateway must translate)", client.api(), model.api)
	}
	marks := map[wireAPI]fakeMark{}
	for api, f := range run.fakes {
		marks[api] = f.mark()
	}
	reply, err := client.send(ctx, stream, key)
	var served []fakeTurn
	var rejections []string
	for api, f := range run.fakes {
		turns, rejected := f.since(marks[api])
		rejections = append(rejections, rejected...)
		if api == model.api {
			served = turns
		} else if len(turns) > 0 {
			t.Errorf("%s: the %s upstream answered %d requests; only %s (%s) should have been asked", what, api, len(turns), model.name, model.api)
		}
	}
	slices.Sort(rejections)
	if err != nil {
		if !run.direct && reply.resp != nil && reply.resp.Header.Get("X-Model-Affinity-Model") == "" {
			translated += "; the gateway made no routing decision (no X-Model-Affinity-Model header), so it does not route this path"
		}
		t.Fatalf("%s: the %s SDK failed%s: %v\nupstream rejections: %s", what, client.api(), translated, err, listOrNone(rejections))
	}
	if len(rejections) > 0 {
		t.Errorf("%s: upstreams rejected requests%s:\n%s", what, translated, strings.Join(rejections, "\n"))
	}
	if len(served) != 1 {
		t.Fatalf("%s: the %s upstream answered %d requests, want 1%s; upstream rejections: %s", what, model.api, len(served), translated, listOrNone(rejections))
	}
	return reply, served[0]
}

// checkEqual reports got != want, naming what of which turn differs. They
// are compared as printed: a nil and an empty slice or map are alike, and
// maps print sorted by key.
func checkEqual[T any](t *testing.T, turn, what string, got, want T) {
	t.Helper()
	if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
		t.Errorf("%s: %s:\n got  %s\n want %s", turn, what, g, w)
	}
}

// listOrNone is lines, one a line, or "none".
func listOrNone(lines []string) string {
	if len(lines) == 0 {
		return "none"
	}
	return "\n" + strings.Join(lines, "\n")
}

// ---------------------------------------------------------------------------
// The clients

// agentClient is an agent's conversation in its client API, sent with that
// API's official SDK.
type agentClient interface {
	api() wireAPI
	// say adds a user message.
	say(text string)
	// send sends the conversation, plain or streamed, with the affinity
	// key, adds the reply to the conversation and returns it.
	send(ctx context.Context, stream bool, key string) (clientReply, error)
	// answer adds the results of the last reply's tool calls.
	answer(results []agentResult)
	// stop is the stop reason the API gives a turn that ends in tool calls
	// (or not).
	stop(toolUse bool) string
	// usage is u in the API's terms, keyed as send keys a reply's usage.
	usage(u agentUsage) map[string]int64
}

// clientReply is an assistant turn as a client read it.
type clientReply struct {
	resp  *http.Response
	model string
	text  string
	calls []agentCall // arguments as canonical JSON
	stop  string
	usage map[string]int64
	// streamProblems are what the stream broke of what the API's clients
	// and harnesses rely on.
	streamProblems []string
}

// newAgentClient is a client of api asking for model, with the output cap
// maxTokens (0: none, which a Messages client cannot send), through the
// gateway, or to direct with its key when direct is not nil.
func newAgentClient(t *testing.T, api wireAPI, model string, maxTokens int64, direct *strictFake) agentClient {
	oai, ant := openaiClient(), anthropicClient(t)
	if direct != nil {
		oai = openai.NewClient(option.WithBaseURL(direct.srv.URL+"/v1"), option.WithAPIKey(direct.key), option.WithMaxRetries(0))
		ant = anthropic.NewClient(anthropicoption.WithBaseURL(direct.srv.URL), anthropicoption.WithAPIKey(direct.key),
			anthropicoption.WithMaxRetries(0))
	}
	switch api {
	case wireChat:
		return &chatAgent{client: oai, model: model, maxTokens: maxTokens,
			msgs: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(agentSystem)}}
	case wireMessages:
		return &messagesAgent{client: ant, model: model, maxTokens: maxTokens}
	default:
		return &responsesAgent{client: oai, model: model, maxTokens: maxTokens}
	}
}

// sdkStream is an SDK's event stream (both SDKs' ssestream.Stream).
type sdkStream[E any] interface {
	Next() bool
	Current() E
	Err() error
	Close() error
}

// plainOrStreamed makes one SDK call: plain, or streamed, when the stream's
// events are read to the end and folded into the result.
func plainOrStreamed[R, E any](stream bool, plain func() (*R, error), open func() sdkStream[E], fold func([]E) R) (R, error) {
	var zero R
	if !stream {
		got, err := plain()
		if err != nil {
			return zero, err
		}
		return *got, nil
	}
	s := open()
	defer s.Close()
	var events []E
	for s.Next() {
		events = append(events, s.Current())
	}
	if err := s.Err(); err != nil {
		return zero, err
	}
	return fold(events), nil
}

// chatAgent is an agent on Chat Completions (openai-go).
type chatAgent struct {
	client    openai.Client
	model     string
	maxTokens int64
	msgs      []openai.ChatCompletionMessageParamUnion
}

func (c *chatAgent) api() wireAPI    { return wireChat }
func (c *chatAgent) say(text string) { c.msgs = append(c.msgs, openai.UserMessage(text)) }

func (c *chatAgent) answer(results []agentResult) {
	for _, r := range results {
		c.msgs = append(c.msgs, openai.ToolMessage(r.Content, r.ID))
	}
}

func (c *chatAgent) stop(toolUse bool) string {
	if toolUse {
		return "tool_calls"
	}
	return "stop"
}

func (c *chatAgent) usage(u agentUsage) map[string]int64 {
	return map[string]int64{"prompt_tokens": u.input, "completion_tokens": u.output, "total_tokens": u.input + u.output,
		"prompt_tokens_details.cached_tokens": u.cacheRead}
}

func (c *chatAgent) send(ctx context.Context, stream bool, key string) (clientReply, error) {
	var reply clientReply
	params := openai.ChatCompletionNewParams{Model: c.model, Messages: c.msgs}
	for _, tool := range agentTools {
		params.Tools = append(params.Tools, openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: tool.name, Description: openai.String(tool.description),
			Parameters: tool.schema(),
		}))
	}
	if c.maxTokens > 0 {
		params.MaxCompletionTokens = openai.Int(c.maxTokens)
	}
	opts := []option.RequestOption{option.WithHeader("X-Model-Affinity", key), option.WithResponseInto(&reply.resp)}
	if stream {
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	}
	completion, err := plainOrStreamed(stream,
		func() (*openai.ChatCompletion, error) { return c.client.Chat.Completions.New(ctx, params, opts...) },
		func() sdkStream[openai.ChatCompletionChunk] {
			return c.client.Chat.Completions.NewStreaming(ctx, params, opts...)
		},
		func(chunks []openai.ChatCompletionChunk) openai.ChatCompletion {
			var acc openai.ChatCompletionAccumulator
			for i, chunk := range chunks {
				if !acc.AddChunk(chunk) {
					reply.streamProblems = append(reply.streamProblems, fmt.Sprintf("the SDK's accumulator refused chunk %d: %s", i+1, chunk.RawJSON()))
				}
			}
			reply.streamProblems = append(reply.streamProblems, chatStreamProblems(chunks)...)
			return acc.ChatCompletion
		})
	if err != nil {
		return reply, err
	}
	if len(completion.Choices) != 1 {
		return reply, fmt.Errorf("%d choices in %s", len(completion.Choices), completion.RawJSON())
	}
	choice := completion.Choices[0]
	c.msgs = append(c.msgs, choice.Message.ToParam())
	reply.model, reply.text, reply.stop = completion.Model, choice.Message.Content, choice.FinishReason
	for _, call := range choice.Message.ToolCalls {
		reply.calls = append(reply.calls, agentCall{ID: call.ID, Name: call.Function.Name, Args: canonicalJSON(call.Function.Arguments)})
	}
	u := completion.Usage
	reply.usage = map[string]int64{"prompt_tokens": u.PromptTokens, "completion_tokens": u.CompletionTokens,
		"total_tokens": u.TotalTokens, "prompt_tokens_details.cached_tokens": u.PromptTokensDetails.CachedTokens}
	return reply, nil
}

// chatStreamProblems checks a Chat stream against what its clients rely on:
// every chunk a chat.completion.chunk of one id and model, the first delta
// with the assistant's role, exactly one finish_reason, and the usage chunk
// (no choices) last.
func chatStreamProblems(chunks []openai.ChatCompletionChunk) []string {
	if len(chunks) == 0 {
		return []string{"no chunks"}
	}
	var problems []string
	finishes := 0
	for i, ch := range chunks {
		if ch.Object != "chat.completion.chunk" || ch.ID != chunks[0].ID || ch.Model != chunks[0].Model {
			problems = append(problems, fmt.Sprintf("chunk %d has object %q id %q model %q; want chat.completion.chunk and the first chunk's id and model", i+1, ch.Object, ch.ID, ch.Model))
		}
		for _, choice := range ch.Choices {
			if choice.FinishReason != "" {
				finishes++
			}
		}
	}
	if len(chunks[0].Choices) == 0 || chunks[0].Choices[0].Delta.Role != "assistant" {
		problems = append(problems, fmt.Sprintf("the first chunk carries no role assistant: %s", chunks[0].RawJSON()))
	}
	if finishes != 1 {
		problems = append(problems, fmt.Sprintf("%d chunks with a finish_reason, want 1", finishes))
	}
	if last := chunks[len(chunks)-1]; len(last.Choices) != 0 || !last.JSON.Usage.Valid() {
		problems = append(problems, fmt.Sprintf("the last chunk is not the usage chunk (choices [] and usage) include_usage asked for: %s", last.RawJSON()))
	}
	return problems
}

// messagesAgent is an agent on Anthropic Messages (anthropic-sdk-go).
type messagesAgent struct {
	client    anthropic.Client
	model     string
	maxTokens int64
	msgs      []anthropic.MessageParam
}

func (c *messagesAgent) api() wireAPI { return wireMessages }

func (c *messagesAgent) say(text string) {
	c.msgs = append(c.msgs, anthropic.NewUserMessage(anthropic.NewTextBlock(text)))
}

func (c *messagesAgent) answer(results []agentResult) {
	if len(results) == 0 {
		return
	}
	var blocks []anthropic.ContentBlockParamUnion
	for _, r := range results {
		blocks = append(blocks, anthropic.NewToolResultBlock(r.ID, r.Content, false))
	}
	c.msgs = append(c.msgs, anthropic.NewUserMessage(blocks...))
}

func (c *messagesAgent) stop(toolUse bool) string {
	if toolUse {
		return "tool_use"
	}
	return "end_turn"
}

func (c *messagesAgent) usage(u agentUsage) map[string]int64 {
	return map[string]int64{"input_tokens": u.input - u.cacheRead - u.cacheWrite, "output_tokens": u.output,
		"cache_read_input_tokens": u.cacheRead, "cache_creation_input_tokens": u.cacheWrite}
}

func (c *messagesAgent) send(ctx context.Context, stream bool, key string) (clientReply, error) {
	var reply clientReply
	params := anthropic.MessageNewParams{Model: anthropic.Model(c.model), MaxTokens: c.maxTokens, Messages: c.msgs,
		System: []anthropic.TextBlockParam{{Text: agentSystem}}}
	for _, tool := range agentTools {
		params.Tools = append(params.Tools, anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
			Name: tool.name, Description: anthropic.String(tool.description),
			InputSchema: anthropic.ToolInputSchemaParam{Properties: tool.properties, Required: tool.required},
		}})
	}
	opts := []anthropicoption.RequestOption{anthropicoption.WithHeader("X-Model-Affinity", key), anthropicoption.WithResponseInto(&reply.resp)}
	msg, err := plainOrStreamed(stream,
		func() (*anthropic.Message, error) { return c.client.Messages.New(ctx, params, opts...) },
		func() sdkStream[anthropic.MessageStreamEventUnion] {
			return c.client.Messages.NewStreaming(ctx, params, opts...)
		},
		func(events []anthropic.MessageStreamEventUnion) (msg anthropic.Message) {
			var types []string
			for i, ev := range events {
				types = append(types, ev.Type)
				if err := msg.Accumulate(ev); err != nil {
					reply.streamProblems = append(reply.streamProblems, fmt.Sprintf("the SDK could not accumulate event %d (%s): %v", i+1, ev.Type, err))
				}
			}
			if len(types) == 0 || types[0] != "message_start" || types[len(types)-1] != "message_stop" || !slices.Contains(types, "message_delta") {
				reply.streamProblems = append(reply.streamProblems, fmt.Sprintf("events %v; want message_start first, a message_delta, message_stop last", types))
			}
			return msg
		})
	if err != nil {
		return reply, err
	}
	c.msgs = append(c.msgs, msg.ToParam())
	reply.model, reply.stop = string(msg.Model), string(msg.StopReason)
	var texts []string
	for _, block := range msg.Content {
		switch block.Type {
		case "text":
			texts = append(texts, block.Text)
		case "tool_use":
			reply.calls = append(reply.calls, agentCall{ID: block.ID, Name: block.Name, Args: canonicalJSON(string(block.Input))})
		}
	}
	reply.text = strings.Join(texts, "")
	u := msg.Usage
	reply.usage = map[string]int64{"input_tokens": u.InputTokens, "output_tokens": u.OutputTokens,
		"cache_read_input_tokens": u.CacheReadInputTokens, "cache_creation_input_tokens": u.CacheCreationInputTokens}
	return reply, nil
}

// responsesAgent is an agent on OpenAI Responses (openai-go's responses),
// stateless as Codex is: store false, the whole input every turn.
type responsesAgent struct {
	client    openai.Client
	model     string
	maxTokens int64
	input     responses.ResponseInputParam
}

func (c *responsesAgent) api() wireAPI { return wireResponses }

func (c *responsesAgent) say(text string) {
	c.input = append(c.input, responses.ResponseInputItemParamOfMessage(text, responses.EasyInputMessageRoleUser))
}

func (c *responsesAgent) answer(results []agentResult) {
	for _, r := range results {
		item := responses.ResponseInputItemParamOfFunctionCallOutput(r.Content)
		item.OfFunctionCallOutput.CallID = openai.String(r.ID)
		c.input = append(c.input, item)
	}
}

// stop is the response's status: Responses has no stop reason, a turn
// that calls tools ends with function_call items.
func (c *responsesAgent) stop(bool) string { return "completed" }

func (c *responsesAgent) usage(u agentUsage) map[string]int64 {
	return map[string]int64{"input_tokens": u.input, "output_tokens": u.output, "total_tokens": u.input + u.output,
		"input_tokens_details.cached_tokens": u.cacheRead}
}

func (c *responsesAgent) send(ctx context.Context, stream bool, key string) (clientReply, error) {
	var reply clientReply
	params := responses.ResponseNewParams{Model: c.model, Input: responses.ResponseNewParamsInputUnion{OfInputItemList: c.input},
		Instructions: openai.String(agentSystem), Store: openai.Bool(false)}
	for _, tool := range agentTools {
		fn := responses.ToolParamOfFunction(tool.name, tool.schema(), false)
		fn.OfFunction.Description = openai.String(tool.description)
		params.Tools = append(params.Tools, fn)
	}
	if c.maxTokens > 0 {
		params.MaxOutputTokens = openai.Int(c.maxTokens)
	}
	opts := []option.RequestOption{option.WithHeader("X-Model-Affinity", key), option.WithResponseInto(&reply.resp)}
	resp, err := plainOrStreamed(stream,
		func() (*responses.Response, error) { return c.client.Responses.New(ctx, params, opts...) },
		func() sdkStream[responses.ResponseStreamEventUnion] {
			return c.client.Responses.NewStreaming(ctx, params, opts...)
		},
		func(events []responses.ResponseStreamEventUnion) responses.Response {
			resp, problems := responsesStreamResult(events)
			reply.streamProblems = append(reply.streamProblems, problems...)
			return resp
		})
	if err != nil {
		return reply, err
	}
	reply.model, reply.stop = resp.Model, string(resp.Status)
	var texts []string
	for _, item := range resp.Output {
		switch item.Type {
		case "message":
			var text strings.Builder
			for _, part := range item.AsMessage().Content {
				text.WriteString(part.Text)
			}
			texts = append(texts, text.String())
			c.input = append(c.input, responses.ResponseInputItemParamOfMessage(text.String(), responses.EasyInputMessageRoleAssistant))
		case "function_call":
			call := item.AsFunctionCall()
			reply.calls = append(reply.calls, agentCall{ID: call.CallID, Name: call.Name, Args: canonicalJSON(call.Arguments)})
			c.input = append(c.input, responses.ResponseInputItemParamOfFunctionCall(call.Arguments, call.CallID, call.Name))
		}
	}
	reply.text = strings.Join(texts, "")
	u := resp.Usage
	reply.usage = map[string]int64{"input_tokens": u.InputTokens, "output_tokens": u.OutputTokens, "total_tokens": u.TotalTokens,
		"input_tokens_details.cached_tokens": u.InputTokensDetails.CachedTokens}
	return reply, nil
}

// responsesStreamResult is the response a Responses stream completed with,
// and what the stream broke of what its clients rely on (openai-python's
// stream helper, Codex): response.created first; sequence numbers
// increasing; a content_part.added before an item's text deltas, which add
// up to its text; response.completed last, whose output matches the
// output_item.done items Codex builds its history from.
func responsesStreamResult(events []responses.ResponseStreamEventUnion) (responses.Response, []string) {
	if len(events) == 0 {
		return responses.Response{}, []string{"no events"}
	}
	var problems []string
	var types []string
	var done []string
	partAdded := map[string]bool{}
	deltas := map[string]string{}
	for i, ev := range events {
		types = append(types, ev.Type)
		if i > 0 && ev.SequenceNumber <= events[i-1].SequenceNumber {
			problems = append(problems, fmt.Sprintf("event %d (%s) has sequence_number %d after %d", i+1, ev.Type, ev.SequenceNumber, events[i-1].SequenceNumber))
		}
		switch ev.Type {
		case "response.content_part.added":
			partAdded[ev.ItemID] = true
		case "response.output_text.delta":
			if !partAdded[ev.ItemID] {
				problems = append(problems, fmt.Sprintf("event %d: a text delta for item %s before its content_part.added", i+1, ev.ItemID))
			}
			deltas[ev.ItemID] += ev.Delta
		case "response.output_item.done":
			done = append(done, responsesItemSummary(ev.Item))
		}
	}
	last := events[len(events)-1]
	if types[0] != "response.created" || last.Type != "response.completed" {
		problems = append(problems, fmt.Sprintf("events %v; want response.created first and response.completed last", types))
		return last.Response, problems
	}
	var output []string
	for _, item := range last.Response.Output {
		output = append(output, responsesItemSummary(item))
		if item.Type == "message" {
			text := ""
			for _, part := range item.AsMessage().Content {
				text += part.Text
			}
			if deltas[item.ID] != text {
				problems = append(problems, fmt.Sprintf("item %s: text deltas add up to %q, the completed text is %q", item.ID, deltas[item.ID], text))
			}
		}
	}
	if !slices.Equal(done, output) {
		problems = append(problems, fmt.Sprintf("output_item.done items %v differ from response.completed's output %v", done, output))
	}
	return last.Response, problems
}

// responsesItemSummary names an output item by what a client keeps of it.
func responsesItemSummary(item responses.ResponseOutputItemUnion) string {
	if item.Type == "function_call" {
		call := item.AsFunctionCall()
		return fmt.Sprintf("function_call %s %s(%s)", call.CallID, call.Name, canonicalJSON(call.Arguments))
	}
	var text strings.Builder
	for _, part := range item.AsMessage().Content {
		text.WriteString(part.Text)
	}
	return fmt.Sprintf("%s %s %q", item.Type, item.ID, text.String())
}

// Interface guards
var (
	_ agentClient = (*chatAgent)(nil)
	_ agentClient = (*messagesAgent)(nil)
	_ agentClient = (*responsesAgent)(nil)
)

// TestStrictFakeRules posts to each strict fake a valid request and
// requests that its real provider rejects, one defect each: the fake must
// answer the valid one and reject each other one in its API's error shape,
// recording why.
func TestStrictFakeRules(t *testing.T) {
	const key = "sk-rules"
	fakes := map[wireAPI]*strictFake{}
	for _, api := range []wireAPI{wireChat, wireMessages, wireResponses} {
		fakes[api] = newStrictFake(t, api, key)
	}
	credentials := map[wireAPI][]string{
		wireChat:      {"Authorization", "Bearer " + key},
		wireMessages:  {"X-Api-Key", key, "Anthropic-Version", "2023-06-01"},
		wireResponses: {"Authorization", "Bearer " + key},
	}
	const (
		user     = `{"role":"user","content":"hi"}`
		schema   = `{"type":"object","properties":{}}`
		chatCall = `{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}`
		toolUse  = `{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]}`
		fnCall   = `{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"}`
	)
	cases := []struct {
		name    string
		api     wireAPI
		path    string   // "": the API's
		headers []string // "": the API's credentials
		body    string
		status  int    // 0: 400
		want    string // in the rejection; "": the request is valid
	}{
		{name: "valid", api: wireChat, body: `{"model":"m","messages":[{"role":"system","content":"s"},` + user + `]}`},
		{name: "tool message answering no call", api: wireChat, body: `{"model":"m","messages":[` + user + `,{"role":"tool","tool_call_id":"x","content":"r"}]}`,
			want: "must be a response to a preceding message with 'tool_calls'"},
		{name: "tool call unanswered before a user message", api: wireChat, body: `{"model":"m","messages":[` + user + `,` + chatCall + `,` + user + `]}`,
			want: "must be followed by tool messages"},
		{name: "stream_options without stream", api: wireChat, body: `{"model":"m","stream_options":{"include_usage":true},"messages":[` + user + `]}`,
			want: "only allowed when 'stream' is enabled"},
		{name: "a Messages tool", api: wireChat, body: `{"model":"m","tools":[{"name":"f","input_schema":` + schema + `}],"messages":[` + user + `]}`,
			want: "unknown parameter 'input_schema'"},
		{name: "top-level system", api: wireChat, body: `{"model":"m","system":"s","messages":[` + user + `]}`, want: "unknown parameter 'system'"},
		{name: "an anthropic-version header", api: wireChat, headers: []string{"Authorization", "Bearer " + key, "Anthropic-Version", "2023-06-01"},
			body: `{"model":"m","messages":[` + user + `]}`, want: "Anthropic-Version reached an OpenAI upstream"},
		{name: "x-api-key instead of the bearer key", api: wireChat, headers: []string{"X-Api-Key", key},
			body: `{"model":"m","messages":[` + user + `]}`, status: http.StatusUnauthorized, want: "Incorrect API key"},
		{name: "the Messages path", api: wireChat, path: "/v1/messages", body: `{"model":"m","messages":[` + user + `]}`,
			status: http.StatusNotFound, want: "Invalid URL"},

		{name: "valid", api: wireMessages, body: `{"model":"m","max_tokens":8,"system":"s","messages":[` + user + `]}`},
		{name: "no max_tokens", api: wireMessages, body: `{"model":"m","messages":[` + user + `]}`, want: "max_tokens: Field required"},
		{name: "no anthropic-version", api: wireMessages, headers: []string{"X-Api-Key", key},
			body: `{"model":"m","max_tokens":8,"messages":[` + user + `]}`, want: "anthropic-version"},
		{name: "a bearer token", api: wireMessages, headers: []string{"Authorization", "Bearer " + key, "Anthropic-Version", "2023-06-01"},
			body: `{"model":"m","max_tokens":8,"messages":[` + user + `]}`, status: http.StatusUnauthorized, want: "x-api-key"},
		{name: "a system message", api: wireMessages, body: `{"model":"m","max_tokens":8,"messages":[{"role":"system","content":"s"},` + user + `]}`,
			want: `Unexpected role "system"`},
		{name: "two user messages in a row", api: wireMessages, body: `{"model":"m","max_tokens":8,"messages":[` + user + `,` + user + `]}`,
			want: "roles must alternate"},
		{name: "the assistant first", api: wireMessages, body: `{"model":"m","max_tokens":8,"messages":[{"role":"assistant","content":"a"},` + user + `]}`,
			want: `the first message must use the "user" role`},
		{name: "tool_result after text", api: wireMessages, body: `{"model":"m","max_tokens":8,"messages":[` + user + `,` + toolUse +
			`,{"role":"user","content":[{"type":"text","text":"x"},{"type":"tool_result","tool_use_id":"t1","content":"r"}]}]}`,
			want: "tool_use` ids were found without `tool_result` blocks"},
		{name: "tool_use unanswered", api: wireMessages, body: `{"model":"m","max_tokens":8,"messages":[` + user + `,` + toolUse + `,` + user + `]}`,
			want: "tool_use` ids were found without `tool_result` blocks"},
		{name: "tool_result answering none", api: wireMessages, body: `{"model":"m","max_tokens":8,"messages":[` + user + `,{"role":"assistant","content":"a"}` +
			`,{"role":"user","content":[{"type":"tool_result","tool_use_id":"t9","content":"r"}]}]}`, want: "unexpected `tool_use_id`"},
		{name: "a Chat tool", api: wireMessages, body: `{"model":"m","max_tokens":8,"tools":[{"type":"function","function":{"name":"f","parameters":` + schema + `}}],"messages":[` + user + `]}`,
			want: "unknown parameter 'function'"},
		{name: "an empty text block", api: wireMessages, body: `{"model":"m","max_tokens":8,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`,
			want: "text content blocks must be non-empty"},

		{name: "valid", api: wireResponses, body: `{"model":"m","instructions":"s","input":[` + user + `]}`},
		{name: "function_call_output answering none", api: wireResponses, body: `{"model":"m","input":[` + user + `,{"type":"function_call_output","call_id":"x","output":"r"}]}`,
			want: "No tool call found for function call output"},
		{name: "function_call unanswered", api: wireResponses, body: `{"model":"m","input":[` + user + `,` + fnCall + `,` + user + `]}`,
			want: "No tool output found for function call c1"},
		{name: "input_text from the assistant", api: wireResponses, body: `{"model":"m","input":[` + user + `,{"role":"assistant","content":[{"type":"input_text","text":"a"}]},` + user + `]}`,
			want: "Invalid value: 'input_text'"},
		{name: "a Chat tool", api: wireResponses, body: `{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":` + schema + `}}],"input":[` + user + `]}`,
			want: "unknown parameter 'function'"},
		{name: "max_output_tokens below 16", api: wireResponses, body: `{"model":"m","max_output_tokens":8,"input":[` + user + `]}`, want: ">= 16"},
		{name: "previous_response_id", api: wireResponses, body: `{"model":"m","previous_response_id":"resp_1","input":[` + user + `]}`, want: "not found"},
		{name: "Chat messages", api: wireResponses, body: `{"model":"m","messages":[` + user + `]}`, want: "unknown parameter 'messages'"},
	}
	for _, tc := range cases {
		t.Run(string(tc.api)+"/"+tc.name, func(t *testing.T) {
			f := fakes[tc.api]
			before := f.mark()
			headers := tc.headers
			if headers == nil {
				headers = credentials[tc.api]
			}
			resp, body, err := sendTo(http.DefaultClient, f.srv.URL, cmp.Or(tc.path, f.dialect.path()), []byte(tc.body), headers...)
			if err != nil {
				t.Fatal(err)
			}
			turns, rejections := f.since(before)
			if tc.want == "" {
				if resp.StatusCode != http.StatusOK || len(turns) != 1 || len(rejections) != 0 {
					t.Errorf("status %d, %d turns, rejections %v; want 200 and one turn: %s", resp.StatusCode, len(turns), rejections, body)
				}
				return
			}
			status := cmp.Or(tc.status, http.StatusBadRequest)
			if status == http.StatusBadRequest {
				checkAPIError(t, tc.name, tc.api == wireMessages, status, resp, body)
			} else if resp.StatusCode != status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, status, body)
			}
			if len(turns) != 0 || len(rejections) != 1 || !strings.Contains(rejections[0], tc.want) {
				t.Errorf("%d turns, rejections %v; want one rejection saying %q", len(turns), rejections, tc.want)
			}
		})
	}
}

// TestPreviousResponseID: a Responses client served by a Chat model
// continues a conversation by previous_response_id; the gateway keeps what
// it translated, across a config reload, and refuses an id it does not know.
func TestPreviousResponseID(t *testing.T) {
	f := newFleet(t, alternating)
	site := testSite{defaultModel: "small", models: []siteModel{{name: "small", to: f.small.addr(), upstreamModel: "small-up"}}}
	startCaddy(t, site)
	ctx := context.Background()
	client := openaiClient()

	first, err := client.Responses.New(ctx, responses.ResponseNewParams{
		Model:        "small",
		Instructions: openai.String("Be brief."),
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
	}, option.WithHeader("X-Model-Affinity", "resp-session"))
	if err != nil {
		t.Fatalf("turn 1: %v", err)
	}
	if !strings.HasPrefix(first.ID, "resp_") || first.OutputText() != "hello from small" {
		t.Fatalf("turn 1: id %q, text %q", first.ID, first.OutputText())
	}
	// the model is the upstream's own; the new turn carries only its new input
	continued := func(previous, text string) *responses.Response {
		t.Helper()
		resp, err := client.Responses.New(ctx, responses.ResponseNewParams{
			Model:              "small",
			PreviousResponseID: openai.String(previous),
			Input:              responses.ResponseNewParamsInputUnion{OfString: openai.String(text)},
		}, option.WithHeader("X-Model-Affinity", "resp-session"))
		if err != nil {
			t.Fatalf("continuing %s: %v", previous, err)
		}
		return resp
	}
	second := continued(first.ID, "again")
	seen := f.small.requests()
	want := `"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"},` +
		`{"role":"assistant","content":"hello from small"},{"role":"user","content":"again"}]`
	if len(seen) != 2 || !strings.Contains(string(seen[1].Body), want) {
		t.Fatalf("the upstream's second request: %s\nwant it to hold %s", seen[len(seen)-1].Body, want)
	}

	// a reload keeps the conversations with the pins
	reloadCaddy(t, globalOptions+site.with("ttl 20m").String())
	continued(second.ID, "and once more")
	seen = f.small.requests()
	if body := string(seen[len(seen)-1].Body); !strings.Contains(body, `{"role":"user","content":"again"},{"role":"assistant","content":"hello from small"},{"role":"user","content":"and once more"}`) {
		t.Errorf("after a reload the upstream saw %s; want the whole conversation", body)
	}

	resp, out := post(t, "/v1/responses", []byte(`{"model":"small","previous_response_id":"resp_unknown","input":"x"}`))
	checkAPIError(t, "an unknown previous_response_id", false, http.StatusBadRequest, resp, out)
	if !strings.Contains(string(out), "previous_response_id names no response") {
		t.Errorf("unknown id: %s", out)
	}
	if n := len(f.small.requests()); n != 3 {
		t.Errorf("the upstream got %d requests, want 3: an unknown id goes nowhere", n)
	}
}

package llmapi

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Neutral events, written short for the decoder tables.

func evStart(id, model string, u *Usage) Event {
	return Event{Kind: EventStart, ID: id, Model: model, Usage: u}
}
func evText(i int, s string) Event { return Event{Kind: EventTextDelta, Index: i, Text: s} }
func evThinking(i int, s, sig string) Event {
	return Event{Kind: EventThinkingDelta, Index: i, Text: s, Signature: sig}
}
func evCall(i int, id, name, args string) Event {
	return Event{Kind: EventToolCallStart, Index: i, ToolCall: &ToolCall{ID: id, Name: name, Arguments: args}}
}
func evArgs(i int, s string) Event { return Event{Kind: EventToolCallDelta, Index: i, Text: s} }
func evStop(i int) Event           { return Event{Kind: EventBlockStop, Index: i} }
func evFinish(r StopReason) Event  { return Event{Kind: EventFinish, StopReason: r} }
func evUsage(in, out, read, write int) Event {
	return Event{Kind: EventUsage, Usage: usage(in, out, read, write)}
}
func evFail(typ, msg string) Event {
	return Event{Kind: EventError, Error: &StreamError{Type: typ, Message: msg}}
}

var evEnd = Event{Kind: EventEnd}

func usage(in, out, read, write int) *Usage {
	return &Usage{InputTokens: in, OutputTokens: out, CacheReadTokens: read, CacheWriteTokens: write}
}

// decoderCase is an upstream stream and the neutral events it means.
type decoderCase struct {
	name    string
	stream  string
	want    []Event
	wantErr error // Decode's or Close's first error; nil for none
}

// testDecoder decodes each case's stream, whole and cut at every offset,
// and compares the events, which must keep the neutral order.
func testDecoder(t *testing.T, api API, cases []decoderCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := collect(api, []byte(tc.stream))
			switch {
			case tc.wantErr == nil && err != nil,
				tc.wantErr == errAny && err == nil,
				tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events\n%s\nwant\n%s", eventsString(got), eventsString(tc.want))
			}
			checkNeutral(t, got)
			for i := range len(tc.stream) {
				cut, _ := collect(api, []byte(tc.stream[:i]), []byte(tc.stream[i:]))
				if !reflect.DeepEqual(cut, got) {
					t.Fatalf("cut at %d: events\n%s", i, eventsString(cut))
				}
			}
		})
	}
}

// eventsString shows events one a line, pointers followed.
func eventsString(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(strings.TrimSpace(strings.NewReplacer("\n", " ").Replace(eventString(ev))))
		b.WriteByte('\n')
	}
	return b.String()
}

func eventString(ev Event) string {
	s := []string{[]string{"Start", "Text", "Thinking", "ToolCallStart", "ToolCallDelta", "BlockStop", "Finish", "Usage", "Error", "End"}[ev.Kind]}
	add := func(k, v string) {
		if v != "" {
			s = append(s, k+"="+v)
		}
	}
	add("index", strconv.Itoa(ev.Index))
	add("text", quote(ev.Text))
	add("sig", quote(ev.Signature))
	if ev.Redacted {
		add("redacted", "true")
	}
	if ev.ToolCall != nil {
		add("call", quote(ev.ToolCall.ID+" "+ev.ToolCall.Name+" "+ev.ToolCall.Arguments))
	}
	add("stop", string(ev.StopReason))
	if ev.Usage != nil {
		add("usage", fmt.Sprintf("%+v", *ev.Usage))
	}
	add("id", ev.ID)
	add("model", ev.Model)
	if ev.Error != nil {
		add("error", ev.Error.Type+": "+ev.Error.Message)
	}
	return strings.Join(s, " ")
}

func quote(s string) string {
	if s == "" {
		return ""
	}
	return string(appendJSONString(nil, s))
}

// chatChunkOf is a chunk of the test streams with choice 0 holding choice.
func chatChunkOf(choice string) string {
	return `data: {"id":"chatcmpl-T","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,` + choice + `}]}` + "\n\n"
}

// TestChatStreamDecoder reads Chat upstream streams: text, tool calls
// whose first delta carries id, name and arguments, several by index, a
// name that comes after the id, the usage chunk with cached tokens, errors
// mid-stream, and streams that end early or break the order.
func TestChatStreamDecoder(t *testing.T) { testDecoder(t, Chat, chatDecoderCases) }

var chatDecoderCases = []decoderCase{
	{
		name:   "tools",
		stream: scenarios[1].upstream[Chat],
		want: []Event{
			evStart("chatcmpl-Tc2", "gpt-4o", nil),
			evText(0, "Let me check "), evText(0, "the \"weather\"\n"), evStop(0),
			evCall(1, "call_1", "get_weather", `{"city":"Paris"}`), evStop(1),
			evCall(2, "call_2", "get_time", ""), evArgs(2, `{"tz":`), evArgs(2, `"CET"}`), evStop(2),
			evFinish(StopToolCalls), evUsage(100, 20, 40, 25), evEnd,
		},
	},
	{
		name: "the name after the id, text after the call, no finish_reason",
		stream: chatChunkOf(`"delta":{"tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"arguments":""}}]}`) +
			chatChunkOf(`"delta":{"tool_calls":[{"index":0,"function":{"name":"lookup","arguments":"{\"q\""}}]}`) +
			chatChunkOf(`"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}`) +
			chatChunkOf(`"delta":{"content":"done"}`) +
			"data: [DONE]\n\n",
		want: []Event{
			evStart("chatcmpl-T", "m", nil),
			evCall(0, "call_9", "lookup", `{"q"`), evArgs(0, ":1}"), evStop(0),
			evText(1, "done"), evStop(1),
			evFinish(StopToolCalls), evEnd,
		},
	},
	{
		name: "a call without arguments, usage with the finish, other choices",
		stream: chatChunkOf(`"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_0","type":"function","function":{"name":"now"}}]}`) +
			`data: {"id":"chatcmpl-T","choices":[{"index":1,"delta":{"content":"other choice"}}]}` + "\n\n" +
			`data: {"id":"chatcmpl-T","choices":[{"finish_reason":"tool_calls","index":0,"delta":{}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}` + "\n\n" +
			"data: [DONE]\n\ndata: {\"after\":\"the end\"}\n\n",
		want: []Event{
			evStart("chatcmpl-T", "m", nil),
			evCall(0, "call_0", "now", ""), evArgs(0, "{}"), evStop(0),
			evFinish(StopToolCalls), evUsage(3, 2, 0, 0), evEnd,
		},
	},
	{
		name: "error mid-stream",
		stream: chatChunkOf(`"delta":{"content":"Partial"}`) +
			`data: {"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}` + "\n\n",
		want: []Event{evStart("chatcmpl-T", "m", nil), evText(0, "Partial"), evFail("rate_limit_error", "Rate limit reached")},
	},
	{
		name:   "error as a string, a numeric code",
		stream: `data: {"error":"upstream timed out"}` + "\n\n" + `data: {"error":{"code":504}}` + "\n\n",
		want:   []Event{evFail("api_error", "upstream timed out")},
	},
	{
		name:    "ends before [DONE]",
		stream:  chatChunkOf(`"delta":{"content":"Hi"},"finish_reason":"stop"`),
		want:    []Event{evStart("chatcmpl-T", "m", nil), evText(0, "Hi"), evStop(0), evFinish(StopEnd), evFail("api_error", errTruncated.Error())},
		wantErr: errTruncated,
	},
	{
		name: "a call's arguments after the next call began",
		stream: chatChunkOf(`"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{"}}]}`) +
			chatChunkOf(`"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{}"}}]}`) +
			chatChunkOf(`"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}`),
		want: []Event{
			evStart("chatcmpl-T", "m", nil), evCall(0, "a", "f", "{"), evStop(0), evCall(1, "b", "g", "{}"),
			evFail("api_error", "llmapi: upstream stream out of order: a tool call's delta after its block stopped"),
		},
		wantErr: errAny,
	},
	{
		name: "every call numbered 0, told apart by id",
		stream: chatChunkOf(`"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":"{\"n\":"}}]}`) +
			chatChunkOf(`"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}`) +
			chatChunkOf(`"delta":{"tool_calls":[{"id":"call_b","type":"function","function":{"name":"g","arguments":"{}"}}]}`) +
			chatChunkOf(`"delta":{},"finish_reason":"tool_calls"`) + "data: [DONE]\n\n",
		want: []Event{
			evStart("chatcmpl-T", "m", nil),
			evCall(0, "call_a", "f", `{"n":`), evArgs(0, "1}"), evStop(0),
			evCall(1, "call_b", "g", "{}"), evStop(1),
			evFinish(StopToolCalls), evEnd,
		},
	},
	{
		name: "a call's arguments after text closed it",
		stream: chatChunkOf(`"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{"}}]}`) +
			chatChunkOf(`"delta":{"content":"x"}`) +
			chatChunkOf(`"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}`),
		want: []Event{
			evStart("chatcmpl-T", "m", nil), evCall(0, "a", "f", "{"), evStop(0), evText(1, "x"),
			evFail("api_error", "llmapi: upstream stream out of order: a tool call's delta after its block stopped"),
		},
		wantErr: errAny,
	},
	{
		name:    "a call that never gets its name",
		stream:  chatChunkOf(`"delta":{"tool_calls":[{"index":0,"id":"c","function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"`),
		want:    []Event{evStart("chatcmpl-T", "m", nil), evFail("api_error", "llmapi: upstream tool call without a name")},
		wantErr: errAny,
	},
	{
		name:    "malformed JSON",
		stream:  chatChunkOf(`"delta":{"content":"a"}`) + "data: {\"choices\":[\n\n",
		want:    []Event{evStart("chatcmpl-T", "m", nil), evText(0, "a"), evFail("api_error", "malformed JSON: unexpected end of body")},
		wantErr: errAny,
	},
}

// errAny stands for any error in a decoderCase.
var errAny = errors.New("any error")

// TestChatStreamDecoderToolID gives a call the upstream sent without an id
// a random id of Chat's shape.
func TestChatStreamDecoderToolID(t *testing.T) {
	evs, err := collect(Chat, []byte(chatChunkOf(`"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"`)+"data: [DONE]\n\n"))
	if err != nil || len(evs) < 2 || evs[1].ToolCall == nil {
		t.Fatalf("events %s, error %v", eventsString(evs), err)
	}
	if id := evs[1].ToolCall.ID; !regexp.MustCompile(`^call_[0-9a-f]{24}$`).MatchString(id) {
		t.Errorf("id %q", id)
	}
}

// TestChatStreamEncoder writes neutral events as a Chat stream: the exact
// chunks, and what openai-go's accumulator makes of them.
func TestChatStreamEncoder(t *testing.T) {
	evs := []Event{
		evStart("msg_01X", "claude", usage(9, 1, 0, 0)),
		evThinking(0, "hmm", ""), evThinking(0, "", "sig"), evStop(0),
		evText(1, "Hi"), evStop(1),
		evCall(2, "toolu_1", "f", `{"a":`), evArgs(2, "1}"), evStop(2),
		evFinish(StopToolCalls), evUsage(9, 4, 5, 0), evEnd,
	}
	head := `data: {"id":"chatcmpl-01X","object":"chat.completion.chunk","created":1700000000,"model":"shown","choices":[{"index":0,"delta":`
	want := head + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		head + `{"content":"Hi"},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		head + `{"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"f","arguments":""}}]},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		head + `{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		head + `{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
		head + `{},"logprobs":null,"finish_reason":"tool_calls"}]}` + "\n\n" +
		`data: {"id":"chatcmpl-01X","object":"chat.completion.chunk","created":1700000000,"model":"shown","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":5}}}` + "\n\n" +
		"data: [DONE]\n\n"
	opts := StreamOptions{Model: "shown", IncludeUsage: true, Created: 1700000000}
	got := encode(t, Chat, opts, evs)
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	sameView(t, view(t, Chat, got), clientView{Text: "Hi", ToolCalls: []ToolCall{{ID: "toolu_1", Name: "f", Arguments: `{"a":1}`}},
		Stop: StopToolCalls, Usage: Usage{InputTokens: 9, OutputTokens: 4, CacheReadTokens: 5}})

	// Without include_usage there is no usage chunk.
	opts.IncludeUsage = false
	if got := encode(t, Chat, opts, evs); bytes.Contains(got, []byte(`"usage"`)) || !bytes.HasSuffix(got, []byte("data: [DONE]\n\n")) {
		t.Errorf("without IncludeUsage:\n%s", got)
	}
}

// TestChatStreamEncoderError ends a Chat stream with an error chunk that
// openai-go reports, in OpenAI's terms, and writes nothing after it.
func TestChatStreamEncoderError(t *testing.T) {
	got := encode(t, Chat, testOptions, []Event{
		evStart("chatcmpl-E", "m", nil), evText(0, "Par"),
		evFail("overloaded_error", "Overloaded"), evText(0, "more"), evEnd,
	})
	const last = `data: {"error":{"message":"Overloaded","type":"server_error","param":null,"code":"server_is_overloaded"}}` + "\n\n"
	if !bytes.HasSuffix(got, []byte(last)) || bytes.Count(got, []byte("data: ")) != 3 {
		t.Errorf("got\n%s", got)
	}
	sameView(t, view(t, Chat, got), clientView{Text: "Par", Err: "Overloaded"})
}

// TestStreamEncoderIDs checks the response ids and model a client sees.
func TestStreamEncoderIDs(t *testing.T) {
	tests := []struct {
		api             API
		given, upstream string
		want            string // a regexp
	}{
		{Chat, "", "chatcmpl-abc", `^chatcmpl-abc$`},
		{Chat, "", "msg_01abc", `^chatcmpl-01abc$`},
		{Chat, "", "resp_68ab", `^chatcmpl-68ab$`},
		{Chat, "", "gen-123", `^chatcmpl-gen-123$`},
		{Chat, "", "", `^chatcmpl-[0-9a-f]{24}$`},
		{Chat, "chatcmpl-given", "msg_x", `^chatcmpl-given$`},
		{Messages, "", "chatcmpl-abc", `^msg_abc$`},
		{Messages, "", "msg_01abc", `^msg_01abc$`},
		{Responses, "", "msg_01abc", `^resp_01abc$`},
		{Responses, "", "", `^resp_[0-9a-f]{24}$`},
	}
	for _, tc := range tests {
		if got := responseID(tc.api, tc.given, tc.upstream); !regexp.MustCompile(tc.want).MatchString(got) {
			t.Errorf("responseID(%v, %q, %q) = %q, want %s", tc.api, tc.given, tc.upstream, got, tc.want)
		}
	}
	// The model shown is the option's, else the upstream's.
	for _, api := range apis {
		for _, model := range []string{"", "alias"} {
			got := encode(t, api, StreamOptions{Model: model}, []Event{evStart("x", "upstream-model", nil), evText(0, "a"), evFinish(StopEnd), evEnd})
			want := `"model":"` + cmp.Or(model, "upstream-model") + `"`
			if !bytes.Contains(got, []byte(want)) {
				t.Errorf("%v with Model %q: no %s in\n%s", api, model, want, got)
			}
		}
	}
}

// TestStreamEncodersWithoutStart write a neutral stream that does not
// begin with EventStart, or fails at once: each client gets its stream's
// opening first and then what the events mean, which its SDK reads.
func TestStreamEncodersWithoutStart(t *testing.T) {
	for _, api := range apis {
		got := encode(t, api, testOptions, []Event{evText(0, "hi"), evStop(0), evFinish(StopEnd), evEnd})
		sameView(t, view(t, api, got), clientView{Text: "hi", Stop: StopEnd})
		got = encode(t, api, testOptions, []Event{evFail("rate_limit_error", "slow down")})
		sameView(t, view(t, api, got), clientView{Err: "slow down"})
	}
}

// FuzzChatStreamDecoder: see fuzzDecoder.
func FuzzChatStreamDecoder(f *testing.F) { fuzzDecoder(f, Chat) }

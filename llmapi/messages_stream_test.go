package llmapi

import (
	"bytes"
	"strings"
	"testing"
)

// messagesEvents writes Messages events (type, data pairs) as a stream.
func messagesEvents(pairs ...string) string {
	var b strings.Builder
	for i := 0; i < len(pairs); i += 2 {
		b.WriteString("event: " + pairs[i] + "\ndata: " + pairs[i+1] + "\n\n")
	}
	return b.String()
}

const messagesStartEvent = `{"type":"message_start","message":{"id":"msg_T","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}`

// TestMessagesStreamDecoder reads Messages upstream streams: input usage
// with cache reads and writes added in, thinking with its signature,
// redacted thinking, tool calls streamed or given whole or without input,
// blocks of kinds the neutral form has not, ping, errors, and streams that
// end early or break the block order.
func TestMessagesStreamDecoder(t *testing.T) { testDecoder(t, Messages, messagesDecoderCases) }

var messagesDecoderCases = []decoderCase{
	{
		name:   "tools",
		stream: scenarios[1].upstream[Messages],
		want: []Event{
			evStart("msg_01Tc2", "claude-sonnet-4-5", usage(100, 1, 40, 25)),
			evThinking(0, "The user wants ", ""), evThinking(0, "the weather.", ""),
			evThinking(0, "", "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="), evStop(0),
			evText(1, "Let me check "), evText(1, "the \"weather\"\n"), evStop(1),
			evCall(2, "call_1", "get_weather", ""), evArgs(2, `{"city":`), evArgs(2, `"Paris"}`), evStop(2),
			evCall(3, "call_2", "get_time", ""), evArgs(3, `{"tz":`), evArgs(3, `"CET"}`), evStop(3),
			evFinish(StopToolCalls), evUsage(100, 20, 40, 25), evEnd,
		},
	},
	{
		name: "redacted thinking, server tool blocks, a tool given whole, one without input",
		stream: messagesEvents(
			"message_start", messagesStartEvent,
			"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix/LafPsn4a"}}`,
			"content_block_stop", `{"type":"content_block_stop","index":0}`,
			"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}`,
			"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"x\"}"}}`,
			"content_block_stop", `{"type":"content_block_stop","index":1}`,
			"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]}}`,
			"content_block_stop", `{"type":"content_block_stop","index":2}`,
			"content_block_start", `{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_a","name":"f","input":{"x": [1, 2]}}}`,
			"content_block_stop", `{"type":"content_block_stop","index":3}`,
			"content_block_start", `{"type":"content_block_start","index":4,"content_block":{"type":"tool_use","id":"toolu_b","name":"g","input":{}}}`,
			"content_block_stop", `{"type":"content_block_stop","index":4}`,
			"content_block_start", `{"type":"content_block_start","index":5,"content_block":{"type":"text","text":""}}`,
			"content_block_delta", `{"type":"content_block_delta","index":5,"delta":{"type":"citations_delta","citation":{"type":"char_location"}}}`,
			"content_block_stop", `{"type":"content_block_stop","index":5}`,
			"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":6,"cache_read_input_tokens":2,"output_tokens":9}}`,
			"message_stop", `{"type":"message_stop"}`,
		),
		want: []Event{
			evStart("msg_T", "claude", usage(5, 1, 0, 0)),
			{Kind: EventThinkingDelta, Index: 0, Signature: "EmwKAhgBEgy3va3pzix/LafPsn4a", Redacted: true}, evStop(0),
			evCall(1, "toolu_a", "f", `{"x": [1, 2]}`), evStop(1),
			evCall(2, "toolu_b", "g", ""), evArgs(2, "{}"), evStop(2),
			evFinish(StopToolCalls), evUsage(8, 9, 2, 0), evEnd,
		},
	},
	{
		name: "an unstopped block, stop reasons, the event name for a type",
		stream: messagesEvents(
			"message_start", messagesStartEvent,
			"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"a"}}`,
			"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":"b"}}`,
			"message_delta", `{"delta":{"stop_reason":"refusal"},"usage":{"output_tokens":2}}`,
			"message_stop", `{}`,
		),
		want: []Event{
			evStart("msg_T", "claude", usage(5, 1, 0, 0)),
			evText(0, "a"), evStop(0), evText(1, "b"), evStop(1),
			evFinish(StopContentFilter), evUsage(5, 2, 0, 0), evEnd,
		},
	},
	{
		name: "error mid-stream",
		stream: messagesEvents(
			"message_start", messagesStartEvent,
			"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
			"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Par"}}`,
			"error", `{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"}}`,
		),
		want: []Event{evStart("msg_T", "claude", usage(5, 1, 0, 0)), evText(0, "Par"), evFail("overloaded_error", "Overloaded")},
	},
	{
		name: "ends before message_stop",
		stream: messagesEvents(
			"message_start", messagesStartEvent,
			"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
			"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Par"}}`,
		),
		want:    []Event{evStart("msg_T", "claude", usage(5, 1, 0, 0)), evText(0, "Par"), evFail("api_error", errTruncated.Error())},
		wantErr: errTruncated,
	},
	{
		name: "a delta for a block not started",
		stream: messagesEvents(
			"message_start", messagesStartEvent,
			"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`,
		),
		want:    []Event{evStart("msg_T", "claude", usage(5, 1, 0, 0)), evFail("api_error", "llmapi: upstream stream out of order: content block event for a block that is not open")},
		wantErr: errAny,
	},
	{
		name: "a delta of another kind than its block",
		stream: messagesEvents(
			"message_start", messagesStartEvent,
			"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`,
			"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`,
		),
		want:    []Event{evStart("msg_T", "claude", usage(5, 1, 0, 0)), evCall(0, "t", "f", ""), evFail("api_error", "llmapi: upstream stream out of order: a delta of another kind than its block")},
		wantErr: errAny,
	},
	{
		name: "a block started out of index order",
		stream: messagesEvents(
			"message_start", messagesStartEvent,
			"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`,
		),
		want:    []Event{evStart("msg_T", "claude", usage(5, 1, 0, 0)), evFail("api_error", "llmapi: upstream stream out of order: content block started out of index order")},
		wantErr: errAny,
	},
}

// TestMessagesStreamEncoder writes neutral events as a Messages stream:
// the exact events, and what anthropic-sdk-go's Message.Accumulate makes
// of them. The usage comes after the finish, as from a Chat upstream, so
// message_delta waits for the end and carries the input counts too.
func TestMessagesStreamEncoder(t *testing.T) {
	evs := []Event{
		evStart("chatcmpl-X", "gpt", nil),
		evThinking(0, "think", ""), evThinking(0, "", "sig"), evStop(0),
		{Kind: EventThinkingDelta, Index: 1, Signature: "opaque", Redacted: true}, evStop(1),
		evText(2, ""), evText(2, "Hi"),
		evCall(3, "call_1", "f", `{"a":`), evArgs(3, "1}"), evStop(3),
		evFinish(StopToolCalls), evUsage(100, 7, 60, 30), evEnd,
	}
	want := messagesEvents(
		"message_start", `{"type":"message_start","message":{"id":"msg_X","type":"message","role":"assistant","model":"gpt","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}}`,
		"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`,
		"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"think"}}`,
		"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig"}}`,
		"content_block_stop", `{"type":"content_block_stop","index":0}`,
		"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"opaque"}}`,
		"content_block_stop", `{"type":"content_block_stop","index":1}`,
		"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}`,
		"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Hi"}}`,
		"content_block_stop", `{"type":"content_block_stop","index":2}`,
		"content_block_start", `{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"call_1","name":"f","input":{}}}`,
		"content_block_delta", `{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}`,
		"content_block_delta", `{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"1}"}}`,
		"content_block_stop", `{"type":"content_block_stop","index":3}`,
		"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":10,"cache_creation_input_tokens":30,"cache_read_input_tokens":60,"output_tokens":7}}`,
		"message_stop", `{"type":"message_stop"}`,
	)
	got := encode(t, Messages, testOptions, evs)
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	sameView(t, view(t, Messages, got), clientView{
		Text: "Hi", Thinking: "think", Signature: "sigopaque",
		ToolCalls: []ToolCall{{ID: "call_1", Name: "f", Arguments: `{"a":1}`}},
		Stop:      StopToolCalls, Usage: Usage{InputTokens: 100, OutputTokens: 7, CacheReadTokens: 60, CacheWriteTokens: 30},
	})
}

// TestMessagesStreamEncoderBlocks: block indexes count from 0 in the order
// blocks are written, whatever the neutral indexes; a block is opened at
// its first delta (an empty text block never is) and stopped before the
// next opens even if its EventBlockStop did not come; message_delta comes
// with the end even without EventFinish.
func TestMessagesStreamEncoderBlocks(t *testing.T) {
	got := encode(t, Messages, testOptions, []Event{
		evStart("msg_B", "m", nil),
		evText(4, ""), evStop(4),
		evText(7, "a"),
		evCall(9, "t", "f", ""), evArgs(8, "lost: not the open block"), evArgs(9, "{}"),
		evText(12, "b"), evEnd,
	})
	var types []string
	for line := range strings.Lines(string(got)) {
		if rest, ok := strings.CutPrefix(line, "data: "); ok {
			types = append(types, rest[:min(len(rest), 50)])
		}
	}
	wantPrefixes := []string{
		`{"type":"message_start"`,
		`{"type":"content_block_start","index":0,"content_b`,
		`{"type":"content_block_delta","index":0,"delta":{"`,
		`{"type":"content_block_stop","index":0}`,
		`{"type":"content_block_start","index":1,"content_b`,
		`{"type":"content_block_delta","index":1,"delta":{"`,
		`{"type":"content_block_stop","index":1}`,
		`{"type":"content_block_start","index":2,"content_b`,
		`{"type":"content_block_delta","index":2,"delta":{"`,
		`{"type":"content_block_stop","index":2}`,
		`{"type":"message_delta","delta":{"stop_reason":"en`,
		`{"type":"message_stop"}`,
	}
	if len(types) != len(wantPrefixes) {
		t.Fatalf("events %q", types)
	}
	for i, p := range wantPrefixes {
		if !strings.HasPrefix(types[i], p) {
			t.Errorf("event %d is %s, want %s", i, types[i], p)
		}
	}
	sameView(t, view(t, Messages, got), clientView{Text: "ab", ToolCalls: []ToolCall{{ID: "t", Name: "f", Arguments: "{}"}}, Stop: StopEnd})
}

// TestMessagesStreamEncoderError writes an error event in Messages' terms
// and nothing after it.
func TestMessagesStreamEncoderError(t *testing.T) {
	for _, tc := range []struct{ neutral, want string }{
		{"overloaded_error", "overloaded_error"},
		{"rate_limit_error", "rate_limit_error"},
		{"something_new", "api_error"},
	} {
		got := encode(t, Messages, testOptions, []Event{evStart("msg_E", "m", nil), evText(0, "Par"), evFail(tc.neutral, "Boom"), evEnd})
		want := "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"" + tc.want + "\",\"message\":\"Boom\"}}\n\n"
		if !bytes.HasSuffix(got, []byte(want)) || bytes.Contains(got, []byte("message_stop")) {
			t.Errorf("%s: got\n%s", tc.neutral, got)
		}
		sameView(t, view(t, Messages, got), clientView{Text: "Par", Err: "Boom"})
	}
}

// FuzzMessagesStreamDecoder: see fuzzDecoder.
func FuzzMessagesStreamDecoder(f *testing.F) { fuzzDecoder(f, Messages) }

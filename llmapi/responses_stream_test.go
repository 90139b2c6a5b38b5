package llmapi

import (
	"bytes"
	"strings"
	"testing"
)

// responsesEvents writes Responses events (their data; the type is read
// from it) as a stream.
func responsesEvents(datas ...string) string {
	var b strings.Builder
	for _, d := range datas {
		typ, _, _ := strings.Cut(strings.TrimPrefix(d, `{"type":"`), `"`)
		b.WriteString("event: " + typ + "\ndata: " + d + "\n\n")
	}
	return b.String()
}

const responsesCreatedEvent = `{"type":"response.created","sequence_number":0,"response":{"id":"resp_T","object":"response","created_at":1,"status":"in_progress","model":"gpt-5","output":[],"usage":null}}`

// TestResponsesStreamDecoder reads Responses upstream streams: messages
// and function calls streamed, or sent whole in output_item.done only,
// reasoning items passed over, refusals, usage with cached tokens, the
// three ends (completed, incomplete, failed), the error event, and streams
// that end early or break the item order.
func TestResponsesStreamDecoder(t *testing.T) { testDecoder(t, Responses, responsesDecoderCases) }

var responsesDecoderCases = []decoderCase{
	{
		name:   "tools",
		stream: scenarios[1].upstream[Responses],
		want: []Event{
			evStart("resp_Tc2", "gpt-5", nil),
			evText(0, "Let me check "), evText(0, "the \"weather\"\n"), evStop(0),
			evCall(1, "call_1", "get_weather", ""), evArgs(1, `{"city":`), evArgs(1, `"Paris"}`), evStop(1),
			evCall(2, "call_2", "get_time", ""), evArgs(2, `{"tz":"CET"}`), evStop(2),
			evFinish(StopToolCalls), evUsage(100, 20, 40, 25), evEnd,
		},
	},
	{
		name: "items sent whole, a refusal, content_filter",
		stream: responsesEvents(
			responsesCreatedEvent,
			`{"type":"response.output_item.done","sequence_number":1,"output_index":0,"item":{"id":"msg_a","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"text":"one"},{"type":"output_text","annotations":[],"text":"two"}],"role":"assistant"}}`,
			`{"type":"response.output_item.done","sequence_number":2,"output_index":1,"item":{"id":"fc_a","type":"function_call","status":"completed","arguments":"{\"k\":true}","call_id":"call_a","name":"f"}}`,
			`{"type":"response.output_item.added","sequence_number":3,"output_index":2,"item":{"id":"msg_b","type":"message","status":"in_progress","content":[],"role":"assistant"}}`,
			`{"type":"response.content_part.added","sequence_number":4,"item_id":"msg_b","output_index":2,"content_index":0,"part":{"type":"refusal","refusal":""}}`,
			`{"type":"response.refusal.delta","sequence_number":5,"item_id":"msg_b","output_index":2,"content_index":0,"delta":"I can't"}`,
			`{"type":"response.refusal.done","sequence_number":6,"item_id":"msg_b","output_index":2,"content_index":0,"refusal":"I can't"}`,
			`{"type":"response.output_item.done","sequence_number":7,"output_index":2,"item":{"id":"msg_b","type":"message","status":"completed","content":[{"type":"refusal","refusal":"I can't"}],"role":"assistant"}}`,
			`{"type":"response.incomplete","sequence_number":8,"response":{"id":"resp_T","status":"incomplete","incomplete_details":{"reason":"content_filter"},"output":[],"usage":{"input_tokens":4,"output_tokens":3,"total_tokens":7}}}`,
		),
		want: []Event{
			evStart("resp_T", "gpt-5", nil),
			evText(0, "one"), evStop(0), evText(1, "two"), evStop(1),
			evCall(2, "call_a", "f", `{"k":true}`), evStop(2),
			evText(3, "I can't"), evStop(3),
			evFinish(StopContentFilter), evUsage(4, 3, 0, 0), evEnd,
		},
	},
	{
		name: "done events without deltas, a call without arguments, the next part",
		stream: responsesEvents(
			responsesCreatedEvent,
			`{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_a","type":"message","status":"in_progress","content":[],"role":"assistant"}}`,
			`{"type":"response.output_text.done","sequence_number":2,"item_id":"msg_a","output_index":0,"content_index":0,"text":"whole"}`,
			`{"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_a","output_index":0,"content_index":1,"delta":"next"}`,
			`{"type":"response.output_item.added","sequence_number":4,"output_index":1,"item":{"id":"fc_a","type":"function_call","status":"in_progress","arguments":"","call_id":"call_a","name":"f"}}`,
			`{"type":"response.function_call_arguments.done","sequence_number":5,"item_id":"fc_a","output_index":1,"arguments":"{\"x\":1}"}`,
			`{"type":"response.output_item.added","sequence_number":6,"output_index":2,"item":{"id":"fc_b","type":"function_call","status":"in_progress","arguments":"","call_id":"call_b","name":"g"}}`,
			`{"type":"response.output_item.done","sequence_number":7,"output_index":2,"item":{"id":"fc_b","type":"function_call","status":"completed","arguments":"","call_id":"call_b","name":"g"}}`,
			`{"type":"response.completed","sequence_number":8,"response":{"id":"resp_T","status":"completed","output":[]}}`,
		),
		want: []Event{
			evStart("resp_T", "gpt-5", nil),
			evText(0, "whole"), evStop(0), evText(1, "next"), evStop(1),
			evCall(2, "call_a", "f", ""), evArgs(2, `{"x":1}`), evStop(2),
			evCall(3, "call_b", "g", ""), evArgs(3, "{}"), evStop(3),
			evFinish(StopToolCalls), evEnd,
		},
	},
	{
		name: "response.failed",
		stream: responsesEvents(
			responsesCreatedEvent,
			`{"type":"response.output_text.delta","sequence_number":1,"item_id":"msg_a","output_index":0,"content_index":0,"delta":"Par"}`,
			`{"type":"response.failed","sequence_number":2,"response":{"id":"resp_T","status":"failed","error":{"code":"rate_limit_exceeded","message":"Slow down"},"output":[]}}`,
		),
		want: []Event{evStart("resp_T", "gpt-5", nil), evText(0, "Par"), evFail("rate_limit_error", "Slow down")},
	},
	{
		name: "the error event",
		stream: responsesEvents(
			responsesCreatedEvent,
			`{"type":"error","sequence_number":1,"code":"server_error","message":"The server had an error","param":null}`,
		),
		want: []Event{evStart("resp_T", "gpt-5", nil), evFail("api_error", "The server had an error")},
	},
	{
		name: "ends before response.completed",
		stream: responsesEvents(
			responsesCreatedEvent,
			`{"type":"response.output_text.delta","sequence_number":1,"item_id":"msg_a","output_index":0,"content_index":0,"delta":"Par"}`,
		),
		want:    []Event{evStart("resp_T", "gpt-5", nil), evText(0, "Par"), evFail("api_error", errTruncated.Error())},
		wantErr: errTruncated,
	},
	{
		name: "arguments after their done event",
		stream: responsesEvents(
			responsesCreatedEvent,
			`{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"fc_a","type":"function_call","status":"in_progress","arguments":"","call_id":"call_a","name":"f"}}`,
			`{"type":"response.function_call_arguments.done","sequence_number":2,"item_id":"fc_a","output_index":0,"arguments":"{}"}`,
			`{"type":"response.function_call_arguments.delta","sequence_number":3,"item_id":"fc_a","output_index":0,"delta":"{}"}`,
		),
		want: []Event{
			evStart("resp_T", "gpt-5", nil), evCall(0, "call_a", "f", ""), evArgs(0, "{}"), evStop(0),
			evFail("api_error", "llmapi: upstream stream out of order: function call arguments for an item that is not the open call"),
		},
		wantErr: errAny,
	},
	{
		name: "arguments for an earlier item",
		stream: responsesEvents(
			responsesCreatedEvent,
			`{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"fc_a","type":"function_call","status":"in_progress","arguments":"","call_id":"call_a","name":"f"}}`,
			`{"type":"response.output_item.added","sequence_number":2,"output_index":1,"item":{"id":"fc_b","type":"function_call","status":"in_progress","arguments":"","call_id":"call_b","name":"g"}}`,
			`{"type":"response.function_call_arguments.delta","sequence_number":3,"item_id":"fc_a","output_index":0,"delta":"{}"}`,
		),
		want: []Event{
			evStart("resp_T", "gpt-5", nil), evCall(0, "call_a", "f", ""), evArgs(0, "{}"), evStop(0), evCall(1, "call_b", "g", ""),
			evFail("api_error", "llmapi: upstream stream out of order: function call arguments for an item that is not the open call"),
		},
		wantErr: errAny,
	},
}

// TestResponsesStreamEncoder writes neutral events as a Responses stream:
// the exact events for a text and a call, and what openai-go's event
// types and the order checks of responsesView make of them.
func TestResponsesStreamEncoder(t *testing.T) {
	evs := []Event{
		evStart("msg_01R", "claude", usage(9, 1, 0, 0)),
		evThinking(0, "hidden", "sig"), evStop(0),
		evText(1, "Hi"), evStop(1),
		evCall(2, "toolu_1", "f", `{"a":`), evArgs(2, "1}"), evStop(2),
		evFinish(StopToolCalls), evUsage(9, 4, 5, 2), evEnd,
	}
	resp := func(status, output, usage string) string {
		return `"response":{"id":"resp_01R","object":"response","created_at":1700000000,"status":"` + status + `","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"claude","output":[` + output + `],"parallel_tool_calls":true,"previous_response_id":null,"temperature":null,"tool_choice":"auto","tools":[],"top_p":null,"metadata":{},"usage":` + usage + `}`
	}
	msgDone := `{"id":"msg_01R_0","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"Hi"}],"role":"assistant"}`
	callDone := `{"id":"fc_01R_1","type":"function_call","status":"completed","arguments":"{\"a\":1}","call_id":"toolu_1","name":"f"}`
	want := responsesEvents(
		`{"type":"response.created","sequence_number":0,`+resp("in_progress", "", "null")+`}`,
		`{"type":"response.in_progress","sequence_number":1,`+resp("in_progress", "", "null")+`}`,
		`{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_01R_0","type":"message","status":"in_progress","content":[],"role":"assistant"}}`,
		`{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_01R_0","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}}`,
		`{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_01R_0","output_index":0,"content_index":0,"delta":"Hi","logprobs":[]}`,
		`{"type":"response.output_text.done","sequence_number":5,"item_id":"msg_01R_0","output_index":0,"content_index":0,"text":"Hi","logprobs":[]}`,
		`{"type":"response.content_part.done","sequence_number":6,"item_id":"msg_01R_0","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":"Hi"}}`,
		`{"type":"response.output_item.done","sequence_number":7,"output_index":0,"item":`+msgDone+`}`,
		`{"type":"response.output_item.added","sequence_number":8,"output_index":1,"item":{"id":"fc_01R_1","type":"function_call","status":"in_progress","arguments":"","call_id":"toolu_1","name":"f"}}`,
		`{"type":"response.function_call_arguments.delta","sequence_number":9,"item_id":"fc_01R_1","output_index":1,"delta":"{\"a\":"}`,
		`{"type":"response.function_call_arguments.delta","sequence_number":10,"item_id":"fc_01R_1","output_index":1,"delta":"1}"}`,
		`{"type":"response.function_call_arguments.done","sequence_number":11,"item_id":"fc_01R_1","output_index":1,"arguments":"{\"a\":1}"}`,
		`{"type":"response.output_item.done","sequence_number":12,"output_index":1,"item":`+callDone+`}`,
		`{"type":"response.completed","sequence_number":13,`+resp("completed", msgDone+","+callDone,
			`{"input_tokens":9,"input_tokens_details":{"cached_tokens":5,"cache_write_tokens":2},"output_tokens":4,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":13}`)+`}`,
	)
	got := encode(t, Responses, testOptions, evs)
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	sameView(t, view(t, Responses, got), clientView{Text: "Hi", ToolCalls: []ToolCall{{ID: "toolu_1", Name: "f", Arguments: `{"a":1}`}},
		Stop: StopToolCalls, Usage: Usage{InputTokens: 9, OutputTokens: 4, CacheReadTokens: 5, CacheWriteTokens: 2}})
}

// TestResponsesStreamEncoderEnds: the neutral stop reasons and errors end
// a Responses stream with response.incomplete (and its reason),
// response.completed or response.failed (with a code Codex knows).
func TestResponsesStreamEncoderEnds(t *testing.T) {
	for _, tc := range []struct {
		last Event
		want string
		view clientView
	}{
		{evFinish(StopLength), `"type":"response.incomplete"`, clientView{Text: "a", Stop: StopLength}},
		{evFinish(StopContentFilter), `"incomplete_details":{"reason":"content_filter"}`, clientView{Text: "a", Stop: StopContentFilter}},
		{evFinish(StopEnd), `"type":"response.completed"`, clientView{Text: "a", Stop: StopEnd}},
		{evFail("overloaded_error", "Busy"), `"status":"failed","background":false,"error":{"code":"server_is_overloaded","message":"Busy"}`, clientView{Text: "a", Err: "server_is_overloaded: Busy"}},
		{evFail("invalid_request_error", "Bad"), `"error":{"code":"invalid_prompt","message":"Bad"}`, clientView{Text: "a", Err: "invalid_prompt: Bad"}},
	} {
		got := encode(t, Responses, testOptions, []Event{evStart("resp_E", "m", nil), evText(0, "a"), evStop(0), tc.last, evEnd})
		if !bytes.Contains(got, []byte(tc.want)) {
			t.Errorf("no %s in\n%s", tc.want, got)
		}
		sameView(t, view(t, Responses, got), tc.view)
	}
}

// FuzzResponsesStreamDecoder: see fuzzDecoder.
func FuzzResponsesStreamDecoder(f *testing.F) { fuzzDecoder(f, Responses) }

package llmapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	antssestream "github.com/anthropics/anthropic-sdk-go/packages/ssestream"
	"github.com/openai/openai-go/v3"
	oaissestream "github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/responses"
)

// The streams of one model response as each API's upstream sends it, what
// a client of each API must see of it, and the machinery to translate a
// stream and read the result with the official SDK of the client's API.

// apis are the three APIs, for the pair tests.
var apis = [...]API{Chat, Messages, Responses}

// clientView is what a client's SDK made of a stream, in neutral terms.
type clientView struct {
	Text      string
	Thinking  string // Messages clients only
	Signature string
	ToolCalls []ToolCall
	Stop      StopReason
	Usage     Usage
	Err       string // the error's message; the SDK's error contains it
}

// scenario is one model response, as each API streams it.
type scenario struct {
	name     string
	upstream [3]string // by API
	want     clientView
}

var scenarios = []scenario{
	{
		name: "text",
		upstream: [3]string{
			Chat: `data: {"id":"chatcmpl-Ab1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-Ab1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"H\u00e9llo, "},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-Ab1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"世界 \ud83d\ude00 <b>&amp;</b>"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-Ab1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}

data: {"id":"chatcmpl-Ab1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}

data: [DONE]

`,
			Messages: `event: message_start
data: {"type":"message_start","message":{"id":"msg_01Ab1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Héllo, "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"世界 😀 <b>&amp;</b>"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}

event: message_stop
data: {"type":"message_stop"}

`,
			Responses: `event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_Ab1","object":"response","created_at":1700000000,"status":"in_progress","error":null,"incomplete_details":null,"model":"gpt-5","output":[],"usage":null}}

event: response.in_progress
data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_Ab1","object":"response","created_at":1700000000,"status":"in_progress","error":null,"incomplete_details":null,"model":"gpt-5","output":[],"usage":null}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}

event: response.content_part.added
data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Héllo, ","logprobs":[]}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"世界 😀 <b>&amp;</b>","logprobs":[]}

event: response.output_text.done
data: {"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":"Héllo, 世界 😀 <b>&amp;</b>","logprobs":[]}

event: response.content_part.done
data: {"type":"response.content_part.done","sequence_number":7,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":"Héllo, 世界 😀 <b>&amp;</b>"}}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":{"id":"msg_1","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"Héllo, 世界 😀 <b>&amp;</b>"}],"role":"assistant"}}

event: response.completed
data: {"type":"response.completed","sequence_number":9,"response":{"id":"resp_Ab1","object":"response","created_at":1700000000,"status":"completed","error":null,"incomplete_details":null,"model":"gpt-5","output":[{"id":"msg_1","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"Héllo, 世界 😀 <b>&amp;</b>"}],"role":"assistant"}],"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":15}}}

`,
		},
		want: clientView{Text: "Héllo, 世界 😀 <b>&amp;</b>", Stop: StopEnd, Usage: Usage{InputTokens: 10, OutputTokens: 5}},
	},
	{
		name: "tools",
		upstream: [3]string{
			// The first call comes whole in one chunk: id, name and arguments.
			Chat: `data: {"id":"chatcmpl-Tc2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-Tc2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Let me check "},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-Tc2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"the \"weather\"\n"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-Tc2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-Tc2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"get_time","arguments":""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-Tc2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-Tc2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"CET\"}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-Tc2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}

data: {"id":"chatcmpl-Tc2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":40,"cache_write_tokens":25}}}

data: [DONE]

`,
			Messages: `event: message_start
data: {"type":"message_start","message":{"id":"msg_01Tc2","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":35,"cache_creation_input_tokens":25,"cache_read_input_tokens":40,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"the weather."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me check "}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"the \"weather\"\n"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_1","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: content_block_start
data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"call_2","name":"get_time","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"tz\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"\"CET\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":3}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":20}}

event: message_stop
data: {"type":"message_stop"}

`,
			// A reasoning item comes first: it is not read.
			Responses: `event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_Tc2","object":"response","created_at":1700000000,"status":"in_progress","error":null,"incomplete_details":null,"model":"gpt-5","output":[],"usage":null}}

event: response.in_progress
data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_Tc2","object":"response","created_at":1700000000,"status":"in_progress","error":null,"incomplete_details":null,"model":"gpt-5","output":[],"usage":null}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":3,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[],"encrypted_content":"gAAAAB"}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":4,"output_index":1,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}

event: response.content_part.added
data: {"type":"response.content_part.added","sequence_number":5,"item_id":"msg_1","output_index":1,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":6,"item_id":"msg_1","output_index":1,"content_index":0,"delta":"Let me check ","logprobs":[]}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":7,"item_id":"msg_1","output_index":1,"content_index":0,"delta":"the \"weather\"\n","logprobs":[]}

event: response.output_text.done
data: {"type":"response.output_text.done","sequence_number":8,"item_id":"msg_1","output_index":1,"content_index":0,"text":"Let me check the \"weather\"\n","logprobs":[]}

event: response.content_part.done
data: {"type":"response.content_part.done","sequence_number":9,"item_id":"msg_1","output_index":1,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":"Let me check the \"weather\"\n"}}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":10,"output_index":1,"item":{"id":"msg_1","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"Let me check the \"weather\"\n"}],"role":"assistant"}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":11,"output_index":2,"item":{"id":"fc_1","type":"function_call","status":"in_progress","arguments":"","call_id":"call_1","name":"get_weather"}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":12,"item_id":"fc_1","output_index":2,"delta":"{\"city\":"}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":13,"item_id":"fc_1","output_index":2,"delta":"\"Paris\"}"}

event: response.function_call_arguments.done
data: {"type":"response.function_call_arguments.done","sequence_number":14,"item_id":"fc_1","output_index":2,"arguments":"{\"city\":\"Paris\"}"}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":15,"output_index":2,"item":{"id":"fc_1","type":"function_call","status":"completed","arguments":"{\"city\":\"Paris\"}","call_id":"call_1","name":"get_weather"}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":16,"output_index":3,"item":{"id":"fc_2","type":"function_call","status":"in_progress","arguments":"","call_id":"call_2","name":"get_time"}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":17,"item_id":"fc_2","output_index":3,"delta":"{\"tz\":\"CET\"}"}

event: response.function_call_arguments.done
data: {"type":"response.function_call_arguments.done","sequence_number":18,"item_id":"fc_2","output_index":3,"arguments":"{\"tz\":\"CET\"}"}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":19,"output_index":3,"item":{"id":"fc_2","type":"function_call","status":"completed","arguments":"{\"tz\":\"CET\"}","call_id":"call_2","name":"get_time"}}

event: response.completed
data: {"type":"response.completed","sequence_number":20,"response":{"id":"resp_Tc2","object":"response","created_at":1700000000,"status":"completed","error":null,"incomplete_details":null,"model":"gpt-5","output":[],"usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":40,"cache_write_tokens":25},"output_tokens":20,"output_tokens_details":{"reasoning_tokens":8},"total_tokens":120}}}

`,
		},
		want: clientView{
			Text:      "Let me check the \"weather\"\n",
			Thinking:  "The user wants the weather.",
			Signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds=",
			ToolCalls: []ToolCall{
				{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`},
				{ID: "call_2", Name: "get_time", Arguments: `{"tz":"CET"}`},
			},
			Stop:  StopToolCalls,
			Usage: Usage{InputTokens: 100, OutputTokens: 20, CacheReadTokens: 40, CacheWriteTokens: 25},
		},
	},
	{
		name: "length",
		upstream: [3]string{
			Chat: `data: {"id":"chatcmpl-Ln3","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Once upon"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-Ln3","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" a time"},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}

data: [DONE]

`,
			Messages: `event: message_start
data: {"type":"message_start","message":{"id":"msg_01Ln3","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":7,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Once upon"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" a time"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":3}}

event: message_stop
data: {"type":"message_stop"}

`,
			Responses: `event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_Ln3","object":"response","created_at":1700000000,"status":"in_progress","model":"gpt-5","output":[]}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}

event: response.content_part.added
data: {"type":"response.content_part.added","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"text":""}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Once upon"}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":" a time"}

event: response.incomplete
data: {"type":"response.incomplete","sequence_number":5,"response":{"id":"resp_Ln3","object":"response","created_at":1700000000,"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"model":"gpt-5","output":[],"usage":{"input_tokens":7,"input_tokens_details":{"cached_tokens":0},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":10}}}

`,
		},
		want: clientView{Text: "Once upon a time", Stop: StopLength, Usage: Usage{InputTokens: 7, OutputTokens: 3}},
	},
	{
		name: "error",
		upstream: [3]string{
			Chat: `data: {"id":"chatcmpl-Er4","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Partial"},"logprobs":null,"finish_reason":null}]}

data: {"error":{"message":"Overloaded","type":"server_error","param":null,"code":"server_is_overloaded"}}

`,
			Messages: `event: message_start
data: {"type":"message_start","message":{"id":"msg_01Er4","type":"message","role":"assistant","model":"claude-opus-4-1","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":7,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Partial"}}

event: error
data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}

`,
			Responses: `event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_Er4","object":"response","created_at":1700000000,"status":"in_progress","model":"gpt-5","output":[]}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Partial"}

event: response.failed
data: {"type":"response.failed","sequence_number":3,"response":{"id":"resp_Er4","object":"response","created_at":1700000000,"status":"failed","error":{"code":"server_is_overloaded","message":"Overloaded"},"incomplete_details":null,"model":"gpt-5","output":[],"usage":null}}

`,
		},
		want: clientView{Text: "Partial", Err: "Overloaded"},
	},
}

// testOptions are the encoder options of the tests: a fixed clock, the
// usage chunk asked for, and the ids taken from the upstream.
var testOptions = StreamOptions{IncludeUsage: true, Created: 1700000000}

// collect decodes stream, given in chunks, as api's, returning the events
// (Close's included) and the first error.
func collect(api API, chunks ...[]byte) ([]Event, error) {
	dec := NewStreamDecoder(api)
	var evs []Event
	emit := func(ev Event) { evs = append(evs, ev) }
	var first error
	for _, c := range chunks {
		if err := dec.Decode(c, emit); err != nil && first == nil {
			first = err
		}
	}
	if err := dec.Close(emit); err != nil && first == nil {
		first = err
	}
	return evs, first
}

// translate decodes stream, given in chunks, as from's and encodes it for
// a client of to.
func translate(t testing.TB, from, to API, opts StreamOptions, chunks ...[]byte) []byte {
	t.Helper()
	evs, _ := collect(from, chunks...)
	return encode(t, to, opts, evs)
}

// encode writes evs as api's stream.
func encode(t testing.TB, api API, opts StreamOptions, evs []Event) []byte {
	t.Helper()
	enc := NewStreamEncoder(api, opts)
	var out bytes.Buffer
	for _, ev := range evs {
		if err := enc.Encode(&out, ev); err != nil {
			t.Fatalf("Encode(%+v): %v", ev, err)
		}
	}
	return out.Bytes()
}

// checkNeutral fails unless evs keep the order of the neutral stream:
// EventStart first, blocks numbered from 0 one after another, each delta
// in the open block, one EventFinish, and EventEnd or EventError last.
func checkNeutral(t testing.TB, evs []Event) {
	t.Helper()
	if err := neutralOrder(evs); err != nil {
		t.Fatalf("%v in %+v", err, evs)
	}
}

func neutralOrder(evs []Event) error {
	open, next, finished := -1, 0, false
	for i, ev := range evs {
		switch {
		case i == 0 && ev.Kind != EventStart && ev.Kind != EventError:
			return fmt.Errorf("event 0 is %d, not EventStart", ev.Kind)
		case i > 0 && ev.Kind == EventStart:
			return fmt.Errorf("EventStart at %d", i)
		case (ev.Kind == EventEnd || ev.Kind == EventError) && i != len(evs)-1:
			return fmt.Errorf("event %d ends the stream before its last", i)
		}
		switch ev.Kind {
		case EventTextDelta, EventThinkingDelta, EventToolCallStart:
			if ev.Index != open {
				if ev.Index != next || open != -1 {
					return fmt.Errorf("event %d opens block %d (open %d, next %d)", i, ev.Index, open, next)
				}
				if ev.Kind == EventToolCallStart && ev.ToolCall == nil || ev.Kind == EventToolCallStart && ev.ToolCall.ID == "" {
					return fmt.Errorf("event %d: tool call without an id", i)
				}
				open, next = ev.Index, next+1
			} else if ev.Kind == EventToolCallStart {
				return fmt.Errorf("event %d starts open block %d again", i, open)
			}
			if finished {
				return fmt.Errorf("event %d: a delta after EventFinish", i)
			}
		case EventToolCallDelta:
			if ev.Index != open {
				return fmt.Errorf("event %d: arguments for block %d, open %d", i, ev.Index, open)
			}
		case EventBlockStop:
			if ev.Index != open {
				return fmt.Errorf("event %d stops block %d, open %d", i, ev.Index, open)
			}
			open = -1
		case EventFinish:
			if finished || open != -1 {
				return fmt.Errorf("event %d: EventFinish again or with block %d open", i, open)
			}
			finished = true
		case EventUsage:
			if ev.Usage == nil {
				return fmt.Errorf("event %d: EventUsage without usage", i)
			}
		case EventEnd:
			if !finished {
				return fmt.Errorf("EventEnd without EventFinish")
			}
		case EventError:
			if ev.Error == nil || ev.Error.Type == "" || ev.Error.Message == "" {
				return fmt.Errorf("event %d: EventError without type or message: %+v", i, ev.Error)
			}
		}
	}
	return nil
}

// sseResponse is an HTTP response with body b, for an SDK's SSE decoder.
func sseResponse(b []byte) *http.Response {
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": []string{"text/event-stream"}},
		Body:       io.NopCloser(bytes.NewReader(b)),
	}
}

// view reads a stream of api with that API's official SDK, failing the
// test where the SDK rejects it or it breaks the API's event order.
func view(t testing.TB, api API, b []byte) clientView {
	t.Helper()
	var v clientView
	var err error
	switch api {
	case Chat:
		v, err = chatView(b)
	case Messages:
		v, err = messagesView(b)
	case Responses:
		v, err = responsesView(b)
	}
	if err != nil {
		t.Fatalf("%v client: %v in\n%s", api, err, b)
	}
	return v
}

// chatView reads a Chat stream with openai-go's ssestream and its
// ChatCompletionAccumulator.
func chatView(b []byte) (clientView, error) {
	var v clientView
	stream := oaissestream.NewStream[openai.ChatCompletionChunk](oaissestream.NewDecoder(sseResponse(b)), nil)
	var acc openai.ChatCompletionAccumulator
	var first openai.ChatCompletionChunk
	n, finishes, usages := 0, 0, 0
	for stream.Next() {
		c := stream.Current()
		switch {
		case c.Object != "chat.completion.chunk":
			return v, fmt.Errorf("chunk %d is a %q", n, c.Object)
		case n == 0 && (len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant"):
			return v, fmt.Errorf("the first chunk gives no role")
		case n == 0:
			first = c
		case c.ID != first.ID || c.Created != first.Created || c.Model != first.Model:
			return v, fmt.Errorf("chunk %d: id, created, model %q %d %q, first %q %d %q", n, c.ID, c.Created, c.Model, first.ID, first.Created, first.Model)
		}
		if !acc.AddChunk(c) {
			return v, fmt.Errorf("the accumulator refused chunk %d", n)
		}
		for _, ch := range c.Choices {
			if ch.FinishReason != "" {
				finishes++
			}
			if usages > 0 {
				return v, fmt.Errorf("a choice after the usage chunk")
			}
		}
		if c.JSON.Usage.Valid() {
			if len(c.Choices) != 0 || finishes != 1 {
				return v, fmt.Errorf("usage in chunk %d, with choices or before the finish", n)
			}
			usages++
			// the accumulator does not add cache_write_tokens up
			v.Usage.CacheWriteTokens = int(c.Usage.PromptTokensDetails.CacheWriteTokens)
		}
		n++
	}
	if err := stream.Err(); err != nil {
		v.Err = err.Error()
	} else if !bytes.HasSuffix(b, []byte("data: [DONE]\n\n")) {
		return v, errors.New("no [DONE] at the end")
	}
	if v.Err == "" && finishes != 1 || finishes > 1 || usages > 1 {
		return v, fmt.Errorf("%d finish_reason chunks, %d usage chunks", finishes, usages)
	}
	if len(acc.Choices) > 0 {
		m := acc.Choices[0].Message
		v.Text = m.Content
		for _, tc := range m.ToolCalls {
			if tc.Type != "function" {
				return v, fmt.Errorf("tool call of type %q", tc.Type)
			}
			v.ToolCalls = append(v.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		v.Stop = StopReason(acc.Choices[0].FinishReason)
	}
	u := acc.Usage
	v.Usage = Usage{InputTokens: int(u.PromptTokens), OutputTokens: int(u.CompletionTokens),
		CacheReadTokens: int(u.PromptTokensDetails.CachedTokens), CacheWriteTokens: v.Usage.CacheWriteTokens}
	if u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		return v, fmt.Errorf("total_tokens %d", u.TotalTokens)
	}
	return v, nil
}

// messagesView reads a Messages stream with anthropic-sdk-go's ssestream
// and Message.Accumulate, and checks the block order Claude Code needs.
func messagesView(b []byte) (clientView, error) {
	var v clientView
	stream := antssestream.NewStream[anthropic.MessageStreamEventUnion](antssestream.NewDecoder(sseResponse(b)), nil)
	var msg anthropic.Message
	var types []string
	open, next := -1, 0
	for stream.Next() {
		ev := stream.Current()
		if err := msg.Accumulate(ev); err != nil {
			return v, err
		}
		types = append(types, ev.Type)
		switch ev.Type {
		case "content_block_start":
			if open != -1 || ev.Index != int64(next) {
				return v, fmt.Errorf("block %d starts with block %d open", ev.Index, open)
			}
			open, next = int(ev.Index), next+1
		case "content_block_delta":
			if ev.Index != int64(open) {
				return v, fmt.Errorf("delta for block %d, open %d", ev.Index, open)
			}
		case "content_block_stop":
			if ev.Index != int64(open) {
				return v, fmt.Errorf("stop of block %d, open %d", ev.Index, open)
			}
			open = -1
		case "message_delta", "message_stop":
			if open != -1 {
				return v, fmt.Errorf("%s with block %d open", ev.Type, open)
			}
		}
	}
	if err := stream.Err(); err != nil {
		v.Err = err.Error()
	} else if len(types) < 3 || types[len(types)-2] != "message_delta" || types[len(types)-1] != "message_stop" {
		return v, fmt.Errorf("the stream does not end with message_delta, message_stop: %v", types)
	}
	if v.Err == "" && (len(types) == 0 || types[0] != "message_start") {
		return v, fmt.Errorf("the stream does not start with message_start: %v", types)
	}
	if len(types) > 0 && (!strings.HasPrefix(msg.ID, "msg_") || msg.Role != "assistant") {
		return v, fmt.Errorf("message id %q role %q", msg.ID, msg.Role)
	}
	for _, block := range msg.Content {
		switch block.Type {
		case "text":
			v.Text += block.Text
		case "thinking":
			v.Thinking += block.Thinking
			v.Signature += block.Signature
		case "redacted_thinking":
			v.Signature += block.Data
		case "tool_use":
			v.ToolCalls = append(v.ToolCalls, ToolCall{ID: block.ID, Name: block.Name, Arguments: string(block.Input)})
		}
	}
	if msg.StopReason != "" {
		v.Stop = messagesStopReason(string(msg.StopReason))
	}
	u := msg.Usage
	v.Usage = Usage{
		InputTokens:      int(u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens),
		OutputTokens:     int(u.OutputTokens),
		CacheReadTokens:  int(u.CacheReadInputTokens),
		CacheWriteTokens: int(u.CacheCreationInputTokens),
	}
	return v, nil
}

// responsesView reads a Responses stream with openai-go's ssestream into
// its ResponseStreamEventUnion events, and with its ResponseAccumulator,
// checking what openai-python's
// stream helper and Codex need: response.created first, sequence numbers
// from 0, each item added, its content, then done, the ids and indexes
// consistent, the done texts the deltas', and a last event that ends the
// response with the items done as its output.
func responsesView(b []byte) (clientView, error) {
	var v clientView
	stream := oaissestream.NewStream[responses.ResponseStreamEventUnion](oaissestream.NewDecoder(sseResponse(b)), nil)
	var acc responses.ResponseAccumulator // openai-go's own projection of the events
	var (
		seq      int64
		id       string
		item     *responses.ResponseOutputItemUnion // the open item
		text     string                             // its text or arguments
		part     bool                               // its output_text part is open
		textDone bool
		done     []responses.ResponseOutputItemUnion
		final    *responses.Response
	)
	for stream.Next() {
		ev := stream.Current()
		var sev responses.ResponsesServerEventUnion
		if err := json.Unmarshal([]byte(ev.RawJSON()), &sev); err != nil {
			return v, err
		}
		if err := acc.AddEvent(sev); err != nil {
			return v, fmt.Errorf("ResponseAccumulator: %s: %w", ev.Type, err)
		}
		if ev.SequenceNumber != seq {
			return v, fmt.Errorf("%s has sequence_number %d, want %d", ev.Type, ev.SequenceNumber, seq)
		}
		seq++
		if final != nil {
			return v, fmt.Errorf("%s after the response ended", ev.Type)
		}
		wantItem := ev.ItemID == "" || item != nil && ev.ItemID == item.ID && ev.OutputIndex == int64(len(done))
		switch ev.Type {
		case "response.created", "response.in_progress":
			if seq-1 != map[string]int64{"response.created": 0, "response.in_progress": 1}[ev.Type] {
				return v, fmt.Errorf("%s is event %d", ev.Type, seq-1)
			}
			if ev.Response.Status != "in_progress" || !strings.HasPrefix(ev.Response.ID, "resp_") || ev.Response.Object != "response" {
				return v, fmt.Errorf("%s: status %q id %q", ev.Type, ev.Response.Status, ev.Response.ID)
			}
			id = ev.Response.ID
		case "response.output_item.added":
			if item != nil || ev.OutputIndex != int64(len(done)) || ev.Item.ID == "" {
				return v, fmt.Errorf("item %q added at %d with %d done, one open: %v", ev.Item.ID, ev.OutputIndex, len(done), item != nil)
			}
			it := ev.Item
			item, text, part, textDone = &it, "", false, false
			if it.Status != "in_progress" || it.Type == "function_call" && (it.Arguments.OfString != "" || it.CallID == "" || it.Name == "") {
				return v, fmt.Errorf("item added: %s", it.RawJSON())
			}
		case "response.content_part.added":
			if !wantItem || item == nil || item.Type != "message" || part || ev.ContentIndex != 0 || ev.Part.Type != "output_text" || ev.Part.Text != "" {
				return v, fmt.Errorf("content_part.added: %s", ev.RawJSON())
			}
			part = true
		case "response.output_text.delta":
			if !wantItem || !part || textDone || ev.ContentIndex != 0 {
				return v, fmt.Errorf("output_text.delta out of its part: %s", ev.RawJSON())
			}
			text += ev.Delta
			v.Text += ev.Delta
		case "response.output_text.done":
			if !wantItem || !part || ev.Text != text {
				return v, fmt.Errorf("output_text.done %q, deltas %q", ev.Text, text)
			}
			textDone = true
		case "response.content_part.done":
			if !wantItem || !textDone || ev.Part.Text != text {
				return v, fmt.Errorf("content_part.done: %s", ev.RawJSON())
			}
			part = false
		case "response.function_call_arguments.delta":
			if !wantItem || item.Type != "function_call" {
				return v, fmt.Errorf("arguments delta out of its call: %s", ev.RawJSON())
			}
			text += ev.Delta
		case "response.function_call_arguments.done":
			if !wantItem || item.Type != "function_call" || ev.Arguments != text {
				return v, fmt.Errorf("arguments done %q, deltas %q", ev.Arguments, text)
			}
			textDone = true
		case "response.output_item.done":
			it := ev.Item
			if item == nil || it.ID != item.ID || ev.OutputIndex != int64(len(done)) || it.Status != "completed" || !textDone || part {
				return v, fmt.Errorf("output_item.done: %s", ev.RawJSON())
			}
			switch it.Type {
			case "message":
				if len(it.Content) != 1 || it.Content[0].Text != text {
					return v, fmt.Errorf("message done with %s, deltas %q", it.RawJSON(), text)
				}
			case "function_call":
				if it.Arguments.OfString != text || it.CallID != item.CallID || it.Name != item.Name {
					return v, fmt.Errorf("call done with %s, deltas %q", it.RawJSON(), text)
				}
				v.ToolCalls = append(v.ToolCalls, ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments.OfString})
			}
			done = append(done, it)
			item = nil
		case "response.completed", "response.incomplete", "response.failed":
			r := ev.Response
			final = &r
			if r.ID != id || r.Status != responses.ResponseStatus(strings.TrimPrefix(ev.Type, "response.")) && !(ev.Type == "response.completed" && r.Status == "completed") {
				return v, fmt.Errorf("%s: response %q status %q", ev.Type, r.ID, r.Status)
			}
			if ev.Type != "response.failed" && item != nil {
				return v, fmt.Errorf("%s with item %q open", ev.Type, item.ID)
			}
			if len(r.Output) != len(done) {
				return v, fmt.Errorf("%s: %d items in the output, %d done", ev.Type, len(r.Output), len(done))
			}
			for i := range done {
				if r.Output[i].RawJSON() != done[i].RawJSON() {
					return v, fmt.Errorf("output item %d is %s, done %s", i, r.Output[i].RawJSON(), done[i].RawJSON())
				}
			}
		default:
			return v, fmt.Errorf("unexpected event %s", ev.Type)
		}
	}
	if err := stream.Err(); err != nil {
		return v, err
	}
	if final == nil {
		return v, errors.New("the stream ended before the response did")
	}
	// The accumulator's view after the end is the final output: the items
	// done.
	snap := acc.Snapshot()
	var calls []ToolCall
	for _, item := range snap.Output {
		if item.Type == "function_call" {
			calls = append(calls, ToolCall{ID: item.CallID, Name: item.Name, Arguments: item.Arguments})
		}
	}
	doneText := ""
	for _, item := range done {
		for _, part := range item.Content {
			doneText += part.Text
		}
	}
	if snap.OutputText() != doneText || !reflect.DeepEqual(calls, v.ToolCalls) || snap.ResponseID != final.ID {
		return v, fmt.Errorf("ResponseAccumulator saw %+v", snap)
	}
	if _, err := acc.ReconstructedResponse(); err != nil {
		return v, fmt.Errorf("ResponseAccumulator: %w", err)
	}
	switch final.Status {
	case "completed":
		v.Stop = StopEnd
		if len(v.ToolCalls) > 0 {
			v.Stop = StopToolCalls
		}
	case "incomplete":
		v.Stop = StopLength
		if final.IncompleteDetails.Reason == "content_filter" {
			v.Stop = StopContentFilter
		}
	case "failed":
		v.Err = fmt.Sprintf("%s: %s", final.Error.Code, final.Error.Message)
	}
	u := final.Usage
	v.Usage = Usage{InputTokens: int(u.InputTokens), OutputTokens: int(u.OutputTokens),
		CacheReadTokens: int(u.InputTokensDetails.CachedTokens), CacheWriteTokens: int(u.InputTokensDetails.CacheWriteTokens)}
	if u.TotalTokens != u.InputTokens+u.OutputTokens {
		return v, fmt.Errorf("total_tokens %d", u.TotalTokens)
	}
	return v, nil
}

// sameView fails unless got is want: the same but for an error's message,
// which got only has to contain.
func sameView(t testing.TB, got, want clientView) {
	t.Helper()
	if want.Err != "" && strings.Contains(got.Err, want.Err) {
		got.Err = want.Err
	}
	if want.Err != "" { // the stream failed: neither stop reason nor usage
		got.Stop, got.Usage = want.Stop, want.Usage
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("the client got\n%s\nwant\n%s", g, w)
	}
}

// TestStreamPairs translates each scenario's stream from each API to each
// and reads it with the client API's SDK: text, tool calls (ids, names,
// whole arguments), stop reason, usage with cached tokens and errors
// arrive intact. Thinking reaches Messages clients from Messages only.
func TestStreamPairs(t *testing.T) {
	for _, sc := range scenarios {
		for _, from := range apis {
			for _, to := range apis {
				t.Run(fmt.Sprintf("%s/%v-to-%v", sc.name, from, to), func(t *testing.T) {
					evs, err := collect(from, []byte(sc.upstream[from]))
					if err != nil {
						t.Fatalf("decode: %v", err)
					}
					checkNeutral(t, evs)
					want := sc.want
					if from != Messages || to != Messages {
						want.Thinking, want.Signature = "", ""
					}
					sameView(t, view(t, to, encode(t, to, testOptions, evs)), want)
				})
			}
		}
	}
}

// TestStreamSplit feeds each scenario's stream cut at every byte offset,
// byte by byte, and with "\r\n" and "\r" line ends: the client gets the
// same bytes as when the stream comes whole.
func TestStreamSplit(t *testing.T) {
	for _, sc := range scenarios {
		for _, from := range apis {
			for _, to := range apis {
				t.Run(fmt.Sprintf("%s/%v-to-%v", sc.name, from, to), func(t *testing.T) {
					stream := []byte(sc.upstream[from])
					whole := translate(t, from, to, testOptions, stream)
					for i := range len(stream) + 1 {
						if got := translate(t, from, to, testOptions, stream[:i], stream[i:]); !bytes.Equal(got, whole) {
							t.Fatalf("cut at %d: got\n%s\nwant\n%s", i, got, whole)
						}
					}
					if got := translate(t, from, to, testOptions, bytesOneByOne(stream)...); !bytes.Equal(got, whole) {
						t.Fatalf("byte by byte: got\n%s\nwant\n%s", got, whole)
					}
					for _, eol := range []string{"\r\n", "\r"} {
						other := bytes.ReplaceAll(stream, []byte("\n"), []byte(eol))
						if got := translate(t, from, to, testOptions, bytesOneByOne(other)...); !bytes.Equal(got, whole) {
							t.Fatalf("with %q line ends: got\n%s\nwant\n%s", eol, got, whole)
						}
					}
				})
			}
		}
	}
}

// bytesOneByOne cuts b into chunks of one byte.
func bytesOneByOne(b []byte) [][]byte {
	chunks := make([][]byte, len(b))
	for i := range b {
		chunks[i] = b[i : i+1]
	}
	return chunks
}

// fuzzDecoder fuzzes api's decoder with the test streams as seeds, cut in
// two where the input's first byte says: it must not panic, must emit
// events in the neutral order ending with EventEnd or EventError, must
// hold no more than the input, and every encoder must turn the events into
// a stream its client's SDK reads.
func fuzzDecoder(f *testing.F, api API) {
	for _, sc := range scenarios {
		f.Add(byte(len(sc.name)), []byte(sc.upstream[api]))
	}
	for _, tc := range map[API][]decoderCase{Chat: chatDecoderCases, Messages: messagesDecoderCases, Responses: responsesDecoderCases}[api] {
		f.Add(byte(len(tc.name)), []byte(tc.stream))
	}
	f.Fuzz(func(t *testing.T, cut byte, stream []byte) {
		at := min(int(cut)*len(stream)/255, len(stream))
		dec := NewStreamDecoder(api).(*streamDecoder)
		var evs []Event
		emit := func(ev Event) { evs = append(evs, ev) }
		_ = dec.Decode(stream[:at], emit)
		_ = dec.Decode(stream[at:], emit)
		if held := len(dec.sse.line) + len(dec.sse.data) + len(dec.sse.event); held > len(stream) {
			t.Fatalf("the decoder holds %d bytes of a %d-byte input", held, len(stream))
		}
		_ = dec.Close(emit)
		if err := neutralOrder(evs); err != nil {
			t.Fatalf("%v in\n%s", err, eventsString(evs))
		}
		if last := evs[len(evs)-1].Kind; last != EventEnd && last != EventError {
			t.Fatalf("the stream ends with %s", eventString(evs[len(evs)-1]))
		}
		for _, to := range apis {
			b := encode(t, to, testOptions, evs)
			if _, err := map[API]func([]byte) (clientView, error){Chat: chatView, Messages: messagesView, Responses: responsesView}[to](b); err != nil {
				t.Fatalf("%v client: %v in\n%s\nfrom\n%s", to, err, b, eventsString(evs))
			}
		}
	})
}

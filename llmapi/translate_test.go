package llmapi

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// sameTurn lists one request in each API's words; every body must decode to
// the same neutral turn, and that turn must survive an encode to each API
// and a decode back.
var sameTurn = []struct {
	name                      string
	chat, messages, responses string
}{
	{
		name:      "system and text",
		chat:      `{"model":"m","max_tokens":100,"messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":"Use SI."},{"role":"user","content":"hi"}]}`,
		messages:  `{"model":"m","max_tokens":100,"system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Use SI."}],"messages":[{"role":"user","content":"hi"}]}`,
		responses: `{"model":"m","max_output_tokens":100,"instructions":"Be brief.","input":[{"role":"developer","content":"Use SI."},{"role":"user","content":[{"type":"input_text","text":"hi"}]}]}`,
	},
	{
		name:      "images by URL and inline",
		chat:      `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"what?"},{"type":"image_url","image_url":{"url":"https://x.test/a.png"}},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}`,
		messages:  `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"what?"},{"type":"image","source":{"type":"url","url":"https://x.test/a.png"}},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]}]}`,
		responses: `{"model":"m","max_output_tokens":5,"input":[{"role":"user","content":[{"type":"input_text","text":"what?"},{"type":"input_image","image_url":"https://x.test/a.png"},{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo="}]}]}`,
	},
	{
		name: "tools, a named tool choice, calls and results",
		chat: `{"model":"m","max_tokens":64,"temperature":0.2,"top_p":0.9,
			"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
			"tool_choice":{"type":"function","function":{"name":"get_weather"}},
			"messages":[{"role":"user","content":"Paris?"},
				{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Lyon\"}"}}]},
				{"role":"tool","tool_call_id":"call_1","content":"sunny"},
				{"role":"tool","tool_call_id":"call_2","content":"rain"}]}`,
		messages: `{"model":"m","max_tokens":64,"temperature":0.2,"top_p":0.9,
			"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
			"tool_choice":{"type":"tool","name":"get_weather"},
			"messages":[{"role":"user","content":"Paris?"},
				{"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},{"type":"tool_use","id":"call_2","name":"get_weather","input":{"city":"Lyon"}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"sunny"},{"type":"tool_result","tool_use_id":"call_2","content":"rain"}]}]}`,
		responses: `{"model":"m","max_output_tokens":64,"temperature":0.2,"top_p":0.9,
			"tools":[{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}],
			"tool_choice":{"type":"function","name":"get_weather"},
			"input":[{"role":"user","content":"Paris?"},
				{"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
				{"type":"function_call","call_id":"call_2","name":"get_weather","arguments":"{\"city\":\"Lyon\"}"},
				{"type":"function_call_output","call_id":"call_1","output":"sunny"},
				{"type":"function_call_output","call_id":"call_2","output":"rain"}]}`,
	},
	{
		name:      "tool choice required, no parallel calls, streamed",
		chat:      `{"model":"m","max_tokens":8,"stream":true,"tool_choice":"required","parallel_tool_calls":false,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":"go"}]}`,
		messages:  `{"model":"m","max_tokens":8,"stream":true,"tool_choice":{"type":"any","disable_parallel_tool_use":true},"tools":[{"name":"f","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"go"}]}`,
		responses: `{"model":"m","max_output_tokens":8,"stream":true,"tool_choice":"required","parallel_tool_calls":false,"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"input":"go"}`,
	},
	{
		name:      "tool choice none and auto text history",
		chat:      `{"model":"m","max_tokens":8,"tool_choice":"none","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}`,
		messages:  `{"model":"m","max_tokens":8,"tool_choice":{"type":"none"},"tools":[{"name":"f","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"text","text":"b"}]},{"role":"user","content":"c"}]}`,
		responses: `{"model":"m","max_output_tokens":8,"tool_choice":"none","tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"input":[{"role":"user","content":"a"},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"b"}]},{"role":"user","content":"c"}]}`,
	},
}

var allAPIs = []API{Chat, Messages, Responses}

func bodyOf(api API, c struct{ name, chat, messages, responses string }) string {
	switch api {
	case Messages:
		return c.messages
	case Responses:
		return c.responses
	}
	return c.chat
}

func TestTranslateRequestRules(t *testing.T) {
	for _, c := range sameTurn {
		t.Run(c.name, func(t *testing.T) {
			want, err := DecodeTurn(Chat, []byte(c.chat))
			if err != nil {
				t.Fatalf("decode chat: %v", err)
			}
			for _, from := range allAPIs {
				got, err := DecodeTurn(from, []byte(bodyOf(from, c)))
				if err != nil {
					t.Fatalf("decode %v: %v", from, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%v decodes to\n%s\nchat decodes to\n%s", from, dump(got), dump(want))
				}
				for _, to := range allAPIs {
					body, err := EncodeTurn(to, got, "m")
					if err != nil {
						t.Fatalf("%v -> %v: %v", from, to, err)
					}
					back, err := DecodeTurn(to, body)
					if err != nil {
						t.Fatalf("%v -> %v: decoding %s: %v", from, to, body, err)
					}
					// a Chat request streams usage always; Responses has
					// no such option to read back
					back.StreamUsage = got.StreamUsage
					// the gateway's Responses requests are stateless
					back.NoStore = got.NoStore
					if !reflect.DeepEqual(back, got) {
						t.Errorf("%v -> %v -> neutral differs:\n%s\nwas\n%s\nbody %s", from, to, dump(back), dump(got), body)
					}
				}
			}
		})
	}
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

// The details each encoder must get right, in the target's exact words.
func TestEncodeTurnDetails(t *testing.T) {
	chat := `{"model":"client-model","stream":true,"stop":"END","user":"u-1","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"tool","tool_call_id":"x","content":"r"},{"role":"user","content":"c"}]}`
	turn, err := DecodeTurn(Chat, []byte(chat))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := EncodeTurn(Messages, turn, "claude-up")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(msgs, &m)
	if m["model"] != "claude-up" || m["max_tokens"] != float64(DefaultMaxTokens) || m["stream"] != true {
		t.Errorf("messages request %s: want model claude-up, max_tokens %d, stream", msgs, DefaultMaxTokens)
	}
	if got := dump(m["stop_sequences"]); !strings.Contains(got, "END") {
		t.Errorf("stop_sequences = %s", got)
	}
	if got := dump(m["metadata"]); !strings.Contains(got, `"user_id": "u-1"`) {
		t.Errorf("metadata = %s, want user_id u-1", got)
	}
	// the tool result and the next user text are one user turn: roles alternate
	roles := []string{}
	for _, msg := range m["messages"].([]any) {
		roles = append(roles, msg.(map[string]any)["role"].(string))
	}
	if strings.Join(roles, ",") != "user,assistant,user" {
		t.Errorf("roles %v, want user,assistant,user", roles)
	}

	up, err := EncodeTurn(Chat, turn, "gpt-up")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(up), `"stream_options":{"include_usage":true}`) {
		t.Errorf("chat request %s does not ask for the usage chunk", up)
	}
	if _, err := EncodeTurn(Responses, turn, "r"); !isUnsupported(err, "stop sequences") {
		t.Errorf("stop sequences towards Responses: %v, want an UnsupportedError", err)
	}
	noStop := *turn
	noStop.Stop = nil
	resp, err := EncodeTurn(Responses, &noStop, "r")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resp), `"store":false`) {
		t.Errorf("responses request %s is not stateless", resp)
	}
}

// A Chat provider's tool call ids may hold characters Messages refuses:
// both the call and its result get the same valid id.
func TestMessagesToolIDs(t *testing.T) {
	chat := `{"model":"m","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"functions.get:0","type":"function","function":{"name":"get","arguments":"{}"}},{"id":"functions.get:1","type":"function","function":{"name":"get","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"functions.get:0","content":"a"},{"role":"tool","tool_call_id":"functions.get:1","content":"b"}]}`
	turn, err := DecodeTurn(Chat, []byte(chat))
	if err != nil {
		t.Fatal(err)
	}
	body, err := EncodeTurn(Messages, turn, "claude")
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeTurn(Messages, body)
	if err != nil {
		t.Fatal(err)
	}
	calls, results := back.Messages[1].Parts, back.Messages[2].Parts
	ids := map[string]bool{}
	for i := range 2 {
		id := calls[i].ToolCall.ID
		if strings.ContainsAny(id, ".:") || id != results[i].ToolResult.CallID {
			t.Errorf("call %d: id %q, its result answers %q", i, id, results[i].ToolResult.CallID)
		}
		ids[id] = true
	}
	if len(ids) != 2 {
		t.Errorf("the two calls share an id: %v", ids)
	}
	if got := messagesToolID("toolu_01A-b"); got != "toolu_01A-b" {
		t.Errorf("a valid id changed: %q", got)
	}
}

func isUnsupported(err error, feature string) bool {
	var u *UnsupportedError
	return errors.As(err, &u) && strings.Contains(u.Feature, feature)
}

// What no other API can express is refused, naming the feature.
func TestDecodeTurnRefuses(t *testing.T) {
	tests := []struct {
		api     API
		body    string
		feature string
	}{
		{Chat, `{"model":"m","n":2,"messages":[{"role":"user","content":"x"}]}`, `"n" greater than 1`},
		{Chat, `{"model":"m","modalities":["text","audio"],"messages":[{"role":"user","content":"x"}]}`, "audio"},
		{Chat, `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}`, "content part"},
		{Chat, `{"model":"m","tools":[{"type":"custom","custom":{"name":"x"}}],"messages":[{"role":"user","content":"x"}]}`, "not a function"},
		{Messages, `{"model":"m","max_tokens":1,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"x"}]}`, "server tool"},
		{Messages, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","data":"x"}}]}]}`, "content block"},
		{Responses, `{"model":"m","tools":[{"type":"web_search"}],"input":"x"}`, "built-in tool"},
		{Responses, `{"model":"m","input":[{"type":"computer_call","call_id":"c"}]}`, "built-in tool"},
	}
	for _, tt := range tests {
		_, err := DecodeTurn(tt.api, []byte(tt.body))
		if !isUnsupported(err, tt.feature) {
			t.Errorf("%v %s: %v, want an UnsupportedError naming %q", tt.api, tt.body, err, tt.feature)
		}
	}
}

// replies lists one response in each API's words.
var sameReply = []struct {
	name                      string
	chat, messages, responses string
}{
	{
		name:      "text, end of turn, usage with cache",
		chat:      `{"id":"chatcmpl-1","object":"chat.completion","created":7,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":120,"completion_tokens":5,"total_tokens":125,"prompt_tokens_details":{"cached_tokens":100}}}`,
		messages:  `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":0}}`,
		responses: `{"id":"resp_1","object":"response","created_at":7,"status":"completed","model":"m","output":[{"type":"message","id":"msg_1","role":"assistant","status":"completed","content":[{"type":"output_text","text":"Hello","annotations":[]}]}],"usage":{"input_tokens":120,"input_tokens_details":{"cached_tokens":100},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":125}}`,
	},
	{
		name:      "tool calls",
		chat:      `{"id":"chatcmpl-2","object":"chat.completion","created":7,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":0}}}`,
		messages:  `{"id":"msg_2","type":"message","role":"assistant","model":"m","content":[{"type":"tool_use","id":"call_9","name":"get_weather","input":{"city":"Paris"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":3}}`,
		responses: `{"id":"resp_2","object":"response","created_at":7,"status":"completed","model":"m","output":[{"type":"function_call","id":"fc_1","call_id":"call_9","name":"get_weather","arguments":"{\"city\":\"Paris\"}","status":"completed"}],"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":0},"output_tokens":3,"total_tokens":13}}`,
	},
	{
		name:      "cut at max tokens",
		chat:      `{"id":"chatcmpl-3","object":"chat.completion","created":7,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hel"},"finish_reason":"length"}]}`,
		messages:  `{"id":"msg_3","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"Hel"}],"stop_reason":"max_tokens","stop_sequence":null}`,
		responses: `{"id":"resp_3","object":"response","created_at":7,"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"model":"m","output":[{"type":"message","id":"msg_3","role":"assistant","status":"incomplete","content":[{"type":"output_text","text":"Hel","annotations":[]}]}]}`,
	},
}

func TestTranslateReplyRules(t *testing.T) {
	for _, c := range sameReply {
		t.Run(c.name, func(t *testing.T) {
			want, err := DecodeReply(Chat, []byte(c.chat))
			if err != nil {
				t.Fatalf("decode chat: %v", err)
			}
			for _, from := range allAPIs {
				got, err := DecodeReply(from, []byte(bodyOf(from, c)))
				if err != nil {
					t.Fatalf("decode %v: %v", from, err)
				}
				// ids and times are each API's own
				got.ID, got.Created = want.ID, want.Created
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%v decodes to\n%s\nchat decodes to\n%s", from, dump(got), dump(want))
				}
				for _, to := range allAPIs {
					body := EncodeReply(to, got, "client-model")
					back, err := DecodeReply(to, body)
					if err != nil {
						t.Fatalf("%v -> %v: decoding %s: %v", from, to, body, err)
					}
					if back.Model != "client-model" {
						t.Errorf("%v -> %v: model %q, want the client's", from, to, back.Model)
					}
					back.ID, back.Created, back.Model = got.ID, got.Created, got.Model
					if to == Messages && got.Usage == nil {
						// a Messages response always has usage: zeros
						if *back.Usage != (Usage{}) {
							t.Errorf("%v -> %v: usage %+v from none", from, to, back.Usage)
						}
						back.Usage = nil
					}
					if !reflect.DeepEqual(back, got) {
						t.Errorf("%v -> %v -> neutral differs:\n%s\nwas\n%s\nbody %s", from, to, dump(back), dump(got), body)
					}
				}
			}
		})
	}
}

// Ids come out in the client's API's shape.
func TestClientID(t *testing.T) {
	for _, tt := range []struct{ prefix, id, want string }{
		{"chatcmpl-", "msg_01abc", "chatcmpl-01abc"},
		{"msg_", "chatcmpl-9", "msg_9"},
		{"resp_", "resp_7", "resp_7"},
		{"msg_", "xyz", "msg_xyz"},
	} {
		if got := clientID(tt.prefix, tt.id); got != tt.want {
			t.Errorf("clientID(%q, %q) = %q, want %q", tt.prefix, tt.id, got, tt.want)
		}
	}
}

// FuzzDecodeTurn feeds each request decoder arbitrary bodies: it must
// never panic, and whatever it accepts must encode, for each API, to a
// request that is JSON and that API's decoder reads back.
func FuzzDecodeTurn(f *testing.F) {
	for _, c := range sameTurn {
		for i, api := range allAPIs {
			f.Add(uint8(i), []byte(bodyOf(api, c)))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		from := allAPIs[int(which)%len(allAPIs)]
		turn, err := DecodeTurn(from, body)
		if err != nil {
			return
		}
		for _, to := range allAPIs {
			out, err := EncodeTurn(to, turn, "m")
			if err != nil {
				continue // e.g. stop sequences towards Responses
			}
			if !json.Valid(out) {
				t.Fatalf("%v -> %v: not JSON: %s", from, to, out)
			}
			if _, err := DecodeTurn(to, out); err != nil {
				t.Fatalf("%v -> %v: %s does not decode: %v", from, to, out, err)
			}
		}
	})
}

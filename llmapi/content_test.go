package llmapi

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestConversation(t *testing.T) {
	tests := []struct {
		name     string
		messages string
		want     []Utterance
	}{
		{
			name:     "plain user and assistant strings",
			messages: `[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"write a poem"}]`,
			want: []Utterance{
				{Role: "user", Content: "hi"},
				{Role: "assistant", Content: "hello"},
				{Role: "user", Content: "write a poem"},
			},
		},
		{
			name: "system developer and tool roles dropped",
			messages: `[{"role":"system","content":"be terse"},{"role":"developer","content":"dev rules"},` +
				`{"role":"user","content":"q1"},{"role":"tool","tool_call_id":"c","content":"tool out"},` +
				`{"role":"function","name":"f","content":"fn out"},{"role":"assistant","content":"a1"}]`,
			want: []Utterance{
				{Role: "user", Content: "q1"},
				{Role: "assistant", Content: "a1"},
			},
		},
		{
			name:     "roles are case sensitive",
			messages: `[{"role":"User","content":"x"},{"role":"user","content":"y"}]`,
			want:     []Utterance{{Role: "user", Content: "y"}},
		},
		{
			name: "empty and whitespace text dropped",
			messages: `[{"role":"user","content":""},{"role":"assistant","content":"  \n\t "},` +
				`{"role":"user","content":[]},{"role":"assistant","content":[{"type":"text","text":""}]},` +
				`{"role":"user","content":"kept"}]`,
			want: []Utterance{{Role: "user", Content: "kept"}},
		},
		{
			name:     "null and missing content dropped",
			messages: `[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"assistant"},{"role":"tool","tool_call_id":"c1","content":"r"},{"role":"assistant","content":"done"}]`,
			want: []Utterance{
				{Role: "user", Content: "q"},
				{Role: "assistant", Content: "done"},
			},
		},
		{
			name:     "text parts joined with newline, image parts dropped",
			messages: `[{"role":"user","content":[{"type":"text","text":"first"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},{"type":"text","text":"second"},{"type":"input_audio","input_audio":{"data":"x","format":"wav"}},{"type":"text","text":"third"}]}]`,
			want:     []Utterance{{Role: "user", Content: "first\nsecond\nthird"}},
		},
		{
			name:     "empty text parts do not add separators",
			messages: `[{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"a"},{"type":"text","text":""},{"type":"text","text":"b"},{"type":"text","text":""}]}]`,
			want:     []Utterance{{Role: "user", Content: "a\nb"}},
		},
		{
			name: "anthropic tool_use and tool_result blocks dropped",
			messages: `[{"role":"user","content":"what is 6*7?"},` +
				`{"role":"assistant","content":[{"type":"text","text":"computing"},{"type":"tool_use","id":"t1","name":"calc","input":{"text":"not me"}}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"42"}]}]},` +
				`{"role":"assistant","content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"It is 42."}]},` +
				`{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}},{"type":"text","text":"and this?"}]}]`,
			want: []Utterance{
				{Role: "user", Content: "what is 6*7?"},
				{Role: "assistant", Content: "computing"},
				{Role: "assistant", Content: "It is 42."},
				{Role: "user", Content: "and this?"},
			},
		},
		{
			name:     "non-text part carrying a text field is dropped",
			messages: `[{"role":"user","content":[{"type":"image_url","text":"sneaky"},{"text":"untyped"},{"type":"text","text":"real"}]}]`,
			want:     []Utterance{{Role: "user", Content: "real"}},
		},
		{
			name:     "text kept verbatim with escapes and surrounding space",
			messages: `[{"role":"user","content":"  line1\nline2 \u00e9\ud83d\ude00  "}]`,
			want:     []Utterance{{Role: "user", Content: "  line1\nline2 é\U0001F600  "}},
		},
		{
			name:     "only dropped messages",
			messages: `[{"role":"system","content":"s"},{"role":"tool","content":"t"}]`,
			want:     []Utterance{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := conversationOf([]byte(tt.messages))
			if err != nil {
				t.Fatalf("Conversation: %v", err)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Conversation =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestConversationFromEnvelope(t *testing.T) {
	body := `{"model":"m","system":"top-level system is not a message","messages":[` +
		`{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},` +
		`{"role":"assistant","content":"c"},{"role":"user","content":"d"}]}`
	env, err := ParseEnvelope([]byte(body))
	if err != nil {
		t.Fatalf("ParseEnvelope: %v", err)
	}
	got, err := conversationOf(env.messages)
	if err != nil {
		t.Fatalf("Conversation: %v", err)
	}
	want := []Utterance{
		{Role: "user", Content: "a\nb"},
		{Role: "assistant", Content: "c"},
		{Role: "user", Content: "d"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Conversation = %#v, want %#v", got, want)
	}
}

func TestConversationErrors(t *testing.T) {
	tests := []struct {
		name     string
		messages string
	}{
		{"not JSON", `[{"role":"user"`},
		{"not an array", `{"role":"user","content":"x"}`},
		{"role not a string", `[{"role":5,"content":"x"}]`},
		{"user content part not an object", `[{"role":"user","content":["` + leak + `"]}]`},
		{"user content number", `[{"role":"user","content":42}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := conversationOf([]byte(tt.messages))
			if err == nil {
				t.Fatalf("Conversation = %#v, want an error", got)
			}
			var ire *InvalidRequestError
			if !errors.As(err, &ire) {
				t.Errorf("error %v (%T) is not an *InvalidRequestError", err, err)
			}
			if strings.Contains(err.Error(), leak) {
				t.Errorf("error %q quotes body content", err)
			}
		})
	}
}

// conversationOf validates a "messages" array as ParseEnvelope does and
// returns the conversation Decode gives a router.
func conversationOf(messages []byte) ([]Utterance, error) {
	body := append(append([]byte(`{"messages":`), messages...), '}')
	if _, err := ParseEnvelope(body); err != nil {
		return nil, err
	}
	req, err := Decode(body)
	if err != nil {
		return nil, err
	}
	return req.Conversation, nil
}

func TestConversationSkipsMalformedParts(t *testing.T) {
	got, err := conversationOf([]byte(`[{"role":"user","content":[{"type":"text","text":7},{"type":"text","text":"ok"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Utterance{{Role: "user", Content: "ok"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Conversation = %#v, want %#v: a malformed part is skipped, the rest kept", got, want)
	}
}

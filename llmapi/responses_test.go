package llmapi

import (
	"bytes"
	"strings"
	"testing"
)

// A Responses request has "input" where the others have "messages".
func TestParseEnvelopeForResponses(t *testing.T) {
	valid := []struct {
		body, last string
		utterance  bool
	}{
		{`{"model":"gpt","input":"hello"}`, `{"role":"user","content":"hello"}`, true},
		{`{"model":"gpt","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}]}`, `{"role":"user","content":[{"type":"input_text","text":"hi"}]}`, true},
		{`{"input":[{"role":"user","content":"a"},{"type":"function_call_output","call_id":"c","output":"r"}],"model":"gpt"}`, `{"type":"function_call_output","call_id":"c","output":"r"}`, false},
	}
	for _, tt := range valid {
		env, err := ParseEnvelopeFor(Responses, []byte(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		if string(env.LastMessage) != tt.last {
			t.Errorf("%s: LastMessage %s, want %s", tt.body, env.LastMessage, tt.last)
		}
		if got := IsUserUtterance(env.LastMessage); got != tt.utterance {
			t.Errorf("%s: IsUserUtterance = %v", tt.body, got)
		}
		var out bytes.Buffer
		for _, seg := range env.Segments(nil, []byte(tt.body), []byte(`"gpt-up"`), false) {
			out.Write(seg)
		}
		if !strings.Contains(out.String(), `"model":"gpt-up"`) || strings.Contains(out.String(), `"model":"gpt"`) {
			t.Errorf("%s: spliced %s", tt.body, out.String())
		}
	}
	invalidBodies := []struct{ body, want string }{
		{`{"model":"gpt"}`, `"input" is required`},
		{`{"model":"gpt","messages":[{"role":"user","content":"x"}]}`, `"input" is required`},
		{`{"model":"gpt","input":[]}`, `"input" must not be empty`},
		{`{"model":"gpt","input":[1]}`, `input[0] must be an object`},
		{`{"model":"gpt","input":{"role":"user"}}`, `"input" must be a string or an array`},
		{`{"model":"gpt","input":"x","Input":"y"}`, `a case variant of "input"`},
	}
	for _, tt := range invalidBodies {
		_, err := ParseEnvelopeFor(Responses, []byte(tt.body))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.body, err, tt.want)
		}
	}
	// a Chat body's "input" is not its messages
	if _, err := ParseEnvelopeFor(Chat, []byte(`{"model":"m","input":"x"}`)); err == nil || !strings.Contains(err.Error(), `"messages" is required`) {
		t.Errorf("chat body with input: %v", err)
	}
}

// Routing reads a Responses request through its neutral form, leaving out
// what only Responses has rather than refusing it.
func TestDecodeForResponses(t *testing.T) {
	body := []byte(`{"model":"gpt","instructions":"Be brief.","previous_response_id":"resp_1",
		"tools":[{"type":"web_search"},{"type":"function","name":"grep","parameters":{"type":"object"}}],
		"input":[{"role":"user","content":"find it"},{"type":"web_search_call","id":"ws"},{"type":"function_call","call_id":"c","name":"grep","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"found"}],
		"routing_preferences":[{"name":"code","description":"code","models":["a"]}]}`)
	env, err := ParseEnvelopeFor(Responses, body)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := DecodeFor(Responses, body, &env)
	if err != nil {
		t.Fatal(err)
	}
	if sum.System != "Be brief." || sum.LastRole != "tool" || sum.FirstUserText != "find it" ||
		strings.Join(sum.ToolNames, ",") != "grep" || len(sum.Preferences) != 1 || len(sum.Conversation) != 1 {
		t.Errorf("summary %+v", sum)
	}
	if _, err := DecodeTurn(Responses, body); !isUnsupported(err, "tools[0], a built-in tool") {
		t.Errorf("translating it: %v, want the built-in tool refused", err)
	}
	turn, err := DecodeTurn(Responses, []byte(`{"model":"m","previous_response_id":"resp_1","store":false,"input":"x"}`))
	if err != nil || turn.PreviousResponseID != "resp_1" || !turn.NoStore {
		t.Errorf("a continued turn: %+v, %v; want its previous_response_id and store false kept", turn, err)
	}
}

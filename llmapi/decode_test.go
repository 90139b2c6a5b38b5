package llmapi

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Summary // TextChars is checked by TestDecodeTextChars
	}{
		{
			name: "openai agent turn",
			body: `{"model":"gpt-4o","messages":[` +
				`{"role":"system","content":"be terse"},` +
				`{"role":"developer","content":[{"type":"text","text":"dev rules"}]},` +
				`{"role":"user","content":"first question"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},` +
				`{"role":"tool","tool_call_id":"c1","content":"sunny"},` +
				`{"role":"assistant","content":"it is sunny"},` +
				`{"role":"user","content":[{"type":"text","text":"second"},{"type":"image_url","image_url":{"url":"data:,"}},{"type":"text","text":"question"}]}],` +
				`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}},{"type":"function","function":{"name":"search"}}]}`,
			want: Summary{
				Conversation: []Utterance{
					{Role: "user", Content: "first question"},
					{Role: "assistant", Content: "it is sunny"},
					{Role: "user", Content: "second\nquestion"},
				},
				LastRole:      "user",
				LastUserText:  "second\nquestion",
				FirstUserText: "first question",
				System:        "be terse\ndev rules",
				ToolNames:     []string{"get_weather", "search"},
			},
		},
		{
			name: "openai last message is a tool result",
			body: `{"messages":[{"role":"user","content":"q"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},` +
				`{"role":"tool","tool_call_id":"c1","content":"out"}]}`,
			want: Summary{
				Conversation:  []Utterance{{Role: "user", Content: "q"}},
				LastRole:      "tool",
				LastUserText:  "q",
				FirstUserText: "q",
			},
		},
		{
			name: "openai last message is the assistant's",
			body: `{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`,
			want: Summary{
				Conversation:  []Utterance{{Role: "user", Content: "q"}, {Role: "assistant", Content: "a"}},
				LastRole:      "assistant",
				LastUserText:  "q",
				FirstUserText: "q",
			},
		},
		{
			name: "openai only a system message",
			body: `{"messages":[{"role":"system","content":"sys"}]}`,
			want: Summary{LastRole: "system", System: "sys"},
		},
		{
			name: "anthropic tool turn: user made only of tool_result blocks",
			body: `{"model":"claude","max_tokens":10,` +
				`"system":[{"type":"text","text":"you are helpful"},{"type":"text","text":"be brief"}],` +
				`"tools":[{"name":"get_weather","input_schema":{"type":"object"}},{"name":"search","input_schema":{}}],` +
				`"messages":[` +
				`{"role":"user","content":[{"type":"text","text":"first question"}]},` +
				`{"role":"assistant","content":[{"type":"text","text":"let me check"},{"type":"tool_use","id":"t1","name":"get_weather","input":{}}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"sunny"},{"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"warm"}]}]}]}`,
			want: Summary{
				Conversation: []Utterance{
					{Role: "user", Content: "first question"},
					{Role: "assistant", Content: "let me check"},
				},
				LastRole:      "tool",
				LastUserText:  "first question",
				FirstUserText: "first question",
				System:        "you are helpful\nbe brief",
				ToolNames:     []string{"get_weather", "search"},
			},
		},
		{
			name: "anthropic tool_result with text is a user turn",
			body: `{"system":"be brief","messages":[` +
				`{"role":"user","content":"first"},` +
				`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"},{"type":"text","text":"now summarize"}]}]}`,
			want: Summary{
				Conversation: []Utterance{
					{Role: "user", Content: "first"},
					{Role: "user", Content: "now summarize"},
				},
				LastRole:      "user",
				LastUserText:  "now summarize",
				FirstUserText: "first",
				System:        "be brief",
			},
		},
		{
			name: "anthropic empty system string",
			body: `{"system":"","messages":[{"role":"user","content":"q"}]}`,
			want: Summary{
				Conversation:  []Utterance{{Role: "user", Content: "q"}},
				LastRole:      "user",
				LastUserText:  "q",
				FirstUserText: "q",
			},
		},
		{
			name: "first user text skips a user message without text",
			body: `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},` +
				`{"role":"assistant","content":"what is it?"},{"role":"user","content":"a cat"},{"role":"user","content":"  "}]}`,
			want: Summary{
				Conversation:  []Utterance{{Role: "assistant", Content: "what is it?"}, {Role: "user", Content: "a cat"}},
				LastRole:      "user",
				LastUserText:  "a cat",
				FirstUserText: "a cat",
			},
		},
		{
			name: "tools of both formats, unknown and malformed ones skipped",
			body: `{"messages":[{"role":"user","content":"q"}],"tools":[` +
				`1,"x",{"type":"web_search_20250305"},` +
				`{"type":"function","function":{"name":"fn"}},` +
				`{"name":"anth"},` +
				`{"type":"function","name":"outer","function":{"name":"inner"}},` +
				`{"name":7}]}`,
			want: Summary{
				Conversation:  []Utterance{{Role: "user", Content: "q"}},
				LastRole:      "user",
				LastUserText:  "q",
				FirstUserText: "q",
				ToolNames:     []string{"fn", "anth", "inner"},
			},
		},
		{
			name: "routing_preferences",
			body: `{"messages":[{"role":"user","content":"q"}],"routing_preferences":[` +
				`{"name":"code","description":"writing code","models":["big","small"]},` +
				`{"name":"chat","models":["small"]}]}`,
			want: Summary{
				Conversation:  []Utterance{{Role: "user", Content: "q"}},
				LastRole:      "user",
				LastUserText:  "q",
				FirstUserText: "q",
				Preferences: []Preference{
					{Name: "code", Description: "writing code", Models: []string{"big", "small"}},
					{Name: "chat", Models: []string{"small"}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseEnvelope([]byte(tt.body)); err != nil {
				t.Fatalf("test body is not a valid envelope: %v", err)
			}
			got, err := Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got.TextChars = 0
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Decode:\n got %+v\nwant %+v", *got, tt.want)
			}
			checkShallow(t, tt.body, got)
		})
	}
}

func TestDecodeTextChars(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int
	}{
		{name: "user string", body: `{"messages":[{"role":"user","content":"abcd"}]}`, want: 4},
		{name: "text parts joined by a newline",
			body: `{"messages":[{"role":"user","content":[{"type":"text","text":"ab"},{"type":"text","text":"cd"}]}]}`, want: 5},
		{name: "every message's text counts",
			body: `{"messages":[{"role":"user","content":"1234"},{"role":"assistant","content":"56"},{"role":"tool","tool_call_id":"c","content":"789"}]}`,
			want: 9},
		{name: "anthropic system counts",
			body: `{"system":"ssss","messages":[{"role":"user","content":"uuuu"}]}`, want: 8},
		{name: "openai system message counts once",
			body: `{"messages":[{"role":"system","content":"ssss"},{"role":"user","content":"uuuu"}]}`, want: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got.TextChars != tt.want {
				t.Errorf("TextChars = %d, want %d", got.TextChars, tt.want)
			}
			if got.EstimatedTokens() != tt.want/4 {
				t.Errorf("EstimatedTokens = %d, want %d", got.EstimatedTokens(), tt.want/4)
			}
		})
	}
}

// The same conversation in either wire format has the same token estimate,
// so a tokens_over rule does not depend on the client's API.
func TestDecodeTextCharsSameAcrossAPIs(t *testing.T) {
	system := strings.Repeat("s", 400)
	user := strings.Repeat("u", 400)
	openai := `{"messages":[{"role":"system","content":"` + system + `"},{"role":"user","content":"` + user + `"}]}`
	anthropic := `{"system":"` + system + `","messages":[{"role":"user","content":"` + user + `"}]}`
	o, err := Decode([]byte(openai))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Decode([]byte(anthropic))
	if err != nil {
		t.Fatal(err)
	}
	if o.System != a.System {
		t.Fatalf("System differs: %q vs %q", o.System, a.System)
	}
	if o.TextChars != a.TextChars || a.TextChars != 800 {
		t.Errorf("TextChars: openai %d, anthropic %d, want 800 for both", o.TextChars, a.TextChars)
	}
}

// Decode's only client errors are about routing_preferences: a body that
// ParseEnvelope accepted decodes even when fields the gateway does not own
// have a shape it does not expect (the upstream judges those).
func TestDecodeToleratesForeignFieldShapes(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{name: "tools is an object", body: `{"messages":[{"role":"user","content":"q"}],"tools":{"type":"function"}}`},
		{name: "tools is a string", body: `{"messages":[{"role":"user","content":"q"}],"tools":"all"}`},
		{name: "system is a number", body: `{"messages":[{"role":"user","content":"q"}],"system":5}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseEnvelope([]byte(tt.body)); err != nil {
				t.Fatalf("test body is not a valid envelope: %v", err)
			}
			req, err := Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if req.LastUserText != "q" || len(req.ToolNames) != 0 {
				t.Errorf("Decode = %+v, want the user text and no tools", *req)
			}
			checkShallow(t, tt.body, req)
		})
	}
}

// checkShallow checks that DecodeShallow reads what Decode read for the
// fields it covers, LastRole and ToolNames, and leaves the rest empty.
func checkShallow(t *testing.T, body string, full *Summary) {
	t.Helper()
	env, err := ParseEnvelope([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	shallow, err := DecodeShallow(&env)
	if err != nil {
		t.Fatalf("DecodeShallow: %v", err)
	}
	want := Summary{LastRole: full.LastRole, ToolNames: full.ToolNames}
	if !reflect.DeepEqual(*shallow, want) {
		t.Errorf("DecodeShallow:\n got %+v\nwant %+v", *shallow, want)
	}
}

func TestDecodePreferencesErrors(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"q"}]`
	tests := []struct {
		name    string
		prefs   string
		wantErr string
	}{
		{name: "object", prefs: `{"name":"secret-route","models":["m"]}`, wantErr: `"routing_preferences" must be an array`},
		{name: "string", prefs: `"secret-route"`, wantErr: `"routing_preferences" must be an array`},
		{name: "array of numbers", prefs: `[1]`, wantErr: `"routing_preferences" must be an array`},
		{name: "array of strings", prefs: `["secret-route"]`, wantErr: `"routing_preferences" must be an array`},
		{name: "name not a string", prefs: `[{"name":1,"models":["m"]}]`, wantErr: `"routing_preferences" must be an array`},
		{name: "models not an array", prefs: `[{"name":"secret-route","models":"m"}]`, wantErr: `"routing_preferences" must be an array`},
		{name: "missing name", prefs: `[{"description":"secret-route","models":["m"]}]`, wantErr: "routing_preferences[0] needs a name"},
		{name: "empty name", prefs: `[{"name":"","models":["m"]}]`, wantErr: "routing_preferences[0] needs a name"},
		{name: "no models", prefs: `[{"name":"secret-route"}]`, wantErr: "routing_preferences[0] needs a name and at least one model"},
		{name: "empty models", prefs: `[{"name":"secret-route","models":[]}]`, wantErr: "routing_preferences[0] needs a name and at least one model"},
		{name: "second preference bad", prefs: `[{"name":"ok","models":["m"]},{"name":"secret-route","models":[]}]`,
			wantErr: "routing_preferences[1] needs a name and at least one model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{` + msgs + `,"routing_preferences":` + tt.prefs + `}`
			req, err := Decode([]byte(body))
			if err == nil {
				t.Fatalf("Decode succeeded with %+v, want an error containing %q", req, tt.wantErr)
			}
			var ire *InvalidRequestError
			if !errors.As(err, &ire) {
				t.Fatalf("error %T (%v) is not an *InvalidRequestError", err, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret-route") {
				t.Errorf("error = %q quotes request content", err)
			}
		})
	}
}

func TestIsUserUtterance(t *testing.T) {
	tests := []struct {
		name    string
		message string
		want    bool
	}{
		{name: "plain user text", message: `{"role":"user","content":"hello"}`, want: true},
		{name: "user text parts", message: `{"role":"user","content":[{"type":"text","text":"hello"}]}`, want: true},
		{name: "assistant", message: `{"role":"assistant","content":"hello"}`, want: false},
		{name: "system", message: `{"role":"system","content":"hello"}`, want: false},
		{name: "tool role", message: `{"role":"tool","tool_call_id":"c1","content":"result"}`, want: false},
		{name: "user with only tool_result blocks",
			message: `{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"},{"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"r2"}]}]}`,
			want:    false},
		{name: "user with tool_result and text",
			message: `{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"},{"type":"text","text":"now fix it"}]}`,
			want:    true},
		{name: "only a system-reminder",
			message: `{"role":"user","content":"<system-reminder>the todo list is empty</system-reminder>"}`, want: false},
		{name: "system-reminder text block next to tool results",
			message: `{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"},{"type":"text","text":"<system-reminder>x</system-reminder>"}]}`,
			want:    false},
		{name: "several envelopes and whitespace",
			message: `{"role":"user","content":"<command-name>/clear</command-name>\n  <command-message>clear</command-message>\n<command-args></command-args>\n"}`,
			want:    false},
		{name: "local command output",
			message: `{"role":"user","content":[{"type":"text","text":"<local-command-stdout>ok</local-command-stdout>"}]}`, want: false},
		{name: "environment details",
			message: `{"role":"user","content":"<environment_details>cwd: /src</environment_details>"}`, want: false},
		{name: "envelope plus real text",
			message: `{"role":"user","content":"<system-reminder>ctx</system-reminder>Please add tests"}`, want: true},
		{name: "real text plus envelope text block",
			message: `{"role":"user","content":[{"type":"text","text":"<system-reminder>ctx</system-reminder>"},{"type":"text","text":"go on"}]}`,
			want:    true},
		{name: "unclosed envelope", message: `{"role":"user","content":"<system-reminder>runs to the end"}`, want: false},
		{name: "text before an unclosed envelope", message: `{"role":"user","content":"fix it <system-reminder>runs to the end"}`, want: true},
		{name: "an unknown tag is user text", message: `{"role":"user","content":"<task>refactor</task>"}`, want: true},
		{name: "whitespace only", message: `{"role":"user","content":" \n\t "}`, want: false},
		{name: "empty string", message: `{"role":"user","content":""}`, want: false},
		{name: "null content", message: `{"role":"user","content":null}`, want: false},
		{name: "image only", message: `{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:,"}}]}`, want: false},
		{name: "malformed JSON", message: `{"role":"user","content":"hello"`, want: false},
		{name: "not an object", message: `"hello"`, want: false},
		{name: "empty", message: ``, want: false},
		{name: "role with different case", message: `{"role":"User","content":"hello"}`, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsUserUtterance([]byte(tt.message)); got != tt.want {
				t.Errorf("IsUserUtterance(%s) = %v, want %v", tt.message, got, tt.want)
			}
		})
	}
}

// IsUserUtterance sees what ParseEnvelope exposes as the last message.
func TestIsUserUtteranceFromEnvelope(t *testing.T) {
	env, err := ParseEnvelope([]byte(`{"messages":[{"role":"assistant","content":"a"},{"role":"user","content":"new question"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !IsUserUtterance(env.LastMessage) {
		t.Errorf("IsUserUtterance(%s) = false, want true", env.LastMessage)
	}
}

func TestStripEnvelopes(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"plain text", "plain text"},
		{"<system-reminder>a</system-reminder>", ""},
		{"x<system-reminder>a</system-reminder>y<system-reminder>b</system-reminder>z", "xyz"},
		{"<command-name>c</command-name><command-message>m</command-message><command-args>a</command-args>", ""},
		{"a<local-command-stdout>o</local-command-stdout>b<environment_details>e</environment_details>c", "abc"},
		{"keep <system-reminder>dropped to the end", "keep "},
		{"close first </system-reminder> then <system-reminder>x</system-reminder>", "close first </system-reminder> then "},
		{"<other>kept</other>", "<other>kept</other>"},
	}
	for _, tt := range tests {
		if got := stripEnvelopes(tt.in); got != tt.want {
			t.Errorf("stripEnvelopes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tag := range envelopeTags {
		in := "before<" + tag + ">inside</" + tag + ">after"
		if got := stripEnvelopes(in); got != "beforeafter" {
			t.Errorf("stripEnvelopes(%q) = %q, want %q", in, got, "beforeafter")
		}
	}
}

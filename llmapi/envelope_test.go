package llmapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// leak is a secret-looking string planted in request bodies; no error message
// may ever contain it.
const leak = "sk-LEAK-7f3a9c"

// rawMessages decodes body with encoding/json and returns its "messages"
// value byte for byte, as the reference for Envelope.messages.
func rawMessages(t *testing.T, body string) []byte {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &top); err != nil {
		t.Fatalf("test body is not valid JSON: %v", err)
	}
	return top["messages"]
}

func TestParseEnvelopeValid(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantModel string
	}{
		{
			name:      "openai string content",
			body:      `{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}],"stream":true,"temperature":0.2}`,
			wantModel: "gpt-4o",
		},
		{
			name:      "openai array of parts",
			body:      `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}}]}]}`,
			wantModel: "gpt-4o",
		},
		{
			name: "openai null content with tool_calls and tool role",
			body: `{"model":"gpt-4o-mini","messages":[` +
				`{"role":"user","content":"weather in Paris?"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
				`{"role":"tool","tool_call_id":"call_1","content":"sunny, 21C"}],` +
				`"tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],` +
				`"tool_choice":"auto"}`,
			wantModel: "gpt-4o-mini",
		},
		{
			name: "anthropic tool_use and tool_result blocks with top-level system",
			body: `{"model":"claude-sonnet-4-5","max_tokens":1024,"system":"You are terse.","messages":[` +
				`{"role":"user","content":"what is 6*7?"},` +
				`{"role":"assistant","content":[{"type":"text","text":"let me compute"},{"type":"tool_use","id":"toolu_1","name":"calc","input":{"expr":"6*7"}}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"42"}],"is_error":false}]}]}`,
			wantModel: "claude-sonnet-4-5",
		},
		{
			name:      "anthropic system as blocks with cache_control",
			body:      `{"system":[{"type":"text","text":"sys","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}],"model":"claude-haiku-4-5","max_tokens":10}`,
			wantModel: "claude-haiku-4-5",
		},
		{
			name:      "absent model",
			body:      `{"messages":[{"role":"user","content":"hi"}]}`,
			wantModel: "",
		},
		{
			name:      "empty model string",
			body:      `{"model":"","messages":[{"role":"user","content":"hi"}]}`,
			wantModel: "",
		},
		{
			name:      "model with unicode escape",
			body:      `{"model":"gpt\u002d4o","messages":[{"role":"user","content":"hi"}]}`,
			wantModel: "gpt-4o",
		},
		{
			name:      "model with simple escapes",
			body:      `{"model":"a\/b\\c\"d\te","messages":[{"role":"user","content":"hi"}]}`,
			wantModel: "a/b\\c\"d\te",
		},
		{
			name:      "model with surrogate pair and raw UTF-8",
			body:      `{"model":"mod\u00e8le-\ud83d\ude00-日本","messages":[{"role":"user","content":"hi"}]}`,
			wantModel: "modèle-\U0001F600-日本",
		},
		{
			name:      "model key written with escapes",
			body:      `{"mod\u0065l":"llama-3","messages":[{"role":"user","content":"hi"}]}`,
			wantModel: "llama-3",
		},
		{
			name:      "messages key written with escapes",
			body:      `{"model":"m","m\u0065ssages":[{"r\u006fle":"user","c\u006fntent":"hi"}]}`,
			wantModel: "m",
		},
		{
			name:      "look-alike keys are other fields",
			body:      `{"models":[1],"model ":{},"model_id":2,"x_model":3,"messages_count":4,"model":"real","messages":[{"role":"user","content":"hi"}]}`,
			wantModel: "real",
		},
		{
			name:      "case variants of fields the gateway does not interpret",
			body:      `{"model":"m","Temperature":0.5,"TOP_P":1,"Metadata":{"MODEL":"x","Messages":[]},"messages":[{"role":"user","content":"hi","Name":"n","TOOL_CALLS":[]}]}`,
			wantModel: "m",
		},
		{
			name:      "case variants nested below the top level",
			body:      `{"model":"m","metadata":{"MODEL":"x","Stream":true},"messages":[{"role":"user","content":[{"type":"text","text":"hi","Role":"x","CONTENT":"y"}]}]}`,
			wantModel: "m",
		},
		{
			name: "every interpreted field once",
			body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"routing_preferences":[],"tools":[],"system":"s",` +
				`"stream":true,"stream_options":{"include_usage":true},"tool_choice":"auto","max_tokens":5}`,
			wantModel: "m",
		},
		{
			name:      "model after messages",
			body:      `{"messages":[{"role":"user","content":"hi"}],"model":"last"}`,
			wantModel: "last",
		},
		{
			name: "whitespace everywhere",
			body: " \t\r\n{ \"model\" :\t\"m\" ,\r\n \"messages\" : [ { \"role\" : \"user\" , \"content\" : [ ] } , " +
				"{ \"content\" : null , \"role\" : \"assistant\" } ] , \"x\" : [ 1 , { } ] } \n\t ",
			wantModel: "m",
		},
		{
			name:      "message without content",
			body:      `{"model":"m","messages":[{"role":"assistant"}]}`,
			wantModel: "m",
		},
		{
			name:      "numbers and literals in other fields",
			body:      `{"model":"m","a":[0,-0,1,-1,0.5,-12.25e+3,1E-2,3e9,123456789012345678901234567890],"b":true,"c":false,"d":null,"messages":[{"role":"user","content":"x"}]}`,
			wantModel: "m",
		},
		{
			name:      "nested messages key elsewhere is ignored",
			body:      `{"metadata":{"messages":5,"model":7},"model":"m","messages":[{"role":"user","content":"x"}]}`,
			wantModel: "m",
		},
		{
			name:      "role any string",
			body:      `{"model":"m","messages":[{"role":"","content":"x"},{"role":"developer","content":"y"}]}`,
			wantModel: "m",
		},
		{
			name:      "nesting at exactly maxNesting",
			body:      `{"model":"m","messages":[{"role":"user","content":"x"}],"deep":` + strings.Repeat("[", maxNesting-1) + strings.Repeat("]", maxNesting-1) + `}`,
			wantModel: "m",
		},
		{
			name:      "content nesting at exactly maxNesting",
			body:      `{"model":"m","messages":[{"role":"user","content":[{"type":"text","deep":` + strings.Repeat("[", maxNesting-5) + strings.Repeat("]", maxNesting-5) + `}]}]}`,
			wantModel: "m",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.body)) {
				t.Fatalf("test body is not valid JSON")
			}
			env, err := ParseEnvelope([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseEnvelope: unexpected error %v", err)
			}
			if env.Model != tt.wantModel {
				t.Errorf("Model = %q, want %q", env.Model, tt.wantModel)
			}
			want := rawMessages(t, tt.body)
			if !bytes.Equal(env.messages, want) {
				t.Errorf("messages = %s\nwant       %s", env.messages, want)
			}
		})
	}
}

func TestParseEnvelopeErrors(t *testing.T) {
	okMsgs := `"messages":[{"role":"user","content":"` + leak + `"}]`
	tests := []struct {
		name string
		body string
		want string // substring of the error message
	}{
		// empty and non-object bodies
		{"empty body", ``, "empty"},
		{"whitespace only", " \n\t\r ", "empty"},
		{"top-level array", `[{"role":"user","content":"` + leak + `"}]`, "must be a JSON object"},
		{"top-level string", `"` + leak + `"`, "must be a JSON object"},
		{"top-level number", `42`, "must be a JSON object"},
		{"top-level null", `null`, "must be a JSON object"},
		{"top-level true", `true`, "must be a JSON object"},
		{"top-level malformed array", `["` + leak + `",`, "malformed JSON"},
		{"top-level garbage", leak, "malformed JSON"},

		// malformed JSON
		{"truncated after messages", `{"model":"m",` + okMsgs, "malformed JSON"},
		{"truncated inside string", `{"model":"gpt-4`, "malformed JSON"},
		{"truncated after key", `{"model"`, "malformed JSON"},
		{"truncated after colon", `{"model":`, "malformed JSON"},
		{"truncated after brace", `{`, "malformed JSON"},
		{"truncated inside escape", `{"model":"\`, "malformed JSON"},
		{"truncated inside unicode escape", `{"model":"\u00`, "malformed JSON"},
		{"truncated literal", `{"a":tru`, "malformed JSON"},
		{"trailing comma in object", `{` + okMsgs + `,}`, "malformed JSON"},
		{"trailing comma in messages", `{"messages":[{"role":"user","content":"` + leak + `"},]}`, "malformed JSON"},
		{"trailing comma in nested array", `{` + okMsgs + `,"x":[1,2,]}`, "malformed JSON"},
		{"trailing comma in message", `{"messages":[{"role":"user","content":"` + leak + `",}]}`, "malformed JSON"},
		{"missing comma", `{"model":"m" ` + okMsgs + `}`, "malformed JSON"},
		{"missing colon", `{"model" "m",` + okMsgs + `}`, "malformed JSON"},
		{"unquoted key", `{model:"m",` + okMsgs + `}`, "malformed JSON"},
		{"single-quoted string", `{'model':'m',` + okMsgs + `}`, "malformed JSON"},
		{"bad escape", `{"model":"m",` + okMsgs + `,"x":"` + leak + `\x"}`, "malformed JSON"},
		{"bad escape in key", `{"mod\el":"m",` + okMsgs + `}`, "malformed JSON"},
		{"bad unicode escape", `{"model":"\u12G4",` + okMsgs + `}`, "malformed JSON"},
		{"short unicode escape", `{"model":"\u12",` + okMsgs + `}`, "malformed JSON"},
		{"raw tab in string", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"" + leak + "\tx\"}]}", "malformed JSON"},
		{"raw newline in string", "{\"model\":\"m\n\"," + okMsgs + "}", "malformed JSON"},
		{"raw NUL in string", "{\"model\":\"m\x00\"," + okMsgs + "}", "malformed JSON"},
		{"raw 0x1f in string", "{\"model\":\"m\x1f\"," + okMsgs + "}", "malformed JSON"},
		{"leading zero", `{` + okMsgs + `,"n":01}`, "malformed JSON"},
		{"negative leading zero", `{` + okMsgs + `,"n":-01}`, "malformed JSON"},
		{"dot without fraction", `{` + okMsgs + `,"n":1.}`, "malformed JSON"},
		{"dot without integer", `{` + okMsgs + `,"n":.5}`, "malformed JSON"},
		{"lone minus", `{` + okMsgs + `,"n":-}`, "malformed JSON"},
		{"plus sign", `{` + okMsgs + `,"n":+1}`, "malformed JSON"},
		{"exponent without digits", `{` + okMsgs + `,"n":1e}`, "malformed JSON"},
		{"exponent sign without digits", `{` + okMsgs + `,"n":1e+}`, "malformed JSON"},
		{"dot before exponent", `{` + okMsgs + `,"n":1.e5}`, "malformed JSON"},
		{"hex number", `{` + okMsgs + `,"n":0x1F}`, "malformed JSON"},
		{"NaN", `{` + okMsgs + `,"n":NaN}`, "malformed JSON"},
		{"capitalised literal", `{` + okMsgs + `,"n":True}`, "malformed JSON"},
		{"bad literal", `{` + okMsgs + `,"n":nulL}`, "malformed JSON"},
		{"trailing garbage", `{` + okMsgs + `} ` + leak, "data after the JSON object"},
		{"second object", `{` + okMsgs + `}{}`, "data after the JSON object"},
		{"trailing comma after object", `{` + okMsgs + `},`, "data after the JSON object"},
		{"unclosed messages", `{"messages":[{"role":"user","content":"` + leak + `"}`, "malformed JSON"},
		{"mismatched brackets", `{"messages":[{"role":"user","content":"` + leak + `"]}`, "malformed JSON"},
		{"comment", `{/* ` + leak + ` */` + okMsgs + `}`, "malformed JSON"},

		// model
		{"model number", `{"model":42,` + okMsgs + `}`, `"model" must be a string`},
		{"model null", `{"model":null,` + okMsgs + `}`, `"model" must be a string`},
		{"model bool", `{"model":true,` + okMsgs + `}`, `"model" must be a string`},
		{"model array", `{"model":["` + leak + `"],` + okMsgs + `}`, `"model" must be a string`},
		{"model object", `{"model":{"` + leak + `":1},` + okMsgs + `}`, `"model" must be a string`},
		{"model malformed non-string", `{"model":[` + leak + `],` + okMsgs + `}`, "malformed JSON"},
		{"duplicate model", `{"model":"a","model":"` + leak + `",` + okMsgs + `}`, `duplicate "model"`},
		{"duplicate model via escaped key", `{"model":"a",` + okMsgs + `,"mod\u0065l":"` + leak + `"}`, `duplicate "model"`},
		{"duplicate model same value", `{"model":"a","model":"a",` + okMsgs + `}`, `duplicate "model"`},
		{"case variant of model before the exact key", `{"MODEL":"` + leak + `","model":"a",` + okMsgs + `}`, `a case variant of "model" is not accepted; spell it exactly "model"`},
		{"case variant of model without the exact key", `{"Model":"` + leak + `",` + okMsgs + `}`, `a case variant of "model"`},
		{"case variant of model with a non-string value", `{"model":"a",` + okMsgs + `,"MODEL":[1]}`, `a case variant of "model"`},
		{"case variant of messages only", `{"Messages":[{"role":"user","content":"` + leak + `"}]}`, `a case variant of "messages"`},

		// messages
		{"messages missing", `{"model":"` + leak + `"}`, `"messages" is required`},
		{"empty object", `{}`, `"messages" is required`},
		{"messages only nested", `{"model":"m","x":{` + okMsgs + `}}`, `"messages" is required`},
		{"duplicate messages", `{` + okMsgs + `,` + okMsgs + `}`, `duplicate "messages"`},
		{"duplicate messages via escaped key", `{` + okMsgs + `,"messag\u0065s":[{"role":"user"}]}`, `duplicate "messages"`},
		{"messages object", `{"messages":{"role":"user","content":"` + leak + `"}}`, `"messages" must be an array`},
		{"messages string", `{"messages":"` + leak + `"}`, `"messages" must be an array`},
		{"messages null", `{"messages":null}`, `"messages" must be an array`},
		{"messages number", `{"messages":1}`, `"messages" must be an array`},
		{"messages empty", `{"model":"` + leak + `","messages":[]}`, `"messages" must not be empty`},
		{"messages empty with space", `{"messages":[ ]}`, `"messages" must not be empty`},
		{"message string", `{"messages":["` + leak + `"]}`, `messages[0] must be an object`},
		{"message null", `{"messages":[null]}`, `messages[0] must be an object`},
		{"message array", `{"messages":[[{"role":"user"}]]}`, `messages[0] must be an object`},
		{"second message number", `{"messages":[{"role":"user","content":"` + leak + `"},7]}`, `messages[1] must be an object`},
		{"role missing", `{"messages":[{"content":"` + leak + `"}]}`, `messages[0].role is required`},
		{"role missing in empty message", `{"messages":[{}]}`, `messages[0].role is required`},
		{"role missing in third message", `{"messages":[{"role":"user"},{"role":"assistant"},{"content":"` + leak + `"}]}`, `messages[2].role is required`},
		{"role number", `{"messages":[{"role":1,"content":"` + leak + `"}]}`, `messages[0].role must be a string`},
		{"role null", `{"messages":[{"role":null}]}`, `messages[0].role must be a string`},
		{"role array", `{"messages":[{"role":["user"]}]}`, `messages[0].role must be a string`},
		{"role object", `{"messages":[{"role":{"` + leak + `":"user"}}]}`, `messages[0].role must be a string`},
		{"duplicate role with a non-string value", `{"messages":[{"role":"user","role":false}]}`, `messages[0]: duplicate "role" field`},
		{"content number", `{"messages":[{"role":"user","content":42}]}`, `messages[0].content must be a string, an array or null`},
		{"content negative number", `{"messages":[{"role":"user","content":-1}]}`, `messages[0].content must be a string, an array or null`},
		{"content true", `{"messages":[{"role":"user","content":true}]}`, `messages[0].content must be a string, an array or null`},
		{"content false", `{"messages":[{"role":"user","content":false}]}`, `messages[0].content must be a string, an array or null`},
		{"content object", `{"messages":[{"role":"user","content":{"text":"` + leak + `"}}]}`, `messages[0].content must be a string, an array or null`},
		{"content before role", `{"messages":[{"content":{"text":"` + leak + `"},"role":"user"}]}`, `messages[0].content must be a string, an array or null`},
		{"second message content", `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":3.5}]}`, `messages[1].content must be a string, an array or null`},
		{"content malformed null", `{"messages":[{"role":"user","content":nil}]}`, "malformed JSON"},

		// nesting
		{"nesting one past maxNesting", `{` + okMsgs + `,"deep":` + strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting) + `}`, "nests deeper"},
		{"nested objects past maxNesting", `{` + okMsgs + `,"deep":` + strings.Repeat(`{"a":`, maxNesting) + `1` + strings.Repeat("}", maxNesting) + `}`, "nests deeper"},
		{"content nesting past maxNesting", `{"messages":[{"role":"user","content":` + strings.Repeat("[", maxNesting-2) + strings.Repeat("]", maxNesting-2) + `}]}`, "nests deeper"},
		{"model nesting past maxNesting", `{"model":` + strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting) + `,` + okMsgs + `}`, "nests deeper"},
		{"very deep unterminated", `{"messages":` + strings.Repeat("[", 1<<20), "nests deeper"},
		{"very deep top-level array", strings.Repeat("[", 1<<20), "nests deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseEnvelope succeeded (model %q), want error containing %q", env.Model, tt.want)
			}
			var ire *InvalidRequestError
			if !errors.As(err, &ire) {
				t.Fatalf("error %v (%T) is not an *InvalidRequestError", err, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
			if strings.Contains(msg, "LEAK") || strings.Contains(msg, leak) {
				t.Errorf("error %q quotes body content", msg)
			}
			if len(msg) > 200 {
				t.Errorf("error message unexpectedly long (%d bytes): %.200q", len(msg), msg)
			}
		})
	}
}

// TestParseEnvelopeCaseVariants checks that a key which differs from an
// interpreted field only in case (after decoding escapes, with Unicode
// folding) is refused, at the top level and in a message, and that
// encoding/json indeed reads each one as the field: a provider decoding the
// body that way would serve what the gateway did not route.
func TestParseEnvelopeCaseVariants(t *testing.T) {
	tests := []struct {
		name      string
		key       string // as the body spells it, quotes included
		field     string // the interpreted field it folds to
		inMessage bool   // a key of the second message, not of the top level
	}{
		{"upper case", `"MODEL"`, "model", false},
		{"title case", `"Model"`, "model", false},
		{"mixed case", `"mOdEl"`, "model", false},
		{"escaped upper-case letter", `"mod\u0045l"`, "model", false},
		{"long s in UTF-8", `"meſſages"`, "messages", false},
		{"long s escaped", `"me\u017f\u017fages"`, "messages", false},
		{"title-case messages", `"Messages"`, "messages", false},
		{"routing_Preferences", `"routing_Preferences"`, "routing_preferences", false},
		{"Stream", `"Stream"`, "stream", false},
		{"SYSTEM", `"SYSTEM"`, "system", false},
		{"Tools", `"Tools"`, "tools", false},
		{"Tool_Choice", `"Tool_Choice"`, "tool_choice", false},
		{"stream_Options", `"stream_Options"`, "stream_options", false},
		{"kelvin sign in max_tokens", `"max_toKens"`, "max_tokens", false},
		{"Role", `"Role"`, "role", true},
		{"CONTENT", `"CONTENT"`, "content", true},
		{"escaped role", `"r\u004Fle"`, "role", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const variantValue = `"` + leak + `"`
			body := `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}],` + tt.key + `:` + variantValue + `}`
			wantPrefix := ""
			if tt.inMessage {
				body = `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b",` + tt.key + `:` + variantValue + `}]}`
				wantPrefix = "messages[1]: "
			}
			if got := encodingJSONField(t, []byte(body), tt.field, tt.inMessage); string(got) != variantValue {
				t.Fatalf("encoding/json reads %q as %s, want the variant's value: the case is not a variant it folds", tt.field, got)
			}
			_, err := ParseEnvelope([]byte(body))
			var ire *InvalidRequestError
			if !errors.As(err, &ire) {
				t.Fatalf("ParseEnvelope error %v, want an *InvalidRequestError", err)
			}
			want := wantPrefix + `a case variant of "` + tt.field + `" is not accepted; spell it exactly "` + tt.field + `"`
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if strings.Contains(err.Error(), strings.Trim(tt.key, `"`)) || strings.Contains(err.Error(), leak) {
				t.Errorf("error %q quotes body content", err)
			}
		})
	}
}

// encodingJSONField decodes body with encoding/json into a struct whose only
// field is tagged name, at the top level or in the second message, and
// returns the raw value encoding/json assigned to it.
func encodingJSONField(t *testing.T, body []byte, name string, inMessage bool) json.RawMessage {
	t.Helper()
	typ := reflect.StructOf([]reflect.StructField{{
		Name: "Field", Type: reflect.TypeFor[json.RawMessage](), Tag: reflect.StructTag(`json:"` + name + `"`),
	}})
	if inMessage {
		var top struct{ Messages []json.RawMessage }
		if err := json.Unmarshal(body, &top); err != nil || len(top.Messages) < 2 {
			t.Fatalf("decoding messages: %v", err)
		}
		body = top.Messages[1]
	}
	v := reflect.New(typ)
	if err := json.Unmarshal(body, v.Interface()); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return v.Elem().Field(0).Interface().(json.RawMessage)
}

// TestParseEnvelopeDuplicateFields checks that every interpreted field may
// appear only once, whatever the spelling of the repeat, at the top level
// and in a message; a decoder keeping the first and one keeping the last
// would read the body differently.
func TestParseEnvelopeDuplicateFields(t *testing.T) {
	values := map[string]string{
		"model":               `"m"`,
		"messages":            `[{"role":"user"}]`,
		"routing_preferences": `[]`,
		"tools":               `[]`,
		"system":              `"s"`,
		"stream":              `true`,
		"stream_options":      `{}`,
		"tool_choice":         `"auto"`,
		"max_tokens":          `5`,
	}
	for field, value := range values {
		member := `"` + field + `":` + value
		escaped := `"\u00` + strconv.FormatInt(int64(field[0]), 16) + field[1:] + `":` + value
		messages := `"messages":[{"role":"user"}],`
		if field == "messages" {
			messages = ""
		}
		t.Run(field+"/once", func(t *testing.T) {
			if _, err := ParseEnvelope([]byte(`{` + messages + member + `}`)); err != nil {
				t.Errorf("ParseEnvelope: %v", err)
			}
		})
		for name, body := range map[string]string{
			"adjacent":       `{` + messages + member + `,` + member + `}`,
			"apart":          `{` + member + `,"x":1,` + messages + `"y":2,` + member + `}`,
			"escaped repeat": `{` + messages + member + `,` + escaped + `}`,
		} {
			t.Run(field+"/"+name, func(t *testing.T) {
				want := `duplicate "` + field + `" field`
				if _, err := ParseEnvelope([]byte(body)); err == nil || err.Error() != want {
					t.Errorf("error %v, want %q", err, want)
				}
			})
		}
	}
	for field, message := range map[string]string{
		"role":    `{"role":"user","content":"a","role":"user"}`,
		"content": `{"role":"user","content":"a","content":null}`,
	} {
		t.Run("message/"+field, func(t *testing.T) {
			want := `messages[1]: duplicate "` + field + `" field`
			if _, err := ParseEnvelope([]byte(`{"messages":[{"role":"user"},` + message + `]}`)); err == nil || err.Error() != want {
				t.Errorf("error %v, want %q", err, want)
			}
		})
	}
}

// TestFieldSets keeps the interpreted field lists as lookup needs them:
// within the bits of fieldsSeen, in lower-case ASCII (caseVariant relies on
// it), and distinct even when case is folded.
func TestFieldSets(t *testing.T) {
	for _, fs := range []fieldSet{topLevelFields, messageFields} {
		if len(fs) > 64 {
			t.Errorf("%d fields do not fit the 64 bits of fieldsSeen", len(fs))
		}
		for i, a := range fs {
			if strings.ContainsFunc(a, func(r rune) bool { return r >= utf8.RuneSelf || unicode.IsUpper(r) }) {
				t.Errorf("field %q is not lower-case ASCII", a)
			}
			for _, b := range fs[i+1:] {
				if strings.EqualFold(a, b) {
					t.Errorf("fields %q and %q fold to the same key", a, b)
				}
			}
		}
	}
}

// TestParseEnvelopeStringBytes checks every byte value inside a string and
// after a backslash against the JSON grammar.
func TestParseEnvelopeStringBytes(t *testing.T) {
	body := func(inner string) []byte {
		return []byte(`{"messages":[{"role":"user","content":"` + inner + `"}]}`)
	}
	for c := 0; c < 256; c++ {
		if c == '"' || c == '\\' {
			continue
		}
		raw := string([]byte{'a', byte(c), 'b'})
		_, err := ParseEnvelope(body(raw))
		if wantOK := 0x20 <= c && c < 0x80; (err == nil) != wantOK {
			t.Errorf("raw byte %#02x in a string: error %v, want accepted %v", c, err, wantOK)
		}
		if (err == nil) != jsonText(body(raw)) {
			t.Errorf("raw byte %#02x in a string: ParseEnvelope error %v, valid JSON text %v", c, err, jsonText(body(raw)))
		}

		esc := string([]byte{'\\', byte(c)})
		if c == 'u' {
			esc += "00e9"
		}
		_, err = ParseEnvelope(body(esc))
		if wantOK := strings.IndexByte(`/bfnrtu`, byte(c)) >= 0; (err == nil) != wantOK {
			t.Errorf("escape \\%c (%#02x): error %v, want accepted %v", c, c, err, wantOK)
		}
	}
	for _, esc := range []string{`\"`, `\\`, `\u0000`, `\uFFFF`, `\uD83D\uDE00`, `\ud800`} {
		if _, err := ParseEnvelope(body(esc)); err != nil {
			t.Errorf("escape %s rejected: %v", esc, err)
		}
	}
	for _, esc := range []string{`\u`, `\u0`, `\u00`, `\u000`, `\u00g0`, `\U00e9`, `\u-001`} {
		if _, err := ParseEnvelope(body(esc)); err == nil {
			t.Errorf("escape %s accepted", esc)
		}
	}
}

// jsonText reports whether body is a JSON text as the gateway reads one:
// valid to encoding/json and UTF-8 throughout (RFC 8259 section 8.1), which
// encoding/json does not require.
func jsonText(body []byte) bool { return json.Valid(body) && utf8.Valid(body) }

// TestParseEnvelopeUTF8 puts each malformed UTF-8 sequence, and each valid
// multi-byte character, at every offset of the first words of a string (in
// a key, the model, a message's content and a nested value), so both the
// eight-bytes-at-a-time skip and the byte loop at a string's end meet it.
func TestParseEnvelopeUTF8(t *testing.T) {
	malformed := []struct{ name, seq string }{
		{"0xff", "\xff"},
		{"0xfe", "\xfe"},
		{"lone continuation byte", "\x80"},
		{"lone last continuation byte", "\xbf"},
		{"two-byte lead without continuation", "\xc3"},
		{"three-byte lead with one continuation", "\xe6\x97"},
		{"four-byte lead with two continuations", "\xf0\x9f\x98"},
		{"overlong NUL", "\xc0\x80"},
		{"overlong slash", "\xc1\xaf"},
		{"overlong three-byte", "\xe0\x80\xaf"},
		{"overlong four-byte", "\xf0\x80\x80\xaf"},
		{"encoded high surrogate", "\xed\xa0\x80"},
		{"encoded low surrogate", "\xed\xbf\xbf"},
		{"above U+10FFFF", "\xf4\x90\x80\x80"},
		{"lead byte 0xf5", "\xf5\x80\x80\x80"},
		{"lead followed by ASCII", "\xe6a\x97"},
	}
	wellFormed := []string{"é", "日本", "😀", "\U0010FFFF", "\uFFFD", "\u0080", "\u07ff", "\u0800"}
	places := []struct {
		name string
		body func(s string) string
	}{
		{"content", func(s string) string { return `{"messages":[{"role":"user","content":"` + s + `"}]}` }},
		{"model", func(s string) string { return `{"model":"` + s + `","messages":[{"role":"user"}]}` }},
		{"top-level key", func(s string) string { return `{"` + s + `":1,"messages":[{"role":"user"}]}` }},
		{"nested value", func(s string) string { return `{"messages":[{"role":"user"}],"x":{"y":["` + s + `"]}}` }},
	}
	for _, place := range places {
		for offset := 0; offset <= 15; offset++ {
			for _, tail := range []int{0, 1, 9} {
				pad := func(s string) string {
					return place.body(strings.Repeat("a", offset) + s + strings.Repeat("b", tail))
				}
				for _, bad := range malformed {
					body := pad(bad.seq)
					// each sequence goes wrong at its first byte, the body's only non-ASCII one
					at := strings.Index(body, bad.seq)
					_, err := ParseEnvelope([]byte(body))
					var ire *InvalidRequestError
					if !errors.As(err, &ire) {
						t.Fatalf("%s in %s at offset %d, tail %d: error %v, want an *InvalidRequestError", bad.name, place.name, offset, tail, err)
					}
					if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("malformed JSON: invalid UTF-8 at byte %d", at)) {
						t.Errorf("%s in %s at offset %d, tail %d: error %q, want invalid UTF-8 at byte %d", bad.name, place.name, offset, tail, msg, at)
					}
				}
				for _, good := range wellFormed {
					if _, err := ParseEnvelope([]byte(pad(good))); err != nil {
						t.Errorf("%q in %s at offset %d, tail %d: %v", good, place.name, offset, tail, err)
					}
				}
			}
		}
	}
}

// TestParseEnvelopeSpecialByteAtEveryOffset puts each byte the string scan
// must stop at (and some it must not) at every offset of the first words of
// a string, where the eight-bytes-at-a-time skip decides, and checks the
// verdict and the decoded model against encoding/json.
func TestParseEnvelopeSpecialByteAtEveryOffset(t *testing.T) {
	specials := []string{`"`, `\`, `\"`, `\n`, `\u00e9`, "\x00", "\x1f", " ", "\x7f", "\x80", "é", "\xff"}
	for _, special := range specials {
		for offset := 0; offset <= 17; offset++ {
			for tail := 0; tail <= 9; tail++ {
				model := strings.Repeat("a", offset) + special + strings.Repeat("b", tail)
				body := []byte(`{"model":"` + model + `","messages":[{"role":"user","content":"` + model + `"}]}`)
				env, err := ParseEnvelope(body)
				if (err == nil) != jsonText(body) {
					t.Fatalf("%q at offset %d: ParseEnvelope error %v, valid JSON text %v", special, offset, err, jsonText(body))
				}
				if err != nil {
					continue
				}
				var want struct{ Model string }
				if err := json.Unmarshal(body, &want); err != nil {
					t.Fatal(err)
				}
				if env.Model != want.Model {
					t.Fatalf("%q at offset %d: model %q, want %q", special, offset, env.Model, want.Model)
				}
			}
		}
	}
}

func TestSegmentsReplace(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		model string // quoted
		want  string
	}{
		{
			name:  "replace first field",
			body:  `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}`,
			model: `"llama-3.1-8b"`,
			want:  `{"model":"llama-3.1-8b","messages":[{"role":"user","content":"hi"}],"stream":true}`,
		},
		{
			name:  "replace with whitespace around",
			body:  "{ \"model\" :\t \"gpt-4o\"\n , \"messages\" : [ {\"role\":\"user\"} ] }",
			model: `"m2"`,
			want:  "{ \"model\" :\t \"m2\"\n , \"messages\" : [ {\"role\":\"user\"} ] }",
		},
		{
			name:  "replace last field",
			body:  `{"messages":[{"role":"user","content":"model"}],"model":"a"}`,
			model: `"b"`,
			want:  `{"messages":[{"role":"user","content":"model"}],"model":"b"}`,
		},
		{
			name:  "replace escaped value with equal plain value",
			body:  `{"model":"gpt\u002d4o","messages":[{"role":"user"}]}`,
			model: `"gpt-4o"`,
			want:  `{"model":"gpt-4o","messages":[{"role":"user"}]}`,
		},
		{
			name:  "replace value under escaped key",
			body:  `{"mod\u0065l":"x","messages":[{"role":"user"}]}`,
			model: `"y"`,
			want:  `{"mod\u0065l":"y","messages":[{"role":"user"}]}`,
		},
		{
			name:  "replace empty value with longer",
			body:  `{"model":"","messages":[{"role":"user"}],"model_hint":"keep"}`,
			model: `"claude-\u00e9"`,
			want:  `{"model":"claude-\u00e9","messages":[{"role":"user"}],"model_hint":"keep"}`,
		},
		{
			name:  "replace with empty",
			body:  `{"model":"long-model-name","messages":[{"role":"user"}]}`,
			model: `""`,
			want:  `{"model":"","messages":[{"role":"user"}]}`,
		},
		{
			name:  "insert when absent",
			body:  `{"messages":[{"role":"user","content":"hi"}],"stream":false}`,
			model: `"m"`,
			want:  `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}`,
		},
		{
			name:  "insert with whitespace around",
			body:  " \n{ \"messages\" : [ {\"role\":\"user\"} ] }\n",
			model: `"m"`,
			want:  " \n{\"model\":\"m\", \"messages\" : [ {\"role\":\"user\"} ] }\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			orig := append([]byte(nil), body...)
			env, err := ParseEnvelope(body)
			if err != nil {
				t.Fatalf("ParseEnvelope: %v", err)
			}
			got := rewrite(env, body, []byte(tt.model))
			if string(got) != tt.want {
				t.Errorf("rewrite =\n%s\nwant\n%s", got, tt.want)
			}
			if !bytes.Equal(body, orig) {
				t.Errorf("rewrite modified its input body: %s", body)
			}
			checkRewritten(t, body, got, tt.model)
		})
	}
}

// checkRewritten asserts that out is valid JSON whose model is quotedModel and
// whose other top-level fields equal those of in.
func checkRewritten(t *testing.T, in, out []byte, quotedModel string) {
	t.Helper()
	if !json.Valid(out) {
		t.Fatalf("rewrite output is not valid JSON: %q", out)
	}
	var wantModel string
	if err := json.Unmarshal([]byte(quotedModel), &wantModel); err != nil {
		t.Fatalf("bad quoted model %q: %v", quotedModel, err)
	}
	var before, after map[string]json.RawMessage
	if err := json.Unmarshal(in, &before); err != nil {
		t.Fatalf("decoding input: %v", err)
	}
	if err := json.Unmarshal(out, &after); err != nil {
		t.Fatalf("decoding output: %v", err)
	}
	var gotModel string
	if err := json.Unmarshal(after["model"], &gotModel); err != nil || gotModel != wantModel {
		t.Errorf("output model = %s (err %v), want %q", after["model"], err, wantModel)
	}
	delete(before, "model")
	delete(after, "model")
	if len(before) != len(after) {
		t.Errorf("output has %d other fields, input %d", len(after), len(before))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Errorf("field %q changed: %s -> %s", k, v, after[k])
		}
	}
	env, err := ParseEnvelope(out)
	if err != nil {
		t.Fatalf("ParseEnvelope(rewrite output): %v", err)
	}
	if env.Model != wantModel {
		t.Errorf("re-parsed model = %q, want %q", env.Model, wantModel)
	}
}

// rewrite is the body Segments describes, as one slice.
func rewrite(env Envelope, body, quotedModel []byte) []byte {
	return bytes.Join(env.Segments(nil, body, quotedModel, false), nil)
}

func TestSegmentsUnchangedIsBodyItself(t *testing.T) {
	for _, body := range []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
		`{ "messages":[{"role":"user"}] , "model" : "gpt-4o" }`,
	} {
		b := []byte(body)
		env, err := ParseEnvelope(b)
		if err != nil {
			t.Fatalf("ParseEnvelope(%s): %v", body, err)
		}
		segs := env.Segments(nil, b, []byte(`"gpt-4o"`), false)
		if len(segs) != 1 || len(segs[0]) != len(b) || &segs[0][0] != &b[0] {
			t.Errorf("Segments with the same model is not the body itself for %s", body)
		}
	}
}

// fuzzSeeds are request bodies, valid and not, that seed the fuzz targets.
var fuzzSeeds = []string{
	`{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`,
	`{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]}],"stream":true}`,
	`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","content":"r"}]}`,
	`{"model":"claude","system":"sys","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"42"}]}]}`,
	`{"mod\u0065l":"gpt\u002d4o","messages":[{"r\u006fle":"user","content":"\ud83d\ude00"}]}`,
	" { \"model\" : \"m\" , \"messages\" : [ { \"role\" : \"user\" } ] , \"n\" : [ -0.5e+3 , 0 , 1E9 , true , false , null ] } ",
	`{"model":"a","model":"b","messages":[{"role":"user"}]}`,
	`{"model":1,"messages":[{"role":"user","content":01}]}`,
	`{"messages":[{"role":"user","content":"x"},]}`,
	`[{"role":"user","content":"x"}]`,
	`{"messages":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}`,
	`{"messages":[{"role":"user","content":"a\u00"}]}`,
	`{"model":"\b\f\n\r\t\/\\\"\u00e9","messages":[{"role":"user","content":" !~\u007f"}]}`,
	"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\x1f\x20\x7f\xc3\xa9\"}]}",
}

// refEnvelope decides with encoding/json alone whether a body that is a
// JSON text (see jsonText) meets ParseEnvelope's schema, and if so which
// model it names.
func refEnvelope(body []byte) (model string, ok bool) {
	if nestingDepth(body) > maxNesting {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", false
		}
		raw = bytes.TrimLeft(raw, " \t\r\n")
		field, ok := refField(tok.(string), topLevelFields, seen)
		if !ok {
			return "", false
		}
		switch field {
		case "model":
			if raw[0] != '"' {
				return "", false
			}
			if err := json.Unmarshal(raw, &model); err != nil {
				return "", false
			}
		case "messages":
			if !refMessages(raw) {
				return "", false
			}
		case "routing_preferences":
			if raw[0] != '[' {
				return "", false
			}
		}
	}
	return model, seen["messages"]
}

// refField returns the field of fields that encoding/json reads a member
// with this (decoded) key as, "" for none; ok is false when the key is not
// the field's exact spelling or the field is already in seen (which it
// joins).
func refField(key string, fields []string, seen map[string]bool) (field string, ok bool) {
	tagged := make([]reflect.StructField, len(fields))
	for i, f := range fields {
		tagged[i] = reflect.StructField{
			Name: "F" + strconv.Itoa(i), Type: reflect.TypeFor[*json.RawMessage](), Tag: reflect.StructTag(`json:"` + f + `"`),
		}
	}
	v := reflect.New(reflect.StructOf(tagged))
	quotedKey, err := json.Marshal(key)
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal([]byte(`{`+string(quotedKey)+`:0}`), v.Interface()); err != nil {
		panic(err)
	}
	for i, f := range fields {
		if !v.Elem().Field(i).IsNil() {
			if key != f || seen[f] {
				return f, false
			}
			seen[f] = true
			return f, true
		}
	}
	return "", true
}

func refMessages(raw json.RawMessage) bool {
	var msgs []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &msgs) != nil || len(msgs) == 0 {
		return false
	}
	for _, m := range msgs {
		m = bytes.TrimLeft(m, " \t\r\n")
		if m[0] != '{' {
			return false
		}
		dec := json.NewDecoder(bytes.NewReader(m))
		if _, err := dec.Token(); err != nil {
			return false
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return false
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return false
			}
			v = bytes.TrimLeft(v, " \t\r\n")
			field, ok := refField(tok.(string), messageFields, seen)
			if !ok {
				return false
			}
			switch field {
			case "role":
				if v[0] != '"' {
					return false
				}
			case "content":
				if v[0] != '"' && v[0] != '[' && v[0] != 'n' {
					return false
				}
				if v[0] == '[' {
					var parts []json.RawMessage
					if json.Unmarshal(v, &parts) != nil {
						return false
					}
					for _, p := range parts {
						if bytes.TrimLeft(p, " \t\r\n")[0] != '{' {
							return false
						}
					}
				}
			}
		}
		if !seen["role"] {
			return false
		}
	}
	return true
}

// nestingDepth returns how deeply a valid JSON document nests arrays and
// objects (a flat object is 1).
func nestingDepth(body []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

func FuzzParseEnvelope(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	newModel := []byte(`"routed-\u00e9/model"`)
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := append([]byte(nil), body...)
		env, err := ParseEnvelope(body)
		if !bytes.Equal(body, orig) {
			t.Fatalf("ParseEnvelope modified its input")
		}
		valid := jsonText(body)
		if err != nil {
			var ire *InvalidRequestError
			if !errors.As(err, &ire) {
				t.Fatalf("error %v (%T) is not an *InvalidRequestError", err, err)
			}
			if valid {
				if model, ok := refEnvelope(body); ok {
					t.Fatalf("ParseEnvelope rejected a body encoding/json accepts as a chat request (model %q): %v", model, err)
				}
			}
			return
		}
		if !valid {
			t.Fatalf("ParseEnvelope accepted a body that is not JSON text (malformed, or not UTF-8)")
		}
		// UseNumber: a valid number such as 1e999 does not fit a float64
		var top map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&top); err != nil {
			t.Fatalf("ParseEnvelope accepted a body encoding/json cannot decode into a map: %v", err)
		}
		switch m := top["model"].(type) {
		case nil:
			if _, present := top["model"]; present {
				t.Fatalf("ParseEnvelope accepted a null model")
			}
			if env.Model != "" {
				t.Fatalf("Model = %q, but the body has no model", env.Model)
			}
		case string:
			if env.Model != m {
				t.Fatalf("Model = %q, encoding/json decodes %q", env.Model, m)
			}
		default:
			t.Fatalf("ParseEnvelope accepted a non-string model %T", m)
		}
		msgs, ok := top["messages"].([]any)
		if !ok || len(msgs) == 0 {
			t.Fatalf("ParseEnvelope accepted messages = %#v", top["messages"])
		}
		for i, m := range msgs {
			obj, ok := m.(map[string]any)
			if !ok {
				t.Fatalf("messages[%d] is %T", i, m)
			}
			if _, ok := obj["role"].(string); !ok {
				t.Fatalf("messages[%d].role is %#v", i, obj["role"])
			}
			switch obj["content"].(type) {
			case nil, string, []any:
			default:
				t.Fatalf("messages[%d].content is %T", i, obj["content"])
			}
		}
		var rawTop map[string]json.RawMessage
		if err := json.Unmarshal(body, &rawTop); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(env.messages, rawTop["messages"]) {
			t.Fatalf("messages = %q, encoding/json finds %q", env.messages, rawTop["messages"])
		}
		if model, ok := refEnvelope(body); !ok || model != env.Model {
			t.Fatalf("reference rejects a body ParseEnvelope accepted (ok %v, model %q)", ok, model)
		}

		out := rewrite(env, body, newModel)
		if !bytes.Equal(body, orig) {
			t.Fatalf("rewrite modified its input")
		}
		if !json.Valid(out) {
			t.Fatalf("rewrite output is not valid JSON: %q", out)
		}
		env2, err := ParseEnvelope(out)
		if err != nil {
			t.Fatalf("ParseEnvelope(rewrite output): %v", err)
		}
		if env2.Model != "routed-é/model" {
			t.Fatalf("model after rewrite = %q", env2.Model)
		}
		var top2 map[string]json.RawMessage
		if err := json.Unmarshal(out, &top2); err != nil {
			t.Fatal(err)
		}
		delete(rawTop, "model")
		delete(top2, "model")
		if len(rawTop) != len(top2) {
			t.Fatalf("rewrite changed the field count: %d -> %d", len(rawTop), len(top2))
		}
		for k, v := range rawTop {
			if !bytes.Equal(top2[k], v) {
				t.Fatalf("rewrite changed field %q", k)
			}
		}

		// asking for the usage chunk keeps the body a request whose stream
		// asks for it
		asked := bytes.Join(env.Segments(nil, body, []byte(`"m"`), true), nil)
		env3, err := ParseEnvelope(asked)
		if err != nil {
			t.Fatalf("ParseEnvelope(usage asked): %v: %q", err, asked)
		}
		if env.Stream && !env3.StreamUsage {
			t.Fatalf("a stream asked for usage does not: %q", asked)
		}
	})
}

func TestSegmentsStripsRoutingPreferences(t *testing.T) {
	const prefs = `"routing_preferences":[{"name":"code","description":"d","models":["a"]}]`
	tests := []struct {
		name, body, want string
	}{
		{"last member", `{"model":"m","messages":[{"role":"user","content":"x"}],` + prefs + `}`,
			`{"model":"new","messages":[{"role":"user","content":"x"}]}`},
		{"first member", `{` + prefs + `,"model":"m","messages":[{"role":"user","content":"x"}]}`,
			`{"model":"new","messages":[{"role":"user","content":"x"}]}`},
		{"middle member with spaces", `{"messages":[{"role":"user","content":"x"}] , ` + prefs + ` , "model":"m"}`,
			`{"messages":[{"role":"user","content":"x"}]  , "model":"new"}`},
		{"model unchanged", `{"model":"new",` + prefs + `,"messages":[{"role":"user","content":"x"}]}`,
			`{"model":"new","messages":[{"role":"user","content":"x"}]}`},
		{"model inserted, preferences first", `{` + prefs + `,"messages":[{"role":"user","content":"x"}]}`,
			`{"model":"new","messages":[{"role":"user","content":"x"}]}`},
		{"model inserted, preferences last", `{"messages":[{"role":"user","content":"x"}],` + prefs + `}`,
			`{"model":"new","messages":[{"role":"user","content":"x"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(env.Preferences), "[") {
				t.Fatalf("Preferences = %q, want the raw array", env.Preferences)
			}
			got := rewrite(env, []byte(tt.body), []byte(`"new"`))
			if string(got) != tt.want {
				t.Errorf("rewrite =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// A streamed Chat request that did not ask for the usage chunk asks for
// it on its way upstream, whatever its stream_options look like, with
// every other byte kept; one that asked, or is not streamed, is unchanged.
func TestSegmentsAskUsage(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct{ name, body, want string }{
		{"no stream_options", `{"model":"m","stream":true,` + msgs + `}`,
			`{"stream_options":{"include_usage":true},"model":"up","stream":true,` + msgs + `}`},
		{"no model, no stream_options", `{"stream":true,` + msgs + `}`,
			`{"model":"up","stream_options":{"include_usage":true},"stream":true,` + msgs + `}`},
		{"include_usage false", `{"model":"m","stream":true,"stream_options":{"include_usage":false},` + msgs + `}`,
			`{"model":"up","stream":true,"stream_options":{"include_usage":true},` + msgs + `}`},
		{"other options kept", `{"model":"m","stream":true,"stream_options":{"include_obfuscation":false},` + msgs + `}`,
			`{"model":"up","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false},` + msgs + `}`},
		{"empty options", `{"model":"m","stream":true,"stream_options":{ },` + msgs + `}`,
			`{"model":"up","stream":true,"stream_options":{"include_usage":true},` + msgs + `}`},
		{"null options", `{"model":"m","stream":true,"stream_options":null,` + msgs + `}`,
			`{"model":"up","stream":true,"stream_options":{"include_usage":true},` + msgs + `}`},
		{"with routing_preferences dropped", `{"routing_preferences":[],"model":"m","stream":true,` + msgs + `}`,
			`{"stream_options":{"include_usage":true},"model":"up","stream":true,` + msgs + `}`},
		{"asked already", `{"model":"m","stream":true,"stream_options":{"include_usage":true},` + msgs + `}`,
			`{"model":"up","stream":true,"stream_options":{"include_usage":true},` + msgs + `}`},
		{"not streamed", `{"model":"m","stream":false,` + msgs + `}`, `{"model":"up","stream":false,` + msgs + `}`},
	}
	for _, tt := range tests {
		env, err := ParseEnvelope([]byte(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := string(bytes.Join(env.Segments(nil, []byte(tt.body), []byte(`"up"`), true), nil))
		if got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
		if segs := env.Segments(nil, []byte(tt.body), []byte(`"up"`), true); len(segs) > maxSegments {
			t.Errorf("%s: %d segments, more than %d", tt.name, len(segs), maxSegments)
		}
	}
}

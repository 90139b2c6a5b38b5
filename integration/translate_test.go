package integration

// Any client API to any model API: the official SDK of each client API runs
// a tool-calling agent through the gateway against a model of each API,
// served by a strict fake (fakeapis_test.go) that rejects whatever its real
// provider would.

import (
	"cmp"
	"net/http"
	"strings"
	"testing"
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

package llmaffinity

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
	"github.com/llmaffinity/caddy-llm-affinity/routing"
)

func TestAffinityKey(t *testing.T) {
	long := strings.Repeat("k", 257)
	tests := []struct {
		name       string
		header     string // the handler's affinity header
		values     map[string][]string
		wantKey    string
		wantOptOut bool
		wantErr    string // "" for no error
	}{
		{name: "no header", values: nil},
		{name: "valid key", values: map[string][]string{"X-Model-Affinity": {"session-1"}}, wantKey: "session-1"},
		{name: "key with spaces and symbols", values: map[string][]string{"X-Model-Affinity": {"a b~!{}"}}, wantKey: "a b~!{}"},
		{name: "custom header", header: "X-Session", values: map[string][]string{"X-Session": {"s1"}, "X-Model-Affinity": {"other"}},
			wantKey: "s1"},
		{name: "custom header absent", header: "X-Session", values: map[string][]string{"X-Model-Affinity": {"other"}}},
		{name: "empty value", values: map[string][]string{"X-Model-Affinity": {""}},
			wantErr: "invalid X-Model-Affinity header: affinity key is empty"},
		{name: "too long", values: map[string][]string{"X-Model-Affinity": {long}},
			wantErr: "invalid X-Model-Affinity header: affinity key is 257 bytes"},
		{name: "non-printable byte", values: map[string][]string{"X-Model-Affinity": {"ab\x01c"}},
			wantErr: "non-printable or non-ASCII byte at offset 2"},
		{name: "non-ASCII", values: map[string][]string{"X-Model-Affinity": {"séance"}},
			wantErr: "non-printable or non-ASCII byte at offset 1"},
		{name: "two headers", values: map[string][]string{"X-Model-Affinity": {"a", "b"}},
			wantErr: "more than one X-Model-Affinity header"},
		{name: "two headers, one off", values: map[string][]string{"X-Model-Affinity": {"off", "b"}},
			wantErr: "more than one X-Model-Affinity header"},
		{name: "value off", values: map[string][]string{"X-Model-Affinity": {"off"}}, wantOptOut: true},
		{name: "value OFF", values: map[string][]string{"X-Model-Affinity": {"OFF"}}, wantOptOut: true},
		{name: "value Off on a custom header", header: "X-Session", values: map[string][]string{"X-Session": {"Off"}},
			wantOptOut: true},
		{name: "value offline is a key", values: map[string][]string{"X-Model-Affinity": {"offline"}}, wantKey: "offline"},
		{name: "mode off with a real key", values: map[string][]string{"X-Model-Affinity": {"session-1"}, HeaderMode: {"off"}},
			wantOptOut: true},
		{name: "mode OFF without a key", values: map[string][]string{HeaderMode: {"OFF"}}, wantOptOut: true},
		{name: "mode off wins over an invalid key", values: map[string][]string{"X-Model-Affinity": {"a", "b"}, HeaderMode: {"off"}},
			wantOptOut: true},
		{name: "mode on keeps the key", values: map[string][]string{"X-Model-Affinity": {"session-1"}, HeaderMode: {"on"}},
			wantKey: "session-1"},
		{name: "Claude Code's session header", values: map[string][]string{"X-Claude-Code-Session-Id": {"cc-1"}}, wantKey: "cc-1"},
		{name: "Codex's session header", values: map[string][]string{"Session-Id": {"codex-1"}}, wantKey: "codex-1"},
		{name: "older Codex's session header", values: map[string][]string{"Session_id": {"codex-0"}}, wantKey: "codex-0"},
		{name: "OpenCode's session header", values: map[string][]string{"X-Session-Affinity": {"ses_1"}}, wantKey: "ses_1"},
		{name: "OpenCode's session header to an opencode provider", values: map[string][]string{"X-Opencode-Session": {"ses_2"}},
			wantKey: "ses_2"},
		{name: "the first session header wins", values: map[string][]string{"X-Opencode-Session": {"ses_3"}, "X-Claude-Code-Session-Id": {"cc-3"}},
			wantKey: "cc-3"},
		{name: "the affinity header wins over a harness's", values: map[string][]string{"X-Model-Affinity": {"mine"}, "X-Claude-Code-Session-Id": {"cc-1"}},
			wantKey: "mine"},
		{name: "opting out wins over a harness's header", values: map[string][]string{HeaderMode: {"off"}, "X-Claude-Code-Session-Id": {"cc-1"}},
			wantOptOut: true},
		{name: "an invalid harness id is passed over", values: map[string][]string{"X-Claude-Code-Session-Id": {"caf\u00e9"}, "Session_id": {"codex-2"}},
			wantKey: "codex-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{Header: DefaultHeader, sessionHeaders: DefaultSessionHeaders}
			if tt.header != "" {
				h.Header = tt.header
			}
			r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
			for k, v := range tt.values {
				r.Header[k] = v
			}
			key, optOut, err := h.affinityKey(r)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("affinityKey = %q, %v, nil; want an error containing %q", key, optOut, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
				}
				for _, v := range tt.values[h.Header] {
					if len(v) > 1 && strings.Contains(err.Error(), v) {
						t.Errorf("error = %q quotes the key", err)
					}
				}
				if key != "" || optOut {
					t.Errorf("with an error: key %q, optOut %v; want none", key, optOut)
				}
				return
			}
			if err != nil {
				t.Fatalf("affinityKey: %v", err)
			}
			if key != tt.wantKey || optOut != tt.wantOptOut {
				t.Errorf("affinityKey = %q, optOut %v; want %q, %v", key, optOut, tt.wantKey, tt.wantOptOut)
			}
		})
	}
}

// Each default session header is read as its harness writes it on the wire:
// the server canonicalizes the name ("session-id" is Session-Id,
// "session_id" is Session_id), and the value is the key. (Caddy itself drops
// session_id unless told to keep it: TestHarnessSessionHeaders.)
func TestHarnessSessionHeadersAsSent(t *testing.T) {
	sent := map[string]string{ // default header: a harness's spelling of it
		"X-Claude-Code-Session-Id": "X-Claude-Code-Session-Id", // Claude Code
		"Session-Id":               "session-id",               // Codex CLI 0.131 and later
		"Session_id":               "session_id",               // older Codex CLI
		"X-Session-Affinity":       "x-session-affinity",       // OpenCode
		"X-Opencode-Session":       "x-opencode-session",       // OpenCode, provider "opencode..."
	}
	if len(sent) != len(DefaultSessionHeaders) {
		t.Fatalf("%d spellings for %d default session headers %v", len(sent), len(DefaultSessionHeaders), DefaultSessionHeaders)
	}
	h := &Handler{Header: DefaultHeader, sessionHeaders: DefaultSessionHeaders}
	for _, name := range DefaultSessionHeaders {
		spelling, ok := sent[name]
		if !ok {
			t.Errorf("default session header %s has no harness spelling in this test", name)
			continue
		}
		id := "id-of-" + spelling
		raw := "POST /v1/responses HTTP/1.1\r\nHost: gateway\r\n" + spelling + ": " + id + "\r\nContent-Length: 0\r\n\r\n"
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatalf("%s: reading the request: %v", spelling, err)
		}
		key, optOut, err := h.affinityKey(r)
		if err != nil || optOut || key != id {
			t.Errorf("%s: affinityKey = %q, optOut %v, err %v; want %q", spelling, key, optOut, err, id)
		}
	}
}

// decDecode decodes a test body, failing the test on error.
func decDecode(t *testing.T, body string) *llmapi.Summary {
	t.Helper()
	req, err := llmapi.Decode([]byte(body))
	if err != nil {
		t.Fatalf("Decode(%s): %v", body, err)
	}
	return req
}

func TestImplicitKey(t *testing.T) {
	const (
		system = "You are a database consultant"
		first  = "Should we use PostgreSQL or MongoDB?"
		tools  = `"tools":[{"type":"function","function":{"name":"get_db_benchmarks"}},{"type":"function","function":{"name":"get_case_studies"}}]`
	)
	h := &Handler{implicitSalt: "salt-1"}
	turn1 := decDecode(t, `{"model":"m",`+tools+`,"messages":[{"role":"system","content":"`+system+`"},{"role":"user","content":"`+first+`"}]}`)
	key := h.implicitKey(turn1)

	if !strings.HasPrefix(key, "implicit:") {
		t.Errorf("key %q lacks the implicit: prefix", key)
	}
	if strings.Contains(key, "PostgreSQL") || strings.Contains(key, "database") || strings.Contains(key, "get_db") {
		t.Errorf("key %q holds prompt text", key)
	}
	if key != h.implicitKey(turn1) {
		t.Errorf("implicitKey is not deterministic")
	}

	same := []struct {
		name string
		body string
	}{
		{name: "later turns", body: `{"model":"m",` + tools + `,"messages":[{"role":"system","content":"` + system + `"},` +
			`{"role":"user","content":"` + first + `"},` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_db_benchmarks","arguments":"{}"}}]},` +
			`{"role":"tool","tool_call_id":"c1","content":"benchmarks"},{"role":"assistant","content":"I recommend"},` +
			`{"role":"user","content":"why?"}]}`},
		{name: "another requested model", body: `{"model":"other",` + tools + `,"messages":[{"role":"system","content":"` + system + `"},{"role":"user","content":"` + first + `"}]}`},
		{name: "anthropic shape of the same session", body: `{"model":"m","system":"` + system + `",` +
			`"tools":[{"name":"get_db_benchmarks","input_schema":{}},{"name":"get_case_studies","input_schema":{}}],` +
			`"messages":[{"role":"user","content":[{"type":"text","text":"` + first + `"}]},{"role":"assistant","content":"ok"}]}`},
	}
	for _, tt := range same {
		if got := h.implicitKey(decDecode(t, tt.body)); got != key {
			t.Errorf("%s: key %q, want the first turn's %q", tt.name, got, key)
		}
	}

	differ := []struct {
		name string
		h    *Handler
		body string
	}{
		{name: "another system prompt", h: h,
			body: `{"model":"m",` + tools + `,"messages":[{"role":"system","content":"You are a poet"},{"role":"user","content":"` + first + `"}]}`},
		{name: "no system prompt", h: h,
			body: `{"model":"m",` + tools + `,"messages":[{"role":"user","content":"` + first + `"}]}`},
		{name: "other tools", h: h,
			body: `{"model":"m","tools":[{"type":"function","function":{"name":"get_db_benchmarks"}}],"messages":[{"role":"system","content":"` + system + `"},{"role":"user","content":"` + first + `"}]}`},
		{name: "tools in another order", h: h,
			body: `{"model":"m","tools":[{"type":"function","function":{"name":"get_case_studies"}},{"type":"function","function":{"name":"get_db_benchmarks"}}],"messages":[{"role":"system","content":"` + system + `"},{"role":"user","content":"` + first + `"}]}`},
		{name: "no tools", h: h,
			body: `{"model":"m","messages":[{"role":"system","content":"` + system + `"},{"role":"user","content":"` + first + `"}]}`},
		{name: "another first user message", h: h,
			body: `{"model":"m",` + tools + `,"messages":[{"role":"system","content":"` + system + `"},{"role":"user","content":"Redis or Memcached?"}]}`},
		{name: "another salt", h: &Handler{implicitSalt: "salt-2"},
			body: `{"model":"m",` + tools + `,"messages":[{"role":"system","content":"` + system + `"},{"role":"user","content":"` + first + `"}]}`},
	}
	seen := map[string]string{key: "first turn"}
	for _, tt := range differ {
		got := tt.h.implicitKey(decDecode(t, tt.body))
		if prev, ok := seen[got]; ok {
			t.Errorf("%s: key %q equals the key of %s", tt.name, got, prev)
		}
		seen[got] = tt.name
	}
}

// Parts do not run into each other: moving text from one part to the next
// changes the key.
func TestImplicitKeyPartBoundaries(t *testing.T) {
	h := &Handler{implicitSalt: "s"}
	tests := []struct {
		name string
		a, b llmapi.Summary
	}{
		{name: "system and first user",
			a: llmapi.Summary{System: "ab", FirstUserText: "c"},
			b: llmapi.Summary{System: "a", FirstUserText: "bc"}},
		{name: "salt and system",
			a: llmapi.Summary{System: "xy"},
			b: llmapi.Summary{System: "y"}},
		{name: "system and tools",
			a: llmapi.Summary{System: "ab", ToolNames: []string{"c"}},
			b: llmapi.Summary{System: "a", ToolNames: []string{"bc"}}},
		{name: "tool names",
			a: llmapi.Summary{ToolNames: []string{"ab", "c"}},
			b: llmapi.Summary{ToolNames: []string{"a", "bc"}}},
	}
	for _, tt := range tests {
		hb := h
		if tt.name == "salt and system" {
			hb = &Handler{implicitSalt: "sx"}
		}
		if ka, kb := h.implicitKey(&tt.a), hb.implicitKey(&tt.b); ka == kb {
			t.Errorf("%s: both give %q", tt.name, ka)
		}
	}
}

func TestCandidates(t *testing.T) {
	a, b, c, d := &Model{Name: "a"}, &Model{Name: "b"}, &Model{Name: "c"}, &Model{Name: "d"}
	h := &Handler{defaultModel: d}
	names := func(ms []*Model) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = m.Name
		}
		return out
	}
	tests := []struct {
		name   string
		chosen *Model
		route  []*Model // nil: no route
		want   []string
	}{
		{name: "no route", chosen: a, want: []string{"a", "d"}},
		{name: "no route, chosen is the default", chosen: d, want: []string{"d"}},
		{name: "first picked", chosen: a, route: []*Model{a, b, c}, want: []string{"a", "b", "c", "d"}},
		{name: "middle picked, rest in order", chosen: b, route: []*Model{a, b, c}, want: []string{"b", "a", "c", "d"}},
		{name: "last picked", chosen: c, route: []*Model{a, b, c}, want: []string{"c", "a", "b", "d"}},
		{name: "default in the route is not repeated", chosen: a, route: []*Model{a, d, b}, want: []string{"a", "d", "b"}},
		{name: "default picked from the route", chosen: d, route: []*Model{a, d}, want: []string{"d", "a"}},
		{name: "one-model route", chosen: a, route: []*Model{a}, want: []string{"a", "d"}},
		{name: "route repeats a model", chosen: a, route: []*Model{b, a, b}, want: []string{"a", "b", "d"}},
		{name: "route repeats the chosen model", chosen: a, route: []*Model{a, a, b}, want: []string{"a", "b", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rt *Route
			if tt.route != nil {
				rt = &Route{Name: "r", models: tt.route}
			}
			got := names(h.candidates(tt.chosen, rt))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("candidates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPreferenceRoutes(t *testing.T) {
	small, big := &Model{Name: "small"}, &Model{Name: "big"}
	h := &Handler{models: map[string]*Model{"small": small, "big": big}}

	for _, prefs := range [][]llmapi.Preference{nil, {}} {
		routes, err := h.preferenceRoutes(prefs)
		if err != nil || routes != nil {
			t.Errorf("preferenceRoutes(%#v) = %v, %v; want nil, nil", prefs, routes, err)
		}
	}

	routes, err := h.preferenceRoutes([]llmapi.Preference{
		{Name: "code", Description: "writing code", Models: []string{"big", "small"}},
		{Name: "chat", Models: []string{"small"}},
	})
	if err != nil {
		t.Fatalf("preferenceRoutes: %v", err)
	}
	if len(routes) != 2 {
		t.Fatalf("got %d routes, want 2", len(routes))
	}
	code, chat := routes[0], routes[1]
	if code.Name != "code" || code.Description != "writing code" || code.Policy != PolicyFirst ||
		!reflect.DeepEqual(code.Models, []string{"big", "small"}) || len(code.models) != 2 || code.models[0] != big || code.models[1] != small {
		t.Errorf("route code = %+v", code)
	}
	if chat.Name != "chat" || chat.Description != "" || chat.Policy != PolicyFirst || len(chat.models) != 1 || chat.models[0] != small {
		t.Errorf("route chat = %+v", chat)
	}

	errTests := []struct {
		name    string
		prefs   []llmapi.Preference
		wantErr string
	}{
		{name: "unknown model in the first",
			prefs:   []llmapi.Preference{{Name: "p", Models: []string{"small", "gpt-secret"}}},
			wantErr: "routing_preferences[0] names a model this gateway does not serve"},
		{name: "unknown model in the second",
			prefs:   []llmapi.Preference{{Name: "p", Models: []string{"small"}}, {Name: "q", Models: []string{"gpt-secret"}}},
			wantErr: "routing_preferences[1] names a model this gateway does not serve"},
		{name: "model names are case sensitive",
			prefs:   []llmapi.Preference{{Name: "p", Models: []string{"Small"}}},
			wantErr: "routing_preferences[0] names a model"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			routes, err := h.preferenceRoutes(tt.prefs)
			if err == nil {
				t.Fatalf("preferenceRoutes = %v, want an error containing %q", routes, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "gpt-secret") || strings.Contains(err.Error(), "Small") {
				t.Errorf("error = %q quotes the request's model name", err)
			}
		})
	}
}

func TestRouterRoutes(t *testing.T) {
	rule := []*routing.Condition{{Tools: true}}
	routes := []*Route{
		{Name: "plain", Description: "plain route"},
		{Name: "rule-only", When: rule},
		{Name: "rule-and-description", Description: "described", When: rule},
		{Name: "bare"},
	}
	want := []routing.Route{
		{Name: "plain", Description: "plain route"},
		{Name: "rule-and-description", Description: "described"},
		{Name: "bare"},
	}
	if got := routerRoutes(routes); !reflect.DeepEqual(got, want) {
		t.Errorf("routerRoutes = %+v, want %+v", got, want)
	}
	if got := routerRoutes([]*Route{{Name: "rule-only", When: rule}}); len(got) != 0 {
		t.Errorf("routerRoutes of only rule routes = %+v, want none", got)
	}
	if got := routerRoutes(nil); len(got) != 0 {
		t.Errorf("routerRoutes(nil) = %+v, want none", got)
	}
}

package routing

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

const instruction = "You are a helpful assistant designed to find the best suited route."

// section returns the text between the open and close lines of a prompt,
// failing unless each appears exactly once.
func section(t *testing.T, prompt, open, close string) string {
	t.Helper()
	if n := strings.Count(prompt, open); n != 1 {
		t.Fatalf("prompt contains %q %d times, want once:\n%s", open, n, prompt)
	}
	if n := strings.Count(prompt, close); n != 1 {
		t.Fatalf("prompt contains %q %d times, want once:\n%s", close, n, prompt)
	}
	i := strings.Index(prompt, open) + len(open)
	j := strings.Index(prompt, close)
	if j < i {
		t.Fatalf("%q comes before %q", close, open)
	}
	return prompt[i:j]
}

func TestPrompt(t *testing.T) {
	routes := []Route{
		{Name: "code_generation", Description: "Writing or fixing code"},
		{Name: "summarize", Description: "Summaries of long text\nincluding </routes> and \"quotes\""},
		{Name: "casual", Description: ""},
	}
	conv := []llmapi.Utterance{
		{Role: "user", Content: "fix my loop"},
		{Role: "assistant", Content: "sure </conversation> <routes>"},
		{Role: "user", Content: "now in \"Go\"\nplease"},
	}
	p := Prompt(routes, conv)

	if !strings.Contains(p, instruction) {
		t.Errorf("prompt lacks the instruction %q", instruction)
	}
	if !strings.Contains(p, `{"route": "route_name"}`) {
		t.Errorf("prompt lacks the answer format")
	}

	block := section(t, p, "\n<routes>\n", "\n</routes>\n")
	lines := strings.Split(strings.TrimSpace(block), "\n")
	if len(lines) != len(routes) {
		t.Fatalf("routes block has %d lines, want %d:\n%s", len(lines), len(routes), block)
	}
	for i, line := range lines {
		var r Route
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("route line %d %q is not a JSON object: %v", i, line, err)
		}
		if r != routes[i] {
			t.Errorf("route line %d = %+v, want %+v", i, r, routes[i])
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil || len(fields) != 2 {
			t.Errorf("route line %d has fields %v, want exactly name and description", i, fields)
		}
	}

	convBlock := strings.TrimSpace(section(t, p, "\n<conversation>\n", "\n</conversation>\n"))
	if !strings.HasPrefix(convBlock, "[") || !strings.HasSuffix(convBlock, "]") {
		t.Fatalf("conversation block is not a JSON array: %s", convBlock)
	}
	var got []llmapi.Utterance
	if err := json.Unmarshal([]byte(convBlock), &got); err != nil {
		t.Fatalf("conversation block is not a JSON array of messages: %v\n%s", err, convBlock)
	}
	if !reflect.DeepEqual(got, conv) {
		t.Errorf("conversation = %#v, want %#v", got, conv)
	}

	// routes come before the conversation, the instruction before both
	if a, b, c := strings.Index(p, instruction), strings.Index(p, "\n<routes>\n"), strings.Index(p, "\n<conversation>\n"); !(a < b && b < c) {
		t.Errorf("prompt parts out of order: instruction %d, routes %d, conversation %d", a, b, c)
	}
}

func TestPromptBoundsConversation(t *testing.T) {
	var conv []llmapi.Utterance
	for i := range 20 {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		conv = append(conv, llmapi.Utterance{Role: role, Content: fmt.Sprintf("turn-%02d", i)})
	}
	conv = append(conv, llmapi.Utterance{Role: "user", Content: "turn-20"})
	p := Prompt([]Route{{Name: "a", Description: "b"}}, conv)
	var got []llmapi.Utterance
	block := strings.TrimSpace(section(t, p, "\n<conversation>\n", "\n</conversation>\n"))
	if err := json.Unmarshal([]byte(block), &got); err != nil {
		t.Fatalf("conversation block: %v", err)
	}
	if !reflect.DeepEqual(got, conv[len(conv)-maxTurns:]) {
		t.Errorf("prompt conversation = %v, want the last %d turns", got, maxTurns)
	}
}

func TestPromptEmpty(t *testing.T) {
	p := Prompt(nil, nil)
	if !strings.Contains(p, instruction) {
		t.Errorf("prompt lacks the instruction")
	}
	if routes := strings.TrimSpace(section(t, p, "\n<routes>\n", "\n</routes>\n")); routes != "" {
		t.Errorf("routes block = %q, want empty", routes)
	}
	if conv := strings.TrimSpace(section(t, p, "\n<conversation>\n", "\n</conversation>\n")); conv != "[]" {
		t.Errorf("conversation block = %q, want []", conv)
	}
}

func alternating(n int, content func(i int) string) []llmapi.Utterance {
	conv := make([]llmapi.Utterance, n)
	for i := range conv {
		conv[i].Role = "user"
		if (n-1-i)%2 == 1 { // the last message is a user message
			conv[i].Role = "assistant"
		}
		conv[i].Content = content(i)
	}
	return conv
}

func totalChars(conv []llmapi.Utterance) int {
	n := 0
	for _, m := range conv {
		n += len(m.Content)
	}
	return n
}

func TestBoundConversation(t *testing.T) {
	small := func(i int) string { return fmt.Sprintf("message %d", i) }
	big := func(int) string { return strings.Repeat("x", 10000) }
	tests := []struct {
		name string
		conv []llmapi.Utterance
		want []llmapi.Utterance
	}{
		{
			name: "empty",
			conv: nil,
			want: []llmapi.Utterance{},
		},
		{
			name: "short conversation unchanged",
			conv: alternating(5, small),
			want: alternating(5, small),
		},
		{
			name: "exactly maxTurns unchanged",
			conv: alternating(maxTurns, small),
			want: alternating(maxTurns, small),
		},
		{
			name: "more than maxTurns keeps the last maxTurns",
			conv: alternating(40, small),
			want: alternating(40, small)[40-maxTurns:],
		},
		{
			name: "budget keeps the newest turns",
			conv: alternating(5, big),
			want: alternating(5, big)[2:], // 3 x 10000 fit in 32000, 4 do not
		},
		{
			name: "an old message over budget stops the walk",
			conv: []llmapi.Utterance{
				{Role: "user", Content: "oldest, small"},
				{Role: "assistant", Content: strings.Repeat("y", maxPromptChars)},
				{Role: "user", Content: "newest"},
			},
			want: []llmapi.Utterance{{Role: "user", Content: "newest"}},
		},
		{
			name: "exactly at budget is kept",
			conv: []llmapi.Utterance{
				{Role: "user", Content: strings.Repeat("a", maxPromptChars-10)},
				{Role: "assistant", Content: "0123456789"},
				{Role: "user", Content: ""},
			},
			want: []llmapi.Utterance{
				{Role: "user", Content: strings.Repeat("a", maxPromptChars-10)},
				{Role: "assistant", Content: "0123456789"},
				{Role: "user", Content: ""},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]llmapi.Utterance(nil), tt.conv...)
			got := boundConversation(tt.conv)
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("boundConversation kept %d turns, want %d\n got %.300v\nwant %.300v", len(got), len(tt.want), got, tt.want)
			}
			if !reflect.DeepEqual(in, tt.conv) {
				t.Errorf("boundConversation modified its input")
			}
			if len(got) > maxTurns {
				t.Errorf("kept %d turns, more than %d", len(got), maxTurns)
			}
			if n := totalChars(got); n > maxPromptChars {
				t.Errorf("kept %d chars, more than %d", n, maxPromptChars)
			}
		})
	}
}

func TestBoundConversationDoesNotAliasInput(t *testing.T) {
	conv := alternating(3, func(i int) string { return fmt.Sprint(i) })
	got := boundConversation(conv)
	got[0].Content = "changed"
	if conv[0].Content != "0" {
		t.Errorf("changing the result changed the input: %q", conv[0].Content)
	}
}

func TestBoundConversationTrimsOversizedUserMessage(t *testing.T) {
	const head, tail = "HEAD-MARKER", "TAIL-ASK"
	huge := head + strings.Repeat("m", 100000) + tail
	tests := []struct {
		name string
		conv []llmapi.Utterance
	}{
		{"alone", []llmapi.Utterance{{Role: "user", Content: huge}}},
		{"after history", []llmapi.Utterance{
			{Role: "user", Content: "earlier question"},
			{Role: "assistant", Content: "earlier answer"},
			{Role: "user", Content: huge},
		}},
		{"followed by a short assistant prefill", []llmapi.Utterance{
			{Role: "user", Content: "earlier question"},
			{Role: "assistant", Content: "earlier answer"},
			{Role: "user", Content: huge},
			{Role: "assistant", Content: "{\"answer\":"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := boundConversation(tt.conv)
			if n := totalChars(got); n > maxPromptChars {
				t.Errorf("kept %d chars, more than %d", n, maxPromptChars)
			}
			var user *llmapi.Utterance
			for i := range got {
				if got[i].Role == "user" {
					user = &got[i]
				}
			}
			if user == nil {
				t.Fatalf("newest user message dropped: %.200v", got)
			}
			if !strings.HasPrefix(user.Content, head) {
				t.Errorf("trimmed message lost its head: %.40q", user.Content)
			}
			if !strings.HasSuffix(user.Content, tail) {
				t.Errorf("trimmed message lost its tail: ...%q", user.Content[max(0, len(user.Content)-40):])
			}
			if !strings.Contains(user.Content, strings.TrimSpace(trimMarker)) {
				t.Errorf("trimmed message has no trim marker")
			}
			if len(user.Content) < maxPromptChars/2 {
				t.Errorf("trimmed message kept only %d chars; the budget allows about %d", len(user.Content), maxPromptChars)
			}
			if tt.conv[len(tt.conv)-1].Role == "assistant" && got[len(got)-1] != tt.conv[len(tt.conv)-1] {
				t.Errorf("short trailing assistant message not kept: %.200v", got[len(got)-1])
			}
		})
	}
}

func TestBoundConversationKeepsUTF8Valid(t *testing.T) {
	for _, r := range []string{"é", "日", "\U0001F600", "aé日\U0001F600"} {
		for shift := range 4 {
			content := strings.Repeat("a", shift) + strings.Repeat(r, 100000/len(r)+7)
			t.Run(fmt.Sprintf("%q/shift%d", r, shift), func(t *testing.T) {
				got := boundConversation([]llmapi.Utterance{{Role: "user", Content: content}})
				if len(got) != 1 {
					t.Fatalf("kept %d messages, want 1", len(got))
				}
				c := got[0].Content
				if !utf8.ValidString(c) {
					t.Errorf("trimmed content is not valid UTF-8")
				}
				if len(c) > maxPromptChars {
					t.Errorf("trimmed content is %d bytes, more than %d", len(c), maxPromptChars)
				}
				if len(c) < maxPromptChars-16 {
					t.Errorf("trimmed content is %d bytes, needlessly short", len(c))
				}
				if !strings.HasPrefix(content, c[:strings.Index(c, trimMarker)]) {
					t.Errorf("head is not a prefix of the original")
				}
				if !strings.HasSuffix(content, c[strings.Index(c, trimMarker)+len(trimMarker):]) {
					t.Errorf("tail is not a suffix of the original")
				}
			})
		}
	}
}

// The doc comment promises that the newest user message always survives,
// also when a newer assistant message (e.g. an Anthropic prefill or a long
// assistant answer) does not fit the budget.
func TestBoundConversationNewestUserSurvivesOversizedAssistant(t *testing.T) {
	conv := []llmapi.Utterance{
		{Role: "user", Content: "please continue the report"},
		{Role: "assistant", Content: strings.Repeat("r", maxPromptChars+8000)},
	}
	got := boundConversation(conv)
	found := false
	for _, m := range got {
		if m.Role == "user" && m.Content == conv[0].Content {
			found = true
		}
	}
	if !found {
		t.Errorf("newest user message dropped: boundConversation kept %d messages (%d chars)", len(got), totalChars(got))
	}
}

func TestBoundConversationInvariants(t *testing.T) {
	// deterministic pseudo-random conversations
	seed := uint32(12345)
	next := func(n int) int {
		seed = seed*1664525 + 1013904223
		return int(seed>>8) % n
	}
	sizes := []int{0, 1, 10, 500, 3000, 9000, 15000, 31000, 40000}
	for iter := range 300 {
		n := 1 + next(25)
		conv := make([]llmapi.Utterance, n)
		for i := range conv {
			conv[i].Role = []string{"user", "assistant"}[next(2)]
			conv[i].Content = fmt.Sprintf("<%d.%d>", iter, i) + strings.Repeat("z", sizes[next(len(sizes))])
		}
		conv[n-1].Role = "user" // the usual shape: the request ends with the user
		got := boundConversation(conv)
		if len(got) == 0 {
			t.Fatalf("iter %d: nothing kept", iter)
		}
		if len(got) > maxTurns {
			t.Fatalf("iter %d: kept %d turns", iter, len(got))
		}
		if total := totalChars(got); total > maxPromptChars {
			t.Fatalf("iter %d: kept %d chars", iter, total)
		}
		// a suffix of the input; only the newest (user) message may be trimmed
		off := n - len(got)
		for i, m := range got {
			orig := conv[off+i]
			if m.Role != orig.Role {
				t.Fatalf("iter %d: turn %d role %q, want %q", iter, i, m.Role, orig.Role)
			}
			if i == len(got)-1 {
				if !strings.HasPrefix(m.Content, fmt.Sprintf("<%d.%d>", iter, n-1)) {
					t.Fatalf("iter %d: newest message lost its head", iter)
				}
				continue
			}
			if m.Content != orig.Content {
				t.Fatalf("iter %d: turn %d changed", iter, i)
			}
		}
		// as many turns as fit: the next older one would not
		if off > 0 && len(got) < maxTurns && len(got[len(got)-1].Content) == len(conv[n-1].Content) {
			if totalChars(got)+len(conv[off-1].Content) <= maxPromptChars {
				t.Fatalf("iter %d: turn %d would have fit but was dropped", iter, off-1)
			}
		}
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   string
	}{
		{"plain", `{"route": "code_generation"}`, "code_generation"},
		{"compact", `{"route":"summarize"}`, "summarize"},
		{"surrounding whitespace", " \n {\"route\": \"x\"} \n", "x"},
		{"name padded", `{"route": "  x  "}`, "x"},
		{"array", `{"route": ["code_generation"]}`, "code_generation"},
		{"first of array", `{"route": ["a", "b", "c"]}`, "a"},
		{"empty array", `{"route": []}`, ""},
		{"array first not a string", `{"route": [5, "a"]}`, ""},
		{"code fence json", "```json\n{\"route\": \"x\"}\n```", "x"},
		{"code fence bare", "```\n{\"route\": [\"y\"]}\n```", "y"},
		{"single quotes", `{'route': 'x'}`, "x"},
		{"single quotes array", `{'route': ['a', 'b']}`, "a"},
		{"single quotes in code fence", "```json\n{'route': 'z'}\n```", "z"},
		{"apostrophe inside double quotes", `{"route": "it's"}`, "it's"},
		{"prose around", `Sure! Based on the conversation, {"route": "x"} is the best fit.`, "x"},
		{"other", `{"route": "other"}`, ""},
		{"other padded", `{"route": " other "}`, ""},
		{"other in array", `{"route": ["other", "x"]}`, ""},
		{"other single quotes", `{'route': 'other'}`, ""},
		{"extra fields", `{"route": "x", "confidence": 0.9}`, "x"},
		{"empty", ``, ""},
		{"whitespace", " \n\t", ""},
		{"garbage", `I cannot decide.`, ""},
		{"braces without JSON", `{not json}`, ""},
		{"unclosed", `{"route": "x"`, ""},
		{"no braces", `"route": "x"`, ""},
		{"route missing", `{"name": "x"}`, ""},
		{"route number", `{"route": 5}`, ""},
		{"route bool", `{"route": true}`, ""},
		{"route null", `{"route": null}`, ""},
		{"route object", `{"route": {"name": "x"}}`, ""},
		{"route empty", `{"route": ""}`, ""},
		{"top-level array", `["x"]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseRoute(tt.answer); got != tt.want {
				t.Errorf("ParseRoute(%q) = %q, want %q", tt.answer, got, tt.want)
			}
		})
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		`{"route": "code_generation"}`,
		`{"route": ["a", "b"]}`,
		"```json\n{\"route\": \"x\"}\n```",
		`{'route': 'x'}`,
		`{"route": "other"}`,
		`{"route": " other\n"}`,
		`prose {"route": "x"} prose`,
		`{"route": 5}`,
		``,
		`}{`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, answer string) {
		got := ParseRoute(answer)
		if got == NoRoute {
			t.Fatalf("ParseRoute(%q) = %q", answer, got)
		}
		if got != strings.TrimSpace(got) {
			t.Fatalf("ParseRoute(%q) = %q, not trimmed", answer, got)
		}
	})
}

func TestBoundConversationWithoutUserMessageKeepsNewestTurns(t *testing.T) {
	conv := []llmapi.Utterance{
		{Role: "assistant", Content: strings.Repeat("a", 40000)},
		{Role: "assistant", Content: "first"},
		{Role: "assistant", Content: "second"},
	}
	got := boundConversation(conv)
	if len(got) != 2 || got[0].Content != "first" || got[1].Content != "second" {
		t.Errorf("boundConversation = %v, want the two newest turns that fit", got)
	}
}

package demo

import (
	"strings"
	"testing"
)

func TestCommonPrefix(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 0},
		{"abc", "", 0},
		{"abc", "abc", 3},
		{"abc", "abcdef", 3}, // the next turn extends the previous prompt
		{"abcdef", "abc", 3},
		{"abXdef", "abcdef", 2}, // an edit in the middle ends the prefix there
		{"xbc", "abc", 0},
		{"héllo", "hémisphère", 3}, // bytes, not runes: é is two
	} {
		if got := CommonPrefix(tc.a, tc.b); got != tc.want {
			t.Errorf("CommonPrefix(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestTokenEstimate(t *testing.T) {
	for _, tc := range []struct{ bytes, tokens int }{
		{0, 0}, {1, 1}, {3, 1}, {4, 1}, {5, 2}, {8, 2}, {1049, 263},
	} {
		if got := TokensOf(tc.bytes); got != tc.tokens {
			t.Errorf("TokensOf(%d) = %d, want %d", tc.bytes, got, tc.tokens)
		}
	}
}

// TestPromptCache: a request's cached tokens are its common prefix with the
// previous request of the same model in the same session, and it takes
// that request's place.
func TestPromptCache(t *testing.T) {
	turn1 := strings.Repeat("system and tools ", 10)        // 170 bytes
	turn2 := turn1 + strings.Repeat("reply and result ", 5) // 255 bytes
	turn3 := turn2 + strings.Repeat("another exchange ", 5) // 340 bytes
	edited := "X" + turn3[1:]                               // the same length, differing at once
	var c promptCache
	for i, step := range []struct {
		model, session, prompt string
		cache                  bool
		want                   CacheUsage
	}{
		{"claude", "s1", turn1, true, CacheUsage{Input: 43, Cached: 0, Written: 43}},
		{"claude", "s1", turn2, true, CacheUsage{Input: 64, Cached: 43, Written: 21}}, // turn1, all of it
		{"gpt", "s1", turn3, true, CacheUsage{Input: 85, Cached: 0, Written: 85}},     // another model's cache is cold
		{"claude", "s2", turn3, true, CacheUsage{Input: 85, Cached: 0, Written: 85}},  // and another session's
		{"claude", "s1", turn3, true, CacheUsage{Input: 85, Cached: 64, Written: 21}}, // s1's previous is turn2
		{"claude", "s1", turn3, false, CacheUsage{Input: 85}},                         // no caching asked: no read, no write
		{"claude", "s1", turn3, true, CacheUsage{Input: 85, Cached: 85, Written: 0}},  // the same prompt again: all of it
		{"claude", "s1", turn1, true, CacheUsage{Input: 43, Cached: 43, Written: 0}},  // a shorter prompt: all of it
		{"claude", "s1", edited, true, CacheUsage{Input: 85, Cached: 0, Written: 85}}, // an edit at the start: nothing
	} {
		if got := c.serve(step.model, step.session, step.prompt, step.cache); got != step.want {
			t.Errorf("request %d (%s, %s, %d bytes): %+v, want %+v", i+1, step.model, step.session, len(step.prompt), got, step.want)
		}
	}
}

// TestPromptText: canonical JSON makes a schema or arguments the same
// prompt whatever their key order and spacing.
func TestPromptText(t *testing.T) {
	var a, b promptText
	a.tool("f", "does f", []byte(`{"type":"object","properties":{"x":{"type":"string"}}}`))
	b.tool("f", "does f", []byte(` { "properties" : {"x": {"type": "string"}}, "type": "object" }`))
	a.call("f", `{"x":"1","y":2}`)
	b.call("f", `{"y": 2, "x": "1"}`)
	if a.String() != b.String() {
		t.Errorf("the same tool and call render differently:\n%q\n%q", a.String(), b.String())
	}
	want := "<tool>\nf: does f\n{\"properties\":{\"x\":{\"type\":\"string\"}},\"type\":\"object\"}\n<call>\nf {\"x\":\"1\",\"y\":2}\n"
	if a.String() != want {
		t.Errorf("rendered %q, want %q", a.String(), want)
	}
}

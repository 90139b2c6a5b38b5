package demo

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// The stand-ins' prompt cache. A provider's prompt cache serves the longest
// prefix of a request it has seen before; the stand-ins model that with one
// remembered prompt per model and session: a request's cached tokens are the
// prefix it shares with the previous request of the same model in the same
// session, and the request is remembered in its place.
//
// What the stand-ins leave out of real caches: the minimum cacheable length
// (1024 tokens at OpenAI and Anthropic; the demo's prompts are shorter),
// OpenAI's 128-token steps, lifetimes (5 minutes to an hour), and sharing
// across sessions (a real cache serves any request with the same prefix; the
// stand-ins keep sessions apart so that the demo's two runs of one question
// read only their own cache).

// TokensOf is the stand-ins' token estimate of n bytes of prompt text: one
// token per four bytes, rounded up; the rule of thumb for English text and
// JSON, which the gateway's count_tokens estimate uses too. A prefix counts
// the same way, so a previous prompt shared whole is cached to the token,
// and a prefix never counts more than the prompt it starts.
func TokensOf(n int) int { return (n + 3) / 4 }

// CommonPrefix is the length in bytes of the longest common prefix of a
// and b.
func CommonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// CacheUsage is what a stand-in's prompt cache did for one request, in
// tokens: Input counts the whole prompt (cached tokens included, as the
// OpenAI APIs count it), Cached the prefix read from the cache, Written
// the part written to it, Output the reply.
type CacheUsage struct {
	Input, Cached, Written, Output int
}

// maxCacheEntries bounds a stand-in's cache; past it the cache starts over.
const maxCacheEntries = 10000

// promptCache is one stand-in provider's cache: the previous prompt of each
// (model, session). Its zero value is empty and ready.
type promptCache struct {
	mu   sync.Mutex
	last map[string]string
}

// serve counts the prompt of a request of model in session: its cached
// tokens are its common prefix with the session's previous prompt of that
// model, and it is remembered in that one's place (Written counts its
// tokens past the cached prefix). Without cache the request neither reads
// nor writes the cache, as a Messages request with no cache_control.
func (c *promptCache) serve(model, session, prompt string, cache bool) CacheUsage {
	u := CacheUsage{Input: TokensOf(len(prompt))}
	if !cache {
		return u
	}
	key := model + "\x00" + session
	c.mu.Lock()
	defer c.mu.Unlock()
	if previous, seen := c.last[key]; seen {
		u.Cached = TokensOf(CommonPrefix(previous, prompt))
	}
	if c.last == nil || len(c.last) >= maxCacheEntries {
		c.last = make(map[string]string)
	}
	c.last[key] = prompt
	u.Written = u.Input - u.Cached
	return u
}

// promptText is a request's prompt as the stand-ins tokenize it, the same
// whichever API it came in (so a request the gateway translated counts as
// its original would): the tools (name, description, parameters as
// canonical JSON), the system prompt, then each message's role and text,
// each tool call's name and arguments (canonical JSON), each tool result's
// output. Ids are left out: the gateway may reshape them when it
// translates.
type promptText struct {
	b strings.Builder
}

func (p *promptText) tool(name, description string, parameters json.RawMessage) {
	p.b.WriteString("<tool>\n" + name + ": " + description + "\n" + canonicalJSON(parameters) + "\n")
}

func (p *promptText) system(text string) { p.message("system", text) }

func (p *promptText) message(role, text string) {
	p.b.WriteString("<" + role + ">\n" + text + "\n")
}

func (p *promptText) call(name, arguments string) {
	p.b.WriteString("<call>\n" + name + " " + canonicalJSON(json.RawMessage(arguments)) + "\n")
}

func (p *promptText) result(output string) { p.message("result", output) }

func (p *promptText) String() string { return p.b.String() }

// canonicalJSON is raw with sorted keys and no spaces; raw as it is when it
// is not JSON.
func canonicalJSON(raw json.RawMessage) string {
	var v any
	if len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return string(raw)
	}
	return string(out)
}

package routing

import (
	"encoding/json"
	"strings"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// Route is a routing preference as the routing model sees it.
type Route struct {
	// Name is what the routing model answers for this route.
	Name string `json:"name"`
	// Description tells the routing model what requests the route is for.
	Description string `json:"description"`
}

// NoRoute is the route name Arch-Router answers when no route fits.
const NoRoute = "other"

// Limits of the conversation sent to the routing model, as in Plano: the
// latest maxTurns user/assistant messages, at most maxPromptChars characters
// (about 8k tokens at 4 characters a token).
const (
	maxTurns       = 16
	maxPromptChars = 32000
	trimMarker     = "\n[...]\n"
)

// The instruction Arch-Router-1.5B was trained on (its model card, "How to
// use"); the routes and the conversation are filled in between the tags.
const (
	promptHead = "\nYou are a helpful assistant designed to find the best suited route.\n" +
		"You are provided with route description within <routes></routes> XML tags:\n<routes>\n\n"
	promptMiddle = "\n\n</routes>\n\n<conversation>\n\n"
	promptTail   = "\n\n</conversation>\n" +
		"\nYour task is to decide which route is best suit with user intent on the conversation in <conversation></conversation> XML tags.  Follow the instruction:\n" +
		"1. If the latest intent from user is irrelevant or user intent is full filled, response with other route {\"route\": \"other\"}.\n" +
		"2. You must analyze the route descriptions and find the best match route for user latest intent. \n" +
		"3. You only response the name of the route that best matches the user's request, use the exact name in the <routes></routes>.\n" +
		"\nBased on your analysis, provide your response in the following JSON formats if you decide to match any route:\n" +
		"{\"route\": \"route_name\"} \n"
)

// Prompt builds the Arch-Router prompt for routes and a conversation (a
// request's llmapi.Summary.Conversation): each route as one JSON object a
// line inside <routes>, the bounded conversation as a JSON array inside
// <conversation>.
func Prompt(routes []Route, conv []llmapi.Utterance) string {
	var b strings.Builder
	b.WriteString(promptHead)
	for i, r := range routes {
		if i > 0 {
			b.WriteByte('\n')
		}
		line, _ := json.Marshal(r) // a struct of strings always marshals
		b.Write(line)
	}
	b.WriteString(promptMiddle)
	convJSON, _ := json.Marshal(boundConversation(conv))
	b.Write(convJSON)
	b.WriteString(promptTail)
	return b.String()
}

// boundConversation keeps the latest turns that fit the routing model's
// budget: at most maxTurns messages and maxPromptChars characters, in their
// original order. The newest user message (the intent being routed) is always
// kept: turns after it come first while they leave it at least half the
// budget, then it is cut in the middle to what remains, so both its framing
// and its final ask survive, then older history fills the rest up to the
// first turn that no longer fits.
func boundConversation(conv []llmapi.Utterance) []llmapi.Utterance {
	lastUser := -1
	for i := len(conv) - 1; i >= 0; i-- {
		if conv[i].Role == "user" {
			lastUser = i
			break
		}
	}
	keep := make([]bool, len(conv))
	kept, budget := 0, maxPromptChars
	var userText string
	if lastUser >= 0 {
		userText = conv[lastUser].Content
		// turns after the newest user message, e.g. an assistant prefill
		reserve := min(len(userText), maxPromptChars/2)
		for i := len(conv) - 1; i > lastUser && kept < maxTurns-1; i-- {
			if n := len(conv[i].Content); n <= budget-reserve {
				keep[i] = true
				kept++
				budget -= n
			}
		}
		userText = trimMiddle(userText, budget)
		keep[lastUser] = true
		kept++
		budget -= len(userText)
	}
	older := lastUser - 1
	if lastUser < 0 {
		older = len(conv) - 1 // no user message: the newest turns, as they fit
	}
	for i := older; i >= 0 && kept < maxTurns; i-- {
		n := len(conv[i].Content)
		if n > budget {
			break // keep the older history contiguous
		}
		keep[i] = true
		kept++
		budget -= n
	}
	out := make([]llmapi.Utterance, 0, kept)
	for i, m := range conv {
		if !keep[i] {
			continue
		}
		if i == lastUser {
			m.Content = userText
		}
		out = append(out, m)
	}
	return out
}

// trimMiddle shortens s to at most limit bytes by cutting out its middle,
// keeping whole UTF-8 characters at both ends.
func trimMiddle(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	keep := limit - len(trimMarker)
	if keep < 2 {
		keep = 2
	}
	head := keep / 2
	tail := len(s) - (keep - head)
	for head > 0 && !isRuneStart(s[head]) {
		head--
	}
	for tail < len(s) && !isRuneStart(s[tail]) {
		tail++
	}
	return s[:head] + trimMarker + s[tail:]
}

func isRuneStart(c byte) bool { return c&0xC0 != 0x80 }

// ParseRoute extracts the route name from a routing model's answer. It accepts
// {"route": "name"} and {"route": ["name", ...]} (the first name wins), inside
// Markdown code fences or not, with single quotes in place of double quotes.
// It returns "" when the answer names no route or names "other".
func ParseRoute(answer string) string {
	s := strings.TrimSpace(answer)
	if open := strings.Index(s, "{"); open >= 0 {
		if end := strings.LastIndex(s, "}"); end > open {
			s = s[open : end+1]
		}
	}
	var parsed struct {
		Route any `json:"route"`
	}
	if json.Unmarshal([]byte(s), &parsed) != nil {
		if json.Unmarshal([]byte(strings.ReplaceAll(s, "'", `"`)), &parsed) != nil {
			return ""
		}
	}
	var name string
	switch v := parsed.Route.(type) {
	case string:
		name = v
	case []any:
		if len(v) > 0 {
			name, _ = v[0].(string)
		}
	}
	name = strings.TrimSpace(name)
	if name == NoRoute {
		return ""
	}
	return name
}

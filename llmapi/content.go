package llmapi

import (
	"encoding/json"
	"strings"
)

// Utterance is one conversation turn as a router sees it: a role ("user" or
// "assistant") and the turn's text.
type Utterance struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// wireMessage covers both OpenAI chat and Anthropic messages: content is a
// string or an array of typed parts.
type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type wirePart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// contentText returns the text of a content value (a string, or the text
// parts of an array, joined by newlines), and whether it is a non-empty array
// made only of tool_result blocks (an Anthropic tool turn). Parts that are not
// well-formed are skipped: routing works with the text there is.
func contentText(content json.RawMessage) (text string, toolResultsOnly bool) {
	if len(content) == 0 {
		return "", false
	}
	switch content[0] {
	case '"':
		_ = json.Unmarshal(content, &text)
		return text, false
	case '[':
	default:
		return "", false
	}
	var raw []json.RawMessage
	if json.Unmarshal(content, &raw) != nil || len(raw) == 0 {
		return "", false
	}
	var b strings.Builder
	toolResultsOnly = true
	for _, r := range raw {
		var p wirePart
		if json.Unmarshal(r, &p) != nil {
			toolResultsOnly = false
			continue
		}
		if p.Type != "tool_result" {
			toolResultsOnly = false
		}
		if (p.Type != "text" && p.Type != "input_text") || p.Text == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
	}
	return b.String(), toolResultsOnly
}

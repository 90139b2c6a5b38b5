package router

import (
	"encoding/json"
	"strings"
)

// Message is one conversation turn as a router sees it: a role ("user" or
// "assistant") and the turn's text.
type Message struct {
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

// Conversation decodes a validated "messages" array (see ParseEnvelope) into
// the turns a router should see: user and assistant messages with text, in
// order. System, developer and tool messages, tool calls, tool results and
// images are left out, as Arch-Router was trained without them.
func Conversation(messages []byte) ([]Message, error) {
	var wire []wireMessage
	if err := json.Unmarshal(messages, &wire); err != nil {
		return nil, invalid("\"messages\" does not match the chat message schema")
	}
	conv := make([]Message, 0, len(wire))
	for i, m := range wire {
		if m.Role != "user" && m.Role != "assistant" {
			continue
		}
		text, err := messageText(m.Content)
		if err != nil {
			return nil, invalid("messages[%d].content: %v", i, err)
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		conv = append(conv, Message{Role: m.Role, Content: text})
	}
	return conv, nil
}

// messageText joins the text parts of a content value.
func messageText(content json.RawMessage) (string, error) {
	if len(content) == 0 || content[0] == 'n' {
		return "", nil
	}
	if content[0] == '"' {
		var s string
		err := json.Unmarshal(content, &s)
		return s, err
	}
	var parts []wirePart
	if err := json.Unmarshal(content, &parts); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" || p.Text == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

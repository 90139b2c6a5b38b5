package llmapi

import (
	"encoding/json"
	"strings"
)

// Summary is the decoded view of an unpinned chat request: what routing
// rules, implicit affinity keys and per-request preferences need. Decoding it
// costs a full pass over the body, so pinned requests never do.
type Summary struct {
	// Conversation is the user and assistant text, as a router sees it.
	Conversation []Utterance
	// LastRole is the role of the last message; "tool" also for an Anthropic
	// user turn made only of tool_result blocks.
	LastRole string
	// LastUserText is the text of the newest user message with text.
	LastUserText string
	// FirstUserText is the text of the first user message.
	FirstUserText string
	// System is the system prompt: OpenAI system and developer messages, or
	// Anthropic's top-level "system".
	System string
	// ToolNames are the names of the tools the request offers, in order.
	ToolNames []string
	// TextChars counts the characters of all message text and the system
	// prompt, for token estimates.
	TextChars int
	// Preferences are the request's own routing_preferences, if any.
	Preferences []Preference
}

// Preference is a per-request routing preference (the body's
// "routing_preferences"): a route that replaces the configured ones.
type Preference struct {
	// Name is the route's name, as the router answers it.
	Name string `json:"name"`
	// Description is what requests the route is for.
	Description string `json:"description"`
	// Models are the route's candidate models, configured names.
	Models []string `json:"models"`
}

// EstimatedTokens is a rough token count of the request's text (4 characters
// a token).
func (r *Summary) EstimatedTokens() int { return r.TextChars / 4 }

type wireRequest struct {
	Messages    []wireMessage   `json:"messages"`
	System      json.RawMessage `json:"system"`
	Tools       json.RawMessage `json:"tools"`
	Preferences json.RawMessage `json:"routing_preferences"`
}

type wireTool struct {
	Name     string `json:"name"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

// Decode decodes a body that ParseEnvelope accepted. Its only client errors
// are about routing_preferences, which is the gateway's own field.
func Decode(body []byte) (*Summary, error) {
	var wire wireRequest
	if err := json.Unmarshal(body, &wire); err != nil {
		return nil, invalid("request body does not match the chat request schema")
	}
	req := &Summary{}
	var err error
	if req.Preferences, err = decodePreferences(wire.Preferences); err != nil {
		return nil, err
	}
	req.ToolNames = toolNames(wire.Tools)
	var system []string
	if text, _ := contentText(wire.System); text != "" {
		system = append(system, text)
	}
	for i, m := range wire.Messages {
		text, toolResultsOnly := contentText(m.Content)
		if i == len(wire.Messages)-1 {
			req.LastRole = lastRole(m.Role, toolResultsOnly)
		}
		if m.Role != "system" && m.Role != "developer" {
			req.TextChars += len(text) // the system prompt is counted once, below
		}
		switch m.Role {
		case "system", "developer":
			system = append(system, text)
		case "user", "assistant":
			if strings.TrimSpace(text) == "" {
				continue
			}
			if m.Role == "user" {
				if req.FirstUserText == "" {
					req.FirstUserText = text
				}
				req.LastUserText = text
			}
			req.Conversation = append(req.Conversation, Utterance{Role: m.Role, Content: text})
		}
	}
	req.System = strings.Join(system, "\n")
	req.TextChars += len(req.System)
	return req, nil
}

// decodePreferences reads a raw "routing_preferences" value; nil for none.
func decodePreferences(raw json.RawMessage) ([]Preference, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var prefs []Preference
	if err := json.Unmarshal(raw, &prefs); err != nil {
		return nil, invalid("\"routing_preferences\" must be an array of {name, description, models}")
	}
	for i, p := range prefs {
		if p.Name == "" || len(p.Models) == 0 {
			return nil, invalid("routing_preferences[%d] needs a name and at least one model", i)
		}
	}
	return prefs, nil
}

// DecodeFor is Decode for a request of api. A Responses request is read
// through its neutral form, leniently: what it holds that no other API has
// is left out of the summary, not refused.
func DecodeFor(api API, body []byte, env *Envelope) (*Summary, error) {
	if api != Responses {
		return Decode(body)
	}
	t, err := decodeResponsesTurn(body, false)
	if err != nil {
		return nil, err
	}
	sum := summarize(t)
	if sum.Preferences, err = decodePreferences(env.Preferences); err != nil {
		return nil, err
	}
	return sum, nil
}

// summarize is the routing view of a neutral turn.
func summarize(t *Turn) *Summary {
	sum := &Summary{System: t.System}
	for _, tool := range t.Tools {
		sum.ToolNames = append(sum.ToolNames, tool.Name)
	}
	for i, m := range t.Messages {
		var texts []string
		toolResultsOnly := len(m.Parts) > 0
		for _, p := range m.Parts {
			toolResultsOnly = toolResultsOnly && p.Kind == PartToolResult
			if p.Kind == PartText && p.Text != "" {
				texts = append(texts, p.Text)
			}
		}
		text := strings.Join(texts, "\n")
		sum.TextChars += len(text)
		if i == len(t.Messages)-1 {
			sum.LastRole = lastRole(string(m.Role), toolResultsOnly)
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		if m.Role == RoleUser {
			if sum.FirstUserText == "" {
				sum.FirstUserText = text
			}
			sum.LastUserText = text
		}
		sum.Conversation = append(sum.Conversation, Utterance{Role: string(m.Role), Content: text})
	}
	sum.TextChars += len(sum.System)
	return sum
}

// DecodeShallow is the part of Decode that needs only what ParseEnvelope
// located: LastRole and ToolNames, enough for rules that read no message
// text (see Condition.NeedsMessages). It costs a pass over the last message
// and the tools, not over the conversation.
func DecodeShallow(env *Envelope) (*Summary, error) {
	var last wireMessage
	if err := json.Unmarshal(env.LastMessage, &last); err != nil {
		return nil, invalid("request body does not match the chat request schema")
	}
	_, toolResultsOnly := contentText(last.Content)
	return &Summary{LastRole: lastRole(last.Role, toolResultsOnly), ToolNames: toolNames(env.Tools)}, nil
}

// lastRole is the LastRole of a request whose last message has role and is,
// or is not, made only of tool results.
func lastRole(role string, toolResultsOnly bool) string {
	if role == "user" && toolResultsOnly {
		return "tool"
	}
	return role
}

// toolNames returns the names of the tools in a raw "tools" value, OpenAI
// function tools or Anthropic tools, skipping what it cannot read: the
// upstream judges its own tool schema.
func toolNames(raw []byte) []string {
	var tools []json.RawMessage
	if json.Unmarshal(raw, &tools) != nil {
		return nil
	}
	var names []string
	for _, raw := range tools {
		var t wireTool
		if json.Unmarshal(raw, &t) != nil {
			continue
		}
		if name := t.Function.Name; name != "" {
			names = append(names, name)
		} else if t.Name != "" {
			names = append(names, t.Name)
		}
	}
	return names
}

// envelopeTags are the tags agent harnesses wrap around text they inject into
// a user turn (reminders, command echoes); such text is not the user speaking.
var envelopeTags = []string{"system-reminder", "command-name", "command-message", "command-args",
	"local-command-stdout", "environment_details"}

// IsUserUtterance reports whether a message (see Envelope.LastMessage) is a
// new user utterance: a user message with text of its own, not tool results
// and not only harness envelopes such as <system-reminder> blocks.
func IsUserUtterance(message []byte) bool {
	var m wireMessage
	if json.Unmarshal(message, &m) != nil || m.Role != "user" {
		return false
	}
	text, toolResultsOnly := contentText(m.Content)
	if toolResultsOnly {
		return false
	}
	return strings.TrimSpace(stripEnvelopes(text)) != ""
}

// stripEnvelopes removes <tag>...</tag> blocks of the envelope tags.
func stripEnvelopes(text string) string {
	for _, tag := range envelopeTags {
		open, closing := "<"+tag+">", "</"+tag+">"
		for {
			start := strings.Index(text, open)
			if start < 0 {
				break
			}
			end := strings.Index(text[start:], closing)
			if end < 0 {
				text = text[:start] // an unclosed envelope runs to the end
				break
			}
			text = text[:start] + text[start+end+len(closing):]
		}
	}
	return text
}

package llmapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
)

// responsesRequest is a Responses request, as far as translation reads and
// writes it.
type responsesRequest struct {
	Model              string          `json:"model"`
	Instructions       string          `json:"instructions,omitempty"`
	Input              json.RawMessage `json:"input"`
	Tools              []responsesTool `json:"tools,omitempty"`
	ToolChoice         json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls  *bool           `json:"parallel_tool_calls,omitempty"`
	MaxOutputTokens    int             `json:"max_output_tokens,omitempty"`
	Temperature        *float64        `json:"temperature,omitempty"`
	TopP               *float64        `json:"top_p,omitempty"`
	Stream             bool            `json:"stream,omitempty"`
	Store              *bool           `json:"store,omitempty"`
	PreviousResponseID string          `json:"previous_response_id,omitempty"`
	User               string          `json:"user,omitempty"`
}

type responsesTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// responsesItemJSON is an item of a Responses input or output.
type responsesItemJSON struct {
	Type      string          `json:"type,omitempty"`
	ID        string          `json:"id,omitempty"`
	Role      string          `json:"role,omitempty"`
	Status    string          `json:"status,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	CallID    string          `json:"call_id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Arguments string          `json:"arguments,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
}

type responsesPart struct {
	Type        string          `json:"type"`
	Text        string          `json:"text,omitempty"`
	ImageURL    string          `json:"image_url,omitempty"`
	Annotations json.RawMessage `json:"annotations,omitempty"` // [] on output text, as OpenAI sends it
}

// decodeResponses reads a Responses request into the neutral form for
// another API, refusing what it cannot express.
func decodeResponses(body []byte) (*Turn, error) { return decodeResponsesTurn(body, true) }

// decodeResponsesTurn reads a Responses request into the neutral form.
// Strict, it refuses what no other API can express (built-in tools and
// their items); lenient, it leaves them out. A previous_response_id is kept
// in the turn: the gateway holds the conversations of the responses it
// translated.
func decodeResponsesTurn(body []byte, strict bool) (*Turn, error) {
	var req responsesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, invalid("request body does not match the responses schema")
	}
	refuse := func(feature string) error {
		if strict {
			return unsupported(feature)
		}
		return nil
	}
	t := &Turn{Model: req.Model, System: req.Instructions, MaxTokens: req.MaxOutputTokens, Temperature: req.Temperature,
		TopP: req.TopP, Stream: req.Stream, User: req.User, PreviousResponseID: req.PreviousResponseID,
		NoStore: req.Store != nil && !*req.Store}
	for i, tool := range req.Tools {
		if tool.Type != "function" {
			if err := refuse(fmt.Sprintf("tools[%d], a built-in tool", i)); err != nil {
				return nil, err
			}
			continue
		}
		t.Tools = append(t.Tools, Tool{Name: tool.Name, Description: tool.Description, Parameters: tool.Parameters, Strict: tool.Strict})
	}
	var err error
	if t.ToolChoice, err = openAIToolChoice(req.ToolChoice, req.ParallelToolCalls); err != nil {
		return nil, err
	}
	var text string
	if isJSONString(req.Input) && json.Unmarshal(req.Input, &text) == nil {
		t.appendMessage(RoleUser, Part{Kind: PartText, Text: text})
		return t, nil
	}
	var items []responsesItemJSON
	if json.Unmarshal(req.Input, &items) != nil {
		return nil, invalid("\"input\" must be a string or an array of items")
	}
	var system []string
	if t.System != "" {
		system = append(system, t.System)
	}
	for i, item := range items {
		switch item.Type {
		case "", "message":
			parts, err := responsesParts(item.Content, i)
			if err != nil {
				return nil, err
			}
			switch item.Role {
			case "user":
				t.appendMessage(RoleUser, parts...)
			case "assistant":
				t.appendMessage(RoleAssistant, parts...)
			case "system", "developer":
				for _, p := range parts {
					system = append(system, p.Text)
				}
			default:
				return nil, invalid("input[%d].role must be user, assistant, system or developer", i)
			}
		case "function_call":
			t.appendMessage(RoleAssistant, Part{Kind: PartToolCall, ToolCall: &ToolCall{ID: item.CallID, Name: item.Name, Arguments: item.Arguments}})
		case "function_call_output":
			content, err := responsesOutput(item.Output, i)
			if err != nil {
				return nil, err
			}
			t.appendMessage(RoleUser, Part{Kind: PartToolResult, ToolResult: &ToolResult{CallID: item.CallID, Content: content}})
		case "reasoning":
			// a reasoning item is OpenAI's own: no other API can take it
		default:
			if err := refuse(fmt.Sprintf("input[%d], an item of a built-in tool", i)); err != nil {
				return nil, err
			}
		}
	}
	t.System = strings.Join(system, "\n\n")
	return t, nil
}

// responsesParts reads a message item's content: a string or parts.
func responsesParts(content json.RawMessage, i int) ([]Part, error) {
	var text string
	if isJSONString(content) && json.Unmarshal(content, &text) == nil {
		return []Part{{Kind: PartText, Text: text}}, nil
	}
	var parts []responsesPart
	if json.Unmarshal(content, &parts) != nil {
		return nil, invalid("input[%d].content must be a string or an array of content parts", i)
	}
	out := make([]Part, 0, len(parts))
	for j, p := range parts {
		switch p.Type {
		case "input_text", "output_text", "text", "refusal":
			out = append(out, Part{Kind: PartText, Text: p.Text})
		case "input_image":
			if p.ImageURL == "" {
				return nil, unsupported(fmt.Sprintf("input[%d].content[%d], an image by file id", i, j))
			}
			out = append(out, Part{Kind: PartImage, Image: imageOfURL(p.ImageURL)})
		default:
			return nil, unsupported(fmt.Sprintf("input[%d].content[%d], a content part that is neither text nor an image", i, j))
		}
	}
	return out, nil
}

// responsesOutput reads a function_call_output's output: a string or parts.
func responsesOutput(output json.RawMessage, i int) ([]Part, error) {
	var text string
	if isJSONString(output) && json.Unmarshal(output, &text) == nil {
		return []Part{{Kind: PartText, Text: text}}, nil
	}
	return responsesParts(output, i)
}

// encodeResponses writes the neutral request as a stateless Responses
// request for model (store false: the gateway sends the whole input).
func encodeResponses(t *Turn, model string) ([]byte, error) {
	if len(t.Stop) > 0 {
		return nil, unsupported("stop sequences")
	}
	no := false
	req := responsesRequest{Model: model, Instructions: t.System, MaxOutputTokens: t.MaxTokens, Temperature: t.Temperature,
		TopP: t.TopP, Stream: t.Stream, Store: &no, User: t.User}
	for _, tool := range t.Tools {
		req.Tools = append(req.Tools, responsesTool{Type: "function", Name: tool.Name, Description: tool.Description,
			Parameters: tool.Parameters, Strict: tool.Strict})
	}
	if c := t.ToolChoice; c != nil {
		if c.Mode == ToolNamed {
			req.ToolChoice, _ = json.Marshal(map[string]string{"type": "function", "name": c.Name})
		} else {
			req.ToolChoice = quoteJSON(c.Mode)
		}
		if c.NoParallel && len(t.Tools) > 0 {
			req.ParallelToolCalls = &no
		}
	}
	items := []responsesItemJSON{}
	for _, m := range t.Messages {
		var parts []responsesPart
		flush := func() {
			if len(parts) > 0 {
				content, _ := json.Marshal(parts) // strings always marshal
				items = append(items, responsesItemJSON{Type: "message", Role: string(m.Role), Content: content})
				parts = nil
			}
		}
		textType := "input_text"
		if m.Role == RoleAssistant {
			textType = "output_text"
		}
		for _, p := range m.Parts {
			switch p.Kind {
			case PartText:
				parts = append(parts, responsesPart{Type: textType, Text: p.Text})
			case PartImage:
				parts = append(parts, responsesPart{Type: "input_image", ImageURL: p.Image.url()})
			case PartToolCall:
				flush()
				items = append(items, responsesItemJSON{Type: "function_call", CallID: p.ToolCall.ID, Name: p.ToolCall.Name,
					Arguments: cmp.Or(p.ToolCall.Arguments, "{}")})
			case PartToolResult:
				flush()
				items = append(items, responsesItemJSON{Type: "function_call_output", CallID: p.ToolResult.CallID,
					Output: quoteJSON(toolResultText(p.ToolResult))})
			}
		}
		flush()
	}
	req.Input, _ = json.Marshal(items)
	return json.Marshal(req)
}

// toolResultText is a tool result as text: its text parts, and images as
// their URLs.
func toolResultText(r *ToolResult) string {
	var texts []string
	for _, p := range textOnly(r.Content) {
		texts = append(texts, p.Text)
	}
	return strings.Join(texts, "\n")
}

// responsesResponse is a Responses response object.
type responsesResponse struct {
	ID                string              `json:"id"`
	Object            string              `json:"object"`
	CreatedAt         int64               `json:"created_at"`
	Status            string              `json:"status"`
	Model             string              `json:"model"`
	Output            []responsesItemJSON `json:"output"`
	Usage             json.RawMessage     `json:"usage,omitempty"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Error json.RawMessage `json:"error"`
}

// decodeResponsesReply reads a Responses response object.
func decodeResponsesReply(body []byte) (*Reply, error) {
	var resp responsesResponse
	if err := json.Unmarshal(body, &resp); err != nil || resp.Object != "response" {
		return nil, errUpstreamReply
	}
	usage, err := replyUsage(resp.Usage, responsesUsageKeys)
	if err != nil {
		return nil, errUpstreamReply
	}
	r := &Reply{ID: resp.ID, Model: resp.Model, Created: resp.CreatedAt, Usage: usage, StopReason: StopEnd}
	if resp.Status == "incomplete" {
		r.StopReason = StopLength
		if d := resp.IncompleteDetails; d != nil && d.Reason == "content_filter" {
			r.StopReason = StopContentFilter
		}
	}
	for i, item := range resp.Output {
		switch item.Type {
		case "message":
			parts, err := responsesParts(item.Content, i)
			if err != nil {
				return nil, errUpstreamReply
			}
			r.Parts = append(r.Parts, parts...)
		case "function_call":
			r.Parts = append(r.Parts, Part{Kind: PartToolCall, ToolCall: &ToolCall{ID: item.CallID, Name: item.Name, Arguments: item.Arguments}})
			if r.StopReason == StopEnd {
				r.StopReason = StopToolCalls
			}
		}
	}
	return r, nil
}

// encodeResponsesReply writes a reply as a Responses response object for a
// client that asked for model.
func encodeResponsesReply(r *Reply, model string) []byte {
	id := clientID("resp_", r.ID)
	resp := responsesResponse{ID: id, Object: "response", CreatedAt: r.Created, Status: "completed", Model: model,
		Usage: openAIUsageJSON(r.Usage, responsesUsageKeys), Output: []responsesItemJSON{}}
	switch r.StopReason {
	case StopLength:
		resp.Status = "incomplete"
		resp.IncompleteDetails = &struct {
			Reason string `json:"reason"`
		}{Reason: "max_output_tokens"}
	case StopContentFilter:
		resp.Status = "incomplete"
		resp.IncompleteDetails = &struct {
			Reason string `json:"reason"`
		}{Reason: "content_filter"}
	}
	var text []string
	for _, p := range r.Parts {
		if p.Kind == PartText {
			text = append(text, p.Text)
		}
	}
	if len(text) > 0 {
		content, _ := json.Marshal([]responsesPart{{Type: "output_text", Text: strings.Join(text, ""), Annotations: json.RawMessage("[]")}})
		resp.Output = append(resp.Output, responsesItemJSON{Type: "message", ID: "msg_" + strings.TrimPrefix(id, "resp_"),
			Role: "assistant", Status: "completed", Content: content})
	}
	for _, p := range r.Parts {
		if p.Kind == PartToolCall {
			resp.Output = append(resp.Output, responsesItemJSON{Type: "function_call", ID: "fc_" + p.ToolCall.ID, CallID: p.ToolCall.ID,
				Name: p.ToolCall.Name, Arguments: p.ToolCall.Arguments, Status: "completed"})
		}
	}
	body, _ := json.Marshal(resp) // strings, numbers and valid JSON always marshal
	return body
}

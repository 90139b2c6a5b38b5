package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// responsesStandin is the stand-in's OpenAI Responses, stateless: it keeps
// no response, the client sends the whole input each turn.
type responsesStandin struct{}

// parse reads a Responses request: tools, the instructions, then the input
// items: messages, function calls and their outputs. An assistant turn is a
// run of assistant output (its message and function_call items); its text
// comes before its calls, as the other APIs give them.
func (responsesStandin) parse(body []byte) (*standinRequest, error) {
	var in struct {
		Model        string `json:"model"`
		User         string `json:"user"`
		Stream       bool   `json:"stream"`
		Instructions string `json:"instructions"`
		Tools        []struct {
			Type        string          `json:"type"`
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"tools"`
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("the body is not a Responses request: %v", err)
	}
	type item struct {
		Type      string          `json:"type"`
		Role      string          `json:"role"`
		Content   json.RawMessage `json:"content"`
		Name      string          `json:"name"`
		Arguments string          `json:"arguments"`
		Output    json.RawMessage `json:"output"`
	}
	var items []item
	if text := strings.TrimSpace(string(in.Input)); strings.HasPrefix(text, `"`) {
		items = []item{{Type: "message", Role: "user", Content: in.Input}}
	} else if err := json.Unmarshal(in.Input, &items); err != nil {
		return nil, fmt.Errorf("input is neither a string nor an array of items: %v", err)
	}
	req := &standinRequest{model: in.Model, stream: in.Stream, cache: true}
	var p promptText
	for _, t := range in.Tools {
		if t.Type == "function" {
			p.tool(t.Name, t.Description, t.Parameters)
		}
	}
	if in.Instructions != "" {
		p.system(in.Instructions)
	}
	firstUser := ""
	// calls are the function calls of the assistant turn being read, text
	// its text: a turn is written out when the next non-assistant item comes
	var calls [][2]string
	var text strings.Builder
	inTurn := false
	endTurn := func() {
		if !inTurn {
			return
		}
		p.message("assistant", text.String())
		for _, c := range calls {
			p.call(c[0], c[1])
		}
		calls, inTurn = calls[:0], false
		text.Reset()
	}
	for i, it := range items {
		if it.Type == "" && it.Role != "" {
			it.Type = "message"
		}
		assistant := it.Type == "function_call" || (it.Type == "message" && it.Role == "assistant")
		if !assistant {
			endTurn()
		} else if !inTurn {
			req.step++
			inTurn = true
		}
		switch it.Type {
		case "message":
			content, err := textOf(it.Content)
			if err != nil {
				return nil, fmt.Errorf("input[%d]: %v", i, err)
			}
			switch it.Role {
			case "assistant":
				text.WriteString(content)
			case "system", "developer":
				p.system(content)
			case "user":
				if firstUser == "" {
					firstUser = content
				}
				p.message("user", content)
			default:
				return nil, fmt.Errorf("input[%d].role: Invalid value: '%s'", i, it.Role)
			}
		case "function_call":
			calls = append(calls, [2]string{it.Name, it.Arguments})
		case "function_call_output":
			output, err := textOf(it.Output)
			if err != nil {
				return nil, fmt.Errorf("input[%d].output: %v", i, err)
			}
			p.result(output)
		default:
			return nil, fmt.Errorf("input[%d].type: '%s' is not an item the stand-in takes", i, it.Type)
		}
	}
	endTurn()
	req.prompt, req.session = p.String(), sessionOf(in.User, firstUser)
	return req, nil
}

func (responsesStandin) callID(step, i int) string { return fmt.Sprintf("call_%d_%d", step, i) }

// responsesUsage is u as Responses reports it: input_tokens counts the
// cached tokens too.
func responsesUsage(u CacheUsage) map[string]any {
	return map[string]any{
		"input_tokens": u.Input, "input_tokens_details": map[string]any{"cached_tokens": u.Cached},
		"output_tokens": u.Output, "output_tokens_details": map[string]any{"reasoning_tokens": 0},
		"total_tokens": u.Input + u.Output,
	}
}

// write answers a response, or streams it: response.created,
// response.in_progress, each output item (output_item.added; for the
// message content_part.added, output_text.delta word by word,
// output_text.done, content_part.done; for a function call
// function_call_arguments.delta in pieces and .done; then
// output_item.done), and response.completed with the usage, every event
// with its sequence_number.
func (responsesStandin) write(w http.ResponseWriter, req *standinRequest, rep *standinReply) {
	textPart := func(text string) map[string]any {
		return map[string]any{"type": "output_text", "text": text, "annotations": []any{}, "logprobs": []any{}}
	}
	items := []map[string]any{{"id": "msg_demo_" + rep.id, "type": "message", "status": "completed", "role": "assistant",
		"content": []any{textPart(rep.text)}}}
	for _, c := range rep.calls {
		items = append(items, map[string]any{"id": "fc_demo_" + rep.id + "_" + c.ID, "type": "function_call", "status": "completed",
			"call_id": c.ID, "name": c.Name, "arguments": c.Arguments})
	}
	response := func(status string, output []map[string]any, usage any) map[string]any {
		return map[string]any{"id": "resp_demo_" + rep.id, "object": "response", "created_at": 1, "status": status,
			"error": nil, "incomplete_details": nil, "model": rep.model, "output": output,
			"parallel_tool_calls": true, "store": false, "tool_choice": "auto", "tools": []any{},
			"text": map[string]any{"format": map[string]any{"type": "text"}}, "usage": usage, "metadata": map[string]any{}}
	}
	if !req.stream {
		writeJSON(w, response("completed", items, responsesUsage(rep.usage)))
		return
	}
	s := newSSEWriter(w)
	seq := 0
	event := func(typ string, fields map[string]any) {
		fields["type"], fields["sequence_number"] = typ, seq
		seq++
		s.send(typ, fields)
	}
	event("response.created", map[string]any{"response": response("in_progress", []map[string]any{}, nil)})
	event("response.in_progress", map[string]any{"response": response("in_progress", []map[string]any{}, nil)})
	for i, item := range items {
		added := make(map[string]any, len(item))
		for k, v := range item {
			added[k] = v
		}
		added["status"] = "in_progress"
		at := func(fields map[string]any) map[string]any {
			fields["item_id"], fields["output_index"] = item["id"], i
			return fields
		}
		if item["type"] == "message" {
			added["content"] = []any{}
			event("response.output_item.added", map[string]any{"output_index": i, "item": added})
			event("response.content_part.added", at(map[string]any{"content_index": 0, "part": textPart("")}))
			for _, word := range words(rep.text) {
				event("response.output_text.delta", at(map[string]any{"content_index": 0, "delta": word, "logprobs": []any{}}))
			}
			event("response.output_text.done", at(map[string]any{"content_index": 0, "text": rep.text, "logprobs": []any{}}))
			event("response.content_part.done", at(map[string]any{"content_index": 0, "part": textPart(rep.text)}))
		} else {
			args := item["arguments"].(string)
			added["arguments"] = ""
			event("response.output_item.added", map[string]any{"output_index": i, "item": added})
			for _, frag := range fragments(args, 3) {
				event("response.function_call_arguments.delta", at(map[string]any{"delta": frag}))
			}
			event("response.function_call_arguments.done", at(map[string]any{"arguments": args, "name": item["name"]}))
		}
		event("response.output_item.done", map[string]any{"output_index": i, "item": item})
	}
	event("response.completed", map[string]any{"response": response("completed", items, responsesUsage(rep.usage))})
}

// writeError writes the OpenAI error shape.
func (responsesStandin) writeError(w http.ResponseWriter, status int, msg string) {
	writeOpenAIError(w, status, msg)
}

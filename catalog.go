package llmaffinity

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// isModelList reports whether r asks for the list of models: GET .../models.
func isModelList(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/models")
}

// openAIModel and anthropicModel are a model as each API lists it.
type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type anthropicModel struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

// writeModelList answers GET .../models from the config, with no upstream
// call: the configured models, in Anthropic's list shape when the request
// carries anthropic-version (Claude Code's discovery), else OpenAI's.
func (h *Handler) writeModelList(w http.ResponseWriter, r *http.Request) error {
	var payload any
	if r.Header.Get("Anthropic-Version") != "" {
		data := make([]anthropicModel, len(h.Models))
		for i, m := range h.Models {
			data[i] = anthropicModel{Type: "model", ID: m.Name, DisplayName: m.Name, CreatedAt: time.Unix(0, 0).UTC().Format(time.RFC3339)}
		}
		var first, last *string
		if len(data) > 0 {
			first, last = &data[0].ID, &data[len(data)-1].ID
		}
		payload = map[string]any{"data": data, "has_more": false, "first_id": first, "last_id": last}
	} else {
		data := make([]openAIModel, len(h.Models))
		for i, m := range h.Models {
			data[i] = openAIModel{ID: m.Name, Object: "model", OwnedBy: "llm_affinity"}
		}
		payload = map[string]any{"object": "list", "data": data}
	}
	body, _ := json.Marshal(payload) // strings, numbers and bools always marshal
	header := w.Header()
	header.Set("Content-Type", "application/json")
	header.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// isCountTokens reports whether r is POST .../messages/count_tokens.
func isCountTokens(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/messages/count_tokens")
}

// countTokens answers POST .../messages/count_tokens for the model that
// would serve the session: the session's pin, else the requested model if
// configured (and clients may choose), else the default. A model that
// speaks Messages counts them itself (the request goes to it, model
// rewritten, credential swapped); for any other the gateway estimates:
// the characters of the system prompt, the messages' text and the tools'
// definitions, divided by 4. No pin is written.
func (h *Handler) countTokens(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	key, optOut, err := h.affinityKey(r)
	if err != nil {
		llmapi.WriteError(w, llmapi.Messages, http.StatusBadRequest, err.Error())
		return nil
	}
	body, err := h.readBody(r)
	if err != nil {
		writeBodyError(w, r, llmapi.Messages, err, h.MaxBody)
		return nil
	}
	defer body.release()
	env, err := llmapi.ParseEnvelopeFor(llmapi.Messages, body.bytes)
	if err != nil {
		llmapi.WriteError(w, llmapi.Messages, http.StatusBadRequest, err.Error())
		return nil
	}
	m := h.defaultModel
	if requested := h.models[env.Model]; requested != nil && h.clientModel {
		m = requested
	}
	if key != "" && !optOut {
		if pin, ok := h.pinStore.Get(r.Context(), affinity.PinKey(h.scopeOf(r), key, env.Model)); ok && h.models[pin.Model] != nil {
			m = h.models[pin.Model]
		}
	}
	h.stripAffinityHeaders(r.Header)
	if m.api != llmapi.Messages {
		sum, err := llmapi.Decode(body.bytes)
		if err != nil {
			llmapi.WriteError(w, llmapi.Messages, http.StatusBadRequest, err.Error())
			return nil
		}
		out := []byte(`{"input_tokens":` + strconv.Itoa((sum.TextChars+len(env.Tools))/4) + "}")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
		return nil
	}
	setBody(r, body, env.Segments(make([][]byte, 0, 8), body.bytes, m.quotedUpstreamModel, false))
	if m.Path != "" {
		r.URL.Path = strings.TrimSuffix(m.Path, "/") + "/count_tokens"
	}
	return h.forward(w, r, next, m, llmapi.Messages)
}

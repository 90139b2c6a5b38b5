package llmaffinity

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// decisionAPIPath is the path segment of the decision API: POST
// .../routing/v1/chat/completions or .../routing/v1/messages answers the
// routing decision instead of proxying the request.
const decisionAPIPath = "/routing/v1/"

// isDecisionAPI reports whether a chat request's path asks the decision API.
func isDecisionAPI(path string) bool { return strings.Contains(path, decisionAPIPath) }

// routingDecision is the decision API's answer, like Plano's routing service:
// the models to call in order, the route that chose them, the session and
// whether the session's pin decided.
type routingDecision struct {
	Models    []string `json:"models"`
	Route     *string  `json:"route"`
	SessionID *string  `json:"session_id"`
	Pinned    bool     `json:"pinned"`
}

// writeDecision answers a decision API request (POST .../routing/v1/chat/completions
// or .../routing/v1/messages) without proxying it. The decision is made, and
// pinned, by the same rules as a proxied request, so the client's next call
// with the same affinity key goes to the model it was told.
func writeDecision(w http.ResponseWriter, d decision, key string) error {
	out := routingDecision{Models: make([]string, len(d.candidates)), Pinned: d.status == StatusPinned}
	for i, m := range d.candidates {
		out.Models[i] = m.Name
	}
	if d.routeName != "" {
		out.Route = &d.routeName
	}
	if key != "" {
		out.SessionID = &key
	}
	body, _ := json.Marshal(out) // strings and a bool always marshal
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(HeaderModel, d.candidates[0].Name)
	h.Set(HeaderRoute, d.routeName)
	h.Set(HeaderStatus, d.status)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

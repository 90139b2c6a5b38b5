package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// The agent's script: what the stand-in providers answer at each step. Each
// step's text says what the agent will do next, which is what the stand-in
// router reads to decide the next turn's route.
var script = []struct {
	text  string
	calls []ToolCall
}{
	{
		text: "Fetching benchmarks for both databases; next I will reason about the throughput numbers.",
		calls: []ToolCall{
			{Name: "get_db_benchmarks", Arguments: `{"database":"postgresql","workload":"transactional"}`},
			{Name: "get_db_benchmarks", Arguments: `{"database":"mongodb","workload":"transactional"}`},
		},
	},
	{
		text: "PostgreSQL leads on transactions. Looking up case studies; then I will call a tool to check feature support.",
		calls: []ToolCall{
			{Name: "get_case_studies", Arguments: `{"database":"postgresql"}`},
			{Name: "get_case_studies", Arguments: `{"database":"mongodb"}`},
		},
	},
	{
		text: "Checking multi-document ACID support; next I will weigh everything and recommend one.",
		calls: []ToolCall{
			{Name: "check_feature_support", Arguments: `{"database":"mongodb","feature":"multi-document ACID transactions"}`},
		},
	},
}

// FinalAnswer is the stand-in providers' answer once the script is done.
const FinalAnswer = "Recommendation: PostgreSQL. It leads the transactional benchmarks, runs orders and " +
	"payments at marketplace scale, and JSONB covers flexible product catalogs."

// Provider is a stand-in provider that plays the agent deterministically:
// tool calls for three turns, then an answer. It speaks the three APIs at
// their paths, POST .../chat/completions, .../messages and .../responses,
// plain and streamed, and answers with the model it was asked for, as a real
// provider does.
//
// It reports cached tokens the way the real providers do, from a prompt
// cache of its own (see promptcache.go): the prompt a request shares with
// the previous request of the same model in the same session is cached, in
// the usage of the request's API. A session is what the request body says it
// is: the client's "user" (Chat, Responses) or "metadata"."user_id"
// (Messages), which the gateway carries over when it translates; without
// one, the conversation's first user message. Not the affinity header: the
// run without affinity sends none, and the gateway may strip it.
//
// Chat and Responses cache every request, as OpenAI does. Messages, as
// Anthropic does, caches only a request that asks for it with a
// cache_control, top-level (Anthropic's automatic caching) or on any block,
// and then writes the whole prompt (any breakpoint counts as one on the
// last block): its usage reports the cached prefix as
// cache_read_input_tokens, the rest as cache_creation_input_tokens, and
// input_tokens 0, the tokens after the last breakpoint.
type Provider struct {
	// Requests counts the requests served.
	Requests atomic.Int64

	cache promptCache
}

// standinRequest is what a stand-in reads of a request, whichever its API.
type standinRequest struct {
	model, session string
	// prompt is the request's prompt as the stand-in tokenizes it.
	prompt string
	// step is how many assistant turns the conversation already has.
	step int
	// stream asks for a stream; includeUsage (Chat) for its usage chunk.
	stream, includeUsage bool
	// cache is false for a Messages request with no cache_control.
	cache bool
}

// standinReply is the script's answer to one request, with its ids.
type standinReply struct {
	id    string
	model string
	text  string
	calls []ToolCall
	usage CacheUsage
}

// standinAPI is how a stand-in speaks one API: reading its requests and
// writing its replies, plain or streamed.
type standinAPI interface {
	parse(body []byte) (*standinRequest, error)
	// callID is the id of the step's i-th tool call.
	callID(step, i int) string
	write(w http.ResponseWriter, req *standinRequest, rep *standinReply)
	writeError(w http.ResponseWriter, status int, msg string)
}

// standinAPIFor is the API of a request's path; nil for none.
func standinAPIFor(path string) standinAPI {
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		return chatStandin{}
	case strings.HasSuffix(path, "/messages"):
		return messagesStandin{}
	case strings.HasSuffix(path, "/responses"):
		return responsesStandin{}
	}
	return nil
}

// ServeHTTP answers POST .../chat/completions, .../messages and
// .../responses.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	api := standinAPIFor(r.URL.Path)
	if api == nil || r.Method != http.MethodPost {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		api.writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	req, err := api.parse(body)
	if err != nil {
		api.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	n := p.Requests.Add(1)
	rep := &standinReply{id: fmt.Sprint(n), model: req.model, text: FinalAnswer}
	if req.step < len(script) {
		step := script[req.step]
		rep.text = step.text
		for i, c := range step.calls {
			rep.calls = append(rep.calls, ToolCall{ID: api.callID(req.step, i), Name: c.Name, Arguments: c.Arguments})
		}
	}
	rep.usage = p.cache.serve(req.model, req.session, req.prompt, req.cache)
	rep.usage.Output = rep.outputTokens()
	api.write(w, req, rep)
}

// outputTokens estimates the reply's tokens: its text, its calls' names
// and arguments.
func (rep *standinReply) outputTokens() int {
	n := len(rep.text)
	for _, c := range rep.calls {
		n += len(c.Name) + len(c.Arguments)
	}
	return TokensOf(n)
}

// sessionOf is a request's session: the id the client sent, else the
// conversation's first user message.
func sessionOf(id, firstUser string) string {
	if id != "" {
		return "id:" + id
	}
	return "first user message:" + firstUser
}

// textOf is the text of a content value of any API: a string, or an array
// of parts whose text it joins (text, input_text, output_text; parts
// without text add nothing); "" for null.
func textOf(raw json.RawMessage) (string, error) {
	raw = json.RawMessage(strings.TrimSpace(string(raw)))
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if raw[0] == '"' {
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var parts []struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("content is neither a string nor an array of parts: %v", err)
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// sseWriter writes server-sent events, each flushed at once.
type sseWriter struct {
	w http.ResponseWriter
}

func newSSEWriter(w http.ResponseWriter) sseWriter {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return sseWriter{w}
}

// send writes one event: "event: <name>" when name is set, then data,
// JSON unless it is a string.
func (s sseWriter) send(name string, data any) {
	var payload []byte
	if text, ok := data.(string); ok {
		payload = []byte(text)
	} else {
		payload, _ = json.Marshal(data) // maps of strings, numbers and slices always marshal
	}
	if name != "" {
		fmt.Fprintf(s.w, "event: %s\n", name)
	}
	fmt.Fprintf(s.w, "data: %s\n\n", payload)
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// words splits text after each space, as a model streams it.
func words(text string) []string { return strings.SplitAfter(text, " ") }

// fragments cuts s into n pieces (fewer when it is shorter), as a model
// streams a tool call's arguments.
func fragments(s string, n int) []string {
	size := max(1, (len(s)+n-1)/n)
	var out []string
	for len(s) > size {
		out = append(out, s[:size])
		s = s[size:]
	}
	return append(out, s)
}

// Router is an Arch-Router compatible routing model: it reads the
// conversation from the Arch-Router prompt and classifies the latest turn.
// A new user question needs data (tool_calling); an assistant turn that says
// it will reason, weigh or recommend needs analysis. Like a real router on
// these differently shaped turns, its answer changes from turn to turn.
type Router struct {
	// Calls counts the routing calls.
	Calls atomic.Int64
}

// Route names the stand-in router answers; the demo Caddyfile defines them.
const (
	RouteToolCalling = "tool_calling"
	RouteAnalysis    = "analysis"
)

// ServeHTTP answers the routing model's chat completions request.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 10<<20)).Decode(&req); err != nil || len(req.Messages) == 0 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	rt.Calls.Add(1)
	route := classify(req.Messages[0].Content)
	writeJSON(w, map[string]any{
		"id": "route", "object": "chat.completion", "created": 1, "model": "katanemo/Arch-Router-1.5B",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": fmt.Sprintf(`{"route": %q}`, route)}}},
	})
}

// classify picks the route for the latest turn of the conversation inside
// the prompt's <conversation> tags.
func classify(prompt string) string {
	_, after, ok := strings.Cut(prompt, "<conversation>")
	conversation, _, ok2 := strings.Cut(after, "</conversation>")
	var turns []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	if !ok || !ok2 || json.Unmarshal([]byte(strings.TrimSpace(conversation)), &turns) != nil || len(turns) == 0 {
		return "other"
	}
	latest := turns[len(turns)-1]
	if latest.Role == "assistant" {
		text := strings.ToLower(latest.Content)
		for _, word := range []string{"reason", "weigh", "recommend", "compare"} {
			if strings.Contains(text, word) {
				return RouteAnalysis
			}
		}
	}
	return RouteToolCalling
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

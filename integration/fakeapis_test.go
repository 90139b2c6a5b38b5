package integration

// Strict fake upstreams, one per chat API (Chat Completions, Messages,
// Responses). Each speaks only its own API and answers what the real
// provider rejects with a 400 (401, 404) in that API's error shape,
// recording the rejection so that a test can assert none happened. Each
// plays the same scripted tool-calling agent (agentScript), in JSON or, when
// asked to stream, in its API's full SSE event sequence. The keys each API
// accepts in its objects are read off its official SDK's param types.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
)

// wireAPI names one of the chat APIs, as a model's "api" line does.
type wireAPI string

const (
	wireChat      wireAPI = "chat"      // OpenAI Chat Completions
	wireMessages  wireAPI = "messages"  // Anthropic Messages
	wireResponses wireAPI = "responses" // OpenAI Responses
)

// ---------------------------------------------------------------------------
// The scripted agent, in neutral terms

// agentCall is a tool call: its id, the tool and its arguments as canonical
// JSON (see canonicalJSON).
type agentCall struct{ ID, Name, Args string }

// agentResult is a tool result: the id of the call it answers and its text.
type agentResult struct{ ID, Content string }

// agentUsage is a turn's token counts in neutral terms: input counts every
// prompt token, cached or not; cacheRead of them were read from the prompt
// cache and cacheWrite written to it (only the Messages API reports writes);
// output counts the completion.
type agentUsage struct{ input, cacheRead, cacheWrite, output int64 }

// servedBy is the usage as a model of api reports it: the OpenAI APIs
// report no cache writes.
func (u agentUsage) servedBy(api wireAPI) agentUsage {
	if api != wireMessages {
		u.cacheWrite = 0
	}
	return u
}

// agentStep is one reply of the scripted agent and the conversation it
// answers: one with that many tool results and user messages.
type agentStep struct {
	results, users int
	text           string      // "" for none
	calls          []agentCall // without ids: the fake gives each call its own
	usage          agentUsage
}

// agentSystem is the system prompt the agents' clients send.
const agentSystem = "You are a weather agent. Use the tools; answer in one sentence."

// agentScript is the scripted agent: a tool call, another, an answer; then,
// after a new user message, text with two parallel tool calls, and an
// answer. A strict fake finds its reply by counting the tool results and
// user messages of the request.
var agentScript = []agentStep{
	{results: 0, users: 1, calls: []agentCall{{Name: "get_weather", Args: `{"city":"Paris"}`}},
		usage: agentUsage{input: 1210, cacheRead: 1024, cacheWrite: 150, output: 25}},
	{results: 1, users: 1, calls: []agentCall{{Name: "get_time", Args: `{"tz":"Europe/Paris"}`}},
		usage: agentUsage{input: 1342, cacheRead: 1152, cacheWrite: 160, output: 27}},
	{results: 2, users: 1, text: "It is sunny in Paris at 14:00.",
		usage: agentUsage{input: 1476, cacheRead: 1280, cacheWrite: 170, output: 18}},
	{results: 2, users: 2, text: "Let me check both cities.",
		calls: []agentCall{{Name: "get_weather", Args: `{"city":"Berlin"}`}, {Name: "get_weather", Args: `{"city":"Rome"}`}},
		usage: agentUsage{input: 1623, cacheRead: 1408, cacheWrite: 180, output: 52}},
	{results: 4, users: 2, text: "Berlin is cloudy at 12°C and Rome is sunny at 24°C.",
		usage: agentUsage{input: 1801, cacheRead: 1536, cacheWrite: 190, output: 21}},
}

// agentStepFor is the index in agentScript of the reply to req; false when
// the script has none.
func agentStepFor(req *agentRequest) (int, bool) {
	for i, s := range agentScript {
		if s.results == len(req.results) && s.users == len(req.users) {
			return i, true
		}
	}
	return 0, false
}

// agentRequest is what a strict fake read of a valid request, in neutral
// terms.
type agentRequest struct {
	model          string
	stream         bool
	includeUsage   bool  // Chat: stream_options.include_usage
	maxTokens      int64 // the output cap the request set; 0 for none
	system         string
	users          []string // the text of each user message, in order
	assistantTexts []string // the text of each assistant message, in order
	calls          []agentCall
	results        []agentResult
	tools          map[string]string // name -> parameters schema, canonical JSON
	rawTools       json.RawMessage   // as sent, for a Responses echo
}

// fakeTurn is one request a strict fake answered: what it read, the step of
// agentScript it answered with (0-based) and the calls it made, with ids.
type fakeTurn struct {
	req   *agentRequest
	step  int
	calls []agentCall
}

// agentReply is what a fake answers a request with.
type agentReply struct {
	id      string // the response's id
	model   string
	created int64
	text    string
	calls   []agentCall
	usage   agentUsage
}

// ---------------------------------------------------------------------------
// The fake

// strictFake is a model upstream that speaks exactly one API.
type strictFake struct {
	api     wireAPI
	key     string // the credential it requires
	dialect fakeDialect
	srv     *httptest.Server

	mu         sync.Mutex
	turns      []fakeTurn
	rejections []string
	ids        int
}

// fakeDialect is what differs between the fakes: an API's path, headers,
// request rules, error shape and answers.
type fakeDialect interface {
	path() string
	// checkHeaders returns the rejection of a request's headers, or nil.
	checkHeaders(h http.Header, key string) *fakeRejection
	// parse checks a request body against the API's rules and reads it.
	parse(body []byte) (*agentRequest, error)
	writeError(w http.ResponseWriter, status int, msg string)
	// write answers req with rep, as JSON or as the API's event stream.
	write(w http.ResponseWriter, req *agentRequest, rep agentReply)
	// idPrefixes are how the API's response ids and tool call ids begin.
	idPrefixes() (reply, call string)
}

// fakeRejection is a request a fake refuses: the status and message it
// answers.
type fakeRejection struct {
	status int
	msg    string
}

// newStrictFake starts the strict fake of api, requiring key as its
// credential (Bearer for the OpenAI APIs, x-api-key for Messages).
func newStrictFake(t *testing.T, api wireAPI, key string) *strictFake {
	t.Helper()
	f := &strictFake{api: api, key: key}
	switch api {
	case wireChat:
		f.dialect = chatWire{}
	case wireMessages:
		f.dialect = messagesWire{}
	case wireResponses:
		f.dialect = responsesWire{}
	default:
		t.Fatalf("no strict fake for API %q", api)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// addr is the fake's host:port.
func (f *strictFake) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

// fakeMark is how far a fake's records went at some moment.
type fakeMark struct{ turns, rejections int }

// mark is where the fake's records are now, for since.
func (f *strictFake) mark() fakeMark {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fakeMark{len(f.turns), len(f.rejections)}
}

// since returns the turns answered and the requests rejected after m.
func (f *strictFake) since(m fakeMark) ([]fakeTurn, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.turns[m.turns:]), slices.Clone(f.rejections[m.rejections:])
}

// serve checks a request (path, headers, body, that the script has a reply
// to it) and answers it with the script's reply, with ids of its own.
func (f *strictFake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	reject := func(status int, msg string) {
		f.mu.Lock()
		f.rejections = append(f.rejections, fmt.Sprintf("the %s upstream rejected %s %s with %d: %s", f.api, r.Method, r.URL.Path, status, msg))
		f.mu.Unlock()
		f.dialect.writeError(w, status, msg)
	}
	if r.Method != http.MethodPost || r.URL.Path != f.dialect.path() {
		reject(http.StatusNotFound, fmt.Sprintf("Invalid URL (%s %s): this upstream speaks only the %s API, at POST %s",
			r.Method, r.URL.Path, f.api, f.dialect.path()))
		return
	}
	if rej := f.dialect.checkHeaders(r.Header, f.key); rej != nil {
		reject(rej.status, rej.msg)
		return
	}
	req, err := f.dialect.parse(body)
	if err != nil {
		reject(http.StatusBadRequest, err.Error())
		return
	}
	step, ok := agentStepFor(req)
	if !ok {
		reject(http.StatusBadRequest, fmt.Sprintf("the scripted agent has no reply to a conversation with %d tool results and %d user messages",
			len(req.results), len(req.users)))
		return
	}
	s := agentScript[step]
	replyPrefix, callPrefix := f.dialect.idPrefixes()
	f.mu.Lock()
	f.ids++
	rep := agentReply{id: fmt.Sprintf("%s%04d", replyPrefix, f.ids), model: req.model, created: time.Now().Unix(),
		text: s.text, usage: s.usage.servedBy(f.api)}
	for _, c := range s.calls {
		f.ids++
		rep.calls = append(rep.calls, agentCall{ID: fmt.Sprintf("%s%04d", callPrefix, f.ids), Name: c.Name, Args: c.Args})
	}
	f.turns = append(f.turns, fakeTurn{req: req, step: step, calls: rep.calls})
	f.mu.Unlock()
	f.dialect.write(w, req, rep)
}

// ---------------------------------------------------------------------------
// Reading and checking a request

// jsonObject is a JSON object with its values undecoded.
type jsonObject map[string]json.RawMessage

// checker reads a request body and checks it, keeping the first error: once
// it has failed its reads return zero values, so a check reads on and looks
// at err once. where arguments name the value read (messages[2].content).
type checker struct{ err error }

func (ck *checker) failf(format string, args ...any) {
	if ck.err == nil {
		ck.err = fmt.Errorf(format, args...)
	}
}

// at is the name of key in where.
func at(where, key string) string {
	if where == "" {
		return key
	}
	return where + "." + key
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// object decodes raw as an object; unless allowed is nil, its keys must be
// among allowed, as the real APIs refuse unknown parameters.
func (ck *checker) object(raw json.RawMessage, where string, allowed []string) jsonObject {
	var o jsonObject
	if ck.err != nil {
		return nil
	}
	if json.Unmarshal(raw, &o) != nil || o == nil {
		ck.failf("%s: expected an object", cmp.Or(where, "the request body"))
		return nil
	}
	if allowed != nil {
		ck.keys(o, where, allowed)
	}
	return o
}

// keys fails on a key of o that is not among allowed.
func (ck *checker) keys(o jsonObject, where string, allowed []string) {
	for _, k := range slices.Sorted(maps.Keys(o)) {
		if !slices.Contains(allowed, k) {
			ck.failf("%s: unknown parameter '%s'", at(where, k), k)
		}
	}
}

// array decodes raw as an array; absent or null is none when optional.
func (ck *checker) array(raw json.RawMessage, where string, optional bool) []json.RawMessage {
	var a []json.RawMessage
	if ck.err != nil || (optional && isNull(raw)) {
		return nil
	}
	if json.Unmarshal(raw, &a) != nil || a == nil {
		ck.failf("%s: expected an array", where)
	}
	return a
}

// each calls fn with each object of the array at raw (absent or null:
// none), its keys checked as object does, until the check fails.
func (ck *checker) each(raw json.RawMessage, where string, allowed []string, fn func(o jsonObject, where string)) {
	for i, item := range ck.array(raw, where, true) {
		iw := fmt.Sprintf("%s[%d]", where, i)
		o := ck.object(item, iw, allowed)
		if ck.err != nil {
			return
		}
		fn(o, iw)
	}
}

// str is the string at key; false when it is absent or null.
func (ck *checker) str(o jsonObject, key, where string) (string, bool) {
	var s string
	if ck.err != nil || isNull(o[key]) {
		return "", false
	}
	if json.Unmarshal(o[key], &s) != nil {
		ck.failf("%s: expected a string", at(where, key))
		return "", false
	}
	return s, true
}

// need is the string at key, which must be there and not empty.
func (ck *checker) need(o jsonObject, key, where string) string {
	s, _ := ck.str(o, key, where)
	if s == "" {
		ck.failf("%s: a non-empty string is required", at(where, key))
	}
	return s
}

// boolean is the boolean at key; false when absent or null.
func (ck *checker) boolean(o jsonObject, key, where string) bool {
	var b bool
	if ck.err == nil && !isNull(o[key]) && json.Unmarshal(o[key], &b) != nil {
		ck.failf("%s: expected a boolean", at(where, key))
	}
	return b
}

// integer is the whole number at key, at least min; false when absent or
// null.
func (ck *checker) integer(o jsonObject, key, where string, min int64) (int64, bool) {
	var n int64
	if ck.err != nil || isNull(o[key]) {
		return 0, false
	}
	if json.Unmarshal(o[key], &n) != nil {
		ck.failf("%s: expected an integer", at(where, key))
	} else if n < min {
		ck.failf("%s: integer below minimum value; expected a value >= %d", at(where, key), min)
	}
	return n, true
}

// text is the text of a content value: a string, or an array of parts of
// the types in parts (type -> the keys such a part may have; nil for a part
// that is not read), whose "text" fields are joined.
func (ck *checker) text(raw json.RawMessage, where string, parts map[string][]string) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if ck.err == nil && (isNull(raw) || bytes.TrimSpace(raw)[0] != '[') {
		ck.failf("%s: expected a string or an array of content parts", where)
	}
	var text strings.Builder
	ck.each(raw, where, nil, func(part jsonObject, pw string) {
		typ, _ := ck.str(part, "type", pw)
		keys, ok := parts[typ]
		switch {
		case !ok:
			ck.failf("%s.type: Invalid value: '%s'. Supported values are: %s", pw, typ, strings.Join(slices.Sorted(maps.Keys(parts)), ", "))
		case keys != nil:
			ck.keys(part, pw, keys)
			t, _ := ck.str(part, "text", pw)
			text.WriteString(t)
		}
	})
	return text.String()
}

// canonicalJSON is raw re-encoded with sorted keys and no spaces; raw itself
// when it is not JSON.
func canonicalJSON(raw string) string {
	var v any
	if json.Unmarshal([]byte(raw), &v) != nil {
		return raw
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// sdkFields are the JSON names of the fields of the SDK param types given:
// what an official SDK can send in such an object, so what its API accepts
// there.
func sdkFields(types ...any) []string {
	var names []string
	for _, v := range types {
		ty := reflect.TypeOf(v)
		for i := range ty.NumField() {
			name, _, _ := strings.Cut(ty.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	return names
}

// The keys each API accepts in its objects, from its SDK's param types; at
// the top level also "stream", which the SDKs set themselves. A parts map
// is a content value's part types, for checker.text.
var (
	chatParams         = append(sdkFields(openai.ChatCompletionNewParams{}), "stream")
	chatToolFields     = sdkFields(openai.ChatCompletionFunctionToolParam{})
	chatFunctionFields = sdkFields(shared.FunctionDefinitionParam{})
	chatMessageFields  = map[string][]string{
		"system":    sdkFields(openai.ChatCompletionSystemMessageParam{}),
		"developer": sdkFields(openai.ChatCompletionDeveloperMessageParam{}),
		"user":      sdkFields(openai.ChatCompletionUserMessageParam{}),
		"assistant": sdkFields(openai.ChatCompletionAssistantMessageParam{}),
		"tool":      sdkFields(openai.ChatCompletionToolMessageParam{}),
	}
	chatToolCallFields      = sdkFields(openai.ChatCompletionMessageFunctionToolCallParam{})
	chatCallFunctionFields  = sdkFields(openai.ChatCompletionMessageFunctionToolCallFunctionParam{})
	chatStreamOptionsFields = sdkFields(openai.ChatCompletionStreamOptionsParam{})
	chatTextParts           = map[string][]string{"text": sdkFields(openai.ChatCompletionContentPartTextParam{})}
	chatUserParts           = map[string][]string{"text": chatTextParts["text"], "image_url": nil, "input_audio": nil, "file": nil}
	chatAssistantParts      = map[string][]string{"text": chatTextParts["text"], "refusal": {"type", "refusal"}}

	messagesParams           = append(sdkFields(anthropic.MessageNewParams{}), "stream")
	messagesToolFields       = sdkFields(anthropic.ToolParam{})
	messagesMessageFields    = sdkFields(anthropic.MessageParam{})
	messagesTextFields       = sdkFields(anthropic.TextBlockParam{})
	messagesToolUseFields    = sdkFields(anthropic.ToolUseBlockParam{})
	messagesToolResultFields = sdkFields(anthropic.ToolResultBlockParam{})
	messagesSystemParts      = map[string][]string{"text": messagesTextFields}
	messagesResultParts      = map[string][]string{"text": messagesTextFields, "image": nil, "document": nil}

	responsesParams        = append(sdkFields(responses.ResponseNewParams{}), "stream")
	responsesToolFields    = sdkFields(responses.FunctionToolParam{})
	responsesMessageFields = sdkFields(responses.EasyInputMessageParam{}, responses.ResponseInputItemMessageParam{},
		responses.ResponseOutputMessageParam{})
	responsesCallFields   = sdkFields(responses.ResponseFunctionToolCallParam{})
	responsesOutputFields = sdkFields(responses.ResponseInputItemFunctionCallOutputParam{})
	responsesInputParts   = map[string][]string{"input_text": sdkFields(responses.ResponseInputTextParam{}), "input_image": nil, "input_file": nil}
	responsesOutputParts  = map[string][]string{"output_text": sdkFields(responses.ResponseOutputTextParam{}), "refusal": {"type", "refusal"}}
)

// toolName is what all three APIs accept as a tool's name.
var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// conversation is a request being read: its checker, what it read so far,
// and the tool calls not answered yet.
type conversation struct {
	checker
	req     *agentRequest
	pending []string // ids of calls not answered yet, in order
	called  map[string]bool
}

// newConversation starts reading body, whose top-level keys must be among
// params: model is required, stream_options only allowed with stream. It
// returns the body's top level too.
func newConversation(body []byte, params []string) (*conversation, jsonObject) {
	c := &conversation{req: &agentRequest{tools: map[string]string{}}, called: map[string]bool{}}
	top := c.object(body, "", params)
	c.req.model = c.need(top, "model", "")
	c.req.stream = c.boolean(top, "stream", "")
	if !isNull(top["stream_options"]) && !c.req.stream {
		c.failf("The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	}
	return c, top
}

// tool declares a tool; schema must be a JSON Schema object of type object.
func (c *conversation) tool(name string, schema json.RawMessage, where string) {
	if !toolName.MatchString(name) {
		c.failf("%s: '%s' does not match '%s'", at(where, "name"), name, toolName)
	}
	if _, dup := c.req.tools[name]; dup {
		c.failf("%s: tool names must be unique; '%s' is declared twice", where, name)
	}
	if typ, _ := c.str(c.object(schema, at(where, "schema"), nil), "type", where); typ != "object" {
		c.failf("%s: the schema's type must be 'object', not '%s'", where, typ)
	}
	c.req.tools[name] = canonicalJSON(string(schema))
}

// system adds a system or developer instruction.
func (c *conversation) system(text string) {
	c.req.system = strings.TrimPrefix(c.req.system+"\n"+text, "\n")
}

// call records an assistant's tool call, whose id must be new.
func (c *conversation) call(id, name, args, where string) {
	if id == "" || c.called[id] {
		c.failf("%s: tool call id '%s' is empty or used twice", where, id)
	}
	c.called[id] = true
	c.pending = append(c.pending, id)
	c.req.calls = append(c.req.calls, agentCall{ID: id, Name: name, Args: canonicalJSON(args)})
}

// result records a tool result; false when it answers no pending call.
func (c *conversation) result(id, content string) bool {
	i := slices.Index(c.pending, id)
	if i < 0 {
		return false
	}
	c.pending = slices.Delete(c.pending, i, i+1)
	c.req.results = append(c.req.results, agentResult{ID: id, Content: content})
	return true
}

// unanswered fails, with format naming the pending ids, when some call is
// not answered.
func (c *conversation) unanswered(format string) {
	if len(c.pending) > 0 {
		c.failf(format, strings.Join(c.pending, ", "))
	}
}

// ---------------------------------------------------------------------------
// SSE writing

// sseWriter writes a Server-Sent Events response, flushing each event.
type sseWriter struct {
	w   http.ResponseWriter
	seq int // the next Responses sequence_number
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return &sseWriter{w: w}
}

// send writes one event: an "event:" line unless event is "", and data as
// JSON (or as it is, when it is a string).
func (s *sseWriter) send(event string, data any) {
	if event != "" {
		fmt.Fprintf(s.w, "event: %s\n", event)
	}
	b, ok := data.(string)
	if !ok {
		raw, _ := json.Marshal(data)
		b = string(raw)
	}
	fmt.Fprintf(s.w, "data: %s\n\n", b)
	s.w.(http.Flusher).Flush()
}

// writeJSONBody answers status with v as JSON.
func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fragments splits s into about n pieces, at rune boundaries, as a model
// streams it.
func fragments(s string, n int) []string {
	runes := []rune(s)
	size := max(1, (len(runes)+n-1)/n)
	var out []string
	for len(runes) > 0 {
		k := min(size, len(runes))
		out = append(out, string(runes[:k]))
		runes = runes[k:]
	}
	return out
}

// orNull is s, or JSON null when s is empty.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ---------------------------------------------------------------------------
// OpenAI Chat Completions (and what Responses shares with it)

// openAIWire is what both OpenAI APIs share: the credential check and the
// error shape.
type openAIWire struct{}

// checkHeaders requires the configured Bearer key, no x-api-key, and no
// anthropic-* header.
func (openAIWire) checkHeaders(h http.Header, key string) *fakeRejection {
	if got := h.Get("Authorization"); got != "Bearer "+key {
		return &fakeRejection{http.StatusUnauthorized, fmt.Sprintf("Incorrect API key provided: Authorization %q", got)}
	}
	if h.Get("X-Api-Key") != "" {
		return &fakeRejection{http.StatusBadRequest, "an x-api-key header reached an OpenAI upstream"}
	}
	for name := range h {
		if strings.HasPrefix(strings.ToLower(name), "anthropic-") {
			return &fakeRejection{http.StatusBadRequest, fmt.Sprintf("header %s reached an OpenAI upstream", name)}
		}
	}
	return nil
}

// writeError writes the OpenAI error shape.
func (openAIWire) writeError(w http.ResponseWriter, status int, msg string) {
	code := any(nil)
	if status == http.StatusUnauthorized {
		code = "invalid_api_key"
	}
	writeJSONBody(w, status, map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": code}})
}

// chatWire is the Chat Completions API at POST /v1/chat/completions.
type chatWire struct{ openAIWire }

func (chatWire) path() string                 { return "/v1/chat/completions" }
func (chatWire) idPrefixes() (string, string) { return "chatcmpl-", "call_c" }

// chatUnanswered is Chat's error for tool calls without their results.
const chatUnanswered = "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. " +
	"The following tool_call_ids did not have response messages: %s"

// parse checks a Chat request: known parameters; stream_options only when
// streaming; tools {type: function, function: {name, parameters}}; messages
// of the roles system, developer, user, assistant and tool, each tool
// message answering a call of the assistant message before it, and every
// call answered before any other message.
func (chatWire) parse(body []byte) (*agentRequest, error) {
	c, top := newConversation(body, chatParams)
	req := c.req
	if so := top["stream_options"]; !isNull(so) {
		req.includeUsage = c.boolean(c.object(so, "stream_options", chatStreamOptionsFields), "include_usage", "stream_options")
	}
	for _, k := range []string{"max_tokens", "max_completion_tokens"} {
		if n, ok := c.integer(top, k, "", 1); ok {
			req.maxTokens = n
		}
	}
	c.each(top["tools"], "tools", chatToolFields, func(tool jsonObject, where string) {
		if typ, _ := c.str(tool, "type", where); typ != "function" {
			c.failf("%s.type: '%s' is not 'function'", where, typ)
		}
		fn := c.object(tool["function"], where+".function", chatFunctionFields)
		schema := fn["parameters"]
		if isNull(schema) {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		c.tool(c.need(fn, "name", where+".function"), schema, where+".function")
	})
	if len(c.array(top["messages"], "messages", false)) == 0 {
		c.failf("messages: [] is too short")
	}
	c.each(top["messages"], "messages", nil, func(m jsonObject, where string) {
		role := c.need(m, "role", where)
		if role != "tool" {
			c.unanswered(chatUnanswered)
		}
		fields, known := chatMessageFields[role]
		if !known {
			c.failf("%s.role: '%s' is not one of ['system', 'assistant', 'user', 'tool', 'developer']", where, role)
		}
		c.keys(m, where, fields)
		switch role {
		case "assistant":
			chatAssistant(c, m, where)
		case "user":
			req.users = append(req.users, c.text(m["content"], where+".content", chatUserParts))
		case "system", "developer":
			c.system(c.text(m["content"], where+".content", chatTextParts))
		case "tool":
			id := c.need(m, "tool_call_id", where)
			if !c.result(id, c.text(m["content"], where+".content", chatTextParts)) {
				c.failf("Invalid parameter: %s: messages with role 'tool' must be a response to a preceding message with 'tool_calls'; '%s' answers none", where, id)
			}
		}
	})
	c.unanswered(chatUnanswered)
	return req, c.err
}

// chatAssistant reads an assistant message: its text, and its tool calls
// {id, type: function, function: {name, arguments}}; content may be null
// only when it has tool calls.
func chatAssistant(c *conversation, m jsonObject, where string) {
	calls := c.array(m["tool_calls"], where+".tool_calls", true)
	if isNull(m["content"]) && len(calls) == 0 {
		c.failf("%s: content is required unless tool_calls or function_call is specified", where)
	}
	if !isNull(m["content"]) {
		if text := c.text(m["content"], where+".content", chatAssistantParts); text != "" {
			c.req.assistantTexts = append(c.req.assistantTexts, text)
		}
	}
	c.each(m["tool_calls"], where+".tool_calls", chatToolCallFields, func(call jsonObject, cw string) {
		if typ, _ := c.str(call, "type", cw); typ != "function" {
			c.failf("%s.type: '%s' is not 'function'", cw, typ)
		}
		fn := c.object(call["function"], cw+".function", chatCallFunctionFields)
		args, ok := c.str(fn, "arguments", cw+".function")
		if !ok {
			c.failf("%s.function.arguments: a string is required", cw)
		}
		c.call(c.need(call, "id", cw), c.need(fn, "name", cw+".function"), args, cw)
	})
}

// chatUsage is u as Chat Completions reports it.
func chatUsage(u agentUsage) map[string]any {
	return map[string]any{
		"prompt_tokens": u.input, "completion_tokens": u.output, "total_tokens": u.input + u.output,
		"prompt_tokens_details":     map[string]any{"cached_tokens": u.cacheRead, "audio_tokens": 0},
		"completion_tokens_details": map[string]any{"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
	}
}

// chatToolCall is a call as a Chat message carries it.
func chatToolCall(c agentCall) map[string]any {
	return map[string]any{"id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": c.Args}}
}

// write answers a chat.completion, or streams chat.completion.chunk events:
// the role first (with the first tool call when there is no text), text in
// fragments, each even-numbered tool call as its start and then argument
// fragments, each odd-numbered one whole in one chunk (as some servers
// send them), a chunk with finish_reason, the usage chunk when
// stream_options.include_usage asked for it, and [DONE].
func (chatWire) write(w http.ResponseWriter, req *agentRequest, rep agentReply) {
	finish := "stop"
	if len(rep.calls) > 0 {
		finish = "tool_calls"
	}
	head := map[string]any{"id": rep.id, "created": rep.created, "model": rep.model,
		"service_tier": "default", "system_fingerprint": "fp_strict"}
	with := func(fields map[string]any) map[string]any {
		out := map[string]any{}
		for _, m := range []map[string]any{head, fields} {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	if !req.stream {
		msg := map[string]any{"role": "assistant", "content": orNull(rep.text), "refusal": nil, "annotations": []any{}}
		if len(rep.calls) > 0 {
			var calls []any
			for _, c := range rep.calls {
				calls = append(calls, chatToolCall(c))
			}
			msg["tool_calls"] = calls
		}
		writeJSONBody(w, http.StatusOK, with(map[string]any{"object": "chat.completion", "usage": chatUsage(rep.usage),
			"choices": []any{map[string]any{"index": 0, "message": msg, "logprobs": nil, "finish_reason": finish}}}))
		return
	}
	s := newSSEWriter(w)
	chunk := func(delta map[string]any, finish any) {
		c := with(map[string]any{"object": "chat.completion.chunk",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}})
		if req.includeUsage {
			c["usage"] = nil
		}
		s.send("", c)
	}
	callStart := func(i int, c agentCall, args string) map[string]any {
		return map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": c.ID, "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": args}}}}
	}
	calls := rep.calls
	if rep.text != "" {
		chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil)
		for _, frag := range strings.SplitAfter(rep.text, " ") {
			chunk(map[string]any{"content": frag}, nil)
		}
	}
	for i, c := range calls {
		switch {
		case i%2 == 1:
			chunk(callStart(i, c, c.Args), nil)
			continue
		case i == 0 && rep.text == "":
			delta := callStart(i, c, "")
			delta["role"], delta["content"], delta["refusal"] = "assistant", nil, nil
			chunk(delta, nil)
		default:
			chunk(callStart(i, c, ""), nil)
		}
		for _, frag := range fragments(c.Args, 3) {
			chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": frag}}}}, nil)
		}
	}
	chunk(map[string]any{}, finish)
	if req.includeUsage {
		s.send("", with(map[string]any{"object": "chat.completion.chunk", "choices": []any{}, "usage": chatUsage(rep.usage)}))
	}
	s.send("", "[DONE]")
}

// ---------------------------------------------------------------------------
// Anthropic Messages

// messagesWire is the Messages API at POST /v1/messages.
type messagesWire struct{}

func (messagesWire) path() string                 { return "/v1/messages" }
func (messagesWire) idPrefixes() (string, string) { return "msg_", "toolu_m" }

// checkHeaders requires the configured x-api-key, no bearer token, and an
// anthropic-version.
func (messagesWire) checkHeaders(h http.Header, key string) *fakeRejection {
	if got := h.Get("X-Api-Key"); got != key {
		return &fakeRejection{http.StatusUnauthorized, fmt.Sprintf("invalid x-api-key %q", got)}
	}
	if h.Get("Authorization") != "" {
		return &fakeRejection{http.StatusBadRequest, "an Authorization header reached the Messages upstream besides its x-api-key"}
	}
	if v := h.Get("Anthropic-Version"); v != "2023-06-01" {
		return &fakeRejection{http.StatusBadRequest, fmt.Sprintf("anthropic-version: header is required (2023-06-01), got %q", v)}
	}
	return nil
}

// writeError writes the Anthropic error shape.
func (messagesWire) writeError(w http.ResponseWriter, status int, msg string) {
	typ := map[int]string{http.StatusUnauthorized: "authentication_error", http.StatusNotFound: "not_found_error"}[status]
	writeJSONBody(w, status, map[string]any{"type": "error",
		"error": map[string]any{"type": cmp.Or(typ, "invalid_request_error"), "message": msg}, "request_id": "req_strict"})
}

// messagesUnanswered is Messages' error for tool_use blocks without their
// results.
const messagesUnanswered = "messages: `tool_use` ids were found without `tool_result` blocks immediately after: %s"

// parse checks a Messages request: known parameters; max_tokens required;
// system only top-level; tools {name, description?, input_schema}, type
// absent or custom; roles strictly alternating from user (the API now
// merges consecutive turns, but a translation that leans on that breaks
// older deployments and Claude Code); non-empty text; each user message
// after tool_use blocks answering every one of them with tool_result blocks
// that come first; no tool_result that answers none.
func (messagesWire) parse(body []byte) (*agentRequest, error) {
	c, top := newConversation(body, messagesParams)
	req := c.req
	n, ok := c.integer(top, "max_tokens", "", 1)
	if !ok {
		c.failf("max_tokens: Field required")
	}
	req.maxTokens = n
	if !isNull(top["system"]) {
		c.system(c.text(top["system"], "system", messagesSystemParts))
	}
	c.each(top["tools"], "tools", messagesToolFields, func(tool jsonObject, where string) {
		if typ, ok := c.str(tool, "type", where); ok && typ != "custom" {
			c.failf("%s.type: Input tag '%s' found using 'type' does not match any of the expected tags", where, typ)
		}
		if isNull(tool["input_schema"]) {
			c.failf("%s.input_schema: Field required", where)
		}
		c.tool(c.need(tool, "name", where), tool["input_schema"], where)
	})
	if len(c.array(top["messages"], "messages", false)) == 0 {
		c.failf("messages: at least one message is required")
	}
	prev := ""
	c.each(top["messages"], "messages", messagesMessageFields, func(m jsonObject, where string) {
		role := c.need(m, "role", where)
		switch {
		case role == "system":
			c.failf("%s: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role", where)
		case role != "user" && role != "assistant":
			c.failf("%s.role: Input should be 'user' or 'assistant'", where)
		case prev == "" && role != "user":
			c.failf("%s: the first message must use the \"user\" role", where)
		case role == prev:
			c.failf("%s: roles must alternate between \"user\" and \"assistant\", but found multiple \"%s\" roles in a row", where, role)
		}
		prev = role
		blocks := messagesBlocks(c, m["content"], where+".content")
		if role == "user" {
			messagesUser(c, blocks, where)
		} else {
			messagesAssistant(c, blocks, where)
		}
	})
	c.unanswered(messagesUnanswered)
	return req, c.err
}

// messagesBlocks is a message's content as blocks: a non-empty string is one
// text block.
func messagesBlocks(c *conversation, raw json.RawMessage, where string) []jsonObject {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []jsonObject{{"type": json.RawMessage(`"text"`), "text": raw}}
	}
	var blocks []jsonObject
	c.each(raw, where, nil, func(b jsonObject, _ string) { blocks = append(blocks, b) })
	if len(blocks) == 0 {
		c.failf("%s: at least one content block is required", where)
	}
	return blocks
}

// messagesText is a text block's text, which must not be empty.
func messagesText(c *conversation, b jsonObject, where string) string {
	c.keys(b, where, messagesTextFields)
	s, _ := c.str(b, "text", where)
	if s == "" {
		c.failf("%s: text content blocks must be non-empty", where)
	}
	return s
}

// messagesUser reads a user message: tool_result blocks first, each
// answering a tool_use of the assistant message before, all of them; then
// text, images and documents.
func messagesUser(c *conversation, blocks []jsonObject, where string) {
	var texts []string
	others := false // a block other than tool_result came
	for j, b := range blocks {
		bw := fmt.Sprintf("%s.content[%d]", where, j)
		typ, _ := c.str(b, "type", bw)
		if typ == "tool_result" {
			c.keys(b, bw, messagesToolResultFields)
			if others {
				c.failf("%s: tool_result blocks must come first in the content of a user message, before any other block", bw)
			}
			id, content := c.need(b, "tool_use_id", bw), ""
			if !isNull(b["content"]) {
				content = c.text(b["content"], bw+".content", messagesResultParts)
			}
			if !c.result(id, content) {
				c.failf("%s: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message", bw, id)
			}
			continue
		}
		c.unanswered(messagesUnanswered)
		others = true
		switch typ {
		case "text":
			texts = append(texts, messagesText(c, b, bw))
		case "image", "document":
		default:
			c.failf("%s.type: '%s' is not allowed in a user message", bw, typ)
		}
	}
	c.unanswered(messagesUnanswered)
	if len(texts) > 0 {
		c.req.users = append(c.req.users, strings.Join(texts, "\n"))
	}
}

// toolUseID is what Messages accepts as a tool_use id.
var toolUseID = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// messagesAssistant reads an assistant message: non-empty text and tool_use
// blocks {id, name, input object}. Thinking blocks are refused: their
// signatures could only come from this model, and it never sends any.
func messagesAssistant(c *conversation, blocks []jsonObject, where string) {
	var texts []string
	for j, b := range blocks {
		bw := fmt.Sprintf("%s.content[%d]", where, j)
		switch typ, _ := c.str(b, "type", bw); typ {
		case "text":
			texts = append(texts, messagesText(c, b, bw))
		case "tool_use":
			c.keys(b, bw, messagesToolUseFields)
			id := c.need(b, "id", bw)
			if !toolUseID.MatchString(id) {
				c.failf("%s.id: String should match pattern '%s'", bw, toolUseID)
			}
			name := c.need(b, "name", bw)
			c.object(b["input"], bw+".input", nil)
			c.call(id, name, string(b["input"]), bw)
		default:
			c.failf("%s.type: '%s' is not allowed in an assistant message here", bw, typ)
		}
	}
	if len(texts) > 0 {
		c.req.assistantTexts = append(c.req.assistantTexts, strings.Join(texts, "\n"))
	}
}

// messagesUsage is u as Messages reports it: input_tokens counts only the
// prompt tokens neither read from nor written to the cache.
func messagesUsage(u agentUsage) map[string]any {
	return map[string]any{"input_tokens": u.input - u.cacheRead - u.cacheWrite, "output_tokens": u.output,
		"cache_read_input_tokens": u.cacheRead, "cache_creation_input_tokens": u.cacheWrite,
		"cache_creation": map[string]any{"ephemeral_5m_input_tokens": u.cacheWrite, "ephemeral_1h_input_tokens": 0},
		"service_tier":   "standard"}
}

// write answers a message, or streams message_start, each content block
// (start, a ping after the first, deltas, stop), message_delta and
// message_stop.
func (messagesWire) write(w http.ResponseWriter, req *agentRequest, rep agentReply) {
	stop := "end_turn"
	if len(rep.calls) > 0 {
		stop = "tool_use"
	}
	var content []any
	if rep.text != "" {
		content = append(content, map[string]any{"type": "text", "text": rep.text})
	}
	for _, c := range rep.calls {
		content = append(content, map[string]any{"type": "tool_use", "id": c.ID, "name": c.Name, "input": json.RawMessage(c.Args)})
	}
	msg := func(content []any, stop any, usage map[string]any) map[string]any {
		return map[string]any{"id": rep.id, "type": "message", "role": "assistant", "model": rep.model,
			"content": content, "stop_reason": stop, "stop_sequence": nil, "usage": usage}
	}
	if !req.stream {
		writeJSONBody(w, http.StatusOK, msg(content, stop, messagesUsage(rep.usage)))
		return
	}
	s := newSSEWriter(w)
	startUsage := messagesUsage(rep.usage)
	startUsage["output_tokens"] = 1
	s.send("message_start", map[string]any{"type": "message_start", "message": msg([]any{}, nil, startUsage)})
	block := 0
	event := func(typ string, fields map[string]any) {
		fields["type"], fields["index"] = typ, block
		s.send(typ, fields)
	}
	delta := func(d map[string]any) { event("content_block_delta", map[string]any{"delta": d}) }
	if rep.text != "" {
		event("content_block_start", map[string]any{"content_block": map[string]any{"type": "text", "text": ""}})
		s.send("ping", map[string]any{"type": "ping"})
		for _, frag := range strings.SplitAfter(rep.text, " ") {
			delta(map[string]any{"type": "text_delta", "text": frag})
		}
		event("content_block_stop", map[string]any{})
		block++
	}
	for _, c := range rep.calls {
		event("content_block_start", map[string]any{"content_block": map[string]any{"type": "tool_use", "id": c.ID, "name": c.Name, "input": map[string]any{}}})
		if block == 0 {
			s.send("ping", map[string]any{"type": "ping"})
		}
		delta(map[string]any{"type": "input_json_delta", "partial_json": ""})
		for _, frag := range fragments(c.Args, 3) {
			delta(map[string]any{"type": "input_json_delta", "partial_json": frag})
		}
		event("content_block_stop", map[string]any{})
		block++
	}
	s.send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": rep.usage.output}})
	s.send("message_stop", map[string]any{"type": "message_stop"})
}

// ---------------------------------------------------------------------------
// OpenAI Responses

// responsesWire is the Responses API at POST /v1/responses, stateless (it
// stores no response, so previous_response_id always fails).
type responsesWire struct{ openAIWire }

func (responsesWire) path() string                 { return "/v1/responses" }
func (responsesWire) idPrefixes() (string, string) { return "resp_", "call_r" }

// parse checks a Responses request: known parameters; no
// previous_response_id; max_output_tokens of 16 or more; stream_options only
// when streaming; tools {type: function, name, parameters}; input items:
// messages of the roles user, assistant, system and developer with their
// roles' content parts, function_call items, and function_call_output items
// each answering an earlier function_call, all of them answered.
func (responsesWire) parse(body []byte) (*agentRequest, error) {
	c, top := newConversation(body, responsesParams)
	req := c.req
	if id, ok := c.str(top, "previous_response_id", ""); ok {
		c.failf("Previous response with id '%s' not found.", id)
	}
	req.maxTokens, _ = c.integer(top, "max_output_tokens", "", 16)
	if instructions, ok := c.str(top, "instructions", ""); ok {
		c.system(instructions)
	}
	req.rawTools = top["tools"]
	if isNull(req.rawTools) {
		req.rawTools = json.RawMessage(`[]`)
	}
	c.each(top["tools"], "tools", responsesToolFields, func(tool jsonObject, where string) {
		if typ, _ := c.str(tool, "type", where); typ != "function" {
			c.failf("%s.type: this upstream offers only function tools, not '%s'", where, typ)
		}
		if isNull(tool["parameters"]) {
			c.failf("Missing required parameter: '%s.parameters'.", where)
		}
		c.tool(c.need(tool, "name", where), tool["parameters"], where)
	})
	var s string
	if json.Unmarshal(top["input"], &s) == nil {
		req.users = append(req.users, s)
		return req, c.err
	}
	c.array(top["input"], "input", false)
	c.each(top["input"], "input", nil, func(item jsonObject, where string) {
		typ, ok := c.str(item, "type", where)
		if !ok && !isNull(item["role"]) {
			typ = "message"
		}
		switch typ {
		case "message":
			responsesMessage(c, item, where)
		case "function_call":
			c.keys(item, where, responsesCallFields)
			args, ok := c.str(item, "arguments", where)
			if !ok {
				c.failf("Missing required parameter: '%s.arguments'.", where)
			}
			c.call(c.need(item, "call_id", where), c.need(item, "name", where), args, where)
		case "function_call_output":
			c.keys(item, where, responsesOutputFields)
			id := c.need(item, "call_id", where)
			if !c.result(id, c.text(item["output"], where+".output", responsesInputParts)) {
				c.failf("No tool call found for function call output with call_id %s.", id)
			}
		default:
			c.failf("%s.type: '%s' is not an input item this upstream accepts", where, typ)
		}
	})
	c.unanswered("No tool output found for function call %s.")
	return req, c.err
}

// responsesMessage reads a message item: user, system and developer
// messages take input parts, assistant messages output_text and refusal.
func responsesMessage(c *conversation, item jsonObject, where string) {
	c.keys(item, where, responsesMessageFields)
	role := c.need(item, "role", where)
	parts := responsesInputParts
	if role == "assistant" {
		parts = responsesOutputParts
	}
	text := c.text(item["content"], where+".content", parts)
	switch role {
	case "user":
		c.req.users = append(c.req.users, text)
	case "assistant":
		if text != "" {
			c.req.assistantTexts = append(c.req.assistantTexts, text)
		}
	case "system", "developer":
		c.system(text)
	default:
		c.failf("%s.role: Invalid value: '%s'. Supported values are: 'assistant', 'system', 'developer', and 'user'.", where, role)
	}
}

// responsesUsage is u as Responses reports it.
func responsesUsage(u agentUsage) map[string]any {
	return map[string]any{"input_tokens": u.input, "input_tokens_details": map[string]any{"cached_tokens": u.cacheRead},
		"output_tokens": u.output, "output_tokens_details": map[string]any{"reasoning_tokens": 0},
		"total_tokens": u.input + u.output}
}

// write answers a response, or streams response.created,
// response.in_progress, each output item (output_item.added, for a
// message content_part.added, output_text.delta events, output_text.done and
// content_part.done, for a function call function_call_arguments.delta
// events and .done; then output_item.done) and response.completed, every
// event with its sequence_number.
func (responsesWire) write(w http.ResponseWriter, req *agentRequest, rep agentReply) {
	var items []map[string]any
	if rep.text != "" {
		items = append(items, map[string]any{"id": "msg_" + rep.id, "type": "message", "status": "completed", "role": "assistant",
			"content": []any{responsesTextPart(rep.text)}})
	}
	for _, c := range rep.calls {
		items = append(items, map[string]any{"id": "fc_" + c.ID, "type": "function_call", "status": "completed",
			"call_id": c.ID, "name": c.Name, "arguments": c.Args})
	}
	response := func(status string, output []map[string]any, usage any) map[string]any {
		return map[string]any{"id": rep.id, "object": "response", "created_at": rep.created, "status": status,
			"error": nil, "incomplete_details": nil, "instructions": orNull(req.system), "max_output_tokens": nil,
			"model": rep.model, "output": output, "parallel_tool_calls": true, "previous_response_id": nil,
			"reasoning": map[string]any{"effort": nil, "summary": nil}, "store": false, "temperature": 1.0,
			"text": map[string]any{"format": map[string]any{"type": "text"}}, "tool_choice": "auto",
			"tools": req.rawTools, "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": nil, "metadata": map[string]any{}}
	}
	if !req.stream {
		writeJSONBody(w, http.StatusOK, response("completed", items, responsesUsage(rep.usage)))
		return
	}
	s := newSSEWriter(w)
	event := func(typ string, fields map[string]any) {
		fields["type"], fields["sequence_number"] = typ, s.seq
		s.seq++
		s.send(typ, fields)
	}
	event("response.created", map[string]any{"response": response("in_progress", []map[string]any{}, nil)})
	event("response.in_progress", map[string]any{"response": response("in_progress", []map[string]any{}, nil)})
	for i, item := range items {
		added := map[string]any{}
		for k, v := range item {
			added[k] = v
		}
		added["status"] = "in_progress"
		id := item["id"]
		at := func(fields map[string]any) map[string]any {
			fields["item_id"], fields["output_index"] = id, i
			return fields
		}
		if item["type"] == "message" {
			added["content"] = []any{}
			event("response.output_item.added", map[string]any{"output_index": i, "item": added})
			event("response.content_part.added", at(map[string]any{"content_index": 0, "part": responsesTextPart("")}))
			for _, frag := range strings.SplitAfter(rep.text, " ") {
				event("response.output_text.delta", at(map[string]any{"content_index": 0, "delta": frag, "logprobs": []any{}}))
			}
			event("response.output_text.done", at(map[string]any{"content_index": 0, "text": rep.text, "logprobs": []any{}}))
			event("response.content_part.done", at(map[string]any{"content_index": 0, "part": responsesTextPart(rep.text)}))
		} else {
			added["arguments"] = ""
			event("response.output_item.added", map[string]any{"output_index": i, "item": added})
			args := item["arguments"].(string)
			for _, frag := range fragments(args, 3) {
				event("response.function_call_arguments.delta", at(map[string]any{"delta": frag}))
			}
			event("response.function_call_arguments.done", at(map[string]any{"arguments": args, "name": item["name"]}))
		}
		event("response.output_item.done", map[string]any{"output_index": i, "item": item})
	}
	event("response.completed", map[string]any{"response": response("completed", items, responsesUsage(rep.usage))})
}

// responsesTextPart is an output_text content part.
func responsesTextPart(text string) map[string]any {
	return map[string]any{"type": "output_text", "text": text, "annotations": []any{}, "logprobs": []any{}}
}

package llmaffinity

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/json"
	"errors"
	"strings"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// A Responses client may continue a conversation by the id of a response
// (previous_response_id) instead of sending it whole. A Responses model
// keeps that state itself; for a model of another API the gateway keeps
// the conversation behind each Responses response it translated, in the
// pin store (memory, and the shared store when there is one), for the pin
// TTL, under the tenant's scope.

// conversation is what the gateway keeps of a translated response: the
// system prompt and every message up to and including the response's.
type conversation struct {
	System   string           `json:"system,omitempty"`
	Messages []llmapi.Message `json:"messages"`
}

// errUnknownResponse answers a previous_response_id the gateway has no
// conversation for.
var errUnknownResponse = errors.New("previous_response_id names no response this gateway keeps: it did not translate it, " +
	"or it expired with the session's pin; send the whole input instead")

// conversationKey is where the conversation of response id is kept.
func conversationKey(scope, id string) string { return affinity.PinKey(scope, id, "\x00response") }

// newResponseID is an id of the Responses shape for a translated response.
func newResponseID() string { return "resp_" + strings.ToLower(cryptorand.Text()) }

// continueConversation puts the conversation that previous_response_id
// names before the turn's own messages.
func (in *incoming) continueConversation(ctx context.Context, t *llmapi.Turn) error {
	raw, ok := in.states.GetState(ctx, conversationKey(in.scope, t.PreviousResponseID))
	var prior conversation
	if !ok || json.Unmarshal(raw, &prior) != nil {
		return errUnknownResponse
	}
	t.Messages = append(prior.Messages, t.Messages...)
	if t.System == "" {
		t.System = prior.System
	}
	return nil
}

// recorder keeps the conversation of one translated Responses response
// under the id the client is given.
type recorder struct {
	ctx    context.Context
	states *affinity.Store
	key    string
	turn   *llmapi.Turn
	parts  []llmapi.Part // the response's, as a stream builds them
	index  map[int]int   // a stream block's index in parts
}

// newRecorder records responses to in, when the client speaks Responses
// and did not ask that nothing be stored; nil otherwise.
func newRecorder(in *incoming, t *llmapi.Turn) (*recorder, string) {
	if in.api != llmapi.Responses || t.NoStore {
		return nil, ""
	}
	id := newResponseID()
	return &recorder{ctx: in.r.Context(), states: in.states, key: conversationKey(in.scope, id), turn: t, index: map[int]int{}}, id
}

// event builds the response's parts from a stream's events, and keeps the
// conversation at its end.
func (rec *recorder) event(ev llmapi.Event) {
	switch ev.Kind {
	case llmapi.EventTextDelta:
		rec.part(ev.Index, llmapi.Part{Kind: llmapi.PartText}).Text += ev.Text
	case llmapi.EventToolCallStart:
		call := *ev.ToolCall
		rec.part(ev.Index, llmapi.Part{Kind: llmapi.PartToolCall, ToolCall: &call})
	case llmapi.EventToolCallDelta:
		if p := rec.part(ev.Index, llmapi.Part{}); p.ToolCall != nil {
			p.ToolCall.Arguments += ev.Text
		}
	case llmapi.EventEnd:
		rec.keep(rec.parts)
	}
}

// part is the part of stream block index, made as fresh when new.
func (rec *recorder) part(index int, fresh llmapi.Part) *llmapi.Part {
	i, ok := rec.index[index]
	if !ok {
		i = len(rec.parts)
		rec.index[index] = i
		rec.parts = append(rec.parts, fresh)
	}
	return &rec.parts[i]
}

// keep stores the conversation: the turn's messages and the response.
func (rec *recorder) keep(reply []llmapi.Part) {
	msgs := append(rec.turn.Messages[:len(rec.turn.Messages):len(rec.turn.Messages)],
		llmapi.Message{Role: llmapi.RoleAssistant, Parts: reply})
	raw, err := json.Marshal(conversation{System: rec.turn.System, Messages: msgs})
	if err == nil {
		rec.states.SetState(rec.ctx, rec.key, raw)
	}
}

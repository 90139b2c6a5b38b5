package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
)

// ClientAPI is the API the agent speaks to the gateway, as the demo's
// --client flag names it.
type ClientAPI string

// The APIs the agent can speak. The stand-in providers speak Chat
// Completions whatever the client speaks: for the other two the gateway
// translates every request and response.
const (
	// ClientChat is OpenAI Chat Completions with openai-go: POST /v1/chat/completions.
	ClientChat ClientAPI = "chat"
	// ClientMessages is Anthropic Messages with anthropic-sdk-go: POST /v1/messages.
	ClientMessages ClientAPI = "messages"
	// ClientResponses is OpenAI Responses with openai-go, stateless (the
	// whole input each turn, store false): POST /v1/responses.
	ClientResponses ClientAPI = "responses"
)

// ClientAPIs are the APIs the agent can speak, in the order help lists them.
var ClientAPIs = []ClientAPI{ClientChat, ClientMessages, ClientResponses}

// Describe says which API and SDK the client is and where it posts.
func (a ClientAPI) Describe() string {
	switch a {
	case ClientMessages:
		return "Anthropic Messages (anthropic-sdk-go), POST /v1/messages"
	case ClientResponses:
		return "OpenAI Responses (openai-go), POST /v1/responses, store false"
	}
	return "OpenAI Chat Completions (openai-go), POST /v1/chat/completions"
}

// messagesMaxTokens is the max_tokens of the Messages client's requests,
// which Messages requires.
const messagesMaxTokens = 1024

// NewConversation starts the agent's conversation as a client of api
// against the gateway whose OpenAI base URL is baseURL (ending in /v1; the
// Messages client posts to the same host's /v1/messages). Every request
// sends apiKey and header, and is not retried; session is the agent's
// session id (see NewChatConversation).
func NewConversation(api ClientAPI, baseURL, apiKey, model, session string, header map[string]string) (Conversation, error) {
	switch api {
	case ClientChat, ClientResponses:
		opts := []option.RequestOption{option.WithBaseURL(baseURL), option.WithAPIKey(apiKey), option.WithMaxRetries(0)}
		for name, value := range header {
			opts = append(opts, option.WithHeader(name, value))
		}
		if api == ClientChat {
			return NewChatConversation(openai.NewClient(opts...), model, session), nil
		}
		return NewResponsesConversation(openai.NewClient(opts...), model, session), nil
	case ClientMessages:
		// Anthropic's base URL is the host: the SDK adds /v1/messages
		root := strings.TrimSuffix(strings.TrimSuffix(baseURL, "/"), "/v1")
		opts := []anthropicoption.RequestOption{anthropicoption.WithBaseURL(root), anthropicoption.WithAPIKey(apiKey),
			anthropicoption.WithMaxRetries(0)}
		for name, value := range header {
			opts = append(opts, anthropicoption.WithHeader(name, value))
		}
		return NewMessagesConversation(anthropic.NewClient(opts...), model, session), nil
	}
	return nil, fmt.Errorf("unknown client API %q: want chat, messages or responses", api)
}

// chatConversation is the conversation as a Chat Completions client: the
// messages, each turn's assistant message and tool messages appended.
type chatConversation struct {
	client openai.Client
	params openai.ChatCompletionNewParams
	opts   []option.RequestOption
}

// NewChatConversation starts the conversation as a Chat Completions client
// of client, asking for model; opts apply to every request (e.g. the
// affinity header). A session id other than "" goes in every request's
// body as the end-user id ("user"; Messages' metadata.user_id, Responses'
// user), which the gateway carries over when it translates: it is how the
// stand-in providers tell one session's prompt cache from another's, as
// real harnesses put their session in the body (Claude Code in
// metadata.user_id).
func NewChatConversation(client openai.Client, model, session string, opts ...option.RequestOption) Conversation {
	c := &chatConversation{client: client, opts: opts, params: openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(SystemPrompt), openai.UserMessage(UserQuestion)},
	}}
	if session != "" {
		c.params.User = openai.String(session)
	}
	for _, t := range tools {
		c.params.Tools = append(c.params.Tools, openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: t.name, Description: openai.String(t.description), Parameters: t.schema()}))
	}
	return c
}

// Send posts the conversation to /chat/completions.
func (c *chatConversation) Send(ctx context.Context) (Reply, error) {
	completion, err := c.client.Chat.Completions.New(ctx, c.params, c.opts...)
	if err != nil {
		return Reply{}, err
	}
	if len(completion.Choices) == 0 {
		return Reply{}, errors.New("the response has no choices")
	}
	msg := completion.Choices[0].Message
	c.params.Messages = append(c.params.Messages, msg.ToParam())
	reply := Reply{Model: completion.Model, Text: msg.Content, Usage: Usage{
		Input:  completion.Usage.PromptTokens,
		Cached: completion.Usage.PromptTokensDetails.CachedTokens,
	}}
	for _, call := range msg.ToolCalls {
		reply.Calls = append(reply.Calls, ToolCall{ID: call.ID, Name: call.Function.Name, Arguments: call.Function.Arguments})
	}
	return reply, nil
}

// AddToolResults appends one tool message a result.
func (c *chatConversation) AddToolResults(results []ToolResult) {
	for _, r := range results {
		c.params.Messages = append(c.params.Messages, openai.ToolMessage(r.Content, r.CallID))
	}
}

// messagesConversation is the conversation as an Anthropic Messages
// client: the system prompt apart, each turn's assistant message appended,
// the tool results one user message of tool_result blocks.
type messagesConversation struct {
	client anthropic.Client
	params anthropic.MessageNewParams
	opts   []anthropicoption.RequestOption
}

// NewMessagesConversation starts the conversation as a Messages client of
// client, asking for model, session in metadata.user_id (see
// NewChatConversation); opts apply to every request. Every request asks
// for Anthropic's automatic prompt caching (a top-level cache_control),
// without which Anthropic caches nothing.
func NewMessagesConversation(client anthropic.Client, model, session string, opts ...anthropicoption.RequestOption) Conversation {
	c := &messagesConversation{client: client, opts: opts, params: anthropic.MessageNewParams{
		Model:        anthropic.Model(model),
		MaxTokens:    messagesMaxTokens,
		System:       []anthropic.TextBlockParam{{Text: SystemPrompt}},
		Messages:     []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(UserQuestion))},
		CacheControl: anthropic.NewCacheControlEphemeralParam(),
	}}
	if session != "" {
		c.params.Metadata.UserID = anthropic.String(session)
	}
	for _, t := range tools {
		c.params.Tools = append(c.params.Tools, anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
			Name: t.name, Description: anthropic.String(t.description),
			InputSchema: anthropic.ToolInputSchemaParam{Properties: t.properties, Required: t.required}}})
	}
	return c
}

// Send posts the conversation to /v1/messages.
func (c *messagesConversation) Send(ctx context.Context) (Reply, error) {
	msg, err := c.client.Messages.New(ctx, c.params, c.opts...)
	if err != nil {
		return Reply{}, err
	}
	c.params.Messages = append(c.params.Messages, msg.ToParam())
	// Messages' input_tokens counts neither the cache reads nor the writes
	u := msg.Usage
	reply := Reply{Model: string(msg.Model), Usage: Usage{
		Input:  u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens,
		Cached: u.CacheReadInputTokens,
	}}
	var text []string
	for _, block := range msg.Content {
		switch b := block.AsAny().(type) {
		case anthropic.TextBlock:
			text = append(text, b.Text)
		case anthropic.ToolUseBlock:
			reply.Calls = append(reply.Calls, ToolCall{ID: b.ID, Name: b.Name, Arguments: string(b.Input)})
		}
	}
	reply.Text = strings.Join(text, "")
	return reply, nil
}

// AddToolResults appends one user message of the results.
func (c *messagesConversation) AddToolResults(results []ToolResult) {
	blocks := make([]anthropic.ContentBlockParamUnion, len(results))
	for i, r := range results {
		blocks[i] = anthropic.NewToolResultBlock(r.CallID, r.Content, false)
	}
	c.params.Messages = append(c.params.Messages, anthropic.NewUserMessage(blocks...))
}

// responsesConversation is the conversation as a stateless Responses
// client: the input items, each response's output items appended as they
// came, then a function_call_output item a result; store false, no
// previous_response_id.
type responsesConversation struct {
	client openai.Client
	params responses.ResponseNewParams
	input  responses.ResponseInputParam
	opts   []option.RequestOption
}

// NewResponsesConversation starts the conversation as a Responses client of
// client, asking for model, session as the user (see NewChatConversation);
// opts apply to every request.
func NewResponsesConversation(client openai.Client, model, session string, opts ...option.RequestOption) Conversation {
	c := &responsesConversation{client: client, opts: opts,
		params: responses.ResponseNewParams{Model: model, Instructions: openai.String(SystemPrompt), Store: openai.Bool(false)},
		input:  responses.ResponseInputParam{responses.ResponseInputItemParamOfMessage(UserQuestion, responses.EasyInputMessageRoleUser)},
	}
	if session != "" {
		c.params.User = openai.String(session)
	}
	for _, t := range tools {
		c.params.Tools = append(c.params.Tools, responses.ToolUnionParam{OfFunction: &responses.FunctionToolParam{
			Name: t.name, Description: openai.String(t.description), Parameters: t.schema(), Strict: openai.Bool(false)}})
	}
	return c
}

// Send posts the whole input to /v1/responses.
func (c *responsesConversation) Send(ctx context.Context) (Reply, error) {
	c.params.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: c.input}
	resp, err := c.client.Responses.New(ctx, c.params, c.opts...)
	if err != nil {
		return Reply{}, err
	}
	reply := Reply{Model: string(resp.Model), Text: resp.OutputText(), Usage: Usage{
		Input:  resp.Usage.InputTokens,
		Cached: resp.Usage.InputTokensDetails.CachedTokens,
	}}
	for _, item := range resp.Output {
		switch item.Type {
		case "message":
			msg := item.AsMessage().ToParam()
			c.input = append(c.input, responses.ResponseInputItemUnionParam{OfOutputMessage: &msg})
		case "function_call":
			call := item.AsFunctionCall()
			param := call.ToParam()
			c.input = append(c.input, responses.ResponseInputItemUnionParam{OfFunctionCall: &param})
			reply.Calls = append(reply.Calls, ToolCall{ID: call.CallID, Name: call.Name, Arguments: call.Arguments})
		}
	}
	return reply, nil
}

// AddToolResults appends a function_call_output item a result.
func (c *responsesConversation) AddToolResults(results []ToolResult) {
	for _, r := range results {
		item := responses.ResponseInputItemParamOfFunctionCallOutput(r.Content)
		item.OfFunctionCallOutput.CallID = openai.String(r.CallID)
		c.input = append(c.input, item)
	}
}

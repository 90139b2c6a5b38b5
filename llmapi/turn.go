package llmapi

import "encoding/json"

// The neutral form of a turn: what every API's request, response and stream
// is translated into and out of, so that each API needs one decoder and one
// encoder, not a translator per pair. Each API's file (chat.go, messages.go,
// responses.go) holds its decoder and encoder.

// Turn is a chat request in the neutral form.
type Turn struct {
	// Model is the model the client asked for.
	Model string
	// System is the system prompt: Chat system and developer messages,
	// Messages' "system", Responses' "instructions", joined by blank lines.
	System string
	// Messages are the conversation, oldest first.
	Messages []Message
	// Tools are the function tools offered.
	Tools []Tool
	// ToolChoice is how the model may use the tools; nil for the API's
	// default (auto when tools are offered).
	ToolChoice *ToolChoice
	// MaxTokens bounds the output; 0 when the client set none.
	MaxTokens int
	// Temperature and TopP are the sampling parameters, nil when unset.
	Temperature, TopP *float64
	// Stop are the stop sequences.
	Stop []string
	// Stream asks for a server-sent event stream.
	Stream bool
	// StreamUsage is set when a Chat client asked for the usage chunk
	// (stream_options.include_usage).
	StreamUsage bool
	// User is the end user's id, where the client sent one.
	User string
	// PreviousResponseID is the Responses response this turn continues:
	// its conversation comes before Messages.
	PreviousResponseID string
	// NoStore is set when a Responses client asked that the response not be
	// kept (store false).
	NoStore bool
	// Format asks for structured output (Chat's response_format, Responses'
	// text.format); nil for text. Messages has no such field, and refuses it.
	Format *OutputFormat
	// ReasoningEffort is Chat's reasoning_effort, Responses'
	// reasoning.effort; "" when unset. Messages has no such field: it is
	// left out there.
	ReasoningEffort string
}

// OutputFormat is structured output: a JSON object, or one that follows a
// JSON Schema.
type OutputFormat struct {
	// Type is "json_schema" or "json_object".
	Type string
	// Name, Description, Schema and Strict describe a json_schema format.
	Name, Description string
	Schema            json.RawMessage
	Strict            *bool
}

// Role is who speaks a message.
type Role string

// The roles of the neutral form. A tool result is a part of a user message,
// as in Messages; Chat's "tool" messages and Responses' function_call_output
// items become such parts.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one turn of the conversation.
type Message struct {
	Role  Role
	Parts []Part
}

// PartKind says which of a Part's fields is set.
type PartKind uint8

// The kinds of content.
const (
	PartText PartKind = iota
	PartImage
	PartToolCall
	PartToolResult
	// PartThinking is an Anthropic thinking block: it goes only to a
	// Messages model, its signature passed back byte for byte.
	PartThinking
)

// Part is one piece of a message's content.
type Part struct {
	Kind PartKind
	// Text is the text of a text or thinking part.
	Text string
	// Image is an image part's source.
	Image *Image
	// ToolCall is a tool call the assistant made.
	ToolCall *ToolCall
	// ToolResult is the result of a tool call, sent back by the client.
	ToolResult *ToolResult
	// Signature is a thinking part's signature (or, for a redacted thinking
	// block, its data), opaque.
	Signature string
	// Redacted marks a redacted thinking block.
	Redacted bool
}

// Image is an image, inline or by URL.
type Image struct {
	// MediaType is the type of inline data, e.g. image/png.
	MediaType string
	// Data is the base64 of inline data; empty for a URL.
	Data string
	// URL is where the image is, when not inline.
	URL string
}

// ToolCall is a call of a function tool.
type ToolCall struct {
	// ID pairs the call with its result.
	ID string
	// Name is the tool's name.
	Name string
	// Arguments is the JSON text of the arguments object.
	Arguments string
}

// ToolResult is what a tool call returned.
type ToolResult struct {
	// CallID is the ID of the ToolCall it answers.
	CallID string
	// Content is the result: text and image parts.
	Content []Part
	// IsError marks a failed call (Messages' is_error).
	IsError bool
}

// Tool is a function tool the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments object.
	Parameters json.RawMessage
	// Strict asks for schema-exact arguments, where the API has it.
	Strict *bool
}

// ToolChoice is how the model may use the tools.
type ToolChoice struct {
	// Mode is ToolAuto, ToolNone, ToolRequired or ToolNamed.
	Mode string
	// Name is the tool that must be called, for ToolNamed.
	Name string
	// NoParallel asks for at most one tool call.
	NoParallel bool
}

// Tool choice modes.
const (
	ToolAuto     = "auto"
	ToolNone     = "none"
	ToolRequired = "required" // Messages: "any"
	ToolNamed    = "named"
)

// StopReason is why the model stopped, in Chat's terms.
type StopReason string

// The stop reasons of the neutral form.
const (
	StopEnd           StopReason = "stop"           // Messages end_turn, stop_sequence
	StopLength        StopReason = "length"         // Messages max_tokens; Responses incomplete
	StopToolCalls     StopReason = "tool_calls"     // Messages tool_use
	StopContentFilter StopReason = "content_filter" // Messages refusal
)

// Usage counts a response's tokens. InputTokens counts every input token,
// cached ones included, as Chat and Responses count them; Messages counts
// input_tokens without the cache reads and writes, so its decoder adds them
// and its encoder takes them out.
type Usage struct {
	InputTokens      int
	OutputTokens     int
	CacheReadTokens  int
	CacheWriteTokens int
}

// Reply is a complete (not streamed) model response in the neutral form.
type Reply struct {
	// ID is the upstream's id of the response.
	ID string
	// Model is the model that answered, as the upstream named it.
	Model string
	// Parts are the assistant's output: text, tool calls, thinking.
	Parts []Part
	// StopReason is why it stopped.
	StopReason StopReason
	// Usage counts its tokens; nil when the upstream gave none.
	Usage *Usage
	// Created is the Unix time it was made; 0 when unknown.
	Created int64
}

package llmapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// UnsupportedError is a feature of a request that the serving model's API
// cannot express; translating it would change what the request means.
type UnsupportedError struct {
	// Feature names what the request uses, never quoting its content.
	Feature string
}

// Error names the feature.
func (e *UnsupportedError) Error() string {
	return e.Feature + " cannot be translated to another API"
}

func unsupported(feature string) error { return &UnsupportedError{Feature: feature} }

// errUpstreamReply is the error for a response the upstream sent that is
// not one of its API's.
var errUpstreamReply = errors.New("the model's response is not one of its API's responses")

// DecodeTurn reads a request of api into the neutral form. A failure is an
// *InvalidRequestError, or an *UnsupportedError for a feature no other API
// has. The turn's strings and raw values alias body, without a copy: body
// must not change while the turn, or anything taken from it, is in use.
func DecodeTurn(api API, body []byte) (*Turn, error) {
	switch api {
	case Messages:
		return decodeMessages(body)
	case Responses:
		return decodeResponses(body)
	}
	return decodeChat(body)
}

// EncodeTurn writes the neutral request as a request of api for model. It
// fails with an *UnsupportedError when the turn uses what api cannot
// express.
func EncodeTurn(api API, t *Turn, model string) ([]byte, error) {
	return AppendTurn(nil, api, t, model)
}

// AppendTurn is EncodeTurn appending to dst, which it grows only when it
// has too little room: a caller that reuses buffers translates without
// allocating.
func AppendTurn(dst []byte, api API, t *Turn, model string) ([]byte, error) {
	dst = slices.Grow(dst, t.sizeHint())
	switch api {
	case Messages:
		return appendMessagesTurn(dst, t, model)
	case Responses:
		return appendResponsesTurn(dst, t, model)
	}
	return appendChatTurn(dst, t, model), nil
}

// DecodeReply reads a complete (not streamed) response of api.
func DecodeReply(api API, body []byte) (*Reply, error) {
	switch api {
	case Messages:
		return decodeMessagesReply(body)
	case Responses:
		return decodeResponsesReply(body)
	}
	return decodeChatReply(body)
}

// EncodeReply writes a reply as a response of api, naming model (what the
// client asked for).
func EncodeReply(api API, r *Reply, model string) []byte {
	switch api {
	case Messages:
		return encodeMessagesReply(r, model)
	case Responses:
		return encodeResponsesReply(r, model)
	}
	return encodeChatReply(r, model)
}

// UpstreamErrorMessage reads the message of an upstream's error body, which
// all three APIs put at error.message; ok is false when body is not one.
func UpstreamErrorMessage(body []byte) (msg string, ok bool) {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
		return "", false
	}
	return e.Error.Message, true
}

// openAIToolChoice reads the "tool_choice" of Chat or Responses: "auto",
// "none", "required", or a function by name ({"type":"function",
// "function":{"name":...}} in Chat, {"type":"function","name":...} in
// Responses), with parallel_tool_calls.
func openAIToolChoice(raw json.RawMessage, parallel *bool) (*ToolChoice, error) {
	noParallel := parallel != nil && !*parallel
	if len(raw) == 0 || string(raw) == "null" {
		if noParallel {
			return &ToolChoice{Mode: ToolAuto, NoParallel: true}, nil
		}
		return nil, nil
	}
	var mode string
	if isJSONString(raw) && json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case ToolAuto, ToolNone, ToolRequired:
			return &ToolChoice{Mode: mode, NoParallel: noParallel}, nil
		}
		return nil, invalid("\"tool_choice\" is not auto, none or required")
	}
	var named struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	switch {
	case json.Unmarshal(raw, &named) != nil:
		return nil, invalid("\"tool_choice\" must be auto, none, required or a function by name")
	case named.Type != "function":
		return nil, unsupported("\"tool_choice\" of a tool that is not a function")
	case cmp.Or(named.Function.Name, named.Name) == "":
		return nil, invalid("\"tool_choice\" names no function")
	}
	return &ToolChoice{Mode: ToolNamed, Name: cmp.Or(named.Function.Name, named.Name), NoParallel: noParallel}, nil
}

// appendOpenAIUsage appends neutral usage as the usage object of a Chat
// or Responses response.
func appendOpenAIUsage(w []byte, u *Usage, keys openAIUsageKeys) []byte {
	return fmt.Appendf(w, `{%s:%d,%s:%d,"total_tokens":%d,%s:{"cached_tokens":%d}}`,
		keys.input, u.InputTokens, keys.output, u.OutputTokens, u.InputTokens+u.OutputTokens, keys.details, u.CacheReadTokens)
}

// systemText is the text of a system prompt's parts joined by sep; an
// image, which no API's system prompt holds, is refused as feature.
func systemText(parts []Part, sep, feature string) (string, error) {
	texts := make([]string, 0, len(parts))
	for _, p := range parts {
		if p.Kind != PartText {
			return "", unsupported(feature)
		}
		texts = append(texts, p.Text)
	}
	return strings.Join(texts, sep), nil
}

// imageOfURL reads an image URL, taking a data: URL apart into its media
// type and base64 data.
func imageOfURL(url string) Image {
	if rest, ok := strings.CutPrefix(url, "data:"); ok {
		if meta, data, ok := strings.Cut(rest, ","); ok {
			if mediaType, ok := strings.CutSuffix(meta, ";base64"); ok {
				return Image{MediaType: mediaType, Data: data}
			}
		}
	}
	return Image{URL: url}
}

// appendImageURL appends the image's URL as a JSON string: its own, or a
// data: URL of its inline data.
func appendImageURL(w []byte, img *Image) []byte {
	return append(appendImageURLBody(append(w, '"'), img), '"')
}

// appendImageURLBody is appendImageURL without the quotes.
func appendImageURLBody(w []byte, img *Image) []byte {
	if img.URL != "" {
		return appendJSONStringBody(w, img.URL)
	}
	w = appendJSONStringBody(append(w, "data:"...), img.MediaType)
	return appendJSONStringBody(append(w, ";base64,"...), img.Data)
}

// clientID is an upstream's response id in the shape of the client's API:
// prefix and the id, without the prefix of the upstream's API.
func clientID(prefix, id string) string {
	if strings.HasPrefix(id, prefix) {
		return id
	}
	for _, other := range []string{"chatcmpl-", "msg_", "resp_"} {
		if rest, ok := strings.CutPrefix(id, other); ok {
			return prefix + rest
		}
	}
	return prefix + id
}

// isJSONString reports whether raw, a JSON value, is a string: a cheap look
// before decoding one, as a failed decode scans the whole value.
func isJSONString(raw []byte) bool { return len(raw) > 0 && raw[0] == '"' }

package llmapi

import "net/http"

// messagesError is the error body of Anthropic's Messages API.
type messagesError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// messagesErrorBody is the error body for a status and message.
func messagesErrorBody(status int, msg string) []byte {
	var e messagesError
	e.Type = "error"
	e.Error.Type = messagesErrorType(status)
	e.Error.Message = msg
	return marshalError(e)
}

// messagesErrorType is the Messages API's error type for a status.
func messagesErrorType(status int) string {
	switch {
	case status == http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case status == http.StatusServiceUnavailable:
		return "overloaded_error"
	case status >= 500:
		return "api_error"
	}
	return "invalid_request_error"
}

package llmapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// InvalidRequestError is a client error in a request body. Its message names
// the offending field and never quotes body content.
type InvalidRequestError struct{ Msg string }

// Error returns the message.
func (e *InvalidRequestError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidRequestError{Msg: fmt.Sprintf(format, args...)}
}

// WriteError answers an error the gateway itself found, in the error shape
// of api, with the error type that API uses for the status. msg must not
// quote request content.
func WriteError(w http.ResponseWriter, api API, status int, msg string) {
	var body []byte
	if api == Messages {
		body = messagesErrorBody(status, msg)
	} else {
		body = chatErrorBody(status, msg)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// marshalError encodes an error body; the error types hold only strings,
// which always marshal.
func marshalError(v any) []byte {
	body, _ := json.Marshal(v)
	return body
}

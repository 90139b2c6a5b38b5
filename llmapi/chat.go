package llmapi

// chatError is the error body of OpenAI's APIs.
type chatError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// chatErrorBody is the error body for a status and message.
func chatErrorBody(status int, msg string) []byte {
	var e chatError
	e.Error.Type = "invalid_request_error"
	if status >= 500 {
		e.Error.Type = "server_error"
	}
	e.Error.Message = msg
	return marshalError(e)
}

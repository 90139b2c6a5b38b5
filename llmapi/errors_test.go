package llmapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// Each API's error body has its own shape and error type per status.
func TestWriteError(t *testing.T) {
	tests := []struct {
		api      API
		status   int
		wantType string
	}{
		{Chat, http.StatusBadRequest, "invalid_request_error"},
		{Chat, http.StatusRequestEntityTooLarge, "invalid_request_error"},
		{Chat, http.StatusBadGateway, "server_error"},
		{Chat, http.StatusServiceUnavailable, "server_error"},
		{Messages, http.StatusBadRequest, "invalid_request_error"},
		{Messages, http.StatusRequestEntityTooLarge, "request_too_large"},
		{Messages, http.StatusBadGateway, "api_error"},
		{Messages, http.StatusServiceUnavailable, "overloaded_error"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		WriteError(rec, tt.api, tt.status, "what went wrong")
		if rec.Code != tt.status {
			t.Errorf("%v %d: status %d", tt.api, tt.status, rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%v %d: Content-Type %q", tt.api, tt.status, ct)
		}
		if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
			t.Errorf("%v %d: Content-Length %s for %d bytes", tt.api, tt.status, cl, rec.Body.Len())
		}
		var got struct {
			Type  *string `json:"type"`
			Error struct {
				Type    string          `json:"type"`
				Message string          `json:"message"`
				Param   json.RawMessage `json:"param"`
				Code    json.RawMessage `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("%v %d: body %s: %v", tt.api, tt.status, rec.Body, err)
		}
		if got.Error.Type != tt.wantType || got.Error.Message != "what went wrong" {
			t.Errorf("%v %d: error %+v, want type %s", tt.api, tt.status, got.Error, tt.wantType)
		}
		if tt.api == Messages {
			if got.Type == nil || *got.Type != "error" {
				t.Errorf("Messages %d: top-level type %v, want \"error\"", tt.status, got.Type)
			}
		} else if got.Type != nil || string(got.Error.Param) != "null" || string(got.Error.Code) != "null" {
			t.Errorf("Chat %d: body %s, want no top-level type and null param and code", tt.status, rec.Body)
		}
	}
}

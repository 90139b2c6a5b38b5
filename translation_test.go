package llmaffinity

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// A translated upstream error reaches the client in its API's error shape,
// its status and message kept; a body that is not an error says the status.
func TestTranslatorUpstreamError(t *testing.T) {
	for _, tt := range []struct {
		body, want string
	}{
		{`{"error":{"type":"rate_limit_error","message":"slow down"},"type":"error"}`, "slow down"},
		{`<html>busy</html>`, "the model answered HTTP 429"},
	} {
		rec := httptest.NewRecorder()
		tr := &translator{from: llmapi.Messages, to: llmapi.Chat}
		w := tr.wrap(rec)
		w.Header().Set("Content-Length", "999")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(tt.body))
		tr.finish()
		var got struct {
			Error struct{ Message, Type string } `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusTooManyRequests ||
			got.Error.Message != tt.want || got.Error.Type != "invalid_request_error" {
			t.Errorf("%s: client got %d %s", tt.body, rec.Code, rec.Body)
		}
	}
}

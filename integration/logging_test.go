package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exampleLogBlock is the global `log` block of Caddyfile.example, with its
// own indentation: the filter the example promises keeps credentials out of
// Caddy's logs.
func exampleLogBlock(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	example := string(raw)
	start := strings.Index(example, "\n\tlog {\n")
	length := strings.Index(example[max(start, 0):], "\n\t}\n")
	if start < 0 || length < 0 {
		t.Fatalf("Caddyfile.example has no global log block")
	}
	return example[start+1 : start+length+3]
}

// TestUpstreamAbortLogsNoCredential: an Anthropic upstream that breaks off a
// stream makes reverse_proxy log "aborting with incomplete response" at WARN
// with the upstream request's headers, which carry the x-api-key the gateway
// set (Caddy redacts only Authorization, Cookie, Set-Cookie and
// Proxy-Authorization), and at DEBUG "upstream roundtrip" with the same
// headers. With Caddyfile.example's global log filter, at DEBUG level, the
// key reaches no log line; without it, both entries print the key.
func TestUpstreamAbortLogsNoCredential(t *testing.T) {
	setKeys(t)
	const secret = "sk-ant-test-secret" // what setKeys gives the claude model
	f := newFleet(t, func(int64, string) string { return `{"route": "code"}` })
	// one SSE event, then the connection closes mid-stream
	f.claude = newFakeUpstreamFunc(t, "claude", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: message_start\ndata: {\"type\":\"message_start\"}\n\n")
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})

	logPath := filepath.Join(t.TempDir(), "caddy.log")
	logBlock := strings.Replace(exampleLogBlock(t), "\tlog {\n",
		"\tlog {\n\t\toutput file "+logPath+"\n\t\tlevel DEBUG\n", 1)
	startCaddyConfig(t, globalOptionsWith(logBlock)+f.keyedSite().speaking("claude", "messages").String())
	// back to the default log, closing the file before the temp dir goes away
	t.Cleanup(func() { closeLogFiles(t) })

	body := `{"model":"claude-client","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"write code"}]}`
	// the body ends in an error: the stream was cut
	resp, out, err := sendTo(http.DefaultClient, gateway, "/v1/messages", []byte(body),
		"X-Model-Affinity", "S-abort", "Anthropic-Version", "2023-06-01")
	if resp == nil {
		t.Fatalf("POST /v1/messages: %v", err)
	}
	expectDecision(t, "the aborted stream", resp, "claude", "code", "routed")
	if !strings.Contains(string(out), "message_start") {
		t.Errorf("the client got %q, want the event sent before the abort", out)
	}
	if seen := f.claude.requests(); len(seen) != 1 || seen[0].APIKey != secret {
		t.Fatalf("the upstream saw %+v; want one request with the model's x-api-key, the key the logs must not show", seen)
	}

	const abortMsg = "aborting with incomplete response"
	aborted := waitForLogEntry(t, logPath, "with msg "+jsonQuote(abortMsg), func(e map[string]any) bool { return e["msg"] == abortMsg })
	if aborted["level"] != "warn" {
		t.Errorf("%q logged at %v, want warn (the default log level shows it)", aborted["msg"], aborted["level"])
	}
	// the entry carries the upstream request (header_up set X-Routed-Model
	// on it) under request>headers, the path the filter names
	request, _ := aborted["request"].(map[string]any)
	headers, _ := request["headers"].(map[string]any)
	if headers["X-Routed-Model"] == nil {
		t.Errorf("%q has no upstream request headers under request>headers: %v", aborted["msg"], aborted)
	}
	if key, ok := headers["X-Api-Key"]; ok {
		t.Errorf("%q logs request>headers>X-Api-Key = %v", aborted["msg"], key)
	}
	b, _ := os.ReadFile(logPath)
	for i, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, secret) {
			t.Errorf("log line %d carries the upstream API key: %s", i+1, line)
		}
	}
}

package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
)

// TestModelList: GET .../models is answered from the config, with no
// upstream call: OpenAI's list for the OpenAI SDK, Anthropic's for its SDK
// (which sends anthropic-version, as Claude Code's discovery does).
func TestModelList(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	startCaddy(t, f.keyedSite())
	want := []string{"gpt-4o", "claude", "small"}

	oc := openaiClient()
	page, err := oc.Models.List(context.Background())
	if err != nil {
		t.Fatalf("OpenAI SDK models.list: %v", err)
	}
	var got []string
	for _, m := range page.Data {
		got = append(got, m.ID)
		if m.Object != "model" {
			t.Errorf("model %s: object %q, want model", m.ID, m.Object)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("OpenAI SDK lists %v, want %v", got, want)
	}

	client := anthropicClient(t)
	apage, err := client.Models.List(context.Background(), anthropic.ModelListParams{Limit: anthropic.Int(1000)})
	if err != nil {
		t.Fatalf("Anthropic SDK models.list: %v", err)
	}
	got = nil
	for _, m := range apage.Data {
		got = append(got, m.ID)
		if m.Type != "model" || m.DisplayName != m.ID {
			t.Errorf("model %+v: want type model and its name as display name", m)
		}
	}
	if !slices.Equal(got, want) || apage.HasMore || apage.FirstID != "gpt-4o" || apage.LastID != "small" {
		t.Errorf("Anthropic SDK lists %v (has_more %v, first %q, last %q), want %v", got, apage.HasMore, apage.FirstID, apage.LastID, want)
	}
	for _, up := range []*fakeUpstream{f.gpt, f.claude, f.small} {
		if n := up.count(); n != 0 {
			t.Errorf("%s got %d requests for the model list, want none", up.name, n)
		}
	}
}

// TestCountTokens: POST /v1/messages/count_tokens goes to the session's
// model when it speaks Messages (model rewritten, its key in place of the
// client's), and is estimated by the gateway for a model of another API.
func TestCountTokens(t *testing.T) {
	setKeys(t)
	f := newFleet(t, alternating)
	startCaddy(t, f.keyedSite().speaking("claude", "messages"))
	body := []byte(`{"model":"claude","system":"Be brief.","messages":[{"role":"user","content":"Count these tokens, please."}]}`)

	resp, out := post(t, "/v1/messages/count_tokens", body, "X-Api-Key", "client-key", "Anthropic-Version", "2023-06-01")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("count_tokens on a Messages model: %d %s", resp.StatusCode, out)
	}
	seen := f.claude.requests()
	if len(seen) != 1 || seen[0].Path != "/v1/messages/count_tokens" || seen[0].Model != "claude-sonnet-4-20250514" || seen[0].APIKey != "sk-ant-test-secret" {
		t.Fatalf("claude saw %+v; want the count_tokens request with its upstream model and key", seen)
	}

	body = []byte(`{"model":"gpt-4o","system":"Be brief.","messages":[{"role":"user","content":"Count these tokens, please."}]}`)
	resp, out = post(t, "/v1/messages/count_tokens", body, "Anthropic-Version", "2023-06-01")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("count_tokens on a Chat model: %d %s", resp.StatusCode, out)
	}
	var count struct {
		InputTokens int `json:"input_tokens"`
	}
	if err := json.Unmarshal(out, &count); err != nil {
		t.Fatalf("estimate %s: %v", out, err)
	}
	// "Be brief." and the message text: 9 + 27 characters, 4 a token
	if count.InputTokens != (9+27)/4 {
		t.Errorf("estimate %d tokens, want %d", count.InputTokens, (9+27)/4)
	}
	if n := f.gpt.count(); n != 0 {
		t.Errorf("the Chat model got %d requests for an estimate, want none", n)
	}
}

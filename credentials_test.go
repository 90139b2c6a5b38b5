package llmaffinity

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestSetCredential(t *testing.T) {
	client := http.Header{
		"Authorization": {"Basic Z2F0ZXdheTpwdw=="},
		"X-Api-Key":     {"client-key"},
		"Api-Key":       {"azure-key"},
		"Cookie":        {"session=gateway"},
	}
	tests := []struct {
		name    string
		model   *Model
		forward bool
		client  http.Header
		want    http.Header
	}{
		{name: "openai key", model: &Model{Provider: ProviderOpenAI, apiKey: "sk-openai"}, client: client,
			want: http.Header{"Authorization": {"Bearer sk-openai"}}},
		{name: "anthropic key", model: &Model{Provider: ProviderAnthropic, apiKey: "sk-ant"}, client: client,
			want: http.Header{"X-Api-Key": {"sk-ant"}}},
		{name: "a key replaces the client's even when forwarding", model: &Model{Provider: ProviderOpenAI, apiKey: "sk-openai"},
			forward: true, client: client, want: http.Header{"Authorization": {"Bearer sk-openai"}}},
		{name: "no key, not forwarding: nothing", model: &Model{Provider: ProviderAnthropic}, client: client,
			want: http.Header{}},
		{name: "no key, forwarding: the client's credentials", model: &Model{Provider: ProviderAnthropic},
			forward: true, client: client, want: client},
		{name: "no key, forwarding, client sent only a bearer", model: &Model{Provider: ProviderOpenAI}, forward: true,
			client: http.Header{"Authorization": {"Bearer client-token"}},
			want:   http.Header{"Authorization": {"Bearer client-token"}}},
		{name: "no key, forwarding, client sent nothing", model: &Model{Provider: ProviderOpenAI}, forward: true,
			client: http.Header{}, want: http.Header{}},
		{name: "no key, forwarding, two values", model: &Model{}, forward: true,
			client: http.Header{"Authorization": {"Bearer a", "Bearer b"}},
			want:   http.Header{"Authorization": {"Bearer a", "Bearer b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{forwardClientAuth: tt.forward}
			header := tt.client.Clone()
			header.Set("Content-Type", "application/json")
			creds := takeClientCredentials(header)
			// as on a failover: the previous attempt set another model's key
			header.Set("Authorization", "Bearer previous")
			header.Set("X-Api-Key", "previous")
			h.setCredential(header, tt.model, &creds)
			want := tt.want.Clone()
			want.Set("Content-Type", "application/json")
			if !reflect.DeepEqual(header, want) {
				t.Errorf("header = %v, want %v", header, want)
			}
		})
	}
}

// Failing over from a keyed model to one without a key gives the second the
// client's credentials (when forwarded), not the first model's key.
func TestSetCredentialAcrossAttempts(t *testing.T) {
	h := &Handler{forwardClientAuth: true}
	r := httptest.NewRequest(http.MethodPost, "/v1/messages", nil)
	r.Header.Set("X-Api-Key", "client-key")
	client := takeClientCredentials(r.Header)

	h.setCredential(r.Header, &Model{Provider: ProviderAnthropic, apiKey: "sk-ant"}, &client)
	if got := r.Header.Get("X-Api-Key"); got != "sk-ant" {
		t.Fatalf("first attempt X-Api-Key = %q, want sk-ant", got)
	}
	h.setCredential(r.Header, &Model{Provider: ProviderOpenAI, apiKey: "sk-openai"}, &client)
	if got := r.Header.Values("X-Api-Key"); len(got) != 0 {
		t.Errorf("second attempt still sends X-Api-Key %v", got)
	}
	h.setCredential(r.Header, &Model{Provider: ProviderAnthropic}, &client)
	if got := r.Header.Values("X-Api-Key"); !reflect.DeepEqual(got, []string{"client-key"}) {
		t.Errorf("third attempt X-Api-Key = %v, want the client's", got)
	}
	if got := r.Header.Values("Authorization"); len(got) != 0 {
		t.Errorf("third attempt Authorization = %v, want none", got)
	}
}

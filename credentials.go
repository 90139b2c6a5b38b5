package llmaffinity

import "net/http"

// credentialHeaders are the request headers that carry a client's
// credentials: the OpenAI and Anthropic keys, Azure's api-key, and the
// gateway's own Basic password, bearer token or session cookie, none of
// which may reach a provider unless the operator says so.
var credentialHeaders = [...]string{"Authorization", "X-Api-Key", "Api-Key", "Cookie"}

// clientCredentials are the values of credentialHeaders as the client sent
// them, taken once so that every attempt starts from them.
type clientCredentials [len(credentialHeaders)][]string

// takeClientCredentials removes the client's credentials from header and
// returns them.
func takeClientCredentials(header http.Header) clientCredentials {
	var creds clientCredentials
	for i, name := range credentialHeaders {
		creds[i] = header[name]
		delete(header, name)
	}
	return creds
}

// setCredential makes header carry the serving model's credential, the
// model's way: its api_key when it has one, else the client's own
// credentials when the handler forwards them, else none.
func (h *Handler) setCredential(header http.Header, m *Model, client *clientCredentials) {
	for _, name := range credentialHeaders {
		delete(header, name)
	}
	switch {
	case m.apiKey == "":
		if h.forwardClientAuth {
			for i, name := range credentialHeaders {
				if len(client[i]) > 0 {
					header[name] = client[i]
				}
			}
		}
	case m.Provider == ProviderAnthropic:
		header.Set("X-Api-Key", m.apiKey)
	default:
		header.Set("Authorization", "Bearer "+m.apiKey)
	}
}

// stripAffinityHeaders removes the affinity and mode headers when the
// handler is configured to (strip_header, on by default).
func (h *Handler) stripAffinityHeaders(header http.Header) {
	if h.stripHeader {
		header.Del(h.Header)
		header.Del(HeaderMode)
	}
}

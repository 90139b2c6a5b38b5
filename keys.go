package llmaffinity

import (
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// processSalt salts implicit keys when no implicit_salt is configured. It is
// random per process: implicit pins survive config reloads, not restarts.
var processSalt = cryptorand.Text()

// optOutValue, as the affinity header's value or in X-Model-Affinity-Mode,
// routes a request fresh and writes no pin.
const optOutValue = "off"

// affinityKey returns the request's affinity key ("" when it has none) and
// whether the request opted out of affinity.
func (h *Handler) affinityKey(r *http.Request) (key string, optOut bool, err error) {
	if strings.EqualFold(r.Header.Get(HeaderMode), optOutValue) {
		return "", true, nil
	}
	values := r.Header.Values(h.Header)
	switch len(values) {
	case 0:
		return h.harnessKey(r.Header), false, nil
	case 1:
		if strings.EqualFold(values[0], optOutValue) {
			return "", true, nil
		}
		if err := affinity.ValidateKey(values[0]); err != nil {
			return "", false, fmt.Errorf("invalid %s header: %v", h.Header, err)
		}
		return values[0], false, nil
	default:
		return "", false, fmt.Errorf("more than one %s header", h.Header)
	}
}

// harnessKey is the session id an agent harness sent in one of the session
// headers, the first that holds a valid key; "" for none. A value that is
// not a valid key is passed over, not refused: the client did not choose it.
func (h *Handler) harnessKey(header http.Header) string {
	for _, name := range h.sessionHeaders {
		if v := header.Get(name); v != "" && affinity.ValidateKey(v) == nil {
			return v
		}
	}
	return ""
}

// implicitKey derives a session key from what stays the same across an
// agent's turns: the system prompt, the tool names and the first user
// message. It is a salted hash, so a stored key reveals no prompt content.
func (h *Handler) implicitKey(req *llmapi.Summary) string {
	sum := sha256.New()
	for _, part := range []string{h.implicitSalt, req.System, strings.Join(req.ToolNames, "\x00"), req.FirstUserText} {
		sum.Write([]byte(part))
		sum.Write([]byte{0xff}) // cannot occur in UTF-8 text: parts stay apart
	}
	return "implicit:" + hex.EncodeToString(sum.Sum(nil)[:16])
}

// scopeOf evaluates the scope placeholder for a request and hashes it, so
// pin keys hold no tenant credentials.
func (h *Handler) scopeOf(r *http.Request) string {
	if h.Scope == "" {
		return ""
	}
	value := h.Scope
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		value = repl.ReplaceAll(h.Scope, "")
	}
	return hashScope(value)
}

// hashScope is how a tenant scope value appears in pin keys.
func hashScope(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:16])
}

// hashKey is how an affinity key appears in logs: a short SHA-256 prefix.
func hashKey(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// fnv1a is the 64-bit FNV-1a hash of s: fast, unseeded, the same in every
// process (pinHash, the selection policy's replica addresses).
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

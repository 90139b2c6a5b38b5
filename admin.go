package llmaffinity

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminSampleSize is how many pins a store listing shows.
const adminSampleSize = 20

// adminAPI serves the pin stores on Caddy's admin endpoint:
//
//	GET    /llm_affinity/                      every store: name and pin count
//	GET    /llm_affinity/<name>                count and a sample of pins
//	GET    /llm_affinity/<name>/pin?key=K&model=M[&scope=S]   one pin
//	DELETE /llm_affinity/<name>/pin?key=K&model=M[&scope=S]   delete one pin
//	DELETE /llm_affinity/<name>                flush every pin (shared store too)
//
// model is the model the client asked for; scope is the scope placeholder's
// value for that tenant, when the handler has a scope. A pin shown comes
// with this instance's stats of its session (adminStats).
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.llm_affinity",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the admin routes.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/llm_affinity/", Handler: caddy.AdminHandlerFunc(serveAdmin)}}
}

// adminPin is a pin as the admin API shows it.
type adminPin struct {
	Key   string `json:"key"`
	Model string `json:"requested_model"`
	Scope string `json:"scope,omitempty"` // hashed
	Pin   struct {
		Model string `json:"model"`
		Route string `json:"route,omitempty"`
	} `json:"pin"`
	// Stats are left out when this instance does not keep the pin locally.
	Stats *adminStats `json:"stats,omitempty"`
}

// adminStats are what this instance saw of a pinned session since it first
// had the pin (affinity.SessionStats): per instance, so with a shared store
// each instance shows its own, and started afresh when the session is
// pinned to another model. Times are RFC 3339, UTC, to the second.
type adminStats struct {
	Created time.Time `json:"created"`
	// LastUsed is when the last turn was recorded; null before the first.
	LastUsed *time.Time `json:"last_used"`
	Turns    int64      `json:"turns"`
	// InputTokens counts every input token, the cached ones included;
	// CachedTokens those read from the provider's prompt cache.
	InputTokens  int64 `json:"input_tokens"`
	CachedTokens int64 `json:"cached_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	// CacheHitRatio is CachedTokens / InputTokens to 4 decimal places: is
	// the session's prompt cache warm? null while InputTokens is 0.
	CacheHitRatio *float64 `json:"cache_hit_ratio"`
}

func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/llm_affinity/"), "/")
	name, sub, _ := strings.Cut(rest, "/")
	if name == "" {
		if r.Method != http.MethodGet {
			return adminError(http.StatusMethodNotAllowed, "method not allowed")
		}
		stores := map[string]int{}
		pinStores.Range(func(key, value any) bool {
			stores[key.(string)] = value.(*pooledStore).Len()
			return true
		})
		return writeAdminJSON(w, map[string]any{"stores": stores})
	}
	store := lookupStore(name)
	if store == nil {
		return adminError(http.StatusNotFound, fmt.Sprintf("no pin store named %q", name))
	}
	switch {
	case sub == "" && r.Method == http.MethodGet:
		sample := make([]adminPin, 0, adminSampleSize)
		for key, sess := range store.Sessions() {
			if len(sample) == adminSampleSize {
				break
			}
			sample = append(sample, describePin(key, sess.Pin, &sess.Stats))
		}
		return writeAdminJSON(w, map[string]any{"name": name, "count": store.Len(), "sample": sample})
	case sub == "" && r.Method == http.MethodDelete:
		if err := store.Flush(r.Context()); err != nil {
			return adminError(http.StatusBadGateway, "flushed memory, but the shared store failed: "+err.Error())
		}
		return writeAdminJSON(w, map[string]any{"flushed": name})
	case sub == "":
		return adminError(http.StatusMethodNotAllowed, "method not allowed: use GET or DELETE")
	case sub == "pin":
		q := r.URL.Query()
		key := q.Get("key")
		if err := affinity.ValidateKey(key); err != nil {
			return adminError(http.StatusBadRequest, "key: "+err.Error())
		}
		scope := ""
		if q.Has("scope") {
			scope = hashScope(q.Get("scope"))
		}
		pinKey := affinity.PinKey(scope, key, q.Get("model"))
		switch r.Method {
		case http.MethodGet:
			pin, ok := store.Get(r.Context(), pinKey) // as a request would: refreshed, or loaded from the shared store
			if !ok {
				return adminError(http.StatusNotFound, "no such pin")
			}
			var stats *affinity.SessionStats
			if sess, ok := store.Session(pinKey); ok {
				pin, stats = sess.Pin, &sess.Stats
			}
			return writeAdminJSON(w, describePin(pinKey, pin, stats))
		case http.MethodDelete:
			store.Delete(r.Context(), pinKey)
			return writeAdminJSON(w, map[string]any{"deleted": true})
		}
		return adminError(http.StatusMethodNotAllowed, "method not allowed")
	}
	return adminError(http.StatusNotFound, "unknown path; see GET /llm_affinity/")
}

// lookupStore finds a pooled store by name.
func lookupStore(name string) *pooledStore {
	var found *pooledStore
	pinStores.Range(func(key, value any) bool {
		if key.(string) == name {
			found = value.(*pooledStore)
			return false
		}
		return true
	})
	return found
}

// describePin shows a pin with the parts of its key, and its session's
// stats when there are (stats nil: none).
func describePin(pinKey string, pin affinity.Pin, stats *affinity.SessionStats) adminPin {
	var out adminPin
	out.Scope, out.Key, out.Model, _ = affinity.SplitPinKey(pinKey)
	out.Pin.Model, out.Pin.Route = pin.Model, pin.Route
	if stats != nil {
		out.Stats = describeStats(*stats)
	}
	return out
}

func describeStats(st affinity.SessionStats) *adminStats {
	out := &adminStats{
		Created: st.Created.UTC(), Turns: st.Turns,
		InputTokens: st.InputTokens, CachedTokens: st.CacheReadTokens, OutputTokens: st.OutputTokens,
	}
	if !st.LastUsed.IsZero() {
		lastUsed := st.LastUsed.UTC()
		out.LastUsed = &lastUsed
	}
	if ratio, ok := st.CacheHitRatio(); ok {
		ratio = math.Round(ratio*1e4) / 1e4
		out.CacheHitRatio = &ratio
	}
	return out
}

func writeAdminJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

func adminError(status int, msg string) error {
	return caddy.APIError{HTTPStatus: status, Err: errors.New(msg)}
}

// Interface guard
var _ caddy.AdminRouter = adminAPI{}

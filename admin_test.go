package llmaffinity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
)

func TestDescribePin(t *testing.T) {
	pin := affinity.Pin{Model: "big", Route: "code"}
	tests := []struct {
		name   string
		pinKey string
		pin    affinity.Pin
		want   adminPin
	}{
		{name: "unscoped", pinKey: affinity.PinKey("", "session-1", "gpt-4o"), pin: pin,
			want: mkAdminPin("", "session-1", "gpt-4o", "big", "code")},
		{name: "scoped", pinKey: affinity.PinKey(hashScope("tenant-a"), "session-1", "gpt-4o"), pin: pin,
			want: mkAdminPin(hashScope("tenant-a"), "session-1", "gpt-4o", "big", "code")},
		{name: "no requested model, no route", pinKey: affinity.PinKey("", "k", ""), pin: affinity.Pin{Model: "small"},
			want: mkAdminPin("", "k", "", "small", "")},
		{name: "requested model with a NUL", pinKey: affinity.PinKey("s", "k", "a\x00b"), pin: pin,
			want: mkAdminPin("s", "k", "a\x00b", "big", "code")},
		{name: "key with spaces and punctuation", pinKey: affinity.PinKey("", " a:b/c ", "m"), pin: pin,
			want: mkAdminPin("", " a:b/c ", "m", "big", "code")},
		{name: "not a pin key", pinKey: "just-a-key", pin: pin,
			want: mkAdminPin("", "", "", "big", "code")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describePin(tt.pinKey, tt.pin, nil); got != tt.want {
				t.Errorf("describePin(%q) = %+v, want %+v", tt.pinKey, got, tt.want)
			}
		})
	}

	// the JSON shape: scope, route and stats are left out when empty
	b, err := json.Marshal(describePin(affinity.PinKey("", "k", "m"), affinity.Pin{Model: "a"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"key":"k","requested_model":"m","pin":{"model":"a"}}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

// The stats' JSON: RFC 3339 times in UTC, the counts, the cache hit ratio
// to 4 places; last_used and the ratio null before a turn and an input
// token.
func TestDescribePinStats(t *testing.T) {
	created := time.Date(2026, 12, 3, 15, 4, 5, 0, time.FixedZone("CET", 3600))
	pin := affinity.Pin{Model: "big", Route: "code"}
	tests := []struct {
		name  string
		stats affinity.SessionStats
		want  string
	}{
		{name: "no turn yet", stats: affinity.SessionStats{Created: created},
			want: `"stats":{"created":"2026-12-03T14:04:05Z","last_used":null,"turns":0,"input_tokens":0,"cached_tokens":0,"output_tokens":0,"cache_hit_ratio":null}`},
		{name: "turns", stats: affinity.SessionStats{Created: created, LastUsed: created.Add(90 * time.Second), Turns: 3,
			InputTokens: 36000, CacheReadTokens: 33000, OutputTokens: 900},
			want: `"stats":{"created":"2026-12-03T14:04:05Z","last_used":"2026-12-03T14:05:35Z","turns":3,"input_tokens":36000,"cached_tokens":33000,"output_tokens":900,"cache_hit_ratio":0.9167}`},
		{name: "a turn without input", stats: affinity.SessionStats{Created: created, LastUsed: created, Turns: 1, OutputTokens: 5},
			want: `"stats":{"created":"2026-12-03T14:04:05Z","last_used":"2026-12-03T14:04:05Z","turns":1,"input_tokens":0,"cached_tokens":0,"output_tokens":5,"cache_hit_ratio":null}`},
		{name: "cold", stats: affinity.SessionStats{Created: created, LastUsed: created, Turns: 1, InputTokens: 1200},
			want: `"stats":{"created":"2026-12-03T14:04:05Z","last_used":"2026-12-03T14:04:05Z","turns":1,"input_tokens":1200,"cached_tokens":0,"output_tokens":0,"cache_hit_ratio":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(describePin(affinity.PinKey("", "k", "m"), pin, &tt.stats))
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"key":"k","requested_model":"m","pin":{"model":"big","route":"code"},` + tt.want + `}`; string(b) != want {
				t.Errorf("JSON =\n%s\nwant\n%s", b, want)
			}
		})
	}
}

func mkAdminPin(scope, key, model, pinModel, pinRoute string) adminPin {
	var p adminPin
	p.Scope, p.Key, p.Model = scope, key, model
	p.Pin.Model, p.Pin.Route = pinModel, pinRoute
	return p
}

func withoutStats(p adminPin) adminPin {
	p.Stats = nil
	return p
}

// admStore puts a fresh store named name in the pool for the test.
func admStore(t *testing.T, name string) *pooledStore {
	t.Helper()
	if lookupStore(name) != nil {
		t.Fatalf("the pool already has a store named %q", name)
	}
	p, err := loadPinStore(name, &storeSettings{ttl: time.Hour, maxEntries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pinStores.Delete(name); err != nil {
			t.Errorf("deleting store %q: %v", name, err)
		}
	})
	return p
}

// admDo calls serveAdmin and returns the recorder and the error.
func admDo(t *testing.T, method, target string) (*httptest.ResponseRecorder, error) {
	t.Helper()
	w := httptest.NewRecorder()
	err := serveAdmin(w, httptest.NewRequest(method, target, nil))
	return w, err
}

// admJSON calls serveAdmin, requires success, and decodes the body.
func admJSON(t *testing.T, method, target string, v any) {
	t.Helper()
	w, err := admDo(t, method, target)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, target, ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("%s %s: decoding %q: %v", method, target, w.Body.String(), err)
	}
}

// admStatus requires serveAdmin to fail with a caddy.APIError of status.
func admStatus(t *testing.T, method, target string, status int) {
	t.Helper()
	w, err := admDo(t, method, target)
	if err == nil {
		t.Errorf("%s %s succeeded (%d %q), want status %d", method, target, w.Code, w.Body.String(), status)
		return
	}
	var apiErr caddy.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("%s %s: error %T %v is not a caddy.APIError", method, target, err, err)
		return
	}
	if apiErr.HTTPStatus != status {
		t.Errorf("%s %s: status %d (%v), want %d", method, target, apiErr.HTTPStatus, err, status)
	}
	if w.Body.Len() != 0 {
		t.Errorf("%s %s: wrote %q along with the error", method, target, w.Body.String())
	}
}

func pinPath(name string, q url.Values) string {
	return "/llm_affinity/" + name + "/pin?" + q.Encode()
}

func TestServeAdmin(t *testing.T) {
	const name = "adm-test"
	ctx := context.Background()
	store := admStore(t, name)
	other := admStore(t, "adm-test-other")

	scoped := affinity.PinKey(hashScope("tenant-a"), "session-1", "gpt-4o")
	unscoped := affinity.PinKey("", "session-1", "gpt-4o")
	store.Set(ctx, scoped, affinity.Pin{Model: "big", Route: "code"})
	store.Set(ctx, unscoped, affinity.Pin{Model: "small"})
	for i := 0; i < 28; i++ {
		store.Set(ctx, affinity.PinKey("", fmt.Sprintf("bulk-%d", i), "m"), affinity.Pin{Model: "small", Route: "chat"})
	}
	other.Set(ctx, unscoped, affinity.Pin{Model: "other"})

	t.Run("list", func(t *testing.T) {
		var got struct {
			Stores map[string]int `json:"stores"`
		}
		admJSON(t, http.MethodGet, "/llm_affinity/", &got)
		if got.Stores[name] != 30 || got.Stores["adm-test-other"] != 1 {
			t.Errorf("stores = %v, want %s: 30 and adm-test-other: 1", got.Stores, name)
		}
	})

	t.Run("list with extra slashes", func(t *testing.T) {
		var got map[string]any
		admJSON(t, http.MethodGet, "/llm_affinity//", &got)
		if _, ok := got["stores"]; !ok {
			t.Errorf("GET /llm_affinity// = %v, want the list", got)
		}
	})

	t.Run("get sample", func(t *testing.T) {
		var got struct {
			Name   string     `json:"name"`
			Count  int        `json:"count"`
			Sample []adminPin `json:"sample"`
		}
		admJSON(t, http.MethodGet, "/llm_affinity/"+name, &got)
		if got.Name != name || got.Count != 30 {
			t.Errorf("name %q count %d, want %q 30", got.Name, got.Count, name)
		}
		if len(got.Sample) != adminSampleSize {
			t.Fatalf("sample has %d pins, want %d", len(got.Sample), adminSampleSize)
		}
		seen := map[string]bool{}
		for _, p := range got.Sample {
			pinKey := affinity.PinKey(p.Scope, p.Key, p.Model)
			if seen[pinKey] {
				t.Errorf("pin %+v listed twice", p)
			}
			seen[pinKey] = true
			if p.Stats == nil || p.Stats.Created.IsZero() || p.Stats.Turns != 0 || p.Stats.LastUsed != nil {
				t.Errorf("sample pin %+v: stats %+v, want a creation time and no turn", p, p.Stats)
			}
			want, ok := store.Get(ctx, affinity.PinKey(p.Scope, p.Key, p.Model))
			if !ok || want.Model != p.Pin.Model || want.Route != p.Pin.Route {
				t.Errorf("sample pin %+v does not match the store's %+v, %v", p, want, ok)
			}
		}

		// a trailing slash is the same
		var again struct {
			Name string `json:"name"`
		}
		admJSON(t, http.MethodGet, "/llm_affinity/"+name+"/", &again)
		if again.Name != name {
			t.Errorf("GET with a trailing slash: name %q, want %q", again.Name, name)
		}
	})

	t.Run("get one pin", func(t *testing.T) {
		var got adminPin
		admJSON(t, http.MethodGet, pinPath(name, url.Values{"key": {"session-1"}, "model": {"gpt-4o"}, "scope": {"tenant-a"}}), &got)
		if want := mkAdminPin(hashScope("tenant-a"), "session-1", "gpt-4o", "big", "code"); withoutStats(got) != want {
			t.Errorf("scoped pin = %+v, want %+v", got, want)
		}
		if got.Stats == nil {
			t.Errorf("scoped pin has no stats")
		}
		got = adminPin{} // scope and route are omitted when empty
		admJSON(t, http.MethodGet, pinPath(name, url.Values{"key": {"session-1"}, "model": {"gpt-4o"}}), &got)
		if want := mkAdminPin("", "session-1", "gpt-4o", "small", ""); withoutStats(got) != want {
			t.Errorf("unscoped pin = %+v, want %+v", got, want)
		}
		// an empty scope is a scope: the hash of ""
		admStatus(t, http.MethodGet, pinPath(name, url.Values{"key": {"session-1"}, "model": {"gpt-4o"}, "scope": {""}}), http.StatusNotFound)
		admStatus(t, http.MethodGet, pinPath(name, url.Values{"key": {"session-1"}, "model": {"gpt-4o"}, "scope": {"tenant-b"}}), http.StatusNotFound)
		admStatus(t, http.MethodGet, pinPath(name, url.Values{"key": {"session-1"}, "model": {"gpt-4o-mini"}}), http.StatusNotFound)
		admStatus(t, http.MethodGet, pinPath(name, url.Values{"key": {"session-1"}}), http.StatusNotFound)
		admStatus(t, http.MethodGet, pinPath(name, url.Values{"key": {"no-such-session"}, "model": {"gpt-4o"}}), http.StatusNotFound)
	})

	t.Run("bad key", func(t *testing.T) {
		for _, q := range []url.Values{
			{"model": {"gpt-4o"}},
			{"key": {""}, "model": {"gpt-4o"}},
			{"key": {"a\tb"}, "model": {"gpt-4o"}},
			{"key": {"caf\u00e9"}},
			{"key": {strings.Repeat("k", affinity.MaxKeyLen+1)}},
		} {
			admStatus(t, http.MethodGet, pinPath(name, q), http.StatusBadRequest)
			admStatus(t, http.MethodDelete, pinPath(name, q), http.StatusBadRequest)
		}
		_, err := admDo(t, http.MethodGet, pinPath(name, url.Values{"key": {"secret-token\t"}}))
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("bad key error = %v; want an error that does not quote the key", err)
		}
	})

	t.Run("delete one pin", func(t *testing.T) {
		q := url.Values{"key": {"session-1"}, "model": {"gpt-4o"}, "scope": {"tenant-a"}}
		var got map[string]any
		admJSON(t, http.MethodDelete, pinPath(name, q), &got)
		if !reflect.DeepEqual(got, map[string]any{"deleted": true}) {
			t.Errorf("DELETE = %v, want {deleted: true}", got)
		}
		if p, ok := store.Get(ctx, scoped); ok {
			t.Errorf("the pin is still there: %+v", p)
		}
		admStatus(t, http.MethodGet, pinPath(name, q), http.StatusNotFound)
		if _, ok := store.Get(ctx, unscoped); !ok {
			t.Errorf("deleting the scoped pin deleted the unscoped one")
		}
		if _, ok := other.Get(ctx, unscoped); !ok {
			t.Errorf("deleting in %s deleted in another store", name)
		}
		// deleting a missing pin is fine
		admJSON(t, http.MethodDelete, pinPath(name, q), &got)
	})

	t.Run("wrong methods", func(t *testing.T) {
		q := url.Values{"key": {"session-1"}, "model": {"gpt-4o"}}
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch} {
			admStatus(t, method, "/llm_affinity/", http.StatusMethodNotAllowed)
			admStatus(t, method, pinPath(name, q), http.StatusMethodNotAllowed)
		}
		admStatus(t, http.MethodDelete, "/llm_affinity/", http.StatusMethodNotAllowed)
		if _, ok := store.Get(ctx, unscoped); !ok {
			t.Errorf("a rejected method changed the store")
		}
	})

	// /llm_affinity/<name> exists (GET lists it, DELETE flushes it): another
	// method is not allowed there, not an unknown path
	t.Run("wrong methods on a store", func(t *testing.T) {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch} {
			admStatus(t, method, "/llm_affinity/"+name, http.StatusMethodNotAllowed)
		}
		if _, ok := store.Get(ctx, unscoped); !ok {
			t.Errorf("a rejected method changed the store")
		}
	})

	t.Run("unknown store or path", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			admStatus(t, method, "/llm_affinity/no-such-store", http.StatusNotFound)
			admStatus(t, method, pinPath("no-such-store", url.Values{"key": {"k"}}), http.StatusNotFound)
		}
		admStatus(t, http.MethodGet, "/llm_affinity/"+name+"/pins", http.StatusNotFound)
		admStatus(t, http.MethodGet, "/llm_affinity/"+name+"/pin/extra?key=k", http.StatusNotFound)
		// a prefix of a name is not the name
		admStatus(t, http.MethodGet, "/llm_affinity/adm-tes", http.StatusNotFound)
	})

	t.Run("flush", func(t *testing.T) {
		var got map[string]any
		admJSON(t, http.MethodDelete, "/llm_affinity/"+name, &got)
		if !reflect.DeepEqual(got, map[string]any{"flushed": name}) {
			t.Errorf("DELETE = %v, want {flushed: %s}", got, name)
		}
		if n := store.Len(); n != 0 {
			t.Errorf("Len after flush = %d, want 0", n)
		}
		if _, ok := store.Get(ctx, unscoped); ok {
			t.Errorf("a pin survived the flush")
		}
		if _, ok := other.Get(ctx, unscoped); !ok {
			t.Errorf("flushing %s flushed another store", name)
		}
		var list struct {
			Stores map[string]int `json:"stores"`
		}
		admJSON(t, http.MethodGet, "/llm_affinity/", &list)
		if n, ok := list.Stores[name]; !ok || n != 0 {
			t.Errorf("after the flush the list says %s: %d, %v; want 0, listed", name, n, ok)
		}
	})
}

// failingShared is a shared store whose every call fails.
type failingShared struct{ closed atomic.Int32 }

var errAdmShared = errors.New("redis is down")

func (*failingShared) Get(context.Context, string) (affinity.Pin, bool, error) {
	return affinity.Pin{}, false, errAdmShared
}

func (*failingShared) SetIfAbsent(_ context.Context, _ string, pin affinity.Pin, _ time.Duration) (affinity.Pin, error) {
	return pin, errAdmShared
}

func (*failingShared) Set(context.Context, string, affinity.Pin, time.Duration) error {
	return errAdmShared
}

func (*failingShared) Refresh(_ context.Context, _ string, pin affinity.Pin, _ time.Duration) (affinity.Pin, error) {
	return pin, errAdmShared
}

func (*failingShared) Delete(context.Context, string) error { return errAdmShared }
func (*failingShared) Flush(context.Context) error          { return errAdmShared }
func (f *failingShared) Close() error                       { f.closed.Add(1); return nil }

// A flush whose shared part fails says so (502) after flushing memory; a
// failing shared store does not fail the other calls.
func TestServeAdminSharedStoreDown(t *testing.T) {
	const name = "adm-test-down"
	ctx := context.Background()
	store := admStore(t, name)
	store.Share(new(failingShared), time.Second)
	key := affinity.PinKey("", "session-1", "m")
	store.Set(ctx, key, affinity.Pin{Model: "a"})

	var got adminPin
	admJSON(t, http.MethodGet, pinPath(name, url.Values{"key": {"session-1"}, "model": {"m"}}), &got)
	if got.Pin.Model != "a" {
		t.Errorf("pin = %+v, want model a", got)
	}
	admStatus(t, http.MethodDelete, "/llm_affinity/"+name, http.StatusBadGateway)
	_, err := admDo(t, http.MethodDelete, "/llm_affinity/"+name)
	if err == nil || !strings.Contains(err.Error(), errAdmShared.Error()) {
		t.Errorf("flush error = %v, want it to carry the shared store's error", err)
	}
	if _, ok := store.Get(ctx, key); ok {
		t.Errorf("memory was not flushed")
	}
	var deleted map[string]any
	admJSON(t, http.MethodDelete, pinPath(name, url.Values{"key": {"session-1"}, "model": {"m"}}), &deleted)
}

// sharedPins is a shared store holding fixed pins, for a pin this instance
// loads from it.
type sharedPins struct{ pins map[string]affinity.Pin }

func (s sharedPins) Get(_ context.Context, key string) (affinity.Pin, bool, error) {
	pin, ok := s.pins[key]
	return pin, ok, nil
}

func (s sharedPins) SetIfAbsent(_ context.Context, _ string, pin affinity.Pin, _ time.Duration) (affinity.Pin, error) {
	return pin, nil
}

func (sharedPins) Set(context.Context, string, affinity.Pin, time.Duration) error { return nil }

func (s sharedPins) Refresh(_ context.Context, _ string, pin affinity.Pin, _ time.Duration) (affinity.Pin, error) {
	return pin, nil
}

func (sharedPins) Delete(context.Context, string) error { return nil }
func (sharedPins) Flush(context.Context) error          { return nil }
func (sharedPins) Close() error                         { return nil }

// The pin view and the sample show the session's stats as RecordTurn
// counted them; a re-pin to another model starts them afresh; a pin loaded
// from the shared store has fresh stats on this instance.
func TestServeAdminSessionStats(t *testing.T) {
	const name = "adm-test-stats"
	ctx := context.Background()
	store := admStore(t, name)
	q := url.Values{"key": {"session-1"}, "model": {"gpt-4o"}, "scope": {"tenant-a"}}
	pinKey := affinity.PinKey(hashScope("tenant-a"), "session-1", "gpt-4o")

	before := time.Now().Truncate(time.Second)
	store.Set(ctx, pinKey, affinity.Pin{Model: "big", Route: "code"})
	store.RecordTurn(pinKey, 12000, 0, 300)
	store.RecordTurn(pinKey, 12500, 11800, 250)
	store.RecordTurn(affinity.PinKey("", "session-1", "gpt-4o"), 1, 1, 1) // another pin key: not this session
	after := time.Now()

	check := func(what string, st *adminStats, turns, in, cached, out int64, ratio float64) {
		t.Helper()
		if st == nil {
			t.Fatalf("%s: no stats", what)
		}
		if st.Created.Before(before) || st.Created.After(after) || st.Created.Location() != time.UTC {
			t.Errorf("%s: created %v, want UTC between %v and %v", what, st.Created, before, after)
		}
		if turns == 0 && st.LastUsed != nil {
			t.Errorf("%s: last_used %v before any turn", what, *st.LastUsed)
		}
		if turns > 0 && (st.LastUsed == nil || st.LastUsed.Before(st.Created) || st.LastUsed.After(after)) {
			t.Errorf("%s: last_used %v, want between created %v and %v", what, st.LastUsed, st.Created, after)
		}
		if st.Turns != turns || st.InputTokens != in || st.CachedTokens != cached || st.OutputTokens != out {
			t.Errorf("%s: %d turns, %d in, %d cached, %d out; want %d, %d, %d, %d",
				what, st.Turns, st.InputTokens, st.CachedTokens, st.OutputTokens, turns, in, cached, out)
		}
		switch {
		case ratio < 0 && st.CacheHitRatio != nil:
			t.Errorf("%s: cache_hit_ratio %v, want null", what, *st.CacheHitRatio)
		case ratio >= 0 && (st.CacheHitRatio == nil || *st.CacheHitRatio != ratio):
			t.Errorf("%s: cache_hit_ratio %v, want %v", what, st.CacheHitRatio, ratio)
		}
	}

	var view adminPin
	admJSON(t, http.MethodGet, pinPath(name, q), &view)
	check("the pin view", view.Stats, 2, 24500, 11800, 550, 0.4816)
	if view.Pin.Model != "big" || view.Pin.Route != "code" {
		t.Errorf("the pin view's pin = %+v, want big by code", view.Pin)
	}

	// the field names, as a client without this package's types reads them
	w, err := admDo(t, http.MethodGet, pinPath(name, q))
	if err != nil {
		t.Fatal(err)
	}
	var fields struct {
		Stats map[string]any `json:"stats"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &fields); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"created", "last_used", "turns", "input_tokens", "cached_tokens", "output_tokens", "cache_hit_ratio"} {
		if _, ok := fields.Stats[f]; !ok {
			t.Errorf("the pin view's stats have no %q: %s", f, w.Body.String())
		}
	}
	if _, err := time.Parse(time.RFC3339, fields.Stats["created"].(string)); err != nil {
		t.Errorf("created is not RFC 3339: %v", err)
	}

	var list struct {
		Sample []adminPin `json:"sample"`
	}
	admJSON(t, http.MethodGet, "/llm_affinity/"+name, &list)
	found := false
	for _, p := range list.Sample {
		if p.Key == "session-1" && p.Scope == hashScope("tenant-a") {
			found = true
			check("the sample", p.Stats, 2, 24500, 11800, 550, 0.4816)
		}
	}
	if !found {
		t.Errorf("the sample %+v lacks the session", list.Sample)
	}

	// the same model on another route keeps them; another model starts afresh
	store.Set(ctx, pinKey, affinity.Pin{Model: "big", Route: "chat"})
	view = adminPin{}
	admJSON(t, http.MethodGet, pinPath(name, q), &view)
	check("the same model", view.Stats, 2, 24500, 11800, 550, 0.4816)
	store.Set(ctx, pinKey, affinity.Pin{Model: "small", Route: "chat"})
	view = adminPin{}
	admJSON(t, http.MethodGet, pinPath(name, q), &view)
	check("re-pinned", view.Stats, 0, 0, 0, 0, -1)

	// a pin this instance has only in the shared store: the view loads it,
	// with fresh stats
	loaded := affinity.PinKey("", "from-redis", "gpt-4o")
	store.Share(sharedPins{pins: map[string]affinity.Pin{loaded: {Model: "big"}}}, time.Second)
	view = adminPin{}
	admJSON(t, http.MethodGet, pinPath(name, url.Values{"key": {"from-redis"}, "model": {"gpt-4o"}}), &view)
	if view.Pin.Model != "big" {
		t.Errorf("the shared pin's view = %+v, want model big", view)
	}
	after = time.Now()
	check("loaded from the shared store", view.Stats, 0, 0, 0, 0, -1)
}

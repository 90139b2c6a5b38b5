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
			if got := describePin(tt.pinKey, tt.pin); got != tt.want {
				t.Errorf("describePin(%q) = %+v, want %+v", tt.pinKey, got, tt.want)
			}
		})
	}

	// the JSON shape: scope and route are left out when empty
	b, err := json.Marshal(describePin(affinity.PinKey("", "k", "m"), affinity.Pin{Model: "a"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"key":"k","requested_model":"m","pin":{"model":"a"}}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func mkAdminPin(scope, key, model, pinModel, pinRoute string) adminPin {
	var p adminPin
	p.Scope, p.Key, p.Model = scope, key, model
	p.Pin.Model, p.Pin.Route = pinModel, pinRoute
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
		seen := map[adminPin]bool{}
		for _, p := range got.Sample {
			if seen[p] {
				t.Errorf("pin %+v listed twice", p)
			}
			seen[p] = true
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
		if want := mkAdminPin(hashScope("tenant-a"), "session-1", "gpt-4o", "big", "code"); got != want {
			t.Errorf("scoped pin = %+v, want %+v", got, want)
		}
		got = adminPin{} // scope and route are omitted when empty
		admJSON(t, http.MethodGet, pinPath(name, url.Values{"key": {"session-1"}, "model": {"gpt-4o"}}), &got)
		if want := mkAdminPin("", "session-1", "gpt-4o", "small", ""); got != want {
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

package llmaffinity

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
)

// foWriter wraps rec the way serve does.
func foWriter(rec http.ResponseWriter, mayFail bool) *failoverWriter {
	return &failoverWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: rec}, mayFail: mayFail}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		status int
		want   bool
	}{
		{200, false}, {201, false}, {204, false}, {301, false}, {304, false},
		{400, false}, {401, false}, {403, false}, {404, false}, {413, false}, {422, false},
		{429, true}, {500, true}, {501, true}, {502, true}, {503, true}, {504, true}, {529, true},
	}
	for _, tt := range tests {
		if got := retryable(tt.status); got != tt.want {
			t.Errorf("retryable(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

// A retryable status on a writer that may fail is swallowed with everything
// after it: the next candidate's response is the only one the client sees.
func TestFailoverWriterSwallows(t *testing.T) {
	for _, status := range []int{429, 500, 502, 503, 504} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			rec := httptest.NewRecorder()
			fw := foWriter(rec, true)
			fw.Header().Set("Content-Type", "application/json")
			fw.WriteHeader(status)
			if n, err := fw.Write([]byte(`{"error":"overloaded"}`)); err != nil || n != len(`{"error":"overloaded"}`) {
				t.Errorf("Write = %d, %v; want the full length and no error", n, err)
			}
			if n, err := fw.ReadFrom(strings.NewReader("more error body")); err != nil || n != int64(len("more error body")) {
				t.Errorf("ReadFrom = %d, %v; want the full length and no error", n, err)
			}
			fw.Flush()
			if err := http.NewResponseController(fw).Flush(); err != nil {
				t.Errorf("ResponseController.Flush: %v", err)
			}
			fw.WriteHeader(http.StatusOK) // a later status of the failed attempt
			_, _ = fw.Write([]byte("late"))

			if !fw.failed || fw.committed || fw.status != status {
				t.Errorf("failed %v, committed %v, status %d; want true, false, %d", fw.failed, fw.committed, fw.status, status)
			}
			if rec.Flushed {
				t.Error("the client's writer was flushed")
			}
			if rec.Body.Len() != 0 {
				t.Errorf("the client got body %q", rec.Body)
			}

			// the next candidate answers on the same client writer
			next := foWriter(rec, false)
			next.WriteHeader(http.StatusCreated)
			_, _ = next.Write([]byte("ok"))
			if rec.Code != http.StatusCreated || rec.Body.String() != "ok" {
				t.Errorf("client got %d %q, want 201 \"ok\": the failed attempt reached it", rec.Code, rec.Body)
			}
		})
	}
}

func TestFailoverWriterPassesThrough(t *testing.T) {
	tests := []struct {
		name    string
		mayFail bool
		status  int
	}{
		{name: "may fail, 200", mayFail: true, status: 200},
		{name: "may fail, 404", mayFail: true, status: 404},
		{name: "may fail, 400", mayFail: true, status: 400},
		{name: "last candidate, 503", mayFail: false, status: 503},
		{name: "last candidate, 429", mayFail: false, status: 429},
		{name: "last candidate, 200", mayFail: false, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			fw := foWriter(rec, tt.mayFail)
			fw.Header().Set("X-Upstream", "1")
			fw.WriteHeader(tt.status)
			_, _ = fw.Write([]byte("body"))
			if err := http.NewResponseController(fw).Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
			fw.WriteHeader(http.StatusTeapot) // ignored after the commit

			if !fw.committed || fw.failed || fw.status != tt.status {
				t.Errorf("committed %v, failed %v, status %d; want true, false, %d", fw.committed, fw.failed, fw.status, tt.status)
			}
			if rec.Code != tt.status || rec.Body.String() != "body" || !rec.Flushed {
				t.Errorf("client got %d %q (flushed %v), want %d \"body\" flushed", rec.Code, rec.Body, rec.Flushed, tt.status)
			}
			if got := rec.Result().Header.Get("X-Upstream"); got != "1" {
				t.Errorf("client header X-Upstream = %q, want 1", got)
			}
		})
	}
}

func TestFailoverWriterImplicitCommit(t *testing.T) {
	tests := []struct {
		name  string
		write func(fw *failoverWriter)
		body  string
	}{
		{name: "Write", write: func(fw *failoverWriter) { _, _ = fw.Write([]byte("data")) }, body: "data"},
		{name: "ReadFrom", write: func(fw *failoverWriter) { _, _ = fw.ReadFrom(strings.NewReader("data")) }, body: "data"},
		{name: "io.Copy", write: func(fw *failoverWriter) { _, _ = io.Copy(fw, strings.NewReader("data")) }, body: "data"},
		{name: "Flush", write: func(fw *failoverWriter) { fw.Flush() }, body: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			fw := foWriter(rec, true)
			tt.write(fw)
			if !fw.committed || fw.status != http.StatusOK {
				t.Errorf("committed %v, status %d; want true, 200", fw.committed, fw.status)
			}
			// a retryable status after the commit is too late to fail over
			fw.WriteHeader(http.StatusServiceUnavailable)
			if fw.failed || fw.status != http.StatusOK {
				t.Errorf("after a late 503: failed %v, status %d; want false, 200", fw.failed, fw.status)
			}
			_, _ = fw.Write([]byte("!"))
			if rec.Code != http.StatusOK || rec.Body.String() != tt.body+"!" {
				t.Errorf("client got %d %q, want 200 %q", rec.Code, rec.Body, tt.body+"!")
			}
		})
	}
}

func TestFailoverWriterReadFromAfterSwallow(t *testing.T) {
	rec := httptest.NewRecorder()
	fw := foWriter(rec, true)
	fw.WriteHeader(http.StatusBadGateway)
	src := strings.NewReader(strings.Repeat("x", 100000))
	n, err := io.Copy(fw, src)
	if err != nil || n != 100000 {
		t.Errorf("io.Copy = %d, %v; want 100000, nil", n, err)
	}
	if src.Len() != 0 {
		t.Errorf("%d bytes left unread", src.Len())
	}
	if rec.Body.Len() != 0 || fw.committed {
		t.Errorf("client got %d body bytes (committed %v), want none", rec.Body.Len(), fw.committed)
	}
}

// An informational status reaches the client but is not the response: the
// attempt can still fail over.
func TestFailoverWriterInformational(t *testing.T) {
	rec := httptest.NewRecorder()
	fw := foWriter(rec, true)
	fw.Header().Set("Link", "</style.css>; rel=preload")
	fw.WriteHeader(http.StatusEarlyHints)
	if rec.Code != http.StatusEarlyHints {
		t.Errorf("client status = %d, want 103 passed through", rec.Code)
	}
	if fw.committed || fw.failed || fw.status != 0 {
		t.Errorf("after 103: committed %v, failed %v, status %d; want false, false, 0", fw.committed, fw.failed, fw.status)
	}
	fw.WriteHeader(http.StatusServiceUnavailable)
	if !fw.failed || fw.committed {
		t.Errorf("503 after 103: failed %v, committed %v; want true, false", fw.failed, fw.committed)
	}

	rec = httptest.NewRecorder()
	fw = foWriter(rec, true)
	fw.WriteHeader(http.StatusContinue)
	fw.WriteHeader(http.StatusOK)
	if !fw.committed || fw.status != http.StatusOK {
		t.Errorf("200 after 100: committed %v, status %d; want true, 200", fw.committed, fw.status)
	}
}

func TestSettlePin(t *testing.T) {
	a, b, d := &Model{Name: "a"}, &Model{Name: "b"}, &Model{Name: "d"}
	const pinKey = "session-1\x00gpt-4o"
	const otherKey = "session-2\x00gpt-4o"
	tests := []struct {
		name    string
		pinKey  string
		served  *Model
		ok      bool
		wantPin affinity.Pin
		wantHas bool
	}{
		{name: "served by the first candidate", pinKey: pinKey, served: a, ok: true,
			wantPin: affinity.Pin{Model: "a", Route: "r"}, wantHas: true},
		{name: "failed over to the second", pinKey: pinKey, served: b, ok: true,
			wantPin: affinity.Pin{Model: "b", Route: "r"}, wantHas: true},
		{name: "failed over to the default", pinKey: pinKey, served: d, ok: true,
			wantPin: affinity.Pin{Model: "d", Route: "r"}, wantHas: true},
		{name: "the first could not serve", pinKey: pinKey, served: a, ok: false},
		{name: "no candidate could serve", pinKey: pinKey, served: d, ok: false},
		{name: "unpinned decision", pinKey: "", served: b, ok: false,
			wantPin: affinity.Pin{Model: "a", Route: "r"}, wantHas: true},
		{name: "unpinned decision, failed over", pinKey: "", served: b, ok: true,
			wantPin: affinity.Pin{Model: "a", Route: "r"}, wantHas: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pins, err := affinity.New(affinity.Options{TTL: time.Hour, MaxEntries: 100})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pins.Close)
			h := &Handler{pinStore: pins}
			pins.Set(context.Background(), pinKey, affinity.Pin{Model: "a", Route: "r"})
			pins.Set(context.Background(), otherKey, affinity.Pin{Model: "b", Route: "q"})

			dec := decision{candidates: []*Model{a, b, d}, routeName: "r", status: StatusRouted, pinKey: tt.pinKey}
			h.settlePin(context.Background(), dec, tt.served, tt.ok)

			got, has := pins.Get(context.Background(), pinKey)
			if has != tt.wantHas || got != tt.wantPin {
				t.Errorf("pin = %+v (present %v), want %+v (present %v)", got, has, tt.wantPin, tt.wantHas)
			}
			if stray, ok := pins.Get(context.Background(), ""); ok {
				t.Errorf("a pin %+v was written under the empty key", stray)
			}
			if other, ok := pins.Get(context.Background(), otherKey); !ok || other != (affinity.Pin{Model: "b", Route: "q"}) {
				t.Errorf("another session's pin = %+v (present %v), want it untouched", other, ok)
			}
		})
	}
}

// A response reverse_proxy aborts after writing it (panic(http.ErrAbortHandler),
// as when the client goes away after the last event) is accounted for all
// the same, and the panic goes on to abort the connection.
func TestAbortedResponseIsAccounted(t *testing.T) {
	h := &Handler{Default: "a", Models: []*Model{{Name: "a", To: []string{"127.0.0.1:9"}, APIKey: "sk-a"}}}
	if err := cfgProvision(t, h); err != nil {
		t.Fatal(err)
	}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(benchReply)
		panic(http.ErrAbortHandler)
	})
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"a","messages":[{"role":"user","content":"hi"}]}`))
	repl := caddy.NewReplacer()
	r = caddyhttp.PrepareRequest(r, repl, w, &caddyhttp.Server{})
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v, want the abort to go on", p)
			}
		}()
		_ = h.ServeHTTP(w, r, next)
	}()
	if got, _ := repl.GetString("http.llm_affinity.input_tokens"); got != "8123" {
		t.Errorf("{http.llm_affinity.input_tokens} = %q after an aborted response, want 8123", got)
	}
}

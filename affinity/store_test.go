package affinity

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an otter.Clock the test moves by hand. Tick returns nil, so
// the cache runs no periodic clean-ups of its own.
type fakeClock struct{ now atomic.Int64 }

func newFakeClock() *fakeClock {
	c := new(fakeClock)
	c.now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) NowNano() int64                      { return c.now.Load() }
func (c *fakeClock) Tick(time.Duration) <-chan time.Time { return nil }
func (c *fakeClock) Advance(d time.Duration)             { c.now.Add(int64(d)) }

func newTestStore(t *testing.T, ttl time.Duration, maxEntries int, clock *fakeClock) *Store {
	t.Helper()
	opts := Options{TTL: ttl, MaxEntries: maxEntries}
	if clock != nil {
		opts.Clock = clock
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(s.Close)
	return s
}

// pinTo returns a decide func that pins to p and counts its calls.
func pinTo(p Pin, calls *atomic.Int32) func(context.Context) Pin {
	return func(context.Context) Pin {
		if calls != nil {
			calls.Add(1)
		}
		return p
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string // "" means New must succeed
	}{
		{name: "valid", opts: Options{TTL: time.Minute, MaxEntries: 1}},
		{name: "valid with clock", opts: Options{TTL: time.Nanosecond, MaxEntries: 10, Clock: newFakeClock()}},
		{name: "zero TTL", opts: Options{TTL: 0, MaxEntries: 10}, wantErr: "TTL"},
		{name: "negative TTL", opts: Options{TTL: -time.Second, MaxEntries: 10}, wantErr: "TTL"},
		{name: "zero max entries", opts: Options{TTL: time.Minute, MaxEntries: 0}, wantErr: "max entries"},
		{name: "negative max entries", opts: Options{TTL: time.Minute, MaxEntries: -1}, wantErr: "max entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.opts)
			if tt.wantErr == "" {
				if err != nil || s == nil {
					t.Fatalf("New(%+v) = %v, %v; want a store", tt.opts, s, err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("New(%+v) succeeded, want an error containing %q", tt.opts, tt.wantErr)
			}
			if s != nil {
				t.Errorf("New(%+v) returned a store with error %v", tt.opts, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New(%+v) error = %q, want it to contain %q", tt.opts, err, tt.wantErr)
			}
		})
	}
}

func TestStoreGetOrDecidePins(t *testing.T) {
	s := newTestStore(t, time.Minute, 100, newFakeClock())
	ctx := context.Background()
	key := PinKey("", "session-1", "gpt-4o")

	if pin, ok := s.Get(context.Background(), key); ok {
		t.Fatalf("Get on an empty store = %+v, true; want a miss", pin)
	}

	var calls atomic.Int32
	want := Pin{Model: "big", Route: "code"}
	pin, decided := s.GetOrDecide(ctx, key, pinTo(want, &calls))
	if pin != want || !decided {
		t.Fatalf("first GetOrDecide = %+v, %v; want %+v, true", pin, decided, want)
	}
	if got, ok := s.Get(context.Background(), key); !ok || got != want {
		t.Fatalf("Get after GetOrDecide = %+v, %v; want %+v, true", got, ok, want)
	}

	// a second GetOrDecide finds the pin and does not decide again
	pin, decided = s.GetOrDecide(ctx, key, pinTo(Pin{Model: "other-model"}, &calls))
	if pin != want || decided {
		t.Fatalf("second GetOrDecide = %+v, %v; want %+v, false", pin, decided, want)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("decide ran %d times, want 1", n)
	}

	// pins are per (key, requested model)
	other := PinKey("", "session-1", "gpt-4o-mini")
	if pin, ok := s.Get(context.Background(), other); ok {
		t.Fatalf("Get(%q) = %+v, true; want a miss", other, pin)
	}
	want2 := Pin{Model: "small"}
	if pin, decided := s.GetOrDecide(ctx, other, pinTo(want2, &calls)); pin != want2 || !decided {
		t.Fatalf("GetOrDecide(%q) = %+v, %v; want %+v, true", other, pin, decided, want2)
	}
	if got, _ := s.Get(context.Background(), key); got != want {
		t.Fatalf("pin of %q changed to %+v", key, got)
	}
	if n := s.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}

	s.Delete(context.Background(), key)
	if pin, ok := s.Get(context.Background(), key); ok {
		t.Fatalf("Get after Delete = %+v, true; want a miss", pin)
	}
	if pin, decided := s.GetOrDecide(ctx, key, pinTo(Pin{Model: "small"}, &calls)); pin.Model != "small" || !decided {
		t.Fatalf("GetOrDecide after Delete = %+v, %v; want a fresh decision", pin, decided)
	}
}

func TestStoreTTLRefreshedByReads(t *testing.T) {
	const ttl = time.Minute
	clock := newFakeClock()
	s := newTestStore(t, ttl, 100, clock)
	key := PinKey("", "session-1", "m")
	want := Pin{Model: "a"}
	if _, decided := s.GetOrDecide(context.Background(), key, pinTo(want, nil)); !decided {
		t.Fatal("first GetOrDecide did not decide")
	}

	step := ttl * 2 / 3
	var elapsed time.Duration
	for elapsed <= 3*ttl {
		clock.Advance(step)
		elapsed += step
		got, ok := s.Get(context.Background(), key)
		if !ok || got != want {
			t.Fatalf("after %v (reads every %v, TTL %v): Get = %+v, %v; want %+v, true", elapsed, step, ttl, got, ok, want)
		}
	}

	// GetOrDecide reads refresh the pin too
	for i := 0; i < 3; i++ {
		clock.Advance(step)
		pin, decided := s.GetOrDecide(context.Background(), key, pinTo(Pin{Model: "b"}, nil))
		if pin != want || decided {
			t.Fatalf("GetOrDecide after another %v = %+v, %v; want %+v, false", step, pin, decided, want)
		}
	}

	// idle longer than the TTL: gone
	clock.Advance(ttl + time.Second)
	if got, ok := s.Get(context.Background(), key); ok {
		t.Fatalf("Get after %v idle (TTL %v) = %+v, true; want a miss", ttl+time.Second, ttl, got)
	}
}

func TestStoreTTLExpiresIdlePins(t *testing.T) {
	const ttl = 10 * time.Minute
	clock := newFakeClock()
	s := newTestStore(t, ttl, 100, clock)
	ctx := context.Background()

	for i := 0; i < 10; i++ {
		s.GetOrDecide(ctx, PinKey("", fmt.Sprintf("session-%d", i), "m"), pinTo(Pin{Model: "a"}, nil))
	}
	// still there just before the TTL
	clock.Advance(ttl - time.Second)
	if _, ok := s.Get(context.Background(), PinKey("", "session-0", "m")); !ok {
		t.Fatal("pin gone before its TTL")
	}
	// session-0 was just read; the others are idle past the TTL
	clock.Advance(2 * time.Second)
	if _, ok := s.Get(context.Background(), PinKey("", "session-0", "m")); !ok {
		t.Fatal("pin read 2s ago expired")
	}
	for i := 1; i < 10; i++ {
		if pin, ok := s.Get(context.Background(), PinKey("", fmt.Sprintf("session-%d", i), "m")); ok {
			t.Fatalf("session-%d: Get after %v idle = %+v, true; want a miss", i, ttl+time.Second, pin)
		}
	}
	s.cache.CleanUp()
	if n := s.Len(); n != 1 {
		t.Errorf("Len after CleanUp = %d, want 1", n)
	}

	clock.Advance(ttl + time.Second)
	s.cache.CleanUp()
	if n := s.Len(); n != 0 {
		t.Errorf("Len after every pin expired and CleanUp = %d, want 0", n)
	}

	// an expired key decides afresh
	var calls atomic.Int32
	pin, decided := s.GetOrDecide(ctx, PinKey("", "session-3", "m"), pinTo(Pin{Model: "b"}, &calls))
	if pin.Model != "b" || !decided || calls.Load() != 1 {
		t.Fatalf("GetOrDecide on an expired key = %+v, %v (%d calls); want a fresh decision", pin, decided, calls.Load())
	}
}

func TestStoreMaxEntries(t *testing.T) {
	const maxEntries = 100
	s := newTestStore(t, time.Hour, maxEntries, newFakeClock())
	ctx := context.Background()
	var calls atomic.Int32
	for i := 0; i < 1000; i++ {
		key := PinKey("", fmt.Sprintf("session-%d", i), "m")
		pin, decided := s.GetOrDecide(ctx, key, pinTo(Pin{Model: fmt.Sprint(i)}, &calls))
		if !decided || pin.Model != fmt.Sprint(i) {
			t.Fatalf("GetOrDecide(%q) = %+v, %v; want a fresh decision", key, pin, decided)
		}
	}
	if n := calls.Load(); n != 1000 {
		t.Fatalf("decide ran %d times, want 1000", n)
	}
	s.cache.CleanUp()
	if n := s.Len(); n > maxEntries {
		t.Fatalf("Len after 1000 pins with MaxEntries %d = %d", maxEntries, n)
	}
	if n := s.Len(); n == 0 {
		t.Fatalf("Len = 0: the store kept nothing")
	}
}

func TestStoreGetOrDecideCoalesces(t *testing.T) {
	s := newTestStore(t, time.Hour, 100, nil) // wall clock
	key := PinKey("", "session-1", "m")
	want := Pin{Model: "big", Route: "code"}

	var calls atomic.Int32
	decide := func(context.Context) Pin {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		return want
	}

	const n = 50
	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		pins    [n]Pin
		decided [n]bool
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			pins[i], decided[i] = s.GetOrDecide(context.Background(), key, decide)
		}()
	}
	close(start)
	wg.Wait()

	if c := calls.Load(); c != 1 {
		t.Errorf("decide ran %d times, want 1", c)
	}
	nDecided := 0
	for i := 0; i < n; i++ {
		if pins[i] != want {
			t.Errorf("caller %d got %+v, want %+v", i, pins[i], want)
		}
		if decided[i] {
			nDecided++
		}
	}
	if nDecided != 1 {
		t.Errorf("%d callers got decided=true, want exactly 1", nDecided)
	}
	if got, ok := s.Get(context.Background(), key); !ok || got != want {
		t.Errorf("Get after the decision = %+v, %v; want %+v, true", got, ok, want)
	}
}

func TestStoreGetOrDecideCanceledContext(t *testing.T) {
	s := newTestStore(t, time.Hour, 100, newFakeClock())
	key := PinKey("", "session-1", "m")
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	cancel()

	completed := Pin{Model: "big", Route: "code"}
	var (
		calls    atomic.Int32
		ctxErr   error
		ctxValue any
	)
	pin, decided := s.GetOrDecide(ctx, key, func(dctx context.Context) Pin {
		calls.Add(1)
		ctxErr = dctx.Err()
		ctxValue = dctx.Value(ctxKey{})
		select {
		case <-dctx.Done():
			return Pin{Model: "canceled"}
		case <-time.After(10 * time.Millisecond):
			return completed
		}
	})
	if ctxErr != nil {
		t.Errorf("decide ran under a canceled context: %v", ctxErr)
	}
	if ctxValue != "v" {
		t.Errorf("decide's context lost the parent's values: got %v", ctxValue)
	}
	if pin != completed || !decided {
		t.Fatalf("GetOrDecide with a canceled context = %+v, %v; want %+v, true", pin, decided, completed)
	}
	if got, ok := s.Get(context.Background(), key); !ok || got != completed {
		t.Fatalf("Get after the decision = %+v, %v; want %+v, true", got, ok, completed)
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("decide ran %d times, want 1", c)
	}
}

type ctxKey struct{}

// After Close (Caddy's Cleanup) requests still in flight may use the store;
// nothing may panic.
func TestStoreCloseThenUse(t *testing.T) {
	s, err := New(Options{TTL: time.Minute, MaxEntries: 10, Clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.GetOrDecide(ctx, "k1", pinTo(Pin{Model: "a"}, nil))
	s.Close()

	if pin, ok := s.Get(context.Background(), "k1"); ok {
		t.Errorf("Get after Close = %+v, true; want the pins dropped", pin)
	}
	// none of these may panic
	pin, decided := s.GetOrDecide(ctx, "k2", pinTo(Pin{Model: "b"}, nil))
	if pin.Model != "b" || !decided {
		t.Errorf("GetOrDecide after Close = %+v, %v; want %+v, true", pin, decided, Pin{Model: "b"})
	}
	s.Get(context.Background(), "k2")
	s.Delete(context.Background(), "k2")
	s.cache.CleanUp()
	_ = s.Len()
	s.Close()
}

func TestStoreCloseWithWallClock(t *testing.T) {
	s, err := New(Options{TTL: time.Minute, MaxEntries: 10})
	if err != nil {
		t.Fatal(err)
	}
	s.GetOrDecide(context.Background(), "k", pinTo(Pin{Model: "a"}, nil))
	s.Close()
	s.Get(context.Background(), "k")
	s.GetOrDecide(context.Background(), "k", pinTo(Pin{Model: "a"}, nil))
	s.cache.CleanUp()
	_ = s.Len()
}

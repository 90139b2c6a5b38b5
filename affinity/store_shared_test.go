package affinity

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"
)

// fakeShared is an in-memory Shared store that counts its calls and fails
// the operations it is told to.
type fakeShared struct {
	mu        sync.Mutex
	pins      map[string]Pin
	ttls      map[string]time.Duration // the TTL of the last write or refresh of each key
	calls     map[string]int           // by method: get, setIfAbsent, set, refresh, delete, flush, close
	errs      map[string]error         // by method
	noDL      []string                 // methods called with a context without a deadline
	refreshed []string                 // keys refreshed, in order
	// raceWith, when set, is pinned by "another instance" just before the
	// next SetIfAbsent, as if it won the race between Get and SetIfAbsent.
	raceWith *Pin
	// holdRefresh, when set, holds each Refresh's answer, after the store
	// is read and written, until it is closed, as if the answer were still
	// on its way.
	holdRefresh chan struct{}
}

func newFakeShared() *fakeShared {
	return &fakeShared{
		pins:  map[string]Pin{},
		ttls:  map[string]time.Duration{},
		calls: map[string]int{},
		errs:  map[string]error{},
	}
}

// enter counts a call and returns the error injected for it.
func (f *fakeShared) enter(ctx context.Context, method string) error {
	f.calls[method]++
	if _, ok := ctx.Deadline(); !ok {
		f.noDL = append(f.noDL, method)
	}
	if err := ctx.Err(); err != nil {
		return err // as a real store would
	}
	return f.errs[method]
}

func (f *fakeShared) Get(ctx context.Context, key string) (Pin, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "get"); err != nil {
		return Pin{}, false, err
	}
	pin, ok := f.pins[key]
	return pin, ok, nil
}

func (f *fakeShared) SetIfAbsent(ctx context.Context, key string, pin Pin, ttl time.Duration) (Pin, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "setIfAbsent"); err != nil {
		return pin, err
	}
	if f.raceWith != nil {
		f.pins[key], f.ttls[key] = *f.raceWith, ttl
		f.raceWith = nil
	}
	if held, ok := f.pins[key]; ok {
		return held, nil
	}
	f.pins[key], f.ttls[key] = pin, ttl
	return pin, nil
}

func (f *fakeShared) Set(ctx context.Context, key string, pin Pin, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "set"); err != nil {
		return err
	}
	f.pins[key], f.ttls[key] = pin, ttl
	return nil
}

func (f *fakeShared) Refresh(ctx context.Context, key string, pin Pin, ttl time.Duration) (Pin, error) {
	f.mu.Lock()
	f.refreshed = append(f.refreshed, key)
	err := f.enter(ctx, "refresh")
	if err == nil {
		if held, ok := f.pins[key]; ok {
			pin = held
		}
		f.pins[key], f.ttls[key] = pin, ttl
	}
	hold := f.holdRefresh
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return pin, err
}

func (f *fakeShared) Delete(ctx context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "delete"); err != nil {
		return err
	}
	delete(f.pins, key)
	delete(f.ttls, key)
	return nil
}

func (f *fakeShared) Flush(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "flush"); err != nil {
		return err
	}
	clear(f.pins)
	clear(f.ttls)
	return nil
}

func (f *fakeShared) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["close"]++
	return nil
}

func (f *fakeShared) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeShared) pin(key string) (Pin, time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pins[key]
	return p, f.ttls[key], ok
}

func (f *fakeShared) put(key string, p Pin) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pins[key] = p
}

// lose drops every pin, as a Redis that restarts empty.
func (f *fakeShared) lose() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.pins)
	clear(f.ttls)
}

// holdRefreshes makes each later Refresh wait to answer until release is
// called.
func (f *fakeShared) holdRefreshes() (release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hold := make(chan struct{})
	f.holdRefresh = hold
	return func() { close(hold) }
}

func (f *fakeShared) fail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[method] = err
}

// errorLog records what a Store reports to OnSharedError.
type errorLog struct {
	mu  sync.Mutex
	ops []string
	err []error
}

func (l *errorLog) record(op string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, op)
	l.err = append(l.err, err)
}

func (l *errorLog) snapshot() ([]string, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ops...), append([]error(nil), l.err...)
}

const sharedTimeout = 5 * time.Second

// newSharedStore returns a Store on a fake clock with a fake shared store
// attached, and what it reports to OnSharedError.
func newSharedStore(t *testing.T, ttl time.Duration) (*Store, *fakeShared, *fakeClock, *errorLog) {
	t.Helper()
	clock := newFakeClock()
	log := new(errorLog)
	s, err := New(Options{TTL: ttl, MaxEntries: 1000, Clock: clock, OnSharedError: log.record})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	f := newFakeShared()
	s.Share(f, sharedTimeout)
	return s, f, clock, log
}

// waitFor polls cond until it holds, failing the test after a generous
// timeout (minutes: a loaded machine never reaches it).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// refreshesIdle reports whether no background refresh is in flight.
func refreshesIdle(s *Store) bool { return len(s.refreshes) == 0 }

func TestSharedL1HitDoesNotReadL2(t *testing.T) {
	s, f, _, _ := newSharedStore(t, time.Hour)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	want := Pin{Model: "big", Route: "code"}
	s.Set(ctx, key, want)
	if n := f.count("set"); n != 1 {
		t.Fatalf("Set wrote through %d times, want 1", n)
	}
	for i := 0; i < 5; i++ {
		if got, ok := s.Get(ctx, key); !ok || got != want {
			t.Fatalf("Get = %+v, %v; want %+v, true", got, ok, want)
		}
	}
	pin, decided := s.GetOrDecide(ctx, key, pinTo(Pin{Model: "other"}, nil))
	if pin != want || decided {
		t.Fatalf("GetOrDecide on a local pin = %+v, %v; want %+v, false", pin, decided, want)
	}
	if n := f.count("get"); n != 0 {
		t.Errorf("local hits read the shared store %d times, want 0", n)
	}
	if n := f.count("setIfAbsent"); n != 0 {
		t.Errorf("local hits called SetIfAbsent %d times, want 0", n)
	}
}

func TestSharedL1MissAdoptsL2Pin(t *testing.T) {
	s, f, _, log := newSharedStore(t, time.Hour)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	want := Pin{Model: "big", Route: "code"}
	f.put(key, want)

	// a miss in both
	if got, ok := s.Get(ctx, PinKey("", "session-2", "m")); ok {
		t.Fatalf("Get of a key in neither store = %+v, true", got)
	}
	if n := f.count("get"); n != 1 {
		t.Fatalf("a local miss read the shared store %d times, want 1", n)
	}

	// the pin another instance made
	if got, ok := s.Get(ctx, key); !ok || got != want {
		t.Fatalf("Get of a shared pin = %+v, %v; want %+v, true", got, ok, want)
	}
	if n := f.count("get"); n != 2 {
		t.Fatalf("shared store reads = %d, want 2", n)
	}
	// adopted: the second Get is local
	if got, ok := s.Get(ctx, key); !ok || got != want {
		t.Fatalf("second Get = %+v, %v; want %+v, true", got, ok, want)
	}
	if n := f.count("get"); n != 2 {
		t.Errorf("the second Get read the shared store (reads = %d, want 2)", n)
	}
	if n := s.Len(); n != 1 {
		t.Errorf("Len = %d, want 1 (only the found pin adopted)", n)
	}
	// the shared-store call was bounded and writes nothing back
	if f.noDL != nil {
		t.Errorf("shared-store calls without a deadline: %v", f.noDL)
	}
	if n := f.count("set") + f.count("setIfAbsent") + f.count("refresh"); n != 0 {
		t.Errorf("adopting a pin wrote to the shared store %d times", n)
	}
	if ops, _ := log.snapshot(); len(ops) != 0 {
		t.Errorf("errors reported: %v", ops)
	}
}

// A request whose client is gone still reads the shared store.
func TestSharedGetIgnoresCallerCancel(t *testing.T) {
	s, f, _, _ := newSharedStore(t, time.Hour)
	key := PinKey("", "session-1", "m")
	want := Pin{Model: "a"}
	f.put(key, want)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, ok := s.Get(ctx, key); !ok || got != want {
		t.Errorf("Get with a canceled context = %+v, %v; want %+v, true", got, ok, want)
	}
}

func TestSharedGetOrDecideAdoptsL2Pin(t *testing.T) {
	s, f, _, _ := newSharedStore(t, time.Hour)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	theirs := Pin{Model: "big", Route: "code"}
	f.put(key, theirs)

	var calls atomic.Int32
	pin, decided := s.GetOrDecide(ctx, key, pinTo(Pin{Model: "small"}, &calls))
	if pin != theirs || decided {
		t.Fatalf("GetOrDecide with a shared pin = %+v, %v; want %+v, false", pin, decided, theirs)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("decide ran %d times, want 0", n)
	}
	if n := f.count("setIfAbsent"); n != 0 {
		t.Errorf("SetIfAbsent called %d times, want 0", n)
	}
	// adopted locally
	if got, ok := s.Get(ctx, key); !ok || got != theirs {
		t.Errorf("Get after adopting = %+v, %v; want %+v", got, ok, theirs)
	}
	if n := f.count("get"); n != 1 {
		t.Errorf("shared store reads = %d, want 1", n)
	}
}

func TestSharedGetOrDecideSetsIfAbsent(t *testing.T) {
	const ttl = 7 * time.Minute
	s, f, _, log := newSharedStore(t, ttl)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	mine := Pin{Model: "big", Route: "code"}

	var calls atomic.Int32
	pin, decided := s.GetOrDecide(ctx, key, pinTo(mine, &calls))
	if pin != mine || !decided {
		t.Fatalf("GetOrDecide with an empty shared store = %+v, %v; want %+v, true", pin, decided, mine)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("decide ran %d times, want 1", n)
	}
	if g, sia := f.count("get"), f.count("setIfAbsent"); g != 1 || sia != 1 {
		t.Errorf("shared Get/SetIfAbsent calls = %d/%d, want 1/1", g, sia)
	}
	if got, gotTTL, ok := f.pin(key); !ok || got != mine || gotTTL != ttl {
		t.Errorf("shared store holds %+v (TTL %v, present %v); want %+v with the store's TTL %v", got, gotTTL, ok, mine, ttl)
	}
	if f.noDL != nil {
		t.Errorf("shared-store calls without a deadline: %v", f.noDL)
	}
	// a second GetOrDecide is local
	pin, decided = s.GetOrDecide(ctx, key, pinTo(Pin{Model: "x"}, &calls))
	if pin != mine || decided || calls.Load() != 1 {
		t.Errorf("second GetOrDecide = %+v, %v (decide calls %d); want %+v, false, 1", pin, decided, calls.Load(), mine)
	}
	if g, sia := f.count("get"), f.count("setIfAbsent"); g != 1 || sia != 1 {
		t.Errorf("after a local hit, shared Get/SetIfAbsent calls = %d/%d, want 1/1", g, sia)
	}
	if ops, _ := log.snapshot(); len(ops) != 0 {
		t.Errorf("errors reported: %v", ops)
	}
}

// Another instance pinned the key between our Get and SetIfAbsent: its pin
// wins here too.
func TestSharedGetOrDecideLosesRace(t *testing.T) {
	s, f, _, _ := newSharedStore(t, time.Hour)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	theirs := Pin{Model: "small", Route: "chat"}
	mine := Pin{Model: "big", Route: "code"}
	f.raceWith = &theirs

	var calls atomic.Int32
	pin, decided := s.GetOrDecide(ctx, key, pinTo(mine, &calls))
	if pin != theirs || decided {
		t.Fatalf("GetOrDecide that lost the race = %+v, %v; want the winner %+v, false", pin, decided, theirs)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("decide ran %d times, want 1", n)
	}
	if got, ok := s.Get(ctx, key); !ok || got != theirs {
		t.Errorf("local pin after losing = %+v, %v; want the winner %+v", got, ok, theirs)
	}
	if got, _, _ := f.pin(key); got != theirs {
		t.Errorf("shared pin = %+v, want the winner %+v (not overwritten)", got, theirs)
	}
	if n := f.count("get"); n != 1 {
		t.Errorf("shared reads = %d, want 1 (the winner is adopted, not read again)", n)
	}
}

var errShared = errors.New("shared store is down")

// Shared-store failures are reported and never fail the call: the local
// store carries on.
func TestSharedErrorsAreReported(t *testing.T) {
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	mine := Pin{Model: "big", Route: "code"}

	t.Run("Get", func(t *testing.T) {
		s, f, _, log := newSharedStore(t, time.Hour)
		f.put(key, mine)
		f.fail("get", errShared)
		if got, ok := s.Get(ctx, key); ok {
			t.Errorf("Get with a failing shared store = %+v, true; want a miss", got)
		}
		wantErrors(t, log, "get")
	})

	t.Run("GetOrDecide with Get failing", func(t *testing.T) {
		s, f, _, log := newSharedStore(t, time.Hour)
		f.fail("get", errShared)
		var calls atomic.Int32
		pin, decided := s.GetOrDecide(ctx, key, pinTo(mine, &calls))
		if pin != mine || !decided || calls.Load() != 1 {
			t.Fatalf("GetOrDecide = %+v, %v (decide calls %d); want %+v, true, 1", pin, decided, calls.Load(), mine)
		}
		// it still tried to share its decision
		if got, _, ok := f.pin(key); !ok || got != mine {
			t.Errorf("shared pin = %+v, %v; want %+v", got, ok, mine)
		}
		wantErrors(t, log, "get")
	})

	t.Run("GetOrDecide with SetIfAbsent failing", func(t *testing.T) {
		s, f, _, log := newSharedStore(t, time.Hour)
		f.fail("setIfAbsent", errShared)
		var calls atomic.Int32
		pin, decided := s.GetOrDecide(ctx, key, pinTo(mine, &calls))
		if pin != mine || !decided || calls.Load() != 1 {
			t.Fatalf("GetOrDecide = %+v, %v (decide calls %d); want %+v, true, 1", pin, decided, calls.Load(), mine)
		}
		if got, ok := s.Get(ctx, key); !ok || got != mine {
			t.Errorf("local pin = %+v, %v; want %+v (pinned locally)", got, ok, mine)
		}
		wantErrors(t, log, "set")
	})

	t.Run("GetOrDecide with everything failing", func(t *testing.T) {
		s, f, _, log := newSharedStore(t, time.Hour)
		f.fail("get", errShared)
		f.fail("setIfAbsent", errShared)
		var calls atomic.Int32
		pin, decided := s.GetOrDecide(ctx, key, pinTo(mine, &calls))
		if pin != mine || !decided || calls.Load() != 1 {
			t.Fatalf("GetOrDecide = %+v, %v (decide calls %d); want %+v, true, 1", pin, decided, calls.Load(), mine)
		}
		reads := f.count("get")
		if got, ok := s.Get(ctx, key); !ok || got != mine {
			t.Errorf("local pin = %+v, %v; want %+v (pinned locally)", got, ok, mine)
		}
		if f.count("get") != reads {
			t.Errorf("Get of the local pin read the shared store")
		}
		pin, decided = s.GetOrDecide(ctx, key, pinTo(Pin{Model: "other"}, &calls))
		if pin != mine || decided || calls.Load() != 1 {
			t.Errorf("second GetOrDecide = %+v, %v; want the local pin %+v, false", pin, decided, mine)
		}
		wantErrors(t, log, "get", "set")
	})

	t.Run("Set", func(t *testing.T) {
		s, f, _, log := newSharedStore(t, time.Hour)
		f.fail("set", errShared)
		s.Set(ctx, key, mine)
		if got, ok := s.Get(ctx, key); !ok || got != mine {
			t.Errorf("local pin after a failed shared Set = %+v, %v; want %+v", got, ok, mine)
		}
		wantErrors(t, log, "set")
	})

	t.Run("Delete", func(t *testing.T) {
		s, f, _, log := newSharedStore(t, time.Hour)
		s.Set(ctx, key, mine)
		f.fail("delete", errShared)
		s.Delete(ctx, key)
		wantErrors(t, log, "delete")
		// gone locally: the next Get asks the shared store (which still has it)
		reads := f.count("get")
		s.Get(ctx, key)
		if f.count("get") != reads+1 {
			t.Errorf("Get after Delete did not read the shared store: the local pin was not deleted")
		}
	})

	t.Run("Refresh", func(t *testing.T) {
		s, f, clock, log := newSharedStore(t, time.Hour)
		s.Set(ctx, key, mine)
		f.fail("refresh", errShared)
		clock.Advance(time.Hour / 4)
		if got, ok := s.Get(ctx, key); !ok || got != mine {
			t.Fatalf("Get = %+v, %v; want %+v", got, ok, mine)
		}
		waitFor(t, "the refresh to fail", func() bool { return refreshesIdle(s) && f.count("refresh") == 1 })
		wantErrors(t, log, "refresh")
	})

	t.Run("Flush", func(t *testing.T) {
		s, f, _, log := newSharedStore(t, time.Hour)
		s.Set(ctx, key, mine)
		f.fail("flush", errShared)
		if err := s.Flush(ctx); !errors.Is(err, errShared) {
			t.Errorf("Flush = %v, want the shared store's error", err)
		}
		s.cache.CleanUp()
		if n := s.Len(); n != 0 {
			t.Errorf("Len after Flush = %d, want 0 (memory flushed anyway)", n)
		}
		wantErrors(t, log, "flush")
	})
}

// wantErrors checks the ops reported to OnSharedError, in order, each with
// the shared store's error.
func wantErrors(t *testing.T, log *errorLog, ops ...string) {
	t.Helper()
	got, errs := log.snapshot()
	if fmt.Sprint(got) != fmt.Sprint(ops) {
		t.Errorf("OnSharedError ops = %v, want %v", got, ops)
	}
	for i, err := range errs {
		if !errors.Is(err, errShared) {
			t.Errorf("OnSharedError(%s) error = %v, want %v", got[i], err, errShared)
		}
	}
}

func TestSharedWriteThrough(t *testing.T) {
	const ttl = 3 * time.Minute
	s, f, _, _ := newSharedStore(t, ttl)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")

	s.Set(ctx, key, Pin{Model: "a"})
	s.Set(ctx, key, Pin{Model: "b", Route: "r"})
	if got, gotTTL, ok := f.pin(key); !ok || got != (Pin{Model: "b", Route: "r"}) || gotTTL != ttl {
		t.Errorf("shared pin after Set = %+v (TTL %v, %v); want {b r} with TTL %v", got, gotTTL, ok, ttl)
	}
	s.Delete(ctx, key)
	if _, _, ok := f.pin(key); ok {
		t.Errorf("shared pin survived Delete")
	}
	if _, ok := s.Get(ctx, key); ok {
		t.Errorf("pin survived Delete")
	}
	s.Set(ctx, key, Pin{Model: "c"})
	f.put(PinKey("", "session-2", "m"), Pin{Model: "d"})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.count("flush"); n != 1 {
		t.Errorf("shared Flush calls = %d, want 1", n)
	}
	if _, ok := s.Get(ctx, key); ok {
		t.Errorf("pin survived Flush")
	}
	if _, ok := s.Get(ctx, PinKey("", "session-2", "m")); ok {
		t.Errorf("another instance's pin survived Flush")
	}
	if f.noDL != nil {
		t.Errorf("shared-store calls without a deadline: %v", f.noDL)
	}
}

func TestSharedRefreshRateLimited(t *testing.T) {
	const ttl = 8 * time.Minute
	s, f, clock, log := newSharedStore(t, ttl)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	want := Pin{Model: "big"}
	f.put(key, want)
	if got, ok := s.Get(ctx, key); !ok || got != want { // adopted now
		t.Fatalf("Get = %+v, %v", got, ok)
	}

	// reads within TTL/4 of the adoption: no refresh, and none in flight
	for i := 0; i < 4; i++ {
		clock.Advance((ttl/4 - time.Nanosecond) / 4)
		if _, ok := s.Get(ctx, key); !ok {
			t.Fatal("pin lost")
		}
	}
	clock.Advance(ttl/4 - time.Nanosecond - 4*((ttl/4-time.Nanosecond)/4))
	s.Get(ctx, key) // exactly TTL/4 - 1ns after the adoption
	if n := f.count("refresh"); n != 0 || !refreshesIdle(s) {
		t.Fatalf("reads within TTL/4: %d refreshes (%d in flight), want none", n, len(s.refreshes))
	}

	// at TTL/4: exactly one refresh, with the store's TTL
	clock.Advance(time.Nanosecond)
	for i := 0; i < 10; i++ {
		if got, ok := s.Get(ctx, key); !ok || got != want {
			t.Fatalf("Get = %+v, %v", got, ok)
		}
	}
	waitFor(t, "the refresh", func() bool { return refreshesIdle(s) && f.count("refresh") >= 1 })
	if n := f.count("refresh"); n != 1 {
		t.Errorf("10 reads at TTL/4: %d refreshes, want 1", n)
	}
	if _, gotTTL, _ := f.pin(key); gotTTL != ttl {
		t.Errorf("refresh TTL = %v, want %v", gotTTL, ttl)
	}
	if f.noDL != nil {
		t.Errorf("shared-store calls without a deadline: %v", f.noDL)
	}

	// the next quarter counts from that refresh
	clock.Advance(ttl/4 - time.Nanosecond)
	s.Get(ctx, key)
	if n := f.count("refresh"); n != 1 || !refreshesIdle(s) {
		t.Errorf("a read TTL/4-1ns after the refresh: %d refreshes, want 1", n)
	}
	clock.Advance(time.Nanosecond)
	s.Get(ctx, key)
	waitFor(t, "the second refresh", func() bool { return refreshesIdle(s) && f.count("refresh") >= 2 })
	if n := f.count("refresh"); n != 2 {
		t.Errorf("refreshes = %d, want 2", n)
	}

	// a pin made by Set counts from the Set
	other := PinKey("", "session-2", "m")
	s.Set(ctx, other, Pin{Model: "x"})
	clock.Advance(ttl/4 - time.Nanosecond)
	s.Get(ctx, other)
	if n := f.count("refresh"); n != 2 || !refreshesIdle(s) {
		t.Errorf("a read TTL/4-1ns after Set: refreshes = %d, want 2", n)
	}
	if ops, _ := log.snapshot(); len(ops) != 0 {
		t.Errorf("errors reported: %v", ops)
	}
	f.mu.Lock()
	refreshed := fmt.Sprint(f.refreshed)
	f.mu.Unlock()
	if want := fmt.Sprint([]string{key, key}); refreshed != want {
		t.Errorf("refreshed keys = %q, want %q", refreshed, want)
	}
}

func TestSharedRefreshWithoutSharedStore(t *testing.T) {
	s := newTestStore(t, time.Minute, 10, newFakeClock())
	s.Set(context.Background(), "k", Pin{Model: "a"})
	s.Get(context.Background(), "k")
	if !refreshesIdle(s) {
		t.Errorf("a store without a shared store started a refresh")
	}
}

// A refresh that finds the shared store without the pin (it lost its data)
// writes the pin back, with the store's TTL.
func TestSharedRefreshWritesBackLostPin(t *testing.T) {
	const ttl = 8 * time.Minute
	s, f, clock, log := newSharedStore(t, ttl)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	mine := Pin{Model: "big", Route: "code"}
	s.Set(ctx, key, mine)
	f.lose()

	clock.Advance(ttl / 4)
	if got, ok := s.Cached(key); !ok || got != mine {
		t.Fatalf("Cached = %+v, %v; want %+v", got, ok, mine)
	}
	waitFor(t, "the refresh", func() bool { return refreshesIdle(s) })
	if got, gotTTL, ok := f.pin(key); !ok || got != mine || gotTTL != ttl {
		t.Errorf("shared store holds %+v (TTL %v, present %v) after the refresh; want %+v with TTL %v written back", got, gotTTL, ok, mine, ttl)
	}
	if got, ok := s.Cached(key); !ok || got != mine {
		t.Errorf("Cached after the refresh = %+v, %v; want %+v", got, ok, mine)
	}
	if ops, _ := log.snapshot(); len(ops) != 0 {
		t.Errorf("errors reported: %v", ops)
	}
}

// A refresh that finds another pin in the shared store (one that another
// instance made while this one could not reach the store) adopts it: the
// request that started the refresh is served the local pin, the next ones
// the shared one.
func TestSharedRefreshAdoptsSharedPin(t *testing.T) {
	const ttl = 8 * time.Minute
	s, f, clock, log := newSharedStore(t, ttl)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	mine, theirs := Pin{Model: "big", Route: "code"}, Pin{Model: "small", Route: "chat"}
	s.Set(ctx, key, mine)
	f.put(key, theirs)

	clock.Advance(ttl / 4)
	if got, ok := s.Cached(key); !ok || got != mine {
		t.Fatalf("Cached that starts the refresh = %+v, %v; want the local %+v", got, ok, mine)
	}
	waitFor(t, "the refresh", func() bool { return refreshesIdle(s) })
	if got, ok := s.Cached(key); !ok || got != theirs {
		t.Errorf("Cached after the refresh = %+v, %v; want the shared %+v", got, ok, theirs)
	}
	var calls atomic.Int32
	if pin, decided := s.GetOrDecide(ctx, key, pinTo(mine, &calls)); pin != theirs || decided || calls.Load() != 0 {
		t.Errorf("GetOrDecide after the refresh = %+v, %v (decide calls %d); want the shared %+v, false, 0", pin, decided, calls.Load(), theirs)
	}
	if got, gotTTL, ok := f.pin(key); !ok || got != theirs || gotTTL != ttl {
		t.Errorf("shared store holds %+v (TTL %v, present %v); want %+v kept, refreshed to %v", got, gotTTL, ok, theirs, ttl)
	}
	if n := f.count("set"); n != 1 {
		t.Errorf("shared Set calls = %d, want 1 (the first pin only)", n)
	}
	if ops, _ := log.snapshot(); len(ops) != 0 {
		t.Errorf("errors reported: %v", ops)
	}
}

// A Set or Delete made while a refresh's answer was on its way is newer
// than the answer: the answer must not replace it, or bring a deleted pin
// back.
func TestSharedRefreshKeepsNewerLocalChange(t *testing.T) {
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	mine, theirs, newer := Pin{Model: "big"}, Pin{Model: "small"}, Pin{Model: "medium", Route: "set"}
	tests := []struct {
		name      string
		change    func(s *Store)
		want      Pin
		wantFound bool
	}{
		{"Set", func(s *Store) { s.Set(ctx, key, newer) }, newer, true},
		{"Delete", func(s *Store) { s.Delete(ctx, key) }, Pin{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, f, clock, _ := newSharedStore(t, time.Hour)
			s.Set(ctx, key, mine)
			f.put(key, theirs)
			release := f.holdRefreshes()

			clock.Advance(time.Hour / 4)
			s.Get(ctx, key)
			waitFor(t, "the refresh to read the shared store", func() bool { return f.count("refresh") == 1 })
			tt.change(s)
			release()
			waitFor(t, "the refresh", func() bool { return refreshesIdle(s) })

			e, found := s.cache.GetIfPresent(key)
			if found != tt.wantFound || e.Pin != tt.want {
				t.Errorf("local pin after a %s during the refresh = %+v (present %v); want %+v (present %v), not the refresh's answer %+v",
					tt.name, e.Pin, found, tt.want, tt.wantFound, theirs)
			}
		})
	}
}

func TestReconfigureTTL(t *testing.T) {
	ctx := context.Background()

	t.Run("expiry", func(t *testing.T) {
		clock := newFakeClock()
		s := newTestStore(t, time.Hour, 100, clock)
		s.Set(ctx, "old", Pin{Model: "a"})
		s.Reconfigure(4*time.Minute, 0)
		// a pin made after the change lives 4m idle
		s.Set(ctx, "new", Pin{Model: "b"})
		clock.Advance(3 * time.Minute)
		if _, ok := s.Get(ctx, "new"); !ok {
			t.Fatal("pin expired before the new TTL")
		}
		// the old pin's next read applies the new TTL too
		if _, ok := s.Get(ctx, "old"); !ok {
			t.Fatal("old pin expired early")
		}
		clock.Advance(4*time.Minute + time.Second)
		if p, ok := s.Get(ctx, "new"); ok {
			t.Errorf("pin idle 4m1s with TTL 4m = %+v, true; want expired", p)
		}
		if p, ok := s.Get(ctx, "old"); ok {
			t.Errorf("old pin idle 4m1s after a read under TTL 4m = %+v, true; want expired", p)
		}
	})

	t.Run("zero keeps the TTL", func(t *testing.T) {
		clock := newFakeClock()
		s := newTestStore(t, time.Hour, 100, clock)
		s.Reconfigure(0, 0)
		s.Reconfigure(-time.Minute, -1)
		s.Set(ctx, "k", Pin{Model: "a"})
		clock.Advance(59 * time.Minute)
		if _, ok := s.Get(ctx, "k"); !ok {
			t.Errorf("pin expired after 59m with TTL 1h: Reconfigure(0) changed the TTL")
		}
	})

	t.Run("longer", func(t *testing.T) {
		clock := newFakeClock()
		s := newTestStore(t, time.Minute, 100, clock)
		s.Reconfigure(time.Hour, 0)
		s.Set(ctx, "k", Pin{Model: "a"})
		clock.Advance(30 * time.Minute)
		if _, ok := s.Get(ctx, "k"); !ok {
			t.Errorf("pin expired after 30m with TTL raised to 1h")
		}
	})

	t.Run("refresh bound and shared TTL", func(t *testing.T) {
		s, f, clock, _ := newSharedStore(t, time.Hour)
		key := PinKey("", "session-1", "m")
		f.put(key, Pin{Model: "a"})
		s.Get(ctx, key) // adopted now
		s.Reconfigure(4*time.Minute, 0)
		clock.Advance(time.Minute - time.Nanosecond)
		s.Get(ctx, key)
		if n := f.count("refresh"); n != 0 || !refreshesIdle(s) {
			t.Fatalf("read 1m-1ns after adoption with TTL 4m: %d refreshes, want 0", n)
		}
		clock.Advance(time.Nanosecond)
		s.Get(ctx, key)
		waitFor(t, "the refresh", func() bool { return refreshesIdle(s) && f.count("refresh") >= 1 })
		if _, gotTTL, _ := f.pin(key); gotTTL != 4*time.Minute {
			t.Errorf("refresh TTL = %v, want the new TTL 4m", gotTTL)
		}
		other := PinKey("", "session-2", "m")
		s.GetOrDecide(ctx, other, pinTo(Pin{Model: "b"}, nil))
		if _, gotTTL, _ := f.pin(other); gotTTL != 4*time.Minute {
			t.Errorf("SetIfAbsent TTL = %v, want the new TTL 4m", gotTTL)
		}
		s.Set(ctx, other, Pin{Model: "c"})
		if _, gotTTL, _ := f.pin(other); gotTTL != 4*time.Minute {
			t.Errorf("Set TTL = %v, want the new TTL 4m", gotTTL)
		}
	})

	t.Run("max entries", func(t *testing.T) {
		s := newTestStore(t, time.Hour, 1000, newFakeClock())
		s.Reconfigure(0, 10)
		for i := 0; i < 200; i++ {
			s.Set(ctx, fmt.Sprint(i), Pin{Model: "a"})
		}
		s.cache.CleanUp()
		if n := s.Len(); n > 10 || n == 0 {
			t.Errorf("Len after 200 pins with the bound lowered to 10 = %d", n)
		}
	})
}

func TestShareReplacesAndCloses(t *testing.T) {
	s := newTestStore(t, time.Hour, 100, newFakeClock())
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	first, second := newFakeShared(), newFakeShared()

	s.Share(first, time.Second)
	s.Share(first, 2*time.Second) // the same store again: kept open
	if n := first.count("close"); n != 0 {
		t.Fatalf("re-sharing the same store closed it %d times", n)
	}
	s.Share(second, time.Second)
	if n := first.count("close"); n != 1 {
		t.Errorf("replaced store closed %d times, want 1", n)
	}
	if n := second.count("close"); n != 0 {
		t.Errorf("new store closed %d times, want 0", n)
	}
	second.put(key, Pin{Model: "from-second"})
	if got, ok := s.Get(ctx, key); !ok || got.Model != "from-second" {
		t.Errorf("Get after Share(second) = %+v, %v; want the second store's pin", got, ok)
	}
	if n := first.count("get"); n != 0 {
		t.Errorf("the replaced store was read %d times", n)
	}

	// detach
	s.Share(nil, 0)
	if n := second.count("close"); n != 1 {
		t.Errorf("detached store closed %d times, want 1", n)
	}
	reads := second.count("get")
	other := PinKey("", "session-2", "m")
	second.put(other, Pin{Model: "x"})
	if got, ok := s.Get(ctx, other); ok {
		t.Errorf("Get after detaching = %+v, true; want a local miss", got)
	}
	var calls atomic.Int32
	if pin, decided := s.GetOrDecide(ctx, other, pinTo(Pin{Model: "local"}, &calls)); pin.Model != "local" || !decided {
		t.Errorf("GetOrDecide after detaching = %+v, %v; want a local decision", pin, decided)
	}
	s.Set(ctx, other, Pin{Model: "y"})
	s.Delete(ctx, other)
	if err := s.Flush(ctx); err != nil {
		t.Errorf("Flush after detaching: %v", err)
	}
	second.mu.Lock()
	used := second.calls["get"] - reads + second.calls["setIfAbsent"] + second.calls["set"] + second.calls["delete"] + second.calls["flush"]
	second.mu.Unlock()
	if used != 0 {
		t.Errorf("the detached store was used %d times", used)
	}
	s.Share(nil, 0)
	if n := second.count("close"); n != 1 {
		t.Errorf("detaching twice closed the old store %d times, want 1", n)
	}
}

func TestCloseClosesShared(t *testing.T) {
	s, err := New(Options{TTL: time.Minute, MaxEntries: 10, Clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeShared()
	s.Share(f, time.Second)
	s.Close()
	s.Close()
	if n := f.count("close"); n != 1 {
		t.Errorf("shared store closed %d times by two Store.Close, want 1", n)
	}
}

// newRedisInstance is a gateway instance's Store on the clock (nil: the
// wall clock) sharing r under prefix, with what it reports to OnSharedError.
func newRedisInstance(t *testing.T, r *testRedis, prefix string, ttl time.Duration, clock otter.Clock) (*Store, *errorLog) {
	t.Helper()
	log := new(errorLog)
	s, err := New(Options{TTL: ttl, MaxEntries: 1000, Clock: clock, OnSharedError: log.record})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.Share(NewRedis(RedisOptions{Addresses: []string{r.addr}, Prefix: prefix}), sharedTimeout)
	return s, log
}

// Two gateway instances sharing one real Redis.
func TestSharedRedisTwoInstances(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	const prefix = "llm_affinity:two:"
	a, logA := newRedisInstance(t, r, prefix, time.Hour, nil)
	b, logB := newRedisInstance(t, r, prefix, time.Hour, nil)

	t.Run("B adopts A's pin", func(t *testing.T) {
		key := PinKey("", "session-1", "gpt-4o")
		pinA := Pin{Model: "big", Route: "code"}
		var callsA, callsB atomic.Int32
		if pin, decided := a.GetOrDecide(ctx, key, pinTo(pinA, &callsA)); pin != pinA || !decided {
			t.Fatalf("A: GetOrDecide = %+v, %v; want %+v, true", pin, decided, pinA)
		}
		pin, decided := b.GetOrDecide(ctx, key, pinTo(Pin{Model: "small"}, &callsB))
		if pin != pinA || decided {
			t.Fatalf("B: GetOrDecide = %+v, %v; want A's pin %+v, false", pin, decided, pinA)
		}
		if n := callsB.Load(); n != 0 {
			t.Errorf("B's decide ran %d times, want 0", n)
		}
		if got, ok := b.Get(ctx, key); !ok || got != pinA {
			t.Errorf("B: Get = %+v, %v; want %+v", got, ok, pinA)
		}
		ttl, err := r.client.TTL(ctx, redisKeyOf(prefix, key)).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("Redis TTL of the pin = %v, %v; want in (0, 1h]", ttl, err)
		}

		// a Set on B reaches A once A's local pin is gone
		pinB := Pin{Model: "small", Route: "chat"}
		b.Set(ctx, key, pinB)
		a.Delete(ctx, key) // also deletes it from Redis
		if got, ok := b.Get(ctx, key); !ok || got != pinB {
			t.Errorf("B keeps its local pin after A's Delete: got %+v, %v", got, ok)
		}
		if got, ok := a.Get(ctx, key); ok {
			t.Errorf("A: Get after A's Delete = %+v, true; want a miss (deleted in Redis too)", got)
		}
	})

	t.Run("racing instances agree", func(t *testing.T) {
		key := PinKey("", "session-race", "gpt-4o")
		const n = 20
		var (
			start   = make(chan struct{})
			wg      sync.WaitGroup
			pins    [n]Pin
			decided [n]bool
			calls   atomic.Int32
		)
		for i := 0; i < n; i++ {
			store := a
			if i%2 == 1 {
				store = b
			}
			mine := Pin{Model: fmt.Sprintf("model-%d", i), Route: fmt.Sprintf("route-%d", i)}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				pins[i], decided[i] = store.GetOrDecide(ctx, key, func(context.Context) Pin {
					calls.Add(1)
					time.Sleep(10 * time.Millisecond) // let the instances overlap
					return mine
				})
			}()
		}
		close(start)
		wg.Wait()

		nDecided := 0
		for i := 0; i < n; i++ {
			if pins[i] != pins[0] {
				t.Errorf("caller %d got %+v, caller 0 got %+v: the instances disagree", i, pins[i], pins[0])
			}
			if decided[i] {
				nDecided++
			}
		}
		if nDecided != 1 {
			t.Errorf("%d callers got decided=true, want exactly 1", nDecided)
		}
		if c := calls.Load(); c < 1 || c > 2 {
			t.Errorf("decide ran %d times, want once or twice (at most once per instance)", c)
		}
		rs := NewRedis(RedisOptions{Addresses: []string{r.addr}, Prefix: prefix})
		defer rs.Close()
		if got, found, err := rs.Get(ctx, key); err != nil || !found || got != pins[0] {
			t.Errorf("Redis holds %+v, %v, %v; want the agreed pin %+v", got, found, err, pins[0])
		}
		for _, s := range []*Store{a, b} {
			if got, ok := s.Get(ctx, key); !ok || got != pins[0] {
				t.Errorf("local pin = %+v, %v; want the agreed pin %+v", got, ok, pins[0])
			}
		}
	})

	for name, log := range map[string]*errorLog{"A": logA, "B": logB} {
		if ops, errs := log.snapshot(); len(ops) != 0 {
			t.Errorf("instance %s reported shared-store errors: %v %v", name, ops, errs)
		}
	}
}

// failedRefreshes returns the refreshes log was told failed, for a message.
func failedRefreshes(log *errorLog) []error {
	ops, errs := log.snapshot()
	var failed []error
	for i, op := range ops {
		if op == "refresh" {
			failed = append(failed, errs[i])
		}
	}
	return failed
}

// restartEmpty starts the killed r again and checks that it came back with
// no data, as a Redis without persistence does.
func restartEmpty(t *testing.T, r *testRedis) {
	t.Helper()
	r.server.Restart()
	if n, err := r.client.DBSize(context.Background()).Result(); err != nil || n != 0 {
		t.Fatalf("Redis after the restart holds %d keys (%v); want it empty", n, err)
	}
}

// A pin Redis lost when it restarted empty is written back by the first
// refresh of the instance still using it, so a new instance adopts it.
func TestSharedRedisWritesBackLostPin(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	const ttl = time.Hour
	const prefix = "llm_affinity:lost:"
	clock := newFakeClock()
	a, logA := newRedisInstance(t, r, prefix, ttl, clock)
	key := PinKey("", "session-1", "gpt-4o")
	mine := Pin{Model: "big", Route: "code"}
	if pin, decided := a.GetOrDecide(ctx, key, pinTo(mine, nil)); pin != mine || !decided {
		t.Fatalf("GetOrDecide = %+v, %v; want %+v, true", pin, decided, mine)
	}
	r.server.Kill()
	restartEmpty(t, r)

	clock.Advance(ttl / 4)
	if got, ok := a.Cached(key); !ok || got != mine {
		t.Fatalf("Cached = %+v, %v; want %+v", got, ok, mine)
	}
	waitFor(t, "the refresh", func() bool { return refreshesIdle(a) })
	if failed := failedRefreshes(logA); failed != nil {
		t.Errorf("failed refreshes: %v", failed)
	}
	rs := r.newRedisStore(t, prefix)
	if got, found, err := rs.Get(ctx, key); err != nil || !found || got != mine {
		t.Errorf("Redis holds %+v, %v, %v after the refresh; want %+v written back", got, found, err, mine)
	}
	if left, err := r.client.PTTL(ctx, redisKeyOf(prefix, key)).Result(); err != nil || left <= 0 || left > ttl {
		t.Errorf("Redis TTL of the pin = %v, %v; want in (0, %v]", left, err, ttl)
	}
	c, _ := newRedisInstance(t, r, prefix, ttl, clock)
	if pin, decided := c.GetOrDecide(ctx, key, pinTo(Pin{Model: "other"}, nil)); pin != mine || decided {
		t.Errorf("a new instance: GetOrDecide = %+v, %v; want %+v adopted from Redis, false", pin, decided, mine)
	}
}

// Two instances that pinned a session apart while Redis was down: after
// Redis is back, empty, one refresh on each instance makes them serve one
// model, which Redis holds.
func TestSharedRedisConvergesAfterSplit(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	const ttl = time.Hour
	const prefix = "llm_affinity:split:"
	clock := newFakeClock()
	a, logA := newRedisInstance(t, r, prefix, ttl, clock)
	b, logB := newRedisInstance(t, r, prefix, ttl, clock)
	key := PinKey("", "session-1", "gpt-4o")
	pinA, pinB := Pin{Model: "big", Route: "code"}, Pin{Model: "small", Route: "chat"}

	r.server.Kill()
	if pin, decided := a.GetOrDecide(ctx, key, pinTo(pinA, nil)); pin != pinA || !decided {
		t.Fatalf("A: GetOrDecide with Redis down = %+v, %v; want %+v, true", pin, decided, pinA)
	}
	if pin, decided := b.GetOrDecide(ctx, key, pinTo(pinB, nil)); pin != pinB || !decided {
		t.Fatalf("B: GetOrDecide with Redis down = %+v, %v; want %+v, true", pin, decided, pinB)
	}
	for name, log := range map[string]*errorLog{"A": logA, "B": logB} {
		if ops, _ := log.snapshot(); len(ops) == 0 {
			t.Fatalf("instance %s reported no shared-store error with Redis down", name)
		}
	}
	restartEmpty(t, r)

	// a quarter TTL on, one use on each instance refreshes the pin; those
	// requests are still served the local pins
	clock.Advance(ttl / 4)
	if got, ok := a.Cached(key); !ok || got != pinA {
		t.Fatalf("A: Cached = %+v, %v; want its own %+v", got, ok, pinA)
	}
	if got, ok := b.Cached(key); !ok || got != pinB {
		t.Fatalf("B: Cached = %+v, %v; want its own %+v", got, ok, pinB)
	}
	waitFor(t, "the refreshes", func() bool { return refreshesIdle(a) && refreshesIdle(b) })
	for name, log := range map[string]*errorLog{"A": logA, "B": logB} {
		if failed := failedRefreshes(log); failed != nil {
			t.Errorf("instance %s: failed refreshes: %v", name, failed)
		}
	}

	servedA, _ := a.Cached(key)
	servedB, _ := b.Cached(key)
	if servedA != servedB || (servedA != pinA && servedA != pinB) {
		t.Errorf("A serves %+v, B serves %+v: the instances did not converge on A's or B's pin", servedA, servedB)
	}
	rs := r.newRedisStore(t, prefix)
	if held, found, err := rs.Get(ctx, key); err != nil || !found || held != servedA {
		t.Errorf("Redis holds %+v, %v, %v; want the pin A serves, %+v", held, found, err, servedA)
	}
}

// goroutineWith reports whether some goroutine's stack holds every one of
// the frames.
func goroutineWith(frames ...string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		all := true
		for _, f := range frames {
			if !strings.Contains(g, f) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// A background refresh must not bring back a pin deleted (or replaced) while
// the read that started it was on its way, here or in the shared store
// (which a refresh writes when it lacks the pin). The test holds the
// store's lock to stop a Get inside refreshShared, after it read the pin,
// and a Delete after it removed the pin locally.
func TestSharedRefreshDoesNotResurrectDeletedPin(t *testing.T) {
	s, f, clock, _ := newSharedStore(t, time.Hour)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	s.Set(ctx, key, Pin{Model: "a"})
	clock.Advance(time.Hour / 4) // the next read refreshes

	s.mu.Lock()
	locked := true
	defer func() {
		if locked {
			s.mu.Unlock()
		}
	}()
	got, deleted := make(chan bool, 1), make(chan struct{})
	go func() {
		_, ok := s.Get(ctx, key)
		got <- ok
	}()
	waitFor(t, "Get to reach refreshShared", func() bool { return goroutineWith("(*Store).refreshShared") })
	go func() {
		defer close(deleted)
		s.Delete(ctx, key)
	}()
	waitFor(t, "Delete to remove the local pin", func() bool { return goroutineWith("(*Store).Delete", "(*Store).sharedStore") })
	s.mu.Unlock()
	locked = false
	if ok := <-got; !ok {
		t.Fatal("the Get that raced the Delete missed; it read the pin before the Delete")
	}
	<-deleted
	waitFor(t, "the refresh", func() bool { return refreshesIdle(s) })

	if _, _, ok := f.pin(key); ok {
		t.Fatalf("the shared pin survived Delete")
	}
	if n := f.count("refresh"); n != 0 {
		t.Errorf("the shared store was refreshed %d times with a pin deleted before the refresh started, want 0", n)
	}
	if p, ok := s.cache.GetIfPresent(key); ok {
		t.Errorf("after Delete the local store holds %+v again: the refresh of a Get that read it before the Delete wrote it back", p.Pin)
	}
}

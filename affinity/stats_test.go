package affinity

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"
)

// sessionOf returns key's local session, failing the test when there is none.
func sessionOf(t *testing.T, s *Store, key string) Session {
	t.Helper()
	sess, ok := s.Session(key)
	if !ok {
		t.Fatalf("no local session for %q", key)
	}
	return sess
}

// wantStats compares stats, times included.
func wantStats(t *testing.T, what string, got, want SessionStats) {
	t.Helper()
	if !got.Created.Equal(want.Created) || !got.LastUsed.Equal(want.LastUsed) ||
		got.Turns != want.Turns || got.InputTokens != want.InputTokens ||
		got.CacheReadTokens != want.CacheReadTokens || got.OutputTokens != want.OutputTokens {
		t.Errorf("%s: stats %+v, want %+v", what, got, want)
	}
}

func TestStatsRecordTurn(t *testing.T) {
	clock := newFakeClock()
	start := time.Unix(0, clock.NowNano()).UTC()
	s := newTestStore(t, time.Hour, 100, clock)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	pin := Pin{Model: "big", Route: "code"}

	clock.Advance(3 * time.Second)
	s.Set(ctx, key, pin)
	sess := sessionOf(t, s, key)
	if sess.Pin != pin {
		t.Errorf("Session pin = %+v, want %+v", sess.Pin, pin)
	}
	created := start.Add(3 * time.Second)
	wantStats(t, "a new pin", sess.Stats, SessionStats{Created: created})
	if _, ok := sess.Stats.CacheHitRatio(); ok {
		t.Errorf("a session without input has a cache hit ratio")
	}

	clock.Advance(1500 * time.Millisecond) // times are whole seconds
	s.RecordTurn(key, 1000, 0, 50)
	clock.Advance(10 * time.Second)
	s.RecordTurn(key, 1200, 900, 70)
	sess = sessionOf(t, s, key)
	wantStats(t, "two turns", sess.Stats, SessionStats{
		Created: created, LastUsed: created.Add(11 * time.Second),
		Turns: 2, InputTokens: 2200, CacheReadTokens: 900, OutputTokens: 120,
	})
	if r, ok := sess.Stats.CacheHitRatio(); !ok || r != 900.0/2200.0 {
		t.Errorf("CacheHitRatio = %v, %v; want %v", r, ok, 900.0/2200.0)
	}

	// Sessions yields the same
	n := 0
	for k, got := range s.Sessions() {
		n++
		if k != key || got.Pin != pin {
			t.Errorf("Sessions yielded %q %+v", k, got)
		}
		wantStats(t, "Sessions", got.Stats, sess.Stats)
	}
	if n != 1 {
		t.Errorf("Sessions yielded %d sessions, want 1", n)
	}
}

// Counts an upstream reported are not trusted: negative ones count 0, a
// turn adds at most 2^32-1 of each, cached tokens at most the input, and
// the 32-bit output count saturates instead of wrapping.
func TestStatsRecordTurnClamps(t *testing.T) {
	s := newTestStore(t, time.Hour, 100, newFakeClock())
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	s.Set(ctx, key, Pin{Model: "a"})

	s.RecordTurn(key, -5, -1, -7)
	s.RecordTurn(key, 100, 250, 1)
	st := sessionOf(t, s, key).Stats
	if st.Turns != 2 || st.InputTokens != 100 || st.CacheReadTokens != 100 || st.OutputTokens != 1 {
		t.Errorf("after a negative turn and one with more cached than input: %+v; want 2 turns, 100 in, 100 cached, 1 out", st)
	}

	const max32 = math.MaxUint32
	s.RecordTurn(key, math.MaxInt, math.MaxInt, math.MaxInt)
	s.RecordTurn(key, math.MaxInt, math.MaxInt, math.MaxInt)
	st = sessionOf(t, s, key).Stats
	if st.Turns != 4 || st.InputTokens != 100+2*max32 || st.CacheReadTokens != 100+2*max32 || st.OutputTokens != max32 {
		t.Errorf("after two huge turns: %+v; want 4 turns, %d in and cached, %d out (saturated)", st, 100+2*max32, max32)
	}
	if r, ok := st.CacheHitRatio(); !ok || r != 1 {
		t.Errorf("CacheHitRatio = %v, %v; want 1", r, ok)
	}
}

// Concurrent turns of one session are all counted, exactly (run with -race).
func TestStatsRecordTurnConcurrent(t *testing.T) {
	s := newTestStore(t, time.Hour, 100, newFakeClock())
	ctx := context.Background()
	keys := []string{PinKey("", "a", "m"), PinKey("", "b", "m")}
	for _, k := range keys {
		s.Set(ctx, k, Pin{Model: "big"})
	}
	const goroutines, turns = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range turns {
				for _, k := range keys {
					s.RecordTurn(k, 1000+g, i%7, g+1)
				}
				if i%50 == 0 { // readers alongside: a snapshot is never more cached than input
					for _, sess := range s.Sessions() {
						if st := sess.Stats; st.CacheReadTokens > st.InputTokens || (st.Turns > 0) == st.LastUsed.IsZero() {
							t.Errorf("inconsistent snapshot %+v", st)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	var wantIn, wantCached, wantOut int64
	for g := range goroutines {
		for i := range turns {
			wantIn += int64(1000 + g)
			wantCached += int64(i % 7)
			wantOut += int64(g + 1)
		}
	}
	for _, k := range keys {
		st := sessionOf(t, s, k).Stats
		if st.Turns != goroutines*turns || st.InputTokens != wantIn || st.CacheReadTokens != wantCached || st.OutputTokens != wantOut {
			t.Errorf("%s: %+v; want %d turns, %d in, %d cached, %d out", k, st, goroutines*turns, wantIn, wantCached, wantOut)
		}
	}
}

// Setting a pin to the same model keeps its session's stats (another route
// too: the model's prompt cache is as warm); to another model starts them
// afresh.
func TestStatsSetKeepsOrResets(t *testing.T) {
	clock := newFakeClock()
	s := newTestStore(t, time.Hour, 100, clock)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	s.Set(ctx, key, Pin{Model: "big", Route: "code"})
	created := sessionOf(t, s, key).Stats.Created
	clock.Advance(time.Minute)
	s.RecordTurn(key, 100, 40, 5)
	turned := SessionStats{Created: created, LastUsed: created.Add(time.Minute), Turns: 1, InputTokens: 100, CacheReadTokens: 40, OutputTokens: 5}

	clock.Advance(time.Minute)
	s.Set(ctx, key, Pin{Model: "big", Route: "code"})
	wantStats(t, "the same pin set again", sessionOf(t, s, key).Stats, turned)

	s.Set(ctx, key, Pin{Model: "big", Route: "chat"})
	sess := sessionOf(t, s, key)
	if sess.Route != "chat" {
		t.Errorf("route = %q, want chat", sess.Route)
	}
	wantStats(t, "the same model on another route", sess.Stats, turned)

	clock.Advance(time.Minute)
	s.Set(ctx, key, Pin{Model: "small", Route: "chat"})
	wantStats(t, "re-pinned to another model", sessionOf(t, s, key).Stats, SessionStats{Created: created.Add(3 * time.Minute)})

	// deleted and pinned again: fresh
	s.RecordTurn(key, 1, 1, 1)
	s.Delete(ctx, key)
	if _, ok := s.Session(key); ok {
		t.Errorf("a deleted pin has a session")
	}
	s.Set(ctx, key, Pin{Model: "small", Route: "chat"})
	wantStats(t, "pinned again after a delete", sessionOf(t, s, key).Stats, SessionStats{Created: created.Add(3 * time.Minute)})
}

// The stats go with the pin: when it expires a RecordTurn is a no-op, and a
// new pin of the key starts afresh. Recording a turn does not keep a pin
// alive (it is not a read).
func TestStatsExpireWithThePin(t *testing.T) {
	const ttl = time.Minute
	clock := newFakeClock()
	s := newTestStore(t, ttl, 100, clock)
	ctx := context.Background()
	key := PinKey("", "session-1", "m")
	s.Set(ctx, key, Pin{Model: "big"})
	clock.Advance(ttl - time.Second)
	s.RecordTurn(key, 100, 50, 10) // does not refresh the TTL
	if sess := sessionOf(t, s, key); sess.Stats.Turns != 1 {
		t.Fatalf("stats before expiry: %+v", sess.Stats)
	}
	clock.Advance(2 * time.Second)
	if _, ok := s.Session(key); ok {
		t.Fatalf("the pin outlived its TTL: RecordTurn or Session refreshed it")
	}
	s.RecordTurn(key, 100, 50, 10)
	if _, ok := s.Cached(key); ok {
		t.Errorf("RecordTurn brought an expired pin back")
	}
	s.Set(ctx, key, Pin{Model: "big"})
	wantStats(t, "the key pinned again", sessionOf(t, s, key).Stats, SessionStats{Created: time.Unix(0, clock.NowNano()).Truncate(time.Second).UTC()})

	// Session is quiet too: reading the stats does not keep the pin alive
	clock.Advance(ttl - time.Second)
	sessionOf(t, s, key)
	clock.Advance(2 * time.Second)
	if _, ok := s.Cached(key); ok {
		t.Errorf("Session refreshed the pin's TTL")
	}
}

// A RecordTurn for a key without a local pin does nothing: it creates no
// pin and no stats.
func TestStatsRecordTurnWithoutPin(t *testing.T) {
	s := newTestStore(t, time.Hour, 100, newFakeClock())
	key := PinKey("", "session-1", "m")
	s.RecordTurn(key, 100, 50, 10)
	if _, ok := s.Session(key); ok {
		t.Errorf("RecordTurn without a pin made a session")
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
	pin, decided := s.GetOrDecide(context.Background(), key, pinTo(Pin{Model: "big"}, nil))
	if !decided || pin.Model != "big" {
		t.Fatalf("GetOrDecide = %+v, %v", pin, decided)
	}
	if st := sessionOf(t, s, key).Stats; st.Turns != 0 || st.InputTokens != 0 {
		t.Errorf("a turn recorded before the pin counts: %+v", st)
	}

	// flushed: gone
	s.RecordTurn(key, 1, 0, 1)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.RecordTurn(key, 1, 0, 1)
	if _, ok := s.Session(key); ok {
		t.Errorf("a flushed pin has a session")
	}
}

// Stats are per instance: a pin this instance loads from the shared store
// starts with fresh stats here, whatever another instance counted.
func TestStatsSharedPinStartsFresh(t *testing.T) {
	s, f, clock, _ := newSharedStore(t, time.Hour)
	ctx := context.Background()
	other, err := New(Options{TTL: time.Hour, MaxEntries: 100, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	other.Share(f, sharedTimeout)

	key := PinKey("", "session-1", "m")
	other.Set(ctx, key, Pin{Model: "big"})
	other.RecordTurn(key, 100, 50, 10)
	clock.Advance(time.Minute)
	now := time.Unix(0, clock.NowNano()).UTC()

	if pin, decided := s.GetOrDecide(ctx, key, pinTo(Pin{Model: "small"}, nil)); decided || pin.Model != "big" {
		t.Fatalf("GetOrDecide = %+v, %v; want the shared pin", pin, decided)
	}
	wantStats(t, "loaded by GetOrDecide", sessionOf(t, s, key).Stats, SessionStats{Created: now})

	key2 := PinKey("", "session-2", "m")
	other.Set(ctx, key2, Pin{Model: "big"})
	if pin, ok := s.Get(ctx, key2); !ok || pin.Model != "big" {
		t.Fatalf("Get = %+v, %v; want the shared pin", pin, ok)
	}
	wantStats(t, "loaded by Get", sessionOf(t, s, key2).Stats, SessionStats{Created: now})
	if st := sessionOf(t, other, key).Stats; st.Turns != 1 {
		t.Errorf("the other instance's stats changed: %+v", st)
	}
}

// A refresh that adopts the shared store's pin of another model starts the
// session's stats afresh; one that finds the pin it had keeps them.
func TestStatsRefreshAdoptingAnotherModelResets(t *testing.T) {
	const ttl = 8 * time.Minute
	s, f, clock, _ := newSharedStore(t, ttl)
	ctx := context.Background()
	kept, moved := PinKey("", "kept", "m"), PinKey("", "moved", "m")
	s.Set(ctx, kept, Pin{Model: "big"})
	s.Set(ctx, moved, Pin{Model: "big"})
	s.RecordTurn(kept, 100, 0, 1)
	s.RecordTurn(moved, 100, 0, 1)
	f.put(moved, Pin{Model: "small"})

	clock.Advance(ttl / 4)
	s.Cached(kept)
	waitFor(t, "the first refresh", func() bool { return refreshesIdle(s) })
	s.Cached(moved)
	waitFor(t, "the second refresh", func() bool { return refreshesIdle(s) })
	waitFor(t, "the adopted pin", func() bool { p, _ := s.Session(moved); return p.Model == "small" })

	if st := sessionOf(t, s, kept).Stats; st.Turns != 1 {
		t.Errorf("a refresh that kept the pin reset its stats: %+v", st)
	}
	now := time.Unix(0, clock.NowNano()).UTC()
	wantStats(t, "adopted another model", sessionOf(t, s, moved).Stats, SessionStats{Created: now})
}

func TestEpochOf(t *testing.T) {
	for _, tt := range []struct{ in, want int64 }{
		{0, 0}, {1, 0}, {999_999_999, 0}, {1_000_000_000, 1_000_000_000}, {1_500_000_000, 1_000_000_000},
		{-1, -1_000_000_000}, {-1_000_000_000, -1_000_000_000}, {-1_000_000_001, -2_000_000_000},
	} {
		if got := epochOf(tt.in); got != tt.want {
			t.Errorf("epochOf(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

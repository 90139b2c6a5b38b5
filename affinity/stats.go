package affinity

import (
	"iter"
	"math"
	"sync/atomic"
	"time"
)

// SessionStats are what this instance saw of a pinned session since it
// first had the pin. They are observability, not state: each instance keeps
// its own and the shared store holds none, so a pin this instance loads from
// the shared store starts with fresh stats here. Setting the pin to another
// model starts them afresh (that model's prompt cache starts cold); setting
// it to the same model, on another route or not, keeps them. They go with
// the pin when it expires, is evicted, deleted or flushed.
type SessionStats struct {
	// Created is when this instance first had the pin, to the second.
	Created time.Time
	// LastUsed is when the last turn was recorded, to the second; zero when
	// no turn was.
	LastUsed time.Time
	// Turns counts the turns recorded (RecordTurn calls).
	Turns int64
	// InputTokens counts the turns' input tokens, cached ones included;
	// CacheReadTokens counts those of them read from the provider's prompt
	// cache; OutputTokens the turns' output tokens.
	InputTokens, CacheReadTokens, OutputTokens int64
}

// CacheHitRatio returns CacheReadTokens / InputTokens: the share of the
// session's input that the provider's prompt cache served. ok is false when
// no input token was counted.
func (st SessionStats) CacheHitRatio() (ratio float64, ok bool) {
	if st.InputTokens <= 0 {
		return 0, false
	}
	return float64(st.CacheReadTokens) / float64(st.InputTokens), true
}

// Session is a pin kept locally, with this instance's stats of its session.
type Session struct {
	Pin
	Stats SessionStats
}

// RecordTurn adds one turn of the session pinned at key (a pin key, as Get
// and Set take) to its stats: input tokens (every input token, cached ones
// included, as llmapi.Usage counts them), of them cacheRead read from the
// provider's prompt cache, and output tokens; the turn's time is its
// LastUsed. It is a no-op when key has no local pin. It never blocks, never
// fails and writes nothing to the cache: it neither refreshes the pin's TTL
// nor touches the shared store, so it can be called after every response. A
// negative count is taken as 0, a count above 2^32-1 as 2^32-1, and
// cacheRead as at most input.
func (s *Store) RecordTurn(key string, input, cacheRead, output int) {
	e, ok := s.cache.GetEntryQuietly(key)
	if !ok || e.Value.stats == nil {
		return
	}
	e.Value.stats.record(s.sinceEpoch(s.clock.NowNano()), clampCount(input), clampCount(cacheRead), clampCount(output))
}

// Session returns the pin for key if it is kept locally, with its stats. It
// has no side effects: the pin's TTL is not refreshed, and the shared store
// is not asked.
func (s *Store) Session(key string) (Session, bool) {
	e, ok := s.cache.GetEntryQuietly(key)
	if !ok {
		return Session{}, false
	}
	return s.session(e.Value), true
}

// Sessions iterates over the pins kept locally, with their stats.
func (s *Store) Sessions() iter.Seq2[string, Session] {
	return func(yield func(string, Session) bool) {
		for key, e := range s.cache.All() {
			if !yield(key, s.session(e)) {
				return
			}
		}
	}
}

func (s *Store) session(e entry) Session {
	out := Session{Pin: e.Pin}
	if e.stats != nil {
		out.Stats = e.stats.snapshot(s.epoch)
	}
	return out
}

// sessionStats are a pin's SessionStats as its local entry holds them,
// updated with atomics so that recording a turn writes nothing to the cache.
// They take 32 bytes, one allocation of the smallest size class that holds
// them (a pin's memory is budgeted, see BenchmarkHeapPerPin): times are whole
// seconds since the store's epoch, and the 32-bit counts saturate instead of
// wrapping. The 64-bit token counts cannot overflow: each turn adds at most
// 2^32-1.
type sessionStats struct {
	input, cacheRead atomic.Uint64
	output, turns    atomic.Uint32
	lastUsed         atomic.Uint32 // seconds since the epoch; valid once turns > 0
	created          uint32        // seconds since the epoch
}

// newStats returns fresh stats for a pin this instance has from nowNano on.
func (s *Store) newStats(nowNano int64) *sessionStats {
	return &sessionStats{created: s.sinceEpoch(nowNano)}
}

// record adds a turn. The writes are ordered for snapshot: the time first,
// input before cacheRead, the turn count last.
func (st *sessionStats) record(now, input, cacheRead, output uint32) {
	cacheRead = min(cacheRead, input)
	st.lastUsed.Store(now)
	st.input.Add(uint64(input))
	st.cacheRead.Add(uint64(cacheRead))
	addSaturating(&st.output, output)
	addSaturating(&st.turns, 1)
}

// snapshot reads the stats in the reverse order of record's writes, so that
// a snapshot taken while turns are recorded still has a LastUsed for every
// turn it counts and never more cached tokens than input tokens.
func (st *sessionStats) snapshot(epoch int64) SessionStats {
	out := SessionStats{Turns: int64(st.turns.Load())}
	out.OutputTokens = int64(st.output.Load())
	out.CacheReadTokens = int64(st.cacheRead.Load())
	out.InputTokens = int64(st.input.Load())
	out.Created = epochTime(epoch, st.created)
	if out.Turns > 0 {
		out.LastUsed = epochTime(epoch, st.lastUsed.Load())
	}
	return out
}

// addSaturating adds n to a, stopping at the largest uint32.
func addSaturating(a *atomic.Uint32, n uint32) {
	for {
		old := a.Load()
		sum := old + n
		if sum < old {
			sum = math.MaxUint32
		}
		if sum == old || a.CompareAndSwap(old, sum) {
			return
		}
	}
}

// clampCount makes a token count of a response (upstream-reported, so not
// to be trusted) a uint32.
func clampCount(n int) uint32 {
	return uint32(min(max(n, 0), math.MaxUint32))
}

// epochOf returns the store's epoch for a clock reading: the whole second
// at or before it, so that the stats' times are whole seconds.
func epochOf(nowNano int64) int64 {
	return nowNano - ((nowNano%int64(time.Second))+int64(time.Second))%int64(time.Second)
}

// sinceEpoch returns a clock reading as whole seconds since the store's
// epoch, 0 for one before it (a wall clock stepped back).
func (s *Store) sinceEpoch(nowNano int64) uint32 {
	secs := (nowNano - s.epoch) / int64(time.Second)
	return uint32(min(max(secs, 0), math.MaxUint32))
}

func epochTime(epoch int64, secs uint32) time.Time {
	return time.Unix(0, epoch).Add(time.Duration(secs) * time.Second).UTC()
}

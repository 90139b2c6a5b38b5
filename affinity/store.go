// Package affinity is the pin store: which model a session was routed to,
// kept in an otter cache with an idle TTL (L1), optionally shared between
// gateway instances through Redis (L2), plus affinity key validation.
package affinity

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// Pin is a pinned routing decision.
type Pin struct {
	// Model is the configured model name the session is pinned to.
	Model string
	// Route is the route that chose Model, "" when no route decided.
	Route string
}

// entry is a pin as the local cache keeps it.
type entry struct {
	Pin
	sharedAt int64         // clock time the shared store last heard this pin is in use
	stats    *sessionStats // this instance's stats of the session (see SessionStats)
}

// Shared is a store of pins shared by gateway instances (Redis). Every call
// is bounded by its context; errors leave the local store in charge.
type Shared interface {
	// Get returns the pin for key, found false when there is none.
	Get(ctx context.Context, key string) (pin Pin, found bool, err error)
	// SetIfAbsent pins key unless it is pinned already, and returns the pin
	// that holds: pin itself, or the one another instance set first.
	SetIfAbsent(ctx context.Context, key string, pin Pin, ttl time.Duration) (Pin, error)
	// Set pins key, replacing any pin.
	Set(ctx context.Context, key string, pin Pin, ttl time.Duration) error
	// Refresh extends the life of key's pin to ttl from now and returns it;
	// if key has no pin (the store lost it), it sets pin and returns pin.
	Refresh(ctx context.Context, key string, pin Pin, ttl time.Duration) (Pin, error)
	// Delete removes key's pin.
	Delete(ctx context.Context, key string) error
	// Flush removes every pin of this store.
	Flush(ctx context.Context) error
	// Close releases the connection.
	Close() error
}

// Options configure a Store.
type Options struct {
	// TTL is the idle lifetime of a pin: every read refreshes it.
	TTL time.Duration
	// MaxEntries bounds how many pins are kept locally; the least valuable
	// are evicted.
	MaxEntries int
	// Clock is the time source; nil means the wall clock. Tests inject one.
	Clock otter.Clock
	// OnSharedError is told of every failed shared-store call (for metrics).
	OnSharedError func(op string, err error)
}

// maxConcurrentRefreshes bounds the background refreshes of the shared
// store in flight; when it is reached, refreshes wait for a later request.
const maxConcurrentRefreshes = 64

// Store keeps pins: in memory, and in a shared store when one is attached.
// A pin in use is refreshed in the shared store at most once per quarter
// TTL, in the background: written back if the shared store lost it, and
// replaced here by the shared store's pin if that is another one, so
// instances that pinned a session apart (while they could not reach the
// shared store) converge on one model. Each local pin carries this
// instance's stats of its session (SessionStats: RecordTurn, Session,
// Sessions). It is safe for concurrent use.
type Store struct {
	cache   *otter.Cache[string, entry]
	states  *otter.Cache[string, []byte] // conversation state (see SetState)
	clock   otter.Clock
	epoch   int64        // clock time the stats' times count from, a whole second
	ttl     atomic.Int64 // nanoseconds
	onError func(op string, err error)

	mu        sync.RWMutex
	shared    Shared
	timeout   time.Duration
	refreshes chan struct{} // semaphore for background refreshes
}

// New creates a Store.
func New(opts Options) (*Store, error) {
	if opts.TTL <= 0 {
		return nil, fmt.Errorf("pin TTL must be positive, got %v", opts.TTL)
	}
	if opts.MaxEntries <= 0 {
		return nil, fmt.Errorf("max entries must be positive, got %d", opts.MaxEntries)
	}
	s := &Store{clock: opts.Clock, onError: opts.OnSharedError, refreshes: make(chan struct{}, maxConcurrentRefreshes)}
	if s.clock == nil {
		s.clock = wallClock{}
	}
	s.epoch = epochOf(s.clock.NowNano())
	if s.onError == nil {
		s.onError = func(string, error) {}
	}
	s.ttl.Store(int64(opts.TTL))
	cache, err := otter.New(&otter.Options[string, entry]{
		MaximumSize: opts.MaxEntries,
		ExpiryCalculator: otter.ExpiryAccessingFunc(func(otter.Entry[string, entry]) time.Duration {
			return time.Duration(s.ttl.Load())
		}),
		Clock: opts.Clock,
	})
	if err != nil {
		return nil, fmt.Errorf("creating pin cache: %w", err)
	}
	s.cache = cache
	if s.states, err = newStateCache(s, opts.Clock); err != nil {
		return nil, err
	}
	return s, nil
}

// Reconfigure applies a new TTL and bound to the pins already kept.
func (s *Store) Reconfigure(ttl time.Duration, maxEntries int) {
	if ttl > 0 {
		s.ttl.Store(int64(ttl))
	}
	if maxEntries > 0 {
		s.cache.SetMaximum(uint64(maxEntries))
	}
}

// Share attaches a shared store (nil detaches), closing the one it replaces.
// timeout bounds each shared-store call.
func (s *Store) Share(shared Shared, timeout time.Duration) {
	s.mu.Lock()
	old := s.shared
	s.shared, s.timeout = shared, timeout
	s.mu.Unlock()
	if old != nil && old != shared {
		_ = old.Close()
	}
}

func (s *Store) sharedStore() (Shared, time.Duration) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.shared, s.timeout
}

// Get returns the pin for key and refreshes its TTL. A local miss asks the
// shared store, if any.
func (s *Store) Get(ctx context.Context, key string) (Pin, bool) {
	if e, ok := s.cache.GetIfPresent(key); ok {
		s.refreshShared(key, e)
		return e.Pin, true
	}
	shared, timeout := s.sharedStore()
	if shared == nil {
		return Pin{}, false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	pin, found, err := shared.Get(ctx, key)
	if err != nil {
		s.onError("get", err)
		return Pin{}, false
	}
	if !found {
		return Pin{}, false
	}
	now := s.clock.NowNano()
	s.cache.Set(key, entry{Pin: pin, sharedAt: now, stats: s.newStats(now)})
	return pin, true
}

// GetOrDecide returns the pin for key, or calls decide, pins its result and
// returns it. Concurrent calls for one missing key share a single decide call
// and all return its result; decided is true only for the call whose decide
// ran. With a shared store, a pin another instance made is adopted, and a new
// decision is set only if absent there, so instances racing on one key end on
// one model. decide runs under a context that is not canceled with ctx, so a
// client that goes away does not cut the decision short for the others.
func (s *Store) GetOrDecide(ctx context.Context, key string, decide func(context.Context) Pin) (pin Pin, decided bool) {
	if pin, ok := s.Cached(key); ok {
		return pin, false
	}
	return s.load(ctx, key, decide)
}

// Cached returns the pin for key if it is kept locally, refreshing its TTL;
// it never calls the shared store in the foreground and never allocates.
func (s *Store) Cached(key string) (Pin, bool) {
	e, ok := s.cache.GetIfPresent(key)
	if !ok {
		return Pin{}, false
	}
	s.refreshShared(key, e)
	return e.Pin, true
}

// load is GetOrDecide's miss path, apart so the hit path allocates nothing.
func (s *Store) load(ctx context.Context, key string, decide func(context.Context) Pin) (Pin, bool) {
	decided := false
	loader := otter.LoaderFunc[string, entry](func(ctx context.Context, _ string) (entry, error) {
		shared, timeout := s.sharedStore()
		if shared == nil {
			decided = true
			pin := decide(ctx)
			return entry{Pin: pin, stats: s.newStats(s.clock.NowNano())}, nil
		}
		now := s.clock.NowNano()
		if pin, ok := s.sharedGet(ctx, shared, timeout, key); ok {
			return entry{Pin: pin, sharedAt: now, stats: s.newStats(now)}, nil
		}
		mine := decide(ctx)
		sctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		winner, err := shared.SetIfAbsent(sctx, key, mine, time.Duration(s.ttl.Load()))
		if err != nil {
			s.onError("set", err)
			winner = mine
		}
		decided = winner == mine
		return entry{Pin: winner, sharedAt: now, stats: s.newStats(now)}, nil
	})
	e, err := s.cache.Get(context.WithoutCancel(ctx), key, loader)
	if err != nil {
		// the loader never fails: this was a panic recovered by otter;
		// decide outside the cache rather than lose the request
		return decide(ctx), true
	}
	return e.Pin, decided
}

func (s *Store) sharedGet(ctx context.Context, shared Shared, timeout time.Duration, key string) (Pin, bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pin, found, err := shared.Get(ctx, key)
	if err != nil {
		s.onError("get", err)
		return Pin{}, false
	}
	return pin, found
}

// Set pins key to pin, replacing any pin it had, here and in the shared store.
// The session's stats are kept if it stays on the same model, else they
// start afresh.
func (s *Store) Set(ctx context.Context, key string, pin Pin) {
	now := s.clock.NowNano()
	s.cache.Compute(key, func(old entry, found bool) (entry, otter.ComputeOp) {
		stats := old.stats
		if !found || stats == nil || old.Model != pin.Model {
			stats = s.newStats(now)
		}
		return entry{Pin: pin, sharedAt: now, stats: stats}, otter.WriteOp
	})
	if shared, timeout := s.sharedStore(); shared != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		if err := shared.Set(ctx, key, pin, time.Duration(s.ttl.Load())); err != nil {
			s.onError("set", err)
		}
	}
}

// Delete removes the pin for key, here and in the shared store.
func (s *Store) Delete(ctx context.Context, key string) {
	s.cache.Invalidate(key)
	if shared, timeout := s.sharedStore(); shared != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		if err := shared.Delete(ctx, key); err != nil {
			s.onError("delete", err)
		}
	}
}

// Flush removes every pin, here and in the shared store.
func (s *Store) Flush(ctx context.Context) error {
	s.cache.InvalidateAll()
	s.states.InvalidateAll()
	if shared, timeout := s.sharedStore(); shared != nil {
		ctx, cancel := context.WithTimeout(ctx, 10*timeout)
		defer cancel()
		if err := shared.Flush(ctx); err != nil {
			s.onError("flush", err)
			return err
		}
	}
	return nil
}

// refreshShared refreshes a hot pin in the shared store at most once per
// quarter TTL, in the background, so a busy session does not write to the
// shared store on every request.
func (s *Store) refreshShared(key string, e entry) {
	shared, timeout := s.sharedStore()
	if shared == nil {
		return
	}
	ttl := time.Duration(s.ttl.Load())
	now := s.clock.NowNano()
	if now-e.sharedAt < int64(ttl/4) {
		return
	}
	select {
	case s.refreshes <- struct{}{}:
	default:
		return // enough refreshes in flight; a later request will do it
	}
	// stamp the entry only if it is still the pin we read: a Delete or a
	// new pin since then must not be undone, here or in the shared store
	stamped, ok := s.cache.ComputeIfPresent(key, func(current entry) (entry, otter.ComputeOp) {
		if current.Pin != e.Pin {
			return current, otter.CancelOp
		}
		current.sharedAt = now
		return current, otter.WriteOp
	})
	if !ok || stamped.Pin != e.Pin {
		<-s.refreshes
		return
	}
	go s.refresh(shared, timeout, key, stamped, ttl)
}

// refresh is refreshShared's background part: it refreshes the stamped pin
// in the shared store and adopts the pin the shared store holds if that is
// another one, unless the local entry changed since it was stamped.
func (s *Store) refresh(shared Shared, timeout time.Duration, key string, stamped entry, ttl time.Duration) {
	defer func() { <-s.refreshes }()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	held, err := shared.Refresh(ctx, key, stamped.Pin, ttl)
	if err != nil {
		s.onError("refresh", err)
		return
	}
	if held == stamped.Pin {
		return
	}
	s.cache.ComputeIfPresent(key, func(current entry) (entry, otter.ComputeOp) {
		if current != stamped {
			return current, otter.CancelOp // changed since the stamp: newer than the answer
		}
		if held.Model != current.Model {
			current.stats = s.newStats(s.clock.NowNano()) // another model: its prompt cache starts cold
		}
		current.Pin = held
		return current, otter.WriteOp
	})
}

// Len returns the number of pins kept locally, once pending expirations
// and evictions are done (a cost for a metrics scrape or the admin API, not
// for requests).
func (s *Store) Len() int {
	s.cache.CleanUp()
	return s.cache.EstimatedSize()
}

// All iterates over the pins kept locally (Sessions adds their stats).
func (s *Store) All() iter.Seq2[string, Pin] {
	return func(yield func(string, Pin) bool) {
		for key, e := range s.cache.All() {
			if !yield(key, e.Pin) {
				return
			}
		}
	}
}

// Close stops the store's background work, drops its local pins and closes
// the shared store's connection.
func (s *Store) Close() {
	s.cache.InvalidateAll()
	s.cache.StopAllGoroutines()
	s.states.InvalidateAll()
	s.states.StopAllGoroutines()
	s.Share(nil, 0)
}

// wallClock is otter's default time source, for the store's own timestamps.
type wallClock struct{}

func (wallClock) NowNano() int64                      { return time.Now().UnixNano() }
func (wallClock) Tick(time.Duration) <-chan time.Time { return nil }

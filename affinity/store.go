// Package affinity is the pin store: which model a session was routed to,
// kept in an otter cache with an idle TTL, plus affinity key validation.
package affinity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/maypok86/otter/v2"
)

// MaxKeyLen is the longest affinity key accepted, in bytes.
const MaxKeyLen = 256

// ValidateKey checks an affinity key: 1 to MaxKeyLen bytes of printable
// ASCII (0x20-0x7E). The error never quotes the key.
func ValidateKey(key string) error {
	if key == "" {
		return errors.New("affinity key is empty")
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("affinity key is %d bytes; the limit is %d", len(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("affinity key has a non-printable or non-ASCII byte at offset %d", i)
		}
	}
	return nil
}

// PinKey is the cache key of a pin: the affinity key and the model the client
// asked for, so a side call on another model with the same affinity key has a
// pin of its own. The separator cannot occur in a valid affinity key.
func PinKey(key, requestedModel string) string {
	return key + "\x00" + requestedModel
}

// Pin is a pinned routing decision.
type Pin struct {
	// Model is the configured model name the session is pinned to.
	Model string
	// Route is the route that chose Model, "" when no route decided.
	Route string
}

// Options configure a Store.
type Options struct {
	// TTL is the idle lifetime of a pin: every read refreshes it.
	TTL time.Duration
	// MaxEntries bounds how many pins are kept; the least valuable are evicted.
	MaxEntries int
	// Clock is the time source; nil means the wall clock. Tests inject one.
	Clock otter.Clock
}

// Store keeps pins. It is safe for concurrent use.
type Store struct {
	cache *otter.Cache[string, Pin]
}

// New creates a Store.
func New(opts Options) (*Store, error) {
	if opts.TTL <= 0 {
		return nil, fmt.Errorf("pin TTL must be positive, got %v", opts.TTL)
	}
	if opts.MaxEntries <= 0 {
		return nil, fmt.Errorf("max entries must be positive, got %d", opts.MaxEntries)
	}
	cache, err := otter.New(&otter.Options[string, Pin]{
		MaximumSize:      opts.MaxEntries,
		ExpiryCalculator: otter.ExpiryAccessing[string, Pin](opts.TTL),
		Clock:            opts.Clock,
	})
	if err != nil {
		return nil, fmt.Errorf("creating pin cache: %w", err)
	}
	return &Store{cache: cache}, nil
}

// Get returns the pin for key and refreshes its TTL.
func (s *Store) Get(key string) (Pin, bool) {
	return s.cache.GetIfPresent(key)
}

// GetOrDecide returns the pin for key, or calls decide, pins its result and
// returns it. Concurrent calls for one missing key share a single decide call
// and all return its result; decided is true only for the call whose decide
// ran. decide runs under a context that is not canceled with ctx, so a
// client that goes away does not cut the decision short for the others.
func (s *Store) GetOrDecide(ctx context.Context, key string, decide func(context.Context) Pin) (pin Pin, decided bool) {
	loader := otter.LoaderFunc[string, Pin](func(ctx context.Context, _ string) (Pin, error) {
		decided = true
		return decide(ctx), nil
	})
	pin, err := s.cache.Get(context.WithoutCancel(ctx), key, loader)
	if err != nil {
		// the loader never fails, so this is a panic recovered by otter:
		// decide outside the cache rather than lose the request
		return decide(ctx), true
	}
	return pin, decided
}

// Set pins key to pin, replacing any pin it had.
func (s *Store) Set(key string, pin Pin) {
	s.cache.Set(key, pin)
}

// Delete removes the pin for key.
func (s *Store) Delete(key string) {
	s.cache.Invalidate(key)
}

// Len returns the approximate number of pins.
func (s *Store) Len() int {
	return s.cache.EstimatedSize()
}

// CleanUp performs pending maintenance: expirations and evictions.
func (s *Store) CleanUp() {
	s.cache.CleanUp()
}

// Close stops the store's background work and drops its pins.
func (s *Store) Close() {
	s.cache.InvalidateAll()
	s.cache.StopAllGoroutines()
}

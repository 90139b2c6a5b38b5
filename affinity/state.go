package affinity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
)

// MaxStateBytes bounds the conversation state a store keeps in memory;
// beyond it the least valuable entries are evicted.
const MaxStateBytes = 64 << 20

// StateShared is a Shared store that also keeps conversation state: the
// turns behind a response id, for clients that continue a conversation by
// that id (Responses' previous_response_id) on a model that keeps none.
type StateShared interface {
	GetState(ctx context.Context, key string) ([]byte, bool, error)
	SetState(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// newStateCache is the in-memory state cache: bounded in bytes, each entry
// living the pin TTL from its last use.
func newStateCache(s *Store, clock otter.Clock) (*otter.Cache[string, []byte], error) {
	cache, err := otter.New(&otter.Options[string, []byte]{
		MaximumWeight: MaxStateBytes,
		Weigher:       func(key string, value []byte) uint32 { return uint32(min(len(key)+len(value), 1<<31)) },
		ExpiryCalculator: otter.ExpiryAccessingFunc(func(otter.Entry[string, []byte]) time.Duration {
			return time.Duration(s.ttl.Load())
		}),
		Clock: clock,
	})
	if err != nil {
		return nil, fmt.Errorf("creating state cache: %w", err)
	}
	return cache, nil
}

// SetState keeps value under key for the pin TTL, in memory and in the
// shared store when it keeps state; a shared-store failure leaves it in
// memory only.
func (s *Store) SetState(ctx context.Context, key string, value []byte) {
	s.states.Set(key, value)
	shared, timeout := s.sharedStore()
	if st, ok := shared.(StateShared); ok {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := st.SetState(ctx, key, value, time.Duration(s.ttl.Load())); err != nil {
			s.onError("set_state", err)
		}
	}
}

// GetState returns the state under key: from memory, else from the shared
// store (another instance may have written it).
func (s *Store) GetState(ctx context.Context, key string) ([]byte, bool) {
	if v, ok := s.states.GetIfPresent(key); ok {
		return v, true
	}
	shared, timeout := s.sharedStore()
	st, ok := shared.(StateShared)
	if !ok {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, found, err := st.GetState(ctx, key)
	if err != nil {
		s.onError("get_state", err)
		return nil, false
	}
	if found {
		s.states.Set(key, v)
	}
	return v, found
}

// stateKey maps a state key to its Redis key, apart from the pins'.
func (r *Redis) stateKey(key string) string { return r.key("state\x00" + key) }

// GetState returns the state under key.
func (r *Redis) GetState(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := r.client.Get(ctx, r.stateKey(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// SetState keeps value under key for ttl.
func (r *Redis) SetState(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return r.client.Set(ctx, r.stateKey(key), value, ttl).Err()
}

// Interface guard
var _ StateShared = (*Redis)(nil)

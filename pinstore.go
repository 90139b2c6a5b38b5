package llmaffinity

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/llmaffinity/caddy-llm-affinity/affinity"
)

// pinStores holds every handler's pin store by name. It is package-level so
// that pins outlive config reloads: Caddy provisions the new config before
// it cleans up the old one, so the new handler loads the store the old one
// used, and the store is destroyed only when no config uses its name.
var pinStores = caddy.NewUsagePool()

// pooledStore is a pin store in the pool, with the shared-store settings it
// was last given.
type pooledStore struct {
	*affinity.Store

	mu           sync.Mutex
	sharedConfig string // JSON of the Redis config in use; "" for none
}

// Destruct closes the store when the last config using it goes away.
func (p *pooledStore) Destruct() error {
	p.Close()
	return nil
}

// storeSettings are what a config asks of its pin store. A config load
// provisions every module before it is known whether the load succeeds, and
// the store is shared with the config that is serving, so a handler only
// stages them in Provision; they apply once its config is running.
type storeSettings struct {
	ttl        time.Duration
	maxEntries int
	// redis is the shared store with its defaults filled in and its
	// placeholders resolved; nil for none.
	redis *RedisConfig
}

// newStoreSettings resolves a handler's pin store settings.
func newStoreSettings(name string, ttl time.Duration, maxEntries int, cfg *StoreConfig) (*storeSettings, error) {
	redis, err := cfg.resolved(name)
	if err != nil {
		return nil, err
	}
	return &storeSettings{ttl: ttl, maxEntries: maxEntries, redis: redis}, nil
}

// loadPinStore returns the pool's store for name, creating it with settings
// if there is none. A store that exists keeps its settings until apply.
func loadPinStore(name string, settings *storeSettings) (*pooledStore, error) {
	val, _, err := pinStores.LoadOrNew(name, func() (caddy.Destructor, error) {
		s, err := affinity.New(affinity.Options{TTL: settings.ttl, MaxEntries: settings.maxEntries, OnSharedError: countStoreError})
		if err != nil {
			return nil, err
		}
		return &pooledStore{Store: s}, nil
	})
	if err != nil {
		return nil, err
	}
	return val.(*pooledStore), nil
}

// apply gives the store a running config's settings: its ttl and bound, and
// its shared store, keeping the current connection when those settings did
// not change.
func (p *pooledStore) apply(s *storeSettings) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Reconfigure(s.ttl, s.maxEntries)
	if s.redis == nil {
		p.Share(nil, 0)
		p.sharedConfig = ""
		return
	}
	fingerprint, _ := json.Marshal(s.redis) // strings, ints and a duration always marshal
	if string(fingerprint) == p.sharedConfig {
		return
	}
	rc := s.redis
	p.Share(affinity.NewRedis(affinity.RedisOptions{
		Addresses: rc.Addresses, Password: rc.Password, DB: rc.DB, Prefix: rc.Prefix,
	}), time.Duration(rc.Timeout))
	p.sharedConfig = string(fingerprint)
}

// Interface guard
var _ caddy.Destructor = (*pooledStore)(nil)

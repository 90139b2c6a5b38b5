package llmaffinity

import (
	"encoding/json"
	"fmt"
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

// loadPinStore returns the pool's store for name, creating it if needed, and
// applies ttl and maxEntries to it (a reload may change them).
func loadPinStore(name string, ttl time.Duration, maxEntries int) (*pooledStore, error) {
	val, loaded, err := pinStores.LoadOrNew(name, func() (caddy.Destructor, error) {
		s, err := affinity.New(affinity.Options{TTL: ttl, MaxEntries: maxEntries, OnSharedError: countStoreError})
		if err != nil {
			return nil, err
		}
		return &pooledStore{Store: s}, nil
	})
	if err != nil {
		return nil, err
	}
	p := val.(*pooledStore)
	if loaded {
		p.Reconfigure(ttl, maxEntries)
	}
	return p, nil
}

// share attaches the configured shared store, keeping the current connection
// when its settings did not change.
func (p *pooledStore) share(cfg *StoreConfig, name string, repl *caddy.Replacer) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cfg == nil || cfg.Redis == nil {
		p.Share(nil, 0)
		p.sharedConfig = ""
		return nil
	}
	rc := *cfg.Redis
	if rc.Prefix == "" {
		rc.Prefix = "llm_affinity:" + name + ":"
	}
	if rc.Timeout <= 0 {
		rc.Timeout = caddy.Duration(DefaultRedisTimeout)
	}
	rc.Password = repl.ReplaceAll(rc.Password, "")
	fingerprint, err := json.Marshal(rc)
	if err != nil {
		return fmt.Errorf("store redis: %v", err)
	}
	if string(fingerprint) == p.sharedConfig {
		return nil
	}
	p.Share(affinity.NewRedis(affinity.RedisOptions{
		Addresses: rc.Addresses, Password: rc.Password, DB: rc.DB, Prefix: rc.Prefix,
	}), time.Duration(rc.Timeout))
	p.sharedConfig = string(fingerprint)
	return nil
}

// Interface guard
var _ caddy.Destructor = (*pooledStore)(nil)

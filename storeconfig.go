package llmaffinity

import (
	"fmt"
	"math"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/llmaffinity/caddy-llm-affinity/internal/placeholder"
	"github.com/llmaffinity/caddy-llm-affinity/internal/subdirective"
)

// DefaultRedisTimeout is the longest a Redis call may take by default.
const DefaultRedisTimeout = 100 * time.Millisecond

// StoreConfig selects a store that shares pins between gateway instances.
type StoreConfig struct {
	// Redis (or a Redis cluster or sentinels) holds the shared pins; each
	// instance keeps its own in-memory pins in front of it.
	Redis *RedisConfig `json:"redis,omitempty"`

	origin origin
}

// RedisConfig is the shared Redis store. A hit in memory costs no network; a
// miss reads Redis before routing; a new pin is set in Redis only if absent,
// so instances racing on one session agree on one model. Redis being down or
// slow costs at most Timeout per call: requests go on from memory.
type RedisConfig struct {
	// host:port of the server (or of cluster nodes or sentinels). Required.
	Addresses []string `json:"addresses"`
	// Placeholders such as {env.REDIS_PASSWORD} are resolved at provision time.
	Password string `json:"password,omitempty"`
	// The database number. Default: 0.
	DB int `json:"db,omitempty"`
	// Namespaces the keys. Default: "llm_affinity:<name>:".
	Prefix string `json:"prefix,omitempty"`
	// The longest a Redis call may take. Default: 100ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// validate checks the store's settings but its numbers (see checkRanges).
func (s *StoreConfig) validate() error {
	rc := s.Redis
	if rc == nil {
		return s.origin.errorf("store needs a backend: redis")
	}
	if len(rc.Addresses) == 0 {
		return s.origin.errorf("store redis: address is required (one or more host:port)")
	}
	for _, addr := range rc.Addresses {
		if err := checkDial(addr); err != nil {
			return s.origin.errorf("store redis: address %s: %v", addr, err)
		}
	}
	return nil
}

// checkRanges checks the store's numbers, which the Caddyfile parser checks
// as it reads them.
func (s *StoreConfig) checkRanges() error {
	if rc := s.Redis; rc != nil && (rc.DB < 0 || rc.Timeout < 0) {
		return s.origin.errorf("store redis: db and timeout must not be negative")
	}
	return nil
}

// resolved returns the Redis settings with their defaults filled in (the
// prefix names the pin store, name) and the password's placeholders
// resolved; nil when there is no shared store.
func (s *StoreConfig) resolved(name string) (*RedisConfig, error) {
	if s == nil || s.Redis == nil {
		return nil, nil
	}
	rc := *s.Redis
	if rc.Prefix == "" {
		rc.Prefix = "llm_affinity:" + name + ":"
	}
	if rc.Timeout <= 0 {
		rc.Timeout = caddy.Duration(DefaultRedisTimeout)
	}
	password, err := placeholder.Resolve(rc.Password)
	if err != nil {
		return nil, fmt.Errorf("store redis: password: %v", err)
	}
	rc.Password = password
	return &rc, nil
}

// parseStore reads a store block:
//
//	store redis {
//		address  <host:port> ...
//		password <value>
//		db       <n>
//		prefix   <prefix>
//		timeout  <duration>
//	}
func parseStore(d *caddyfile.Dispenser) (*StoreConfig, error) {
	s := &StoreConfig{origin: originOf(d)}
	var kind string
	if !d.AllArgs(&kind) || kind != "redis" {
		return nil, d.Errf("store takes a type: 'store redis { ... }'")
	}
	const prefix = "store redis: "
	rc := new(RedisConfig)
	err := subdirective.Each(d, prefix, func(sub string) error {
		switch sub {
		case "address":
			return appendArgs(d, &rc.Addresses)
		case "password":
			return subdirective.One(d, "", sub, rc.Password != "", subdirective.String(&rc.Password), "")
		case "prefix":
			return subdirective.One(d, "", sub, rc.Prefix != "", subdirective.String(&rc.Prefix), "")
		case "db":
			return subdirective.One(d, prefix, sub, rc.DB != 0, subdirective.Int(&rc.DB, 0, math.MaxInt), "")
		case "timeout":
			return subdirective.One(d, prefix, sub, rc.Timeout != 0, subdirective.PositiveDuration(&rc.Timeout), "must be a positive duration")
		}
		return subdirective.ErrUnrecognized
	})
	if err != nil {
		return nil, err
	}
	s.Redis = rc
	return s, nil
}

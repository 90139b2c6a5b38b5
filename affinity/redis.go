package affinity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configure a Redis shared store.
type RedisOptions struct {
	// Addresses are host:port of a server, cluster nodes or sentinels.
	Addresses []string
	Password  string
	DB        int
	// Prefix namespaces the store's keys, e.g. "llm_affinity:main:".
	Prefix string
}

// Redis is a Shared store on Redis. Its keys are Prefix plus a SHA-256 of the
// pin key, so they carry neither affinity ids nor prompt text; its values are
// "model\x00route".
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis connects lazily: the first call dials.
func NewRedis(opts RedisOptions) *Redis {
	return &Redis{
		client: redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs:    opts.Addresses,
			Password: opts.Password,
			DB:       opts.DB,
			// fail fast: the local store serves while Redis is away, and
			// every call ends at its context's deadline (the store's timeout)
			MaxRetries:            1,
			DialTimeout:           time.Second,
			ContextTimeoutEnabled: true,
		}),
		prefix: opts.Prefix,
	}
}

// key maps a pin key to its Redis key.
func (r *Redis) key(pinKey string) string {
	sum := sha256.Sum256([]byte(pinKey))
	return r.prefix + hex.EncodeToString(sum[:16])
}

func encodePin(p Pin) string { return p.Model + "\x00" + p.Route }

func decodePin(v string) (Pin, bool) {
	model, route, ok := strings.Cut(v, "\x00")
	return Pin{Model: model, Route: route}, ok && model != ""
}

// Get returns the pin for key.
func (r *Redis) Get(ctx context.Context, key string) (Pin, bool, error) {
	v, err := r.client.Get(ctx, r.key(key)).Result()
	if errors.Is(err, redis.Nil) {
		return Pin{}, false, nil
	}
	if err != nil {
		return Pin{}, false, err
	}
	pin, ok := decodePin(v)
	return pin, ok, nil
}

// SetIfAbsent sets key unless it exists (SET NX), and returns the pin that holds.
func (r *Redis) SetIfAbsent(ctx context.Context, key string, pin Pin, ttl time.Duration) (Pin, error) {
	return heldPin(pin, r.client.SetArgs(ctx, r.key(key), encodePin(pin), setIfAbsent(ttl)))
}

// setIfAbsent is SET NX GET with the TTL: it writes only an absent key and
// answers the value the key held.
func setIfAbsent(ttl time.Duration) redis.SetArgs {
	return redis.SetArgs{Mode: "NX", TTL: ttl, Get: true}
}

// heldPin is the pin that holds after set, a setIfAbsent of pin: pin if the
// key was absent (or held a value that is not a pin), else the pin it held.
func heldPin(pin Pin, set *redis.StatusCmd) (Pin, error) {
	prev, err := set.Result()
	switch {
	case errors.Is(err, redis.Nil): // it was absent: ours holds
		return pin, nil
	case err != nil:
		return pin, err
	}
	if winner, ok := decodePin(prev); ok {
		return winner, nil
	}
	return pin, nil
}

// Set sets key with the TTL.
func (r *Redis) Set(ctx context.Context, key string, pin Pin, ttl time.Duration) error {
	return r.client.Set(ctx, r.key(key), encodePin(pin), ttl).Err()
}

// Refresh resets key's TTL, or sets key to pin if it is absent, and returns
// the pin that holds, in one round trip: SET NX GET and PEXPIRE, pipelined.
func (r *Redis) Refresh(ctx context.Context, key string, pin Pin, ttl time.Duration) (Pin, error) {
	rkey := r.key(key)
	var set *redis.StatusCmd
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		set = p.SetArgs(ctx, rkey, encodePin(pin), setIfAbsent(ttl))
		p.PExpire(ctx, rkey, ttl)
		return nil
	})
	// redis.Nil is the SET's answer when it wrote pin, with its TTL: the
	// PEXPIRE after it does not matter then
	if err != nil && !errors.Is(err, redis.Nil) {
		return pin, err
	}
	return heldPin(pin, set)
}

// Delete removes key.
func (r *Redis) Delete(ctx context.Context, key string) error {
	return r.client.Del(ctx, r.key(key)).Err()
}

// Flush removes every key under the prefix.
func (r *Redis) Flush(ctx context.Context) error {
	iter := r.client.Scan(ctx, 0, globEscape(r.prefix)+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := r.client.Del(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return r.client.Del(ctx, batch...).Err()
	}
	return nil
}

// globEscape makes s match itself literally in a Redis glob pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\^-`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Close closes the connection pool.
func (r *Redis) Close() error { return r.client.Close() }

// Interface guard
var _ Shared = (*Redis)(nil)

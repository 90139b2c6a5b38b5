package affinity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmaffinity/caddy-llm-affinity/internal/redistest"
)

// testRedis is a private redis-server child process on a loopback port.
type testRedis struct {
	server *redistest.Server // to kill and restart it
	addr   string
	client *redis.Client // a plain client for looking at what the store wrote
}

// startRedis starts a private redis-server on a free loopback port, stopped
// when the test ends. There is no skip: the shared store must be tested.
func startRedis(t *testing.T) *testRedis {
	t.Helper()
	server := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: server.Addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = client.Close() })
	return &testRedis{server: server, addr: server.Addr, client: client}
}

// newRedisStore returns a Redis shared store on r under prefix, closed when
// the test ends.
func (r *testRedis) newRedisStore(t *testing.T, prefix string) *Redis {
	t.Helper()
	rs := NewRedis(RedisOptions{Addresses: []string{r.addr}, Prefix: prefix})
	t.Cleanup(func() { _ = rs.Close() })
	return rs
}

// redisKeyOf is the Redis key the store must use for a pin key.
func redisKeyOf(prefix, pinKey string) string {
	sum := sha256.Sum256([]byte(pinKey))
	return prefix + hex.EncodeToString(sum[:])[:32]
}

// testCtx is a context bounded generously, for calls to a healthy Redis.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestRedisGetMissing(t *testing.T) {
	r := startRedis(t)
	rs := r.newRedisStore(t, "test:")
	ctx := testCtx(t)
	pin, found, err := rs.Get(ctx, PinKey("", "session-1", "gpt-4o"))
	if err != nil || found || pin != (Pin{}) {
		t.Fatalf("Get of a missing key = %+v, %v, %v; want a zero pin, false, nil", pin, found, err)
	}
}

func TestRedisSetIfAbsent(t *testing.T) {
	r := startRedis(t)
	const prefix = "test:sia:"
	rs := r.newRedisStore(t, prefix)
	ctx := testCtx(t)
	key := PinKey("", "session-1", "gpt-4o")
	rkey := redisKeyOf(prefix, key)
	ours := Pin{Model: "big", Route: "code"}

	got, err := rs.SetIfAbsent(ctx, key, ours, time.Hour)
	if err != nil || got != ours {
		t.Fatalf("SetIfAbsent on an absent key = %+v, %v; want %+v, nil", got, err, ours)
	}
	ttl, err := r.client.TTL(ctx, rkey).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > time.Hour {
		t.Errorf("TTL of %s after SetIfAbsent with 1h = %v, want in (0, 1h]", rkey, ttl)
	}
	if pin, found, err := rs.Get(ctx, key); err != nil || !found || pin != ours {
		t.Errorf("Get after SetIfAbsent = %+v, %v, %v; want %+v, true, nil", pin, found, err, ours)
	}

	// present: the existing pin holds and is returned, and is not overwritten
	theirs := Pin{Model: "small", Route: "chat"}
	got, err = rs.SetIfAbsent(ctx, key, theirs, time.Minute)
	if err != nil || got != ours {
		t.Fatalf("SetIfAbsent on a present key = %+v, %v; want the existing %+v, nil", got, err, ours)
	}
	if raw, err := r.client.Get(ctx, rkey).Result(); err != nil || raw != "big\x00code" {
		t.Errorf("raw value after a losing SetIfAbsent = %q, %v; want %q", raw, err, "big\x00code")
	}
	if pin, _, _ := rs.Get(ctx, key); pin != ours {
		t.Errorf("Get after a losing SetIfAbsent = %+v, want %+v", pin, ours)
	}
	// the loser's TTL did not replace the holder's
	if ttl, _ := r.client.TTL(ctx, rkey).Result(); ttl <= time.Minute {
		t.Errorf("TTL after a losing SetIfAbsent with 1m = %v, want the holder's (about 1h)", ttl)
	}
}

func TestRedisSetRefreshDelete(t *testing.T) {
	r := startRedis(t)
	const prefix = "test:std:"
	rs := r.newRedisStore(t, prefix)
	ctx := testCtx(t)
	key := PinKey("", "session-1", "gpt-4o")
	rkey := redisKeyOf(prefix, key)

	// Set on an absent key, then over it
	first, second := Pin{Model: "a", Route: "r1"}, Pin{Model: "b"}
	if err := rs.Set(ctx, key, first, 10*time.Second); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if pin, found, err := rs.Get(ctx, key); err != nil || !found || pin != first {
		t.Fatalf("Get after Set = %+v, %v, %v; want %+v", pin, found, err, first)
	}
	if err := rs.Set(ctx, key, second, 20*time.Second); err != nil {
		t.Fatalf("second Set: %v", err)
	}
	if pin, found, err := rs.Get(ctx, key); err != nil || !found || pin != second {
		t.Fatalf("Get after a replacing Set = %+v, %v, %v; want %+v", pin, found, err, second)
	}
	if ttl, _ := r.client.TTL(ctx, rkey).Result(); ttl <= 10*time.Second || ttl > 20*time.Second {
		t.Errorf("TTL after Set with 20s = %v, want in (10s, 20s]", ttl)
	}

	// Refresh extends the TTL and answers the pin held, not the one offered
	if held, err := rs.Refresh(ctx, key, first, time.Hour); err != nil || held != second {
		t.Fatalf("Refresh offering %+v = %+v, %v; want the held %+v, nil", first, held, err, second)
	}
	if ttl, _ := r.client.TTL(ctx, rkey).Result(); ttl <= 20*time.Second || ttl > time.Hour {
		t.Errorf("TTL after Refresh with 1h = %v, want in (20s, 1h]", ttl)
	}
	if pin, _, _ := rs.Get(ctx, key); pin != second {
		t.Errorf("Get after Refresh = %+v, want %+v", pin, second)
	}
	// Refresh of a missing key (Redis lost it) writes the offered pin back
	missing := PinKey("", "session-2", "gpt-4o")
	if held, err := rs.Refresh(ctx, missing, first, time.Hour); err != nil || held != first {
		t.Errorf("Refresh of a missing key = %+v, %v; want the offered %+v, nil", held, err, first)
	}
	if pin, found, err := rs.Get(ctx, missing); err != nil || !found || pin != first {
		t.Errorf("Get after a Refresh of a missing key = %+v, %v, %v; want %+v", pin, found, err, first)
	}
	if ttl, _ := r.client.TTL(ctx, redisKeyOf(prefix, missing)).Result(); ttl <= 20*time.Second || ttl > time.Hour {
		t.Errorf("TTL after a Refresh of a missing key with 1h = %v, want in (20s, 1h]", ttl)
	}

	// Delete
	if err := rs.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if pin, found, err := rs.Get(ctx, key); err != nil || found {
		t.Fatalf("Get after Delete = %+v, %v, %v; want a miss", pin, found, err)
	}
	if n, _ := r.client.Exists(ctx, rkey).Result(); n != 0 {
		t.Errorf("key %s still exists after Delete", rkey)
	}
	if err := rs.Delete(ctx, key); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	// after Delete, SetIfAbsent sets again
	if got, err := rs.SetIfAbsent(ctx, key, first, time.Minute); err != nil || got != first {
		t.Errorf("SetIfAbsent after Delete = %+v, %v; want %+v", got, err, first)
	}
}

func TestRedisFlush(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		other  string // another store's prefix, whose keys must survive
		n      int    // pins in the flushed store
	}{
		{name: "plain prefix", prefix: "llm_affinity:main:", other: "llm_affinity:other:", n: 5},
		{name: "more pins than one batch", prefix: "llm_affinity:big:", other: "llm_affinity:big2:", n: 1203},
		// a store name or prefix is the user's: glob characters in it are
		// literal, not a SCAN pattern
		{name: "prefix with a star", prefix: "tenant*:", other: "tenantX:", n: 3},
		{name: "prefix with a question mark", prefix: "site?:", other: "siteA:", n: 3},
		{name: "prefix with brackets", prefix: "llm_affinity:[::1]:443:", other: "llm_affinity:1:443:", n: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startRedis(t)
			ctx := testCtx(t)
			rs := r.newRedisStore(t, tt.prefix)
			other := r.newRedisStore(t, tt.other)

			for i := 0; i < tt.n; i++ {
				key := PinKey("", fmt.Sprintf("session-%d", i), "m")
				if err := rs.Set(ctx, key, Pin{Model: "a"}, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			otherKeys := []string{PinKey("", "session-0", "m"), PinKey("", "other-session", "m")}
			for _, key := range otherKeys {
				if err := other.Set(ctx, key, Pin{Model: "b"}, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.client.Set(ctx, "unrelated", "keep me", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if size, _ := r.client.DBSize(ctx).Result(); size != int64(tt.n+len(otherKeys)+1) {
				t.Fatalf("DBSIZE before Flush = %d, want %d", size, tt.n+len(otherKeys)+1)
			}

			if err := rs.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}

			if v, err := r.client.Get(ctx, "unrelated").Result(); err != nil || v != "keep me" {
				t.Errorf("unrelated key after Flush = %q, %v; want it kept", v, err)
			}
			for _, key := range otherKeys {
				if pin, found, err := other.Get(ctx, key); err != nil || !found || pin.Model != "b" {
					t.Errorf("other store's pin after Flush = %+v, %v, %v; want it kept", pin, found, err)
				}
			}
			for i := 0; i < tt.n; i++ {
				key := PinKey("", fmt.Sprintf("session-%d", i), "m")
				if pin, found, err := rs.Get(ctx, key); err != nil || found {
					t.Fatalf("pin %d after Flush = %+v, %v, %v; want it gone", i, pin, found, err)
				}
			}
			if size, _ := r.client.DBSize(ctx).Result(); size != int64(len(otherKeys)+1) {
				t.Errorf("DBSIZE after Flush = %d, want %d", size, len(otherKeys)+1)
			}
			// flushing an empty store is fine
			if err := rs.Flush(ctx); err != nil {
				t.Errorf("second Flush: %v", err)
			}
		})
	}
}

// Redis keys and values carry neither affinity keys nor requested models:
// keys are the prefix and 32 hex digits of a SHA-256.
func TestRedisKeyFormat(t *testing.T) {
	r := startRedis(t)
	const prefix = "llm_affinity:default:"
	rs := r.newRedisStore(t, prefix)
	ctx := testCtx(t)

	const (
		secretKey  = "secret-session-token-0123"
		reqModel   = "requested-model-xyz"
		scopeValue = "tenant-scope-hash"
	)
	keys := []string{
		PinKey("", secretKey, reqModel),
		PinKey(scopeValue, secretKey, reqModel),
		PinKey("", secretKey, ""),
	}
	for _, key := range keys {
		if _, err := rs.SetIfAbsent(ctx, key, Pin{Model: "big", Route: "code"}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := r.client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(keys) {
		t.Fatalf("Redis holds %d keys %q, want %d (distinct pin keys, distinct Redis keys)", len(stored), stored, len(keys))
	}
	want := map[string]bool{}
	for _, key := range keys {
		want[redisKeyOf(prefix, key)] = true
	}
	format := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `[0-9a-f]{32}$`)
	for _, rkey := range stored {
		if !format.MatchString(rkey) {
			t.Errorf("Redis key %q is not the prefix and 32 hex digits", rkey)
		}
		if !want[rkey] {
			t.Errorf("Redis key %q is not prefix + hex(sha256(pin key))[:32]", rkey)
		}
		val, err := r.client.Get(ctx, rkey).Result()
		if err != nil {
			t.Fatal(err)
		}
		if val != "big\x00code" {
			t.Errorf("value of %q = %q, want %q", rkey, val, "big\x00code")
		}
		for _, secret := range []string{secretKey, "secret", reqModel, scopeValue} {
			if strings.Contains(rkey, secret) || strings.Contains(val, secret) {
				t.Errorf("Redis key %q or value %q holds %q", rkey, val, secret)
			}
		}
	}
}

func TestRedisPinRoundTrip(t *testing.T) {
	r := startRedis(t)
	rs := r.newRedisStore(t, "test:rt:")
	ctx := testCtx(t)
	pins := []Pin{
		{Model: "m"},
		{Model: "m", Route: ""},
		{Model: "big", Route: "code"},
		{Model: "gpt-4o-2024-08-06:ft:acme::abc123", Route: "r:1"},
		{Model: "org/model@v1.2+build", Route: "route/with/slashes"},
		{Model: "модель-ü-模型-\U0001F600", Route: "маршрут"},
		{Model: "has space", Route: "has  two spaces"},
		{Model: `q"u'o\te`, Route: `{"json":true}`},
		{Model: "line\nbreak\ttab", Route: "\r\n"},
		{Model: "x", Route: "route\x00with a NUL"},
		{Model: strings.Repeat("long-model-", 100), Route: strings.Repeat("r", 1000)},
		{Model: "*", Route: "?"},
	}
	for i, want := range pins {
		t.Run(fmt.Sprintf("pin %d", i), func(t *testing.T) {
			viaSet := PinKey("", fmt.Sprintf("set-%d", i), "m")
			if err := rs.Set(ctx, viaSet, want, time.Hour); err != nil {
				t.Fatal(err)
			}
			if got, found, err := rs.Get(ctx, viaSet); err != nil || !found || got != want {
				t.Errorf("Get after Set(%+q) = %+q, %v, %v", want, got, found, err)
			}
			viaSIA := PinKey("", fmt.Sprintf("sia-%d", i), "m")
			if got, err := rs.SetIfAbsent(ctx, viaSIA, want, time.Hour); err != nil || got != want {
				t.Errorf("SetIfAbsent(%+q) on an absent key = %+q, %v", want, got, err)
			}
			if got, err := rs.SetIfAbsent(ctx, viaSIA, Pin{Model: "other"}, time.Hour); err != nil || got != want {
				t.Errorf("SetIfAbsent on a key holding %+q = %+q, %v; want the holder", want, got, err)
			}
			if got, found, err := rs.Get(ctx, viaSIA); err != nil || !found || got != want {
				t.Errorf("Get after SetIfAbsent(%+q) = %+q, %v, %v", want, got, found, err)
			}
		})
	}
}

func TestRedisDB(t *testing.T) {
	r := startRedis(t)
	ctx := testCtx(t)
	rs := NewRedis(RedisOptions{Addresses: []string{r.addr}, DB: 3, Prefix: "p:"})
	t.Cleanup(func() { _ = rs.Close() })
	key := PinKey("", "session-1", "m")
	if err := rs.Set(ctx, key, Pin{Model: "a"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.client.DBSize(ctx).Result(); n != 0 {
		t.Errorf("DB 0 holds %d keys; the store was configured for DB 3", n)
	}
	db3 := redis.NewClient(&redis.Options{Addr: r.addr, DB: 3})
	defer db3.Close()
	if n, _ := db3.Exists(ctx, redisKeyOf("p:", key)).Result(); n != 1 {
		t.Errorf("the pin is not in DB 3")
	}
}

// hungServer accepts TCP connections and never answers, like a Redis that
// is stuck; it closes when the test ends.
func hungServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// A Redis that is down or stuck costs a call at most its context's timeout
// (the Store's configured timeout), with an error, never a hang. Against the
// server that never answers, each call must end before a control call with
// no deadline does: that one ends only at the client's own read timeout,
// which is what a call ignoring its context would cost. Both wait on timers
// in the same run, so a loaded machine delays them alike.
func TestRedisUnreachable(t *testing.T) {
	closedPort := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	const timeout = 200 * time.Millisecond
	tests := []struct {
		name    string
		addr    string
		control bool // compare with a call that has no deadline
	}{
		{name: "closed port", addr: closedPort},
		{name: "server that never answers", addr: hungServer(t), control: true},
	}
	ops := []struct {
		name string
		call func(ctx context.Context, rs *Redis) error
	}{
		{"Get", func(ctx context.Context, rs *Redis) error {
			_, found, err := rs.Get(ctx, "k")
			if found {
				return errors.New("found a pin")
			}
			return err
		}},
		{"SetIfAbsent", func(ctx context.Context, rs *Redis) error {
			_, err := rs.SetIfAbsent(ctx, "k", Pin{Model: "a"}, time.Minute)
			return err
		}},
		{"Set", func(ctx context.Context, rs *Redis) error { return rs.Set(ctx, "k", Pin{Model: "a"}, time.Minute) }},
		{"Refresh", func(ctx context.Context, rs *Redis) error {
			_, err := rs.Refresh(ctx, "k", Pin{Model: "a"}, time.Minute)
			return err
		}},
		{"Delete", func(ctx context.Context, rs *Redis) error { return rs.Delete(ctx, "k") }},
		{"Flush", func(ctx context.Context, rs *Redis) error { return rs.Flush(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := NewRedis(RedisOptions{Addresses: []string{tt.addr}, Prefix: "p:"})
			t.Cleanup(func() { _ = rs.Close() })
			controlDone := make(chan struct{})
			if tt.control {
				go func() {
					defer close(controlDone)
					_ = rs.client.Ping(context.Background()).Err()
				}()
			}
			// concurrently, so a store that ignores the context costs its
			// read timeout once, not once per operation
			var wg sync.WaitGroup
			for _, op := range ops {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					defer cancel()
					if err := op.call(ctx, rs); err == nil {
						t.Errorf("%s against %s succeeded, want an error", op.name, tt.name)
					}
					select {
					case <-controlDone:
						t.Errorf("%s against %s with a %v context ended after a call with no deadline did", op.name, tt.name, timeout)
					default:
					}
				})
			}
			wg.Wait()
			if tt.control {
				<-controlDone
			}
		})
	}
}

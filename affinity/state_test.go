package affinity

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// State lives in memory for the pin TTL from its last use, and in a shared
// Redis that another instance reads.
func TestState(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := newTestStore(t, time.Minute, 10, clock)
	if _, ok := s.GetState(ctx, "resp_1"); ok {
		t.Fatal("state before any was set")
	}
	s.SetState(ctx, "resp_1", []byte("turns"))
	if v, ok := s.GetState(ctx, "resp_1"); !ok || string(v) != "turns" {
		t.Fatalf("GetState = %q, %v", v, ok)
	}
	clock.Advance(2 * time.Minute)
	if _, ok := s.GetState(ctx, "resp_1"); ok {
		t.Error("state outlived the TTL")
	}

	r := startRedis(t)
	a := newTestStore(t, time.Minute, 10, nil)
	b := newTestStore(t, time.Minute, 10, nil)
	a.Share(NewRedis(RedisOptions{Addresses: []string{r.addr}, Prefix: "state-test:"}), time.Minute)
	b.Share(NewRedis(RedisOptions{Addresses: []string{r.addr}, Prefix: "state-test:"}), time.Minute)
	big := bytes.Repeat([]byte("x"), 100<<10)
	a.SetState(ctx, "resp_2", big)
	if v, ok := b.GetState(ctx, "resp_2"); !ok || !bytes.Equal(v, big) {
		t.Fatalf("the other instance read %d bytes, %v; want the %d written", len(v), ok, len(big))
	}
	if _, ok := b.GetState(ctx, "resp_3"); ok {
		t.Error("an unknown id has state")
	}
	// a pin key and a state key of the same text do not meet
	a.Set(ctx, "resp_2", Pin{Model: "m"})
	if v, ok := b.GetState(ctx, "resp_2"); !ok || !bytes.Equal(v, big) {
		t.Errorf("a pin overwrote the state of the same key")
	}
}

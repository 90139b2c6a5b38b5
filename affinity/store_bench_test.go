package affinity

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// Benchmarks of the pin store's per-request work: key validation, pin key
// building, the local (L1) lookup every pinned request takes, and the turn
// each response records in its session's stats.
//
//	go test -run '^$' -bench . -benchmem ./affinity/
//
// Targets (for context; nothing here asserts them): a pin lookup hit <= 200 ns
// with 0 allocations; a pin costs at most 200 bytes beyond its key
// (BenchmarkHeapPerPin).

const benchModel = "gpt-4o-mini"

// benchUUID returns a deterministic UUID-shaped 36-byte key for i.
func benchUUID(i int) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(i*2654435761), i&0xffff, i&0xfff, (i>>12)&0xfff, uint64(i)*0x9e3779b97f4a7c15&0xffffffffffff)
}

// newBenchStore returns a Store without a shared store, closed at the end of
// the benchmark.
func newBenchStore(b *testing.B, maxEntries int) *Store {
	b.Helper()
	s, err := New(Options{TTL: time.Hour, MaxEntries: maxEntries})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}

func BenchmarkValidateKey(b *testing.B) {
	key := benchUUID(42)
	if len(key) != 36 {
		b.Fatalf("key is %d bytes", len(key))
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateKey(key); err != nil {
			b.Fatal(err)
		}
	}
}

var sinkString string

func BenchmarkPinKey(b *testing.B) {
	scope, key := "5d41402abc4b2a76b9719d911017c592", benchUUID(42)
	b.ReportAllocs()
	for b.Loop() {
		sinkString = PinKey(scope, key, benchModel)
	}
}

// BenchmarkStoreGetHit is the pinned hot path: GetOrDecide on a key that is
// pinned locally, no shared store. The key and decide func are built once,
// so only the store's own cost is measured (PinKey is BenchmarkPinKey).
func BenchmarkStoreGetHit(b *testing.B) {
	s := newBenchStore(b, 10000)
	ctx := context.Background()
	key := PinKey("", benchUUID(42), benchModel)
	want := Pin{Model: benchModel, Route: "tool_calling"}
	s.Set(ctx, key, want)
	decide := func(context.Context) Pin { b.Fatal("decide called on a hit"); return Pin{} }
	b.ReportAllocs()
	for b.Loop() {
		if pin, decided := s.GetOrDecide(ctx, key, decide); decided || pin != want {
			b.Fatalf("got %+v, decided %v", pin, decided)
		}
	}
}

// BenchmarkStoreGetHitParallel is BenchmarkStoreGetHit from GOMAXPROCS
// goroutines, over 1024 pinned sessions.
func BenchmarkStoreGetHitParallel(b *testing.B) {
	s := newBenchStore(b, 10000)
	ctx := context.Background()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = PinKey("", benchUUID(i), benchModel)
		s.Set(ctx, keys[i], Pin{Model: benchModel})
	}
	decide := func(context.Context) Pin { panic("decide called on a hit") }
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, decided := s.GetOrDecide(ctx, keys[i&1023], decide); decided {
				panic("decided on a hit")
			}
			i++
		}
	})
}

// BenchmarkStoreGetMiss is a first request of a session: GetOrDecide on a
// new key with a trivial decide, which pins. Keys are prebuilt outside the
// timed loop (b.N of them, as the cache then grows, up to its bound).
func BenchmarkStoreGetMiss(b *testing.B) {
	const maxEntries = 1 << 20
	s := newBenchStore(b, maxEntries)
	ctx := context.Background()
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = PinKey("", benchUUID(i), benchModel)
	}
	pin := Pin{Model: benchModel, Route: "tool_calling"}
	decide := func(context.Context) Pin { return pin }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, decided := s.GetOrDecide(ctx, keys[i], decide); !decided {
			b.Fatal("not decided on a miss")
		}
	}
}

// memStats returns the memory statistics after a full collection.
func memStats() runtime.MemStats {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m
}

// heapPerPin is BenchmarkHeapPerPin's measurement, taken once per process.
var heapPerPin struct {
	done                       bool
	pin, key, keyLen           float64
	nsPerSet, bPerSet, aPerSet float64
}

// BenchmarkHeapPerPin is a memory measurement, not a timing: it pins
// 1,000,000 sessions (UUID-like 36-byte affinity keys, pin keys built by
// PinKey with no scope, all pinned to "gpt-4o-mini") with Set and
// context.Background(), and reports the live heap they cost:
//
//   - B/pin: live heap per pin beyond its key string (the cache's node, hash
//     table slot, policy bookkeeping, Pin value), HeapAlloc after GC with the
//     pins minus before. The key strings are built before the baseline, so
//     they are not counted here.
//   - keyB/pin: live heap of the pin key string itself (len keyLen, rounded
//     up to its allocation size class).
//   - keyLen: the pin key's length in bytes.
//
// An "op" here is one Set of the measurement: ns/op, B/op and allocs/op are
// overridden with the insertion's time, allocated bytes (garbage included)
// and allocations per pin.
//
// The measurement runs once per process whatever b.N is: the testing package
// may call the function again with a larger b.N (it does unless -benchtime is
// 1x or shorter than the measurement), and those calls only report the
// stored result, so -benchtime does not multiply its cost. b.Loop cannot
// express this (breaking out of it early is an error).
// Run it alone with: go test -run '^$' -bench HeapPerPin ./affinity/
func BenchmarkHeapPerPin(b *testing.B) {
	const n = 1_000_000
	if !heapPerPin.done {
		measureHeapPerPin(b, n)
	}
	b.ReportMetric(heapPerPin.pin, "B/pin")
	b.ReportMetric(heapPerPin.key, "keyB/pin")
	b.ReportMetric(heapPerPin.keyLen, "keyLen")
	b.ReportMetric(heapPerPin.nsPerSet, "ns/op")
	b.ReportMetric(heapPerPin.bPerSet, "B/op")
	b.ReportMetric(heapPerPin.aPerSet, "allocs/op")
}

func measureHeapPerPin(b *testing.B, n int) {
	b.StopTimer()
	base := memStats()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = PinKey("", benchUUID(i), benchModel)
	}
	withKeys := memStats()
	// the keys slice itself is 16 B/pin of string headers: not key bytes
	keyBytes := (float64(withKeys.HeapAlloc) - float64(base.HeapAlloc) - float64(n*16)) / float64(n)

	s, err := New(Options{TTL: time.Hour, MaxEntries: 2 * n})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	empty := memStats()
	start := time.Now()
	for _, k := range keys {
		s.Set(ctx, k, Pin{Model: benchModel})
	}
	elapsed := time.Since(start)
	s.cache.CleanUp() // drain the policy's write buffer
	full := memStats()
	if got := s.Len(); got != n {
		b.Logf("store holds %d pins, want %d", got, n)
	}
	runtime.KeepAlive(s)
	runtime.KeepAlive(keys)

	heapPerPin.done = true
	heapPerPin.pin = (float64(full.HeapAlloc) - float64(empty.HeapAlloc)) / float64(n)
	heapPerPin.key = keyBytes
	heapPerPin.keyLen = float64(len(keys[0]))
	heapPerPin.nsPerSet = float64(elapsed.Nanoseconds()) / float64(n)
	heapPerPin.bPerSet = float64(full.TotalAlloc-empty.TotalAlloc) / float64(n)
	heapPerPin.aPerSet = float64(full.Mallocs-empty.Mallocs) / float64(n)
	b.Logf("%d pins: heap with keys, store empty %s; full %s: %.1f B/pin beyond a %d-byte key occupying %.1f B",
		n, mib(empty.HeapAlloc), mib(full.HeapAlloc), heapPerPin.pin, len(keys[0]), keyBytes)
	b.StartTimer()
}

func mib(n uint64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }

// BenchmarkStoreRecordTurn is what the handler adds after each response of
// a pinned session: RecordTurn on a key pinned locally, no shared store.
func BenchmarkStoreRecordTurn(b *testing.B) {
	s := newBenchStore(b, 10000)
	key := PinKey("", benchUUID(42), benchModel)
	s.Set(context.Background(), key, Pin{Model: benchModel, Route: "tool_calling"})
	b.ReportAllocs()
	for b.Loop() {
		s.RecordTurn(key, 12000, 11000, 300)
	}
	if sess, ok := s.Session(key); !ok || sess.Stats.Turns == 0 {
		b.Fatalf("no turn recorded: %+v, %v", sess, ok)
	}
}

// BenchmarkStoreRecordTurnParallel is BenchmarkStoreRecordTurn from
// GOMAXPROCS goroutines, over 1024 pinned sessions.
func BenchmarkStoreRecordTurnParallel(b *testing.B) {
	s := newBenchStore(b, 10000)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = PinKey("", benchUUID(i), benchModel)
		s.Set(context.Background(), keys[i], Pin{Model: benchModel})
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.RecordTurn(keys[i&1023], 12000, 11000, 300)
			i++
		}
	})
}

package llmapi

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// Benchmarks of stream translation, for each (upstream, client) pair:
//
//	go test -run '^$' -bench StreamTranslate -count 6 ./llmapi
//
// The upstream stream is a long answer (500 text deltas of a few words, a
// tool call in 100 fragments, usage), in each API's form as this package's
// own encoders write it, read in 4 KiB pieces as from a connection. A
// neutral event is one delta, start, stop, finish or usage: ns/event and
// allocs/event divide by their count. Target (for context; nothing here
// asserts it): <= 2 us per event.

// benchEvents is the neutral stream of the benchmark's answer.
func benchEvents() []Event {
	evs := []Event{evStart("chatcmpl-bench", "model", usage(1200, 1, 800, 0))}
	for i := range 500 {
		evs = append(evs, evText(0, fmt.Sprintf("word%d and some more ", i)))
	}
	evs = append(evs, evStop(0), evCall(1, "call_bench", "write_file", ""), evArgs(1, `{"content":"`))
	for i := range 98 {
		evs = append(evs, evArgs(1, fmt.Sprintf(`line %3d\n`, i)))
	}
	evs = append(evs, evArgs(1, `"}`))
	return append(evs, evStop(1), evFinish(StopToolCalls), evUsage(1200, 600, 800, 0), evEnd)
}

func BenchmarkStreamTranslate(b *testing.B) {
	neutral := benchEvents()
	for _, from := range apis {
		upstream := encode(b, from, testOptions, neutral)
		for _, to := range apis {
			b.Run(fmt.Sprintf("%v-to-%v", from, to), func(b *testing.B) {
				var evs int
				emitted := func(Event) { evs++ }
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				b.SetBytes(int64(len(upstream)))
				for b.Loop() {
					dec := NewStreamDecoder(from)
					enc := NewStreamEncoder(to, testOptions)
					emit := func(ev Event) {
						emitted(ev)
						if err := enc.Encode(io.Discard, ev); err != nil {
							b.Fatal(err)
						}
					}
					for rest := upstream; len(rest) > 0; {
						n := min(len(rest), 4096)
						if err := dec.Decode(rest[:n], emit); err != nil {
							b.Fatal(err)
						}
						rest = rest[n:]
					}
					if err := dec.Close(emit); err != nil {
						b.Fatal(err)
					}
				}
				runtime.ReadMemStats(&ms1)
				if evs == 0 {
					return
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(evs), "ns/event")
				b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(evs), "allocs/event")
			})
		}
	}
}

// TestBenchStream checks that the benchmark's stream comes through whole,
// so that the benchmark measures a real translation.
func TestBenchStream(t *testing.T) {
	neutral := benchEvents()
	for _, from := range apis {
		for _, to := range apis {
			v := view(t, to, translate(t, from, to, testOptions, encode(t, from, testOptions, neutral)))
			if !strings.HasPrefix(v.Text, "word0 and some more word1") || len(v.ToolCalls) != 1 || !json.Valid([]byte(v.ToolCalls[0].Arguments)) ||
				len(v.ToolCalls[0].Arguments) != 14+98*10 ||
				v.Usage != (Usage{InputTokens: 1200, OutputTokens: 600, CacheReadTokens: 800}) {
				t.Errorf("%v to %v: %d bytes of text, calls %d, usage %+v", from, to, len(v.Text), len(v.ToolCalls), v.Usage)
			}
		}
	}
}

package llmapi

import (
	"testing"

	"github.com/llmaffinity/caddy-llm-affinity/internal/agentbody"
)

// BenchmarkTranslateRequest translates a 32 KB agent request (internal/
// agentbody's, tool calls and results included) from each API to each
// other: decode into the neutral form, encode for the model into a reused
// buffer, as the gateway encodes into a pooled one. Target (for context;
// nothing asserts it): <= 100 us and <= 3 allocations per KB.
//
//	go test -run '^$' -bench TranslateRequest -benchmem ./llmapi
func BenchmarkTranslateRequest(b *testing.B) {
	chat := agentbody.Generate(32 << 10)
	turn, err := DecodeTurn(Chat, chat)
	if err != nil {
		b.Fatal(err)
	}
	bodies := map[API][]byte{Chat: chat}
	for _, api := range []API{Messages, Responses} {
		if bodies[api], err = EncodeTurn(api, turn, "m"); err != nil {
			b.Fatal(err)
		}
	}
	for _, from := range allAPIs {
		for _, to := range allAPIs {
			if from == to {
				continue
			}
			body := bodies[from]
			b.Run(from.String()+"->"+to.String(), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				var buf []byte
				for b.Loop() {
					t, err := DecodeTurn(from, body)
					if err != nil {
						b.Fatal(err)
					}
					if buf, err = AppendTurn(buf[:0], to, t, "m"); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

package llmapi

import (
	"encoding/json"
	"testing"

	"github.com/llmaffinity/caddy-llm-affinity/internal/agentbody"
)

// Benchmarks of the per-request body work: the validating envelope pass
// every chat request takes, the model splice on the way upstream, and the
// decode and prompt building that only unpinned requests pay.
//
//	go test -run '^$' -bench . -benchmem ./router/
//
// The bodies are internal/agentbody's, as the load benchmark in bench/ sends.
// Targets (for context; nothing here asserts them): parse + splice of a 32 KB
// body <= 30 us.

// benchBodies are the bodies benchmarked, named for the sub-benchmarks: agent
// bodies of three sizes with ASCII text, and one whose text is mostly
// multi-byte UTF-8 (the string scan's slow path).
var benchBodies = []struct {
	name     string
	size     int
	generate func(size int) []byte
}{
	{"1KB", 1 << 10, agentbody.Generate},
	{"32KB", 32 << 10, agentbody.Generate},
	{"256KB", 256 << 10, agentbody.Generate},
	{"32KB-multilingual", 32 << 10, agentbody.GenerateMultilingual},
}

// benchBody returns the ASCII agent body of a size, checking it parses.
func benchBody(b *testing.B, size int) []byte {
	b.Helper()
	return parsedBody(b, agentbody.Generate(size))
}

// parsedBody returns body, failing the benchmark when it does not parse.
func parsedBody(b *testing.B, body []byte) []byte {
	b.Helper()
	if _, err := ParseEnvelope(body); err != nil {
		b.Fatalf("generated %d-byte body does not parse: %v", len(body), err)
	}
	return body
}

func BenchmarkParseEnvelope(b *testing.B) {
	for _, sz := range benchBodies {
		b.Run(sz.name, func(b *testing.B) {
			body := parsedBody(b, sz.generate(sz.size))
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := ParseEnvelope(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseAndSegments is what the handler does (failover.go): the
// envelope pass plus Segments, which sends the body upstream without a copy.
func BenchmarkParseAndSegments(b *testing.B) {
	quoted := []byte(`"claude-sonnet-4-20250514"`)
	for _, sz := range benchBodies {
		b.Run(sz.name, func(b *testing.B) {
			body := parsedBody(b, sz.generate(sz.size))
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				env, err := ParseEnvelope(body)
				if err != nil {
					b.Fatal(err)
				}
				if parts := env.Segments(make([][]byte, 0, maxSegments), body, quoted, false); len(parts) < 2 {
					b.Fatal("model not replaced")
				}
			}
		})
	}
}

// BenchmarkDecode is the full decode an unpinned request pays.
func BenchmarkDecode(b *testing.B) {
	b.Run("32KB", func(b *testing.B) {
		body := benchBody(b, 32<<10)
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := Decode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestAgentBodySizes keeps the generated bodies close to their nominal sizes
// and valid, so the benchmark names stay honest.
func TestAgentBodySizes(t *testing.T) {
	for _, sz := range benchBodies {
		body := sz.generate(sz.size)
		if len(body) < sz.size || len(body) > sz.size+sz.size/8+256 {
			t.Errorf("%s body is %d bytes", sz.name, len(body))
		}
		if _, err := ParseEnvelope(body); err != nil {
			t.Errorf("%s body: %v", sz.name, err)
		}
		if !json.Valid(body) {
			t.Errorf("%s body is not valid JSON", sz.name)
		}
	}
}

package llmaffinity

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// Cost bills the input tokens that were neither read from nor written to
// the cache at Input, the cached ones at CacheRead and CacheWrite, and the
// output at Output; InputTokens counts the cached ones too (llmapi.Usage).
func TestPriceCost(t *testing.T) {
	sonnet := &Price{Input: 3, Output: 15, CacheRead: 0.30, CacheWrite: 3.75}
	gpt := &Price{Input: 2.50, Output: 10, CacheRead: 1.25}
	tests := []struct {
		name  string
		price *Price
		usage llmapi.Usage
		want  float64 // US dollars
	}{
		{"no tokens", sonnet, llmapi.Usage{}, 0},
		{"no cache", sonnet, llmapi.Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}, 3 + 15},
		{"input only", gpt, llmapi.Usage{InputTokens: 2000}, 2000 * 2.50 / 1e6},
		// 10000 input: 6000 read, 2000 written, 2000 uncached
		{"cache reads and writes", sonnet, llmapi.Usage{InputTokens: 10_000, OutputTokens: 500, CacheReadTokens: 6000, CacheWriteTokens: 2000},
			(2000*3 + 500*15 + 6000*0.30 + 2000*3.75) / 1e6},
		{"cache reads", gpt, llmapi.Usage{InputTokens: 1_000_000, OutputTokens: 0, CacheReadTokens: 800_000}, 0.2*2.50 + 0.8*1.25},
		{"cache writes", sonnet, llmapi.Usage{InputTokens: 1000, OutputTokens: 10, CacheWriteTokens: 1000}, (1000*3.75 + 10*15) / 1e6},
		{"every input token read from the cache", sonnet, llmapi.Usage{InputTokens: 4000, CacheReadTokens: 4000}, 4000 * 0.30 / 1e6},
		// an upstream that counts more cached tokens than input ones: no
		// uncached tokens, not a negative number of them
		{"cached tokens beyond the input", sonnet, llmapi.Usage{InputTokens: 100, CacheReadTokens: 300, CacheWriteTokens: 50},
			(300*0.30 + 50*3.75) / 1e6},
		{"a kind without a price is free", gpt, llmapi.Usage{InputTokens: 1000, CacheWriteTokens: 1000}, 0},
		{"price of 0", &Price{}, llmapi.Usage{InputTokens: 5000, OutputTokens: 5000, CacheReadTokens: 1000}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.price.cost(tt.usage); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("cost(%+v) = %.12f, want %.12f", tt.usage, got, tt.want)
			}
		})
	}
}

// A price from JSON names its kinds as the Caddyfile does, and the range
// check reads every kind.
func TestPriceJSON(t *testing.T) {
	var m Model
	if err := json.Unmarshal([]byte(`{"name":"a","to":["127.0.0.1:9"],"price":{"input":2.5,"output":10,"cache_read":1.25,"cache_write":3.75}}`), &m); err != nil {
		t.Fatal(err)
	}
	if want := (Price{Input: 2.5, Output: 10, CacheRead: 1.25, CacheWrite: 3.75}); m.Price == nil || *m.Price != want {
		t.Fatalf("price = %+v, want %+v", m.Price, want)
	}
	if err := m.checkRanges(); err != nil {
		t.Fatalf("checkRanges: %v", err)
	}
	for _, kind := range priceKinds {
		p := *m.Price
		*p.field(kind) = -1
		bad := Model{Name: "a", Price: &p}
		if err := bad.checkRanges(); err == nil || err.Error() != "model 'a': price "+kind+" must be a finite number of US dollars per million tokens, 0 or more" {
			t.Errorf("%s -1: checkRanges = %v", kind, err)
		}
	}
	if (&Price{}).field("cached") != nil {
		t.Error("field(cached) is not nil")
	}
}

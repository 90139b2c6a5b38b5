package llmapi

import (
	"bytes"
	"strings"
	"testing"
)

// Each API's usage, from a complete response and from a stream cut at
// every offset, as each API reports it: cached tokens counted in the input.
func TestUsageMeter(t *testing.T) {
	want := Usage{InputTokens: 120, OutputTokens: 7, CacheReadTokens: 100, CacheWriteTokens: 0}
	wantMessages := Usage{InputTokens: 150, OutputTokens: 7, CacheReadTokens: 100, CacheWriteTokens: 30}
	tests := []struct {
		name   string
		api    API
		stream bool
		body   string
		want   Usage
	}{
		{"chat", Chat, false, `{"id":"c","model":"gpt-up","choices":[{"index":0,"message":{"role":"assistant","content":"usage: \"usage\":{}"}}],
			"usage":{"prompt_tokens":120,"completion_tokens":7,"total_tokens":127,"prompt_tokens_details":{"cached_tokens":100}}}`, want},
		{"messages", Messages, false, `{"id":"m","type":"message","model":"claude-up","content":[{"type":"tool_use","id":"t","name":"f","input":{"usage":{"input_tokens":9}}}],
			"usage":{"input_tokens":20,"cache_creation_input_tokens":30,"cache_read_input_tokens":100,"output_tokens":7}}`, wantMessages},
		{"responses", Responses, false, `{"id":"r","object":"response","model":"r-up","output":[],
			"usage":{"input_tokens":120,"input_tokens_details":{"cached_tokens":100},"output_tokens":7,"total_tokens":127}}`, want},
		{"chat stream", Chat, true, "data: {\"id\":\"c\",\"model\":\"gpt-up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n" +
			"data: {\"id\":\"c\",\"model\":\"gpt-up\",\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":100}}}\n\n" +
			"data: [DONE]\n\n", want},
		{"messages stream", Messages, true, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude-up\",\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":30,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n" +
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n" +
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", wantMessages},
		{"responses stream", Responses, true, "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"model\":\"r-up\",\"usage\":null}}\n\n" +
			"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n" +
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"model\":\"r-up\",\"usage\":{\"input_tokens\":120,\"input_tokens_details\":{\"cached_tokens\":100},\"output_tokens\":7}}}\n\n", want},
	}
	for _, tt := range tests {
		for cut := range len(tt.body) + 1 {
			m := NewUsageMeter(tt.api, tt.stream)
			m.Write([]byte(tt.body[:cut]))
			m.Write([]byte(tt.body[cut:]))
			u, model, ok := m.Result()
			if !ok || u != tt.want || !strings.HasSuffix(model, "-up") {
				t.Fatalf("%s cut at %d: usage %+v ok %v model %q, want %+v", tt.name, cut, u, ok, model, tt.want)
			}
		}
	}
	if _, _, ok := NewUsageMeter(Chat, false).Result(); ok {
		t.Error("a response without a body reported usage")
	}
	m := NewUsageMeter(Chat, true)
	m.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"no usage\"}}]}\n\ndata: [DONE]\n\n"))
	if _, _, ok := m.Result(); ok {
		t.Error("a stream without a usage chunk reported usage")
	}
}

// A complete response's usage is its top-level member, wherever other
// members named usage are: before it, after it, inside it, or in a longer
// key, and however many there are; the last of two top-level ones counts.
func TestUsageMeterTopLevelUsage(t *testing.T) {
	nested := strings.Repeat(`{"usage":{"prompt_tokens":9}},`, maxKeyMatches+1)
	tests := []struct {
		name, body string
		want       int // the input tokens; -1 for no usage
	}{
		{"after it", `{"usage":{"prompt_tokens":1},"metadata":{"usage":{"prompt_tokens":9}}}`, 1},
		{"inside it", `{"model":"m","usage":{"usage":{"prompt_tokens":9},"prompt_tokens":1}}`, 1},
		{"in a longer key", `{"usage":{"prompt_tokens":1},"x\"usage":{"prompt_tokens":9}}`, 1},
		{"as a value", `{"type":"usage","usage" : {"prompt_tokens":1} }`, 1},
		{"only nested", `{"choices":[{"message":{"usage":{"prompt_tokens":9}}}]}`, -1},
		{"null, nested after", `{"usage":null,"metadata":{"usage":{"prompt_tokens":9}}}`, -1},
		{"more nested than are searched", `{"choices":[` + nested + `{}],"usage":{"prompt_tokens":1},"tools":[` + nested + `{}]}`, 1},
		{"far from the end", `{"usage":{"prompt_tokens":1},"text":"` + strings.Repeat("x", 3*lastFieldWindow) + `","m":{"usage":{"prompt_tokens":9}}}`, 1},
		{"two", `{"usage":{"prompt_tokens":9},"usage":{"prompt_tokens":1}}`, 1},
		{"not an object", `{"usage":[1],"x":{"usage":{"prompt_tokens":9}}}`, -1},
		{"cut short", `{"usage":{"prompt_tokens":1}`, -1},
		{"trailing space", "{\"usage\":{\"prompt_tokens\":1}}\n", 1},
	}
	for _, tt := range tests {
		m := NewUsageMeter(Chat, false)
		m.Write([]byte(tt.body))
		got := -1
		if u, _, ok := m.Result(); ok {
			got = u.InputTokens
		}
		if got != tt.want {
			t.Errorf("%s: %s: input tokens %d, want %d", tt.name, tt.body, got, tt.want)
		}
	}
}

// Filter drops the usage-only chunk a client did not ask for and passes
// every other event on, wherever the bytes are cut; the usage is read.
func TestUsageMeterFilter(t *testing.T) {
	stream := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n" +
		"data: [DONE]"
	want := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n" +
		"data: [DONE]\n\n"
	for cut := range len(stream) + 1 {
		var out bytes.Buffer
		pass := func(b []byte) { out.Write(b) }
		m := NewUsageMeter(Chat, true)
		m.Filter([]byte(stream[:cut]), pass)
		m.Filter([]byte(stream[cut:]), pass)
		m.EndFilter(pass)
		if out.String() != want {
			t.Fatalf("cut at %d: passed\n%q\nwant\n%q", cut, out.String(), want)
		}
		if u, _, ok := m.Result(); !ok || u.InputTokens != 5 || u.OutputTokens != 2 {
			t.Fatalf("cut at %d: usage %+v ok %v", cut, u, ok)
		}
	}
}

// A stream event only the meter reads, and a large delta, cost little;
// the usage extraction target is <= 1 us per event.
func BenchmarkUsageMeterStream(b *testing.B) {
	var stream []byte
	for i := range 500 {
		stream = append(stream, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word "...)
		stream = append(stream, byte('a'+i%26))
		stream = append(stream, " and more text\"}}]}\n\n"...)
	}
	stream = append(stream, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n"...)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		m := NewUsageMeter(Chat, true)
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 4096)
			m.Write(rest[:n])
			rest = rest[n:]
		}
		if _, _, ok := m.Result(); !ok {
			b.Fatal("no usage")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/502, "ns/event")
}

// BenchmarkUsageMeterReply meters complete replies: "chat-800B" is the
// Chat reply BenchmarkServeHTTP's upstream sends, the usage extraction a
// plain pinned request pays (target: <= 2% of
// BenchmarkServeHTTP/32KB/pinned); "messages-16KB" is a long Messages
// reply whose text and tool input, which name usage too, the meter passes
// over.
func BenchmarkUsageMeterReply(b *testing.B) {
	chat := []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"I read internal/proxy/file_3.go: the handler buffers the whole body ` +
		`before it forwards it, so a large body waits for the read. I will stream it instead and run the tests.","refusal":null},` +
		`"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":8123,"completion_tokens":48,"total_tokens":8171,` +
		`"prompt_tokens_details":{"cached_tokens":7936,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,` +
		`"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_bench"}`)
	messages := []byte(`{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"` +
		strings.Repeat(`The \"usage\" of the handler: it buffers the body, then forwards it. `, 230) +
		`"},{"type":"tool_use","id":"toolu_1","name":"report","input":{"usage":{"input_tokens":1},"path":"internal/proxy/file_3.go"}}],` +
		`"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,` +
		`"cache_read_input_tokens":8064,"output_tokens":502,"service_tier":"standard"}}`)
	for _, reply := range []struct {
		name      string
		api       API
		body      []byte
		cacheRead int
	}{{"chat-800B", Chat, chat, 7936}, {"messages-16KB", Messages, messages, 8064}} {
		b.Run(reply.name, func(b *testing.B) {
			b.SetBytes(int64(len(reply.body)))
			b.ReportAllocs()
			var m UsageMeter
			for b.Loop() {
				m.Reset(reply.api, false)
				m.Write(reply.body)
				if u, _, ok := m.Result(); !ok || u.CacheReadTokens != reply.cacheRead {
					b.Fatal("no usage")
				}
			}
		})
	}
}

package integration

// What affinity saves, measured: the usage of every response, native and
// translated, plain and streamed, in the access log, the placeholders and
// the metrics.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUsageObserved runs the agent loop of each of the 9 (client API,
// model API) pairs through the gateway: every turn's access log entry
// carries the usage the model reported (input counting the cached tokens,
// cache reads and writes, output) and, for a streamed turn only, the time
// to its first byte, and for the priced model its cost; the token and cost
// counters add up, by model and kind, to what the models reported; the
// TTFT histogram counts the streamed turns and the upstream duration
// histogram every turn.
func TestUsageObserved(t *testing.T) {
	site, fakes := pairSite(t)
	// claude (a Messages model) is priced as Claude Sonnet is, in USD per
	// million tokens; the others have no price
	site.models[1].price = "input 3 output 15 cache_read 0.30 cache_write 3.75"
	cost := func(u agentUsage) float64 {
		return (float64(u.input-u.cacheRead-u.cacheWrite)*3 + float64(u.output)*15 +
			float64(u.cacheRead)*0.30 + float64(u.cacheWrite)*3.75) / 1e6
	}
	costs := map[string]float64{}
	logPath := filepath.Join(t.TempDir(), "access.log")
	startCaddy(t, site.with("name observe-test").withDirectives("log {\n\toutput file "+logPath+"\n}", "metrics /metrics",
		// the placeholders, as an operator adds them to the access log
		"log_append placeholder_input {http.llm_affinity.input_tokens}",
		"log_append placeholder_cache_read {http.llm_affinity.cache_read_tokens}",
		"log_append placeholder_cost {http.llm_affinity.cost_usd}"))
	t.Cleanup(func() { closeLogFiles(t) })
	// the collectors are the process's: other tests count into them too
	before, _ := scrape(t, gateway+"/metrics")
	delta := func(after []sample, name string, labels map[string]string) (float64, bool) {
		was, _ := sum(before, name, labels)
		now, found := sum(after, name, labels)
		return now - was, found && now != was
	}

	sums := map[string]agentUsage{} // by serving model
	streamed, turns := map[string]int{}, map[string]int{}
	for _, client := range []wireAPI{wireChat, wireMessages, wireResponses} {
		for _, model := range pairModels {
			key := fmt.Sprintf("observe-%s-%s", client, model.name)
			t.Run(string(client)+"->"+string(model.api), func(t *testing.T) {
				runAgentPair(t, agentRun{client: newAgentClient(t, client, model.clientModel, agentMaxTokens, nil),
					model: model, fakes: fakes, maxTokens: agentMaxTokens, key: key})
				entries := waitForLogEntries(t, logPath, keyHash(key), len(agentPlan))
				checkSessionStats(t, key, model, len(agentPlan))
				// a streamed turn's entry may come after the next turn's: its
				// client has the last event before the handler is done. Each
				// turn's output count is its own, so it tells the entries apart.
				seen := map[int]bool{}
				for _, e := range entries {
					i := turnOf(e, model)
					if i < 0 || seen[i] {
						t.Errorf("access log entry %v is no turn's, or a turn's second", e)
						continue
					}
					seen[i] = true
					u := agentScript[i].usage.servedBy(model.api)
					what := fmt.Sprintf("turn %d", i+1)
					for field, want := range map[string]int64{
						"llm_input_tokens": u.input, "llm_output_tokens": u.output,
						"llm_cache_read_tokens": u.cacheRead, "llm_cache_write_tokens": u.cacheWrite,
					} {
						if got, ok := e[field].(float64); !ok || int64(got) != want {
							t.Errorf("%s: access log %s = %v, want %d", what, field, e[field], want)
						}
					}
					// a client that closes the stream as soon as it has the last
					// event may leave reverse_proxy failing its last write: it
					// aborts the response (panic(http.ErrAbortHandler)). The
					// gateway accounts for it all the same; Caddy logs such a
					// request with duration 0, and without what log_append adds
					duration, _ := e["duration"].(float64)
					aborted := duration == 0
					for field, want := range map[string]int64{"placeholder_input": u.input, "placeholder_cache_read": u.cacheRead} {
						if got := fmt.Sprint(e[field]); got != strconv.FormatInt(want, 10) && !aborted {
							t.Errorf("%s: {http.llm_affinity.*} in %s = %v, want %d", what, field, e[field], want)
						}
					}
					ttft, hasTTFT := e["llm_ttft_ms"].(float64)
					switch {
					case agentPlan[i].stream && !hasTTFT:
						t.Errorf("%s (streamed): no llm_ttft_ms in %v", what, e)
					case agentPlan[i].stream && (ttft < 0 || !aborted && ttft > duration*1000):
						t.Errorf("%s: llm_ttft_ms %v outside the request's %vs", what, ttft, e["duration"])
					case !agentPlan[i].stream && hasTTFT:
						t.Errorf("%s (plain): llm_ttft_ms %v for a response that is not a stream", what, ttft)
					}
					got, priced := e["llm_cost_usd"].(float64)
					switch {
					case model.name != "claude" && priced:
						t.Errorf("%s: llm_cost_usd %v for a model without a price", what, got)
					case model.name == "claude" && (!priced || math.Abs(got-cost(u)) > 1e-12):
						t.Errorf("%s: llm_cost_usd %v, want %v", what, e["llm_cost_usd"], cost(u))
					}
				}
			})
			for i, turn := range agentPlan {
				u := agentScript[i].usage.servedBy(model.api)
				s := sums[model.name]
				s.input, s.output, s.cacheRead, s.cacheWrite = s.input+u.input, s.output+u.output, s.cacheRead+u.cacheRead, s.cacheWrite+u.cacheWrite
				sums[model.name] = s
				turns[model.name]++
				if model.name == "claude" {
					costs[model.name] += cost(u)
				}
				if turn.stream {
					streamed[model.name]++
				}
			}
		}
	}

	samples, _ := scrape(t, gateway+"/metrics")
	for _, model := range pairModels {
		s := sums[model.name]
		for kind, want := range map[string]int64{"input": s.input, "output": s.output, "cache_read": s.cacheRead, "cache_write": s.cacheWrite} {
			got, _ := delta(samples, "caddy_llm_affinity_tokens_total", map[string]string{"model": model.name, "route": "", "kind": kind})
			if int64(got) != want {
				t.Errorf(`caddy_llm_affinity_tokens_total{model=%q,route="",kind=%q} = %v, want %d`, model.name, kind, got, want)
			}
		}
		if got, _ := delta(samples, "caddy_llm_affinity_time_to_first_token_seconds_count", map[string]string{"model": model.name}); int(got) != streamed[model.name] {
			t.Errorf("time_to_first_token_seconds_count{model=%q} = %v, want %d (the streamed turns)", model.name, got, streamed[model.name])
		}
		if got, _ := delta(samples, "caddy_llm_affinity_upstream_duration_seconds_count", map[string]string{"model": model.name, "code": "200"}); int(got) != turns[model.name] {
			t.Errorf(`upstream_duration_seconds_count{model=%q,code="200"} = %v, want %d`, model.name, got, turns[model.name])
		}
		got, found := delta(samples, "caddy_llm_affinity_cost_usd_total", map[string]string{"model": model.name, "route": ""})
		switch {
		case model.name != "claude" && found:
			t.Errorf("cost_usd_total{model=%q} exists for a model without a price", model.name)
		case model.name == "claude" && math.Abs(got-costs["claude"]) > 1e-9:
			t.Errorf(`cost_usd_total{model="claude"} = %v, want %v`, got, costs["claude"])
		}
	}
}

// TestChatStreamUsageAsked: a streamed Chat request that did not ask for
// the usage chunk goes upstream asking for it (so its usage is counted),
// and the chunk is dropped on the way back; one that asked gets it.
func TestChatStreamUsageAsked(t *testing.T) {
	site, fakes := pairSite(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	startCaddy(t, site.withDirectives("log {\n\toutput file "+logPath+"\n}"))
	t.Cleanup(func() { closeLogFiles(t) })
	chatFake := fakes[wireChat]
	for _, asked := range []bool{false, true} {
		key := fmt.Sprintf("usage-asked-%v", asked)
		options := ""
		if asked {
			options = `"stream_options":{"include_usage":true},`
		}
		body := `{"model":"gpt-4o-mini","stream":true,` + options + `"max_tokens":1000,"messages":[` +
			`{"role":"system","content":"` + agentSystem + `"},{"role":"user","content":"` + agentPlan[0].user + `"}],` +
			`"tools":` + chatToolsJSON(t) + `}`
		mark := chatFake.mark()
		req, _ := http.NewRequest(http.MethodPost, gateway+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Model-Affinity", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		stream, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		served, rejections := chatFake.since(mark)
		if len(rejections) > 0 || len(served) != 1 {
			t.Fatalf("asked %v: the Chat fake served %d requests, rejected %v", asked, len(served), rejections)
		}
		if !served[0].req.includeUsage {
			t.Errorf("asked %v: the request went upstream without stream_options.include_usage", asked)
		}
		usageChunks := strings.Count(string(stream), `"choices":[]`)
		if asked && usageChunks != 1 || !asked && usageChunks != 0 {
			t.Errorf("asked %v: the client got %d usage chunks:\n%s", asked, usageChunks, stream)
		}
		if !strings.HasSuffix(strings.TrimSpace(string(stream)), "data: [DONE]") {
			t.Errorf("asked %v: the stream does not end with [DONE]:\n%s", asked, stream)
		}
		e := waitForLogEntries(t, logPath, keyHash(key), 1)[0]
		if got, _ := e["llm_input_tokens"].(float64); int64(got) != agentScript[0].usage.input {
			t.Errorf("asked %v: llm_input_tokens %v, want %d", asked, e["llm_input_tokens"], agentScript[0].usage.input)
		}
	}
}

// turnOf is the index in agentScript of the turn whose access log entry e
// is, by its output tokens (each turn's differ); -1 for none.
func turnOf(e map[string]any, model pairModel) int {
	out, _ := e["llm_output_tokens"].(float64)
	for i, step := range agentScript {
		if step.usage.servedBy(model.api).output == int64(out) {
			return i
		}
	}
	return -1
}

// checkSessionStats checks the admin API's view of the session key asking
// for model: its first n turns recorded, with their tokens as the model
// reported them.
func checkSessionStats(t *testing.T, key string, model pairModel, n int) {
	t.Helper()
	var want agentUsage
	for _, step := range agentScript[:n] {
		u := step.usage.servedBy(model.api)
		want.input, want.cacheRead, want.output = want.input+u.input, want.cacheRead+u.cacheRead, want.output+u.output
	}
	status, body := adminCall(t, http.MethodGet, "/llm_affinity/observe-test/pin?key="+key+"&model="+model.clientModel)
	var pin struct {
		Pin   struct{ Model string } `json:"pin"`
		Stats adminSessionStats      `json:"stats"`
	}
	if err := json.Unmarshal(body, &pin); err != nil || status != http.StatusOK {
		t.Fatalf("admin pin view: status %d body %s (%v)", status, body, err)
	}
	st := pin.Stats
	ratio := float64(want.cacheRead) / float64(want.input)
	if pin.Pin.Model != model.name || st.Turns != int64(n) || st.InputTokens != want.input ||
		st.CachedTokens != want.cacheRead || st.OutputTokens != want.output ||
		st.CacheHitRatio == nil || math.Abs(*st.CacheHitRatio-ratio) > 1e-4 {
		t.Errorf("admin pin view %s; want model %s, %d turns, input %d, cached %d (ratio %.4f), output %d",
			body, model.name, n, want.input, want.cacheRead, ratio, want.output)
	}
}

// chatToolsJSON is the agent's tools as a Chat request lists them.
func chatToolsJSON(t *testing.T) string {
	var tools []map[string]any
	for _, tool := range agentTools {
		tools = append(tools, map[string]any{"type": "function", "function": map[string]any{
			"name": tool.name, "description": tool.description, "parameters": tool.schema()}})
	}
	b, err := json.Marshal(tools)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// keyHash is the affinity key as the access log names it.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// waitForLogEntries waits until the JSON access log at path holds n
// entries of requests whose affinity key hashes to hash, and returns them
// in the order they were written.
func waitForLogEntries(t *testing.T, path, hash string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		var entries []map[string]any
		if file, err := os.Open(path); err == nil {
			lines := bufio.NewScanner(file)
			lines.Buffer(nil, 1<<20)
			for lines.Scan() {
				var e map[string]any
				if json.Unmarshal(lines.Bytes(), &e) == nil && e["llm_affinity_key_hash"] == hash {
					entries = append(entries, e)
				}
			}
			file.Close()
		}
		if len(entries) >= n {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d access log entries for key hash %s within %v, want %d", len(entries), hash, patience, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

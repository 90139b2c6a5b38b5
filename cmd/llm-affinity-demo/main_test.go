package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmaffinity/caddy-llm-affinity/internal/demo"
)

// TestSelfContainedDemo runs the demo as the README's quick start does: no
// gateway, no keys, Caddy and the stand-ins started and stopped in-process,
// once for each client API. The stand-ins speak Chat Completions, so the
// Messages and Responses clients pass through the gateway's translation of
// every request and response; the table must not tell them apart.
//
// Each run's table ends with its cache hit ratio, and the run with affinity
// has the higher: its every turn after the first reads the previous turn's
// prompt from the stand-in's cache, while the run without reads only the
// prompt of two turns back, and only from the third turn (the model's
// previous request in the session is the one before the switch).
func TestSelfContainedDemo(t *testing.T) {
	for _, client := range demo.ClientAPIs {
		t.Run(string(client), func(t *testing.T) {
			var out bytes.Buffer
			res, err := run(&out, config{model: "gpt-4o-mini", apiKey: "unused", client: client, timeout: 2 * time.Minute})
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			for _, want := range []string{
				"Client:  " + client.Describe(),
				"Run 1: WITHOUT Model Affinity",
				"✗  Without affinity: model switched 3 time(s)",
				"Run 2: WITH Model Affinity  (X-Model-Affinity: ",
				"✓  With affinity: claude-sonnet-4-20250514 for all 4 turns",
			} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
			run1, run2, _ := strings.Cut(out.String(), "Run 2:")
			if strings.Count(run1, "← switched") != 3 || strings.Contains(run2, "← switched") {
				t.Errorf("want 3 switches in run 1 and none in run 2:\n%s", out.String())
			}

			// the rows: the router's pick every turn unpinned, the first pick kept pinned
			tools := []string{"get_db_benchmarks, get_db_benchmarks", "get_case_studies, get_case_studies", "check_feature_support", ""}
			checkRun := func(name string, turns []demo.Turn, models ...string) {
				t.Helper()
				if len(turns) != len(models) {
					t.Fatalf("%s: %d turns %+v, want %d", name, len(turns), turns, len(models))
				}
				for i, turn := range turns {
					if turn.Model != models[i] || strings.Join(turn.Tools, ", ") != tools[i] {
						t.Errorf("%s turn %d: %s calling [%s], want %s calling [%s]", name, i+1,
							turn.Model, strings.Join(turn.Tools, ", "), models[i], tools[i])
					}
				}
				if last := turns[len(turns)-1]; last.Answer != demo.FinalAnswer {
					t.Errorf("%s: final answer %q, want %q", name, last.Answer, demo.FinalAnswer)
				}
			}
			checkRun("unpinned", res.without, demo.ModelClaude, demo.ModelGPT, demo.ModelClaude, demo.ModelGPT)
			checkRun("pinned", res.with, demo.ModelClaude, demo.ModelClaude, demo.ModelClaude, demo.ModelClaude)

			// one routing decision per unpinned turn; pinned, only the first
			if res.routerCalls != [2]int64{4, 1} {
				t.Errorf("router calls %v, want [4 1]: one per unpinned turn, then only the pinning one", res.routerCalls)
			}

			// the prompt cache: cached is the prompt of the model's previous
			// turn in the run, all of it, read through the client's SDK
			checkCache := func(name string, turns []demo.Turn, previous ...int) {
				t.Helper()
				for i, turn := range turns {
					u := turn.Usage
					if u.Input != res.without[i].Usage.Input || u.Input == 0 {
						t.Errorf("%s turn %d: %d input tokens, the unpinned run's %d: one conversation", name, i+1, u.Input, res.without[i].Usage.Input)
					}
					want, from := int64(0), "the model's first turn in the run"
					if p := previous[i]; p >= 0 {
						want, from = turns[p].Usage.Input, fmt.Sprintf("turn %d's prompt", p+1)
					}
					if u.Cached != want {
						t.Errorf("%s turn %d: %d of %d cached, want %d (%s)", name, i+1, u.Cached, u.Input, want, from)
					}
				}
			}
			checkCache("unpinned", res.without, -1, -1, 0, 1)
			checkCache("pinned", res.with, -1, 0, 1, 2)
			without, with := demo.TotalUsage(res.without), demo.TotalUsage(res.with)
			if with.HitRatio() <= without.HitRatio() || with.FullPrice() >= without.FullPrice() {
				t.Errorf("cache hit ratio %.3f without affinity, %.3f with; billed at full price %d and %d: want affinity higher, and fewer",
					without.HitRatio(), with.HitRatio(), without.FullPrice(), with.FullPrice())
			}
			for _, want := range []string{
				fmt.Sprintf("cache hit ratio %.1f%% · billed at full price %d of %d input tokens", 100*without.HitRatio(), without.FullPrice(), without.Input),
				fmt.Sprintf("cache hit ratio %.1f%% · billed at full price %d of %d input tokens", 100*with.HitRatio(), with.FullPrice(), with.Input),
				fmt.Sprintf("✓  Cache hit ratio %.1f%% without affinity, %.1f%% with it: %d input tokens billed at full price instead of %d",
					100*without.HitRatio(), 100*with.HitRatio(), with.FullPrice(), without.FullPrice()),
			} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
			// the totals row: "total", the input, the cached
			for i, run := range []string{run1, run2} {
				total := []demo.Usage{without, with}[i]
				want := []string{"total", fmt.Sprint(total.Input), fmt.Sprint(total.Cached)}
				found := false
				for line := range strings.Lines(run) {
					found = found || slices.Equal(strings.Fields(line), want)
				}
				if !found {
					t.Errorf("run %d: no line %q under the table:\n%s", i+1, strings.Join(want, " "), run)
				}
			}
		})
	}
}

// TestUnknownClient refuses a --client the demo does not speak before it
// starts anything.
func TestUnknownClient(t *testing.T) {
	var out bytes.Buffer
	if _, err := run(&out, config{client: "grpc", timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "want chat, messages or responses") {
		t.Errorf("run with --client grpc: %v, want the choices named", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed %q before refusing", out.String())
	}
}

package main

import (
	"bytes"
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

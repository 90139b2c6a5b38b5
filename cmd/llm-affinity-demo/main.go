// Command llm-affinity-demo runs the same database-selection agent twice
// through the gateway, without and with X-Model-Affinity, and prints the
// model that answered each turn and the input tokens the provider served
// from its prompt cache, and ends each run with the cache hit ratio and
// the tokens billed at full price. With no flags it is self-contained: it
// starts Caddy with llm_affinity, two stand-in providers and a stand-in
// routing model on loopback, and needs no API keys.
//
//	go run ./cmd/llm-affinity-demo
//	go run ./cmd/llm-affinity-demo --client messages
//	go run ./cmd/llm-affinity-demo --gateway http://localhost:8080/v1
//
// --client picks the API the agent speaks: chat (Chat Completions), messages
// (Anthropic Messages) or responses (OpenAI Responses). The stand-in models
// speak Chat Completions, so with the other two the gateway translates.
//
// It exits 0 only if the run with affinity stayed on one model.
//
// The stand-in providers cache the way real ones do: a request's cached
// tokens are the prefix it shares with the previous request of the same
// model in the same session (see internal/demo/promptcache.go). Each run's
// agent has a session id of its own, which it sends in the body as the
// end-user id; run 2 sends it as X-Model-Affinity too.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/llmaffinity/caddy-llm-affinity/internal/demo"
)

// config is what the flags set.
type config struct {
	gateway, model, apiKey string
	client                 demo.ClientAPI
	timeout                time.Duration
}

// result is what the two runs saw.
type result struct {
	without, with []demo.Turn
	// routerCalls counts the routing model's calls in each run; -1 when
	// the gateway is not the demo's own, whose router it cannot count.
	routerCalls [2]int64
}

func main() {
	var cfg config
	var client string
	flag.StringVar(&cfg.gateway, "gateway", "", "OpenAI base URL of a running gateway, e.g. http://localhost:8080/v1 (default: start a local one)")
	flag.StringVar(&client, "client", string(demo.ClientChat), "API the agent speaks: chat (POST /v1/chat/completions), "+
		"messages (Anthropic, POST /v1/messages) or responses (POST /v1/responses); the gateway translates for models that speak another")
	flag.StringVar(&cfg.model, "model", "gpt-4o-mini", "model the agent asks for; the gateway decides which one serves")
	flag.StringVar(&cfg.apiKey, "api-key", "unused", "API key the client sends; the gateway replaces it with each model's own key")
	flag.DurationVar(&cfg.timeout, "timeout", 5*time.Minute, "time limit for both runs")
	flag.Parse()
	cfg.client = demo.ClientAPI(client)

	if _, err := run(os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "llm-affinity-demo:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, cfg config) (result, error) {
	res := result{routerCalls: [2]int64{-1, -1}}
	if !slices.Contains(demo.ClientAPIs, cfg.client) {
		return res, fmt.Errorf("--client %q: want chat, messages or responses", cfg.client)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()

	gateway := cfg.gateway
	var router *demo.Router
	if gateway == "" {
		stack, err := demo.Start()
		if err != nil {
			return res, err
		}
		defer stack.Close()
		gateway, router = stack.GatewayURL, stack.Router
		fmt.Fprintf(out, "\n  Gateway: Caddy + llm_affinity on %s (local stand-in providers and router)\n", gateway)
	} else {
		fmt.Fprintf(out, "\n  Gateway: %s\n", gateway)
	}
	fmt.Fprintf(out, "  Client:  %s\n", cfg.client.Describe())
	if router != nil && cfg.client != demo.ClientChat {
		fmt.Fprintf(out, "           the stand-in models speak Chat Completions: the gateway translates every turn\n")
	}

	// agent runs the agent once as session, a client sending header, and
	// counts the routing model's calls of the run
	agent := func(i int, session string, header map[string]string) ([]demo.Turn, error) {
		conv, err := demo.NewConversation(cfg.client, gateway, cfg.apiKey, cfg.model, session, header)
		if err != nil {
			return nil, err
		}
		var before int64
		if router != nil {
			before = router.Calls.Load()
		}
		turns, err := demo.RunAgent(ctx, conv)
		if router != nil {
			res.routerCalls[i] = router.Calls.Load() - before
		}
		return turns, err
	}

	var err error
	if res.without, err = agent(0, uuid.NewString(), nil); err != nil {
		return res, fmt.Errorf("run without affinity: %w", err)
	}
	printRun(out, "Run 1: WITHOUT Model Affinity", res.without)
	if n := demo.Switches(res.without); n > 0 {
		fmt.Fprintf(out, "\n  ✗  Without affinity: model switched %d time(s)\n", n)
	} else {
		fmt.Fprintf(out, "\n  •  Without affinity: the router happened to pick one model every turn\n")
	}

	session := uuid.NewString()
	if res.with, err = agent(1, session, map[string]string{"X-Model-Affinity": session}); err != nil {
		return res, fmt.Errorf("run with affinity: %w", err)
	}
	printRun(out, fmt.Sprintf("Run 2: WITH Model Affinity  (X-Model-Affinity: %s…)", session[:8]), res.with)
	if n := demo.Switches(res.with); n > 0 {
		fmt.Fprintf(out, "\n  ✗  With affinity: model switched %d time(s)\n\n", n)
		return res, fmt.Errorf("the run with affinity used more than one model")
	}
	fmt.Fprintf(out, "\n  ✓  With affinity: %s for all %d turns\n", res.with[0].Model, len(res.with))
	printSaving(out, demo.TotalUsage(res.without), demo.TotalUsage(res.with))
	return res, nil
}

// printSaving compares the two runs' prompt caching.
func printSaving(out io.Writer, without, with demo.Usage) {
	switch {
	case with.Input == 0 || without.Input == 0:
		fmt.Fprintf(out, "  •  The responses reported no input tokens: no cache hit ratio to compare\n\n")
	case with.HitRatio() > without.HitRatio():
		fmt.Fprintf(out, "  ✓  Cache hit ratio %s without affinity, %s with it: %d input tokens billed at full price instead of %d\n\n",
			percent(without), percent(with), with.FullPrice(), without.FullPrice())
	default:
		fmt.Fprintf(out, "  •  Cache hit ratio %s without affinity, %s with it: the provider cached no more of the pinned run\n\n",
			percent(without), percent(with))
	}
}

// percent is u's cache hit ratio as a percentage.
func percent(u demo.Usage) string { return fmt.Sprintf("%.1f%%", 100*u.HitRatio()) }

// printRun prints one run as a table: turn, model, tools called, the
// input tokens and how many of them were cached, and a marker where the
// model switched; then the totals, the cache hit ratio and the input
// tokens billed at full price.
func printRun(out io.Writer, title string, turns []demo.Turn) {
	total := demo.TotalUsage(turns)
	heads := make([]string, len(turns))
	headWidth := 0
	for i, t := range turns {
		what := "final answer"
		if len(t.Tools) > 0 {
			what = strings.Join(t.Tools, ", ")
		}
		heads[i] = fmt.Sprintf("    turn %d  [%-29s]  %s", i+1, t.Model, what)
		headWidth = max(headWidth, len(heads[i]))
	}
	inWidth := max(len("input"), len(fmt.Sprint(total.Input)))
	cachedWidth := max(len("cached"), len(fmt.Sprint(total.Cached)))
	// the rule under the title spans the table, the switch markers aside
	fmt.Fprintf(out, "\n  %s\n  %s\n", title, strings.Repeat("━", max(56, headWidth+inWidth+cachedWidth+4-2)))
	fmt.Fprintf(out, "%*s  %*s  %*s\n", headWidth, "", inWidth, "input", cachedWidth, "cached")
	for i, head := range heads {
		line := fmt.Sprintf("%-*s  %*d  %*d", headWidth, head, inWidth, turns[i].Usage.Input, cachedWidth, turns[i].Usage.Cached)
		if i > 0 && turns[i].Model != turns[i-1].Model {
			line += "  ← switched"
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintf(out, "%*s  %s  %s\n", headWidth, "", strings.Repeat("─", inWidth), strings.Repeat("─", cachedWidth))
	fmt.Fprintf(out, "%*s  %*d  %*d\n", headWidth, "total", inWidth, total.Input, cachedWidth, total.Cached)
	fmt.Fprintf(out, "    cache hit ratio %s · billed at full price %d of %d input tokens\n", percent(total), total.FullPrice(), total.Input)
}

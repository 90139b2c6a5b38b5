// Command llm-affinity-demo runs the same database-selection agent twice
// through the gateway, without and with X-Model-Affinity, and prints the
// model that answered each turn. With no flags it is self-contained: it
// starts Caddy with llm_affinity, two stand-in providers and a stand-in
// routing model on loopback, and needs no API keys.
//
//	go run ./cmd/llm-affinity-demo
//	go run ./cmd/llm-affinity-demo --gateway http://localhost:8080/v1
//
// It exits 0 only if the run with affinity stayed on one model.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmaffinity/caddy-llm-affinity/internal/demo"
)

func main() {
	gateway := flag.String("gateway", "", "OpenAI base URL of a running gateway, e.g. http://localhost:8080/v1 (default: start a local one)")
	model := flag.String("model", "gpt-4o-mini", "model the agent asks for; the gateway decides which one serves")
	apiKey := flag.String("api-key", "unused", "API key the client sends; the gateway replaces it with each model's own key")
	timeout := flag.Duration("timeout", 5*time.Minute, "time limit for both runs")
	flag.Parse()

	if err := run(os.Stdout, *gateway, *model, *apiKey, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "llm-affinity-demo:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, gateway, model, apiKey string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	if gateway == "" {
		stack, err := demo.Start()
		if err != nil {
			return err
		}
		defer stack.Close()
		gateway = stack.GatewayURL
		fmt.Fprintf(out, "\n  Gateway: Caddy + llm_affinity on %s (local stand-in providers and router)\n", gateway)
	} else {
		fmt.Fprintf(out, "\n  Gateway: %s\n", gateway)
	}
	client := openai.NewClient(option.WithBaseURL(gateway), option.WithAPIKey(apiKey), option.WithMaxRetries(0))

	without, err := demo.RunAgent(ctx, client, model)
	if err != nil {
		return fmt.Errorf("run without affinity: %w", err)
	}
	printRun(out, "Run 1: WITHOUT Model Affinity", without)
	if n := demo.Switches(without); n > 0 {
		fmt.Fprintf(out, "\n  ✗  Without affinity: model switched %d time(s)\n", n)
	} else {
		fmt.Fprintf(out, "\n  •  Without affinity: the router happened to pick one model every turn\n")
	}

	session := uuid.NewString()
	with, err := demo.RunAgent(ctx, client, model, option.WithHeader("X-Model-Affinity", session))
	if err != nil {
		return fmt.Errorf("run with affinity: %w", err)
	}
	printRun(out, fmt.Sprintf("Run 2: WITH Model Affinity  (X-Model-Affinity: %s…)", session[:8]), with)
	if n := demo.Switches(with); n > 0 {
		fmt.Fprintf(out, "\n  ✗  With affinity: model switched %d time(s)\n\n", n)
		return fmt.Errorf("the run with affinity used more than one model")
	}
	fmt.Fprintf(out, "\n  ✓  With affinity: %s for all %d turns\n\n", with[0].Model, len(with))
	return nil
}

// printRun prints one run as a table: turn, model, tools called, and a
// marker where the model switched.
func printRun(out io.Writer, title string, turns []demo.Turn) {
	fmt.Fprintf(out, "\n  %s\n  %s\n", title, strings.Repeat("━", 56))
	lines := make([]string, len(turns))
	width := 0
	for i, t := range turns {
		what := "final answer"
		if len(t.Tools) > 0 {
			what = strings.Join(t.Tools, ", ")
		}
		lines[i] = fmt.Sprintf("    turn %d  [%-29s]  %s", i+1, t.Model, what)
		width = max(width, len(lines[i]))
	}
	for i, line := range lines {
		if i > 0 && turns[i].Model != turns[i-1].Model {
			line = fmt.Sprintf("%-*s  ← switched", width, line)
		}
		fmt.Fprintln(out, line)
	}
}

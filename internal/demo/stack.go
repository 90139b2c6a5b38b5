package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	// the gateway: Caddy's standard modules and llm_affinity
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/llmaffinity/caddy-llm-affinity"
)

// Model names of the demo, as the stand-in providers echo them.
const (
	ModelClaude = "claude-sonnet-4-20250514"
	ModelGPT    = "gpt-4o"
)

// Site returns the demo's Caddyfile site block: two models, two routes and a
// routing model, the way an operator writes it.
func Site(address, gptAddr, claudeAddr, routerEndpoint string) string {
	return fmt.Sprintf(`%s {
	llm_affinity {
		default %s
		# the stand-ins speak Chat Completions: a Messages or Responses
		# client's requests and responses are translated
		model %s {
			to %s
			api chat
		}
		model %s {
			to %s
			api chat
		}
		route %s {
			description Selecting and calling tools to gather data: benchmarks, case studies, feature checks
			models %s
		}
		route %s {
			description Reasoning about gathered results, comparing options and writing a recommendation
			models %s
		}
		router llm {
			endpoint %s
			model katanemo/Arch-Router-1.5B
			# the stand-in answers at once: a generous bound keeps a busy
			# machine from turning a routing decision into a fallback
			timeout 1m
		}
	}
	reverse_proxy {
		dynamic llm_affinity
	}
}
`, address, ModelGPT, ModelGPT, gptAddr, ModelClaude, claudeAddr,
		RouteToolCalling, ModelClaude, RouteAnalysis, ModelGPT, routerEndpoint)
}

// stackGlobalOptions keep the in-process Caddy to itself: no admin endpoint,
// no saved config, only errors logged.
const stackGlobalOptions = "{\n\tadmin off\n\tpersist_config off\n\tlog {\n\t\tlevel ERROR\n\t}\n}\n"

// Stack is the self-contained demo: Caddy with llm_affinity in this process,
// two stand-in providers and a stand-in routing model, all on loopback.
type Stack struct {
	// GatewayURL is the OpenAI base URL clients use, e.g. http://127.0.0.1:PORT/v1.
	GatewayURL string
	// Router is the stand-in routing model, to count its calls.
	Router *Router

	servers []*http.Server
}

// Start starts the stand-ins and Caddy. Close stops all of it.
func Start() (*Stack, error) {
	s := &Stack{Router: new(Router)}
	gptAddr, err := s.serve(new(Provider))
	if err != nil {
		return nil, err
	}
	claudeAddr, err := s.serve(new(Provider))
	if err != nil {
		s.Close()
		return nil, err
	}
	routerAddr, err := s.serve(s.Router)
	if err != nil {
		s.Close()
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		s.Close()
		return nil, err
	}
	caddyfile := stackGlobalOptions +
		Site(fmt.Sprintf("http://127.0.0.1:%d", port), gptAddr, claudeAddr, "http://"+routerAddr+"/v1/chat/completions")
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("adapting the demo Caddyfile: %v", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		s.Close()
		return nil, fmt.Errorf("starting Caddy: %v", err)
	}
	s.GatewayURL = fmt.Sprintf("http://127.0.0.1:%d/v1", port)
	return s, nil
}

// serve runs h on a loopback port and returns its address.
func (s *Stack) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// Close stops Caddy and the stand-ins.
func (s *Stack) Close() {
	if s.GatewayURL != "" {
		_ = caddy.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = srv.Close()
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

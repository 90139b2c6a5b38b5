// Command caddy is Caddy with its standard modules and the llm_affinity
// module, so `go build ./cmd/caddy` gives a working gateway binary.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// plug in Caddy's standard modules and this module
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/llmaffinity/caddy-llm-affinity"
)

func main() {
	caddycmd.Main()
}

// Command genbody writes a deterministic OpenAI chat.completions request body
// shaped like an agent turn (see internal/agentbody) of approximately -size
// bytes.
//
//	genbody -size 32768 -out body-32k.json
package main

import (
	"flag"
	"log"
	"os"

	"github.com/llmaffinity/caddy-llm-affinity/internal/agentbody"
)

func main() {
	size := flag.Int("size", 1024, "approximate body size in bytes")
	out := flag.String("out", "", "output file (default stdout)")
	flag.Parse()
	if *size < 256 || *size > 64<<20 {
		log.Fatal("-size must be in 256..64MiB")
	}
	b := agentbody.Generate(*size)
	if *out == "" {
		_, _ = os.Stdout.Write(b)
		return
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

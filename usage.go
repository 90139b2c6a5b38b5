package llmaffinity

import (
	"time"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// turnReport is what one request cost and how it was served, as the
// metrics, the access log and the trace span report it. It holds
// configured names and counts only, never prompt text or keys.
type turnReport struct {
	// requestedModel is the model the client asked for.
	requestedModel string
	// model is the configured model that served; upstreamModel the name the
	// provider answered with ("" when it named none).
	model, upstreamModel string
	// route and status are the decision's (see setDecisionOutputs);
	// keyHash the affinity key hashed, "" without one.
	route, status, keyHash string
	// usage is the response's token counts; hasUsage false when the
	// response reported none.
	usage    llmapi.Usage
	hasUsage bool
	// ttft is the time from the request to the first byte of a streamed
	// response; 0 when not streamed.
	ttft time.Duration
	// duration is the time the upstream took, code its status.
	duration time.Duration
	code     int
	// cost is what usage cost at the model's price; priced false when the
	// model has none.
	cost   float64
	priced bool
}

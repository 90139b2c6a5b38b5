package llmaffinity

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// The module's metrics. They are created once and registered in every config
// generation's registry (Caddy's metrics registry is per config). Labels
// carry configured names only: never keys, credentials or prompt text.
var (
	decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "llm_affinity", Name: "decisions_total",
		Help: "Routing decisions by status (pinned, routed, default), serving model and route.",
	}, []string{"status", "model", "route"})

	routerDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "llm_affinity", Name: "router_duration_seconds",
		Help:    "Time the routing model took to answer.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5},
	})

	routerErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "llm_affinity", Name: "router_errors_total",
		Help: "Routing model calls that failed or timed out (the request fell back).",
	})

	storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "llm_affinity", Name: "store_errors_total",
		Help: "Failed calls to the shared pin store, by operation (the request went on from memory).",
	}, []string{"op"})

	bufferedBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "llm_affinity", Name: "buffered_bytes",
		Help: "Bytes held in request body buffers by requests in flight (bounded by max_buffered per handler).",
	})

	tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "llm_affinity", Name: "tokens_total",
		Help: "Tokens of the models' responses, by serving model, route and kind: input (cached tokens included), " +
			"output, cache_read and cache_write. cache_read / input is the prompt-cache hit ratio.",
	}, []string{"model", "route", "kind"})

	timeToFirstToken = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "llm_affinity", Name: "time_to_first_token_seconds",
		Help:    "Time from the request to the first byte of a streamed response, by serving model.",
		Buckets: []float64{.05, .1, .25, .5, .75, 1, 1.5, 2, 3, 5, 10, 20},
	}, []string{"model"})

	upstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "llm_affinity", Name: "upstream_duration_seconds",
		Help:    "Time a model took to give its whole response (or to fail), by model and status code.",
		Buckets: []float64{.1, .25, .5, 1, 2, 5, 10, 20, 40, 80, 160, 320},
	}, []string{"model", "code"})

	costUSD = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "llm_affinity", Name: "cost_usd_total",
		Help: "What the models' responses cost at their configured prices, in US dollars, by serving model and route.",
	}, []string{"model", "route"})

	pinsDesc = prometheus.NewDesc("caddy_llm_affinity_pins",
		"Pins kept in memory, by pin store name.", []string{"name"}, nil)
)

// requestRouteLabel stands for every route a request brought itself
// (routing_preferences): client-chosen names stay out of metric labels.
const requestRouteLabel = "(routing_preferences)"

// metricRoute is the route label of a decision: a configured route's name,
// "" for none, else requestRouteLabel. A pin may carry a route a request
// brought, so the name is checked against the config, not the request.
func (h *Handler) metricRoute(route string) string {
	if route == "" || h.routeByName[route] != nil {
		return route
	}
	return requestRouteLabel
}

// countStoreError counts a failed shared-store call.
func countStoreError(op string, _ error) {
	storeErrors.WithLabelValues(op).Inc()
}

// pinsCollector reports each pooled store's pin count at scrape time.
type pinsCollector struct{}

// Describe sends the pins metric's descriptor.
func (pinsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pinsDesc }

// Collect sends each pooled store's pin count.
func (pinsCollector) Collect(ch chan<- prometheus.Metric) {
	pinStores.Range(func(key, value any) bool {
		ch <- prometheus.MustNewConstMetric(pinsDesc, prometheus.GaugeValue,
			float64(value.(*pooledStore).Len()), key.(string))
		return true
	})
}

// registerMetrics adds the module's collectors to the config's registry.
func registerMetrics(ctx caddy.Context, logger *zap.Logger) {
	registry := ctx.GetMetricsRegistry()
	if registry == nil {
		return
	}
	for _, c := range []prometheus.Collector{decisions, routerDuration, routerErrors, storeErrors, bufferedBytes, pinsCollector{},
		tokens, timeToFirstToken, upstreamDuration, costUSD} {
		if err := registry.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				logger.Warn("registering metrics", zap.Error(err))
			}
		}
	}
}

// responseMetrics are a handler's response metrics by their labels.
type responseMetrics struct {
	usage     sync.Map // modelRoute -> *usageCounters
	durations sync.Map // modelCode -> prometheus.Observer
}

// usageCounters are the token and cost counters of one (model, route),
// looked up once: a label lookup per count would cost more than the
// metering itself. cost is nil for a model without a price.
type usageCounters struct {
	input, output, cacheRead, cacheWrite, cost prometheus.Counter
}

// modelRoute names a (model, route) pair of counters.
type modelRoute struct{ model, route string }

// modelCode names a (model, status code) duration histogram.
type modelCode struct {
	model string
	code  int
}

// countUsage adds a response's usage, and its cost, to the counters.
func (h *Handler) countUsage(rep *turnReport) {
	key := modelRoute{rep.model, h.metricRoute(rep.route)}
	c, ok := h.responseMetrics.usage.Load(key)
	if !ok {
		counters := &usageCounters{
			input:      tokens.WithLabelValues(key.model, key.route, "input"),
			output:     tokens.WithLabelValues(key.model, key.route, "output"),
			cacheRead:  tokens.WithLabelValues(key.model, key.route, "cache_read"),
			cacheWrite: tokens.WithLabelValues(key.model, key.route, "cache_write"),
		}
		if rep.priced { // a model's price is its config's: priced every time or never
			counters.cost = costUSD.WithLabelValues(key.model, key.route)
		}
		c, _ = h.responseMetrics.usage.LoadOrStore(key, counters)
	}
	counters := c.(*usageCounters)
	u := rep.usage
	counters.input.Add(float64(u.InputTokens))
	counters.output.Add(float64(u.OutputTokens))
	counters.cacheRead.Add(float64(u.CacheReadTokens))
	counters.cacheWrite.Add(float64(u.CacheWriteTokens))
	if rep.priced {
		counters.cost.Add(rep.cost)
	}
}

// observeUpstream records how long a model took to answer with code.
func (h *Handler) observeUpstream(model string, code int, took time.Duration) {
	key := modelCode{model, code}
	o, ok := h.responseMetrics.durations.Load(key)
	if !ok {
		o, _ = h.responseMetrics.durations.LoadOrStore(key, upstreamDuration.WithLabelValues(model, strconv.Itoa(code)))
	}
	o.(prometheus.Observer).Observe(took.Seconds())
}

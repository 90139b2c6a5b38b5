package llmaffinity

import (
	"errors"

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
	for _, c := range []prometheus.Collector{decisions, routerDuration, routerErrors, storeErrors, bufferedBytes, pinsCollector{}} {
		if err := registry.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				logger.Warn("registering metrics", zap.Error(err))
			}
		}
	}
}
